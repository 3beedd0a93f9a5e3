"""The routing core: one internal message model, topics, router, sessions, stores (no I/O)."""

from core.compiled import install_guard

install_guard()  # before any hot module loads: compiled, or all of them from source (core/compiled.py)
