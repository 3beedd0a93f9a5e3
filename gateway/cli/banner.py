"""The ready banner `rosettamq run` prints once every listener is bound: plain text a person reads.

    RosettaMQ 0.1.0 ready (pid 4242)
      config     none: embedded defaults (every key: examples/rosettamq.toml)
      store      /srv/rosettamq/rosettamq.db
      mqtt       mqtt://localhost:1883
      ws         ws://localhost:8083/mqtt
      ...
      console    http://localhost:8080/
      dashboard  http://localhost:8080/dashboard/
      local only: every listener binds loopback (127.0.0.1 and ::1). ...how to let other hosts in

"localhost" is a listener bound on both loopbacks (adapters/net/server.py); one that fell back to
IPv4 (no IPv6 on the host) shows 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING

from gateway.http import DASHBOARD_DIR
from gateway.version import gateway_version

if TYPE_CHECKING:
    from gateway.app import Gateway

SCHEMES = {"mqtt": "mqtt", "mqtt_tls": "mqtts", "ws": "ws", "wss": "wss", "amqp": "amqp", "amqps": "amqps",
           "coap": "coap", "coaps": "coaps", "http": "http"}
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url(name: str, host: str, port: int, path: str = "") -> str:
    """A URL a client on this machine can use (a wildcard address is reached through loopback)."""
    host = WILDCARDS.get(host, host)
    return f"{SCHEMES[name]}://{f'[{host}]' if ':' in host else host}:{port}{path}"


def banner_lines(gateway: "Gateway", config_path: str | None) -> list[str]:
    config, bound = gateway.config, gateway.listening.bound
    rows = [("config", os.path.abspath(config_path) if config_path
             else "none: embedded defaults (every key: examples/rosettamq.toml)"),
            ("store", "memory: nothing is kept on disk" if config.store.is_memory
             else os.path.abspath(config.store.path))]
    if config.log.file is not None:
        rows.append(("log", os.path.abspath(config.log.file)))
    for name, (host, port) in bound.items():
        if name == "http":
            continue
        path = getattr(config, name).path if name in ("ws", "wss") else ""
        note = "  (every interface)" if host in WILDCARDS else ""
        if host == "::":
            note = "  (every interface, IPv6 and IPv4)"
        if name == "coap" and gateway.lwm2m is not None:
            note += "  LwM2M registration: /rd"
        rows.append((name, url(name, host, port, path) + note))
    if "http" in bound:
        base = url("http", *bound["http"])
        rows.append(("console", f"{base}/"))
        if DASHBOARD_DIR.is_dir():
            rows.append(("dashboard", f"{base}/dashboard/"))
        rows += [("admin API", f"{base}/api/v1/  (rosettamq status)"), ("metrics", f"{base}/metrics")]
    width = max(len(label) for label, _ in rows)
    lines = [f"RosettaMQ {gateway_version()} ready (pid {os.getpid()})"]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    opened = [name for name, (host, _) in bound.items() if not is_loopback(host)]
    if not opened:
        both = any(host == "localhost" for host, _ in bound.values())
        lines.append(f"  local only: every listener binds loopback{' (127.0.0.1 and ::1)' if both else ''}."
                     " To let other hosts in, set listen = \"0.0.0.0:PORT\" (or \"[::]:PORT\", IPv6 and IPv4)"
                     " in a config file (--config, see examples/rosettamq.toml) or pass --mqtt 0.0.0.0:1883"
                     " (likewise --ws, --amqp, --coap, --http)")
    elif gateway.authenticator is None:
        lines.append(f"  anonymous: anyone who reaches {', '.join(opened)} gets in; set [auth] password_file"
                     " (rosettamq passwd FILE USER)")
    return lines
