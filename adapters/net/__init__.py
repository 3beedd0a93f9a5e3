"""Listening sockets shared by every listener: a listen address bound on one or both IP stacks (`server`)."""
