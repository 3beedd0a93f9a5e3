"""How every listener writes a peer's socket address: "host:port", "[v6]:port" for IPv6."""

from __future__ import annotations


def format_peer(peername: object) -> str:
    """A socket address as "host:port" ("[v6]:port"), the form connections record, log and rate-limit."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peername or "")
