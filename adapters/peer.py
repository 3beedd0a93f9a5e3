"""How every listener writes a peer's socket address: "host:port", "[v6]:port" for IPv6.

An IPv4 client of a dual-stack listener (``[::]``) arrives as ``::ffff:a.b.c.d``: it is written
as the IPv4 address it is, so logs, the admin API's client list, ACL placeholders and per-address
limits see the same key whichever socket it came through.
"""

from __future__ import annotations

import ipaddress


def plain_host(host: str) -> str:
    """An IPv4-mapped IPv6 address as IPv4 ("::ffff:127.0.0.1" -> "127.0.0.1"); anything else unchanged."""
    if ":" not in host or host[:7].lower() != "::ffff:":  # (an IPv4 address: no slice, no lower())
        return host
    try:
        mapped = ipaddress.IPv6Address(host).ipv4_mapped
    except ValueError:
        return host
    return str(mapped) if mapped is not None else host


def format_peer(peername: object) -> str:
    """A socket address as "host:port" ("[v6]:port"), the form connections record, log and rate-limit."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = plain_host(str(peername[0])), peername[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peername or "")
