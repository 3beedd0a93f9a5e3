"""LwM2M server side, without I/O: content formats, object definitions,
registration, command translation and queue mode, ready to be mounted on the
CoAP listener (the thin server layer lives with the CoAP adapter wiring).
"""
