"""`rosettamq status`, `rosettamq clients` and `rosettamq bridges`: the admin API from a terminal, as tables.

Where the API is, first found wins: `--url`, `$ROSETTAMQ_URL`, the `[http] listen` of
`--config FILE` (the file the gateway runs with), http://localhost:8080. The bearer token:
`--token`, `$ROSETTAMQ_TOKEN`, the config's `[http] api_token`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import urllib.error
import urllib.request
from typing import Any, Sequence

from gateway.config import ConfigError, load_config

DEFAULT_URL = "http://localhost:8080"  # the default [http] listen: 127.0.0.1 and ::1, whichever localhost names
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def add_parser(commands: Any) -> None:
    for name, help_text in (("status", "show the gateway's health and traffic"),
                            ("clients", "list connected clients of every protocol"),
                            ("bridges", "show each bridge: its upstream, connected or not, queued, forwarded")):
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--config", "-c", help="the gateway's TOML config: its [http] listen and api_token")
        parser.add_argument("--url", help=f"admin API base URL ($ROSETTAMQ_URL; default {DEFAULT_URL})")
        parser.add_argument("--token", help="bearer token ($ROSETTAMQ_TOKEN; [http] api_token)")
        parser.add_argument("--user", help="USER:PASSWORD for HTTP basic auth (password file)")
        if name == "clients":
            parser.add_argument("--protocol", choices=("mqtt", "amqp", "coap"), help="only this protocol")
            parser.add_argument("--kick", metavar="CLIENT_ID", help="disconnect this client instead of listing")


def call(args: argparse.Namespace, method: str, path: str) -> Any:
    request = urllib.request.Request(args.url.rstrip("/") + path, method=method)
    if args.token:
        request.add_header("Authorization", f"Bearer {args.token}")
    elif args.user:
        request.add_header("Authorization", "Basic " + base64.b64encode(args.user.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise SystemExit(f"rosettamq: {method} {path}: {exc.code} {message}") from None
    except urllib.error.URLError as exc:
        raise SystemExit(f"rosettamq: cannot reach {args.url}: {exc.reason}") from None


def table(headers: Sequence[str], rows: list[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)


def status(args: argparse.Namespace) -> int:
    health = call(args, "GET", "/api/v1/health")
    stats = call(args, "GET", "/api/v1/stats")
    print(f"rosettamq {stats['version']}  {'ready' if health['ready'] else 'not ready'}  up {stats['uptime']:.0f} s")
    print()
    print(table(("listener", "port", "state"),
                [(name, port, health["listener_states"].get(name, "")) for name, port in health["listeners"].items()]))
    print()
    protocols = sorted(set(stats["connections"]) | set(stats["messages_received"]) | set(stats["messages_sent"]))
    print(table(("protocol", "connections", "msgs in", "msgs out", "bytes in", "bytes out"), [
        (p, stats["connections"].get(p, ""), stats["messages_received"].get(p, 0), stats["messages_sent"].get(p, 0),
         stats["bytes_received"].get(p, 0), stats["bytes_sent"].get(p, 0)) for p in protocols]))
    if stats["deliveries"]:
        print()
        print(table(("from -> to", "deliveries"), sorted(stats["deliveries"].items())))
    print()
    print(f"subscriptions {stats['subscriptions']:.0f}  retained {stats['retained']:.0f}  "
          f"dropped {sum(stats['dropped'].values()):.0f}  auth failures {sum(stats['auth_failures'].values()):.0f}")
    return 0


def clients(args: argparse.Namespace) -> int:
    if args.kick:
        answer = call(args, "DELETE", f"/api/v1/clients/{urllib.request.quote(args.kick, safe='')}"
                      + (f"?protocol={args.protocol}" if args.protocol else ""))
        print(f"kicked {answer['kicked']} ({', '.join(answer['protocols'])})")
        return 0
    answer = call(args, "GET", "/api/v1/clients" + (f"?protocol={args.protocol}" if args.protocol else ""))
    rows = [(c["protocol"], c["id"], c.get("address"), c.get("username"), c.get("listener"),
             len(c.get("subscriptions", [])), c.get("queue_depth", 0)) for c in answer["clients"]]
    print(table(("protocol", "client id", "address", "username", "listener", "subs", "queued"), rows))
    print(f"{answer['count']} client(s)")
    return 0


def bridges(args: argparse.Namespace) -> int:
    answer = call(args, "GET", "/api/v1/bridges")
    rows = [(b["name"], b["kind"], b["url"], "yes" if b["connected"] else "no", b["queued"], b["forwarded"],
             b["received"], sum(b["dropped"].values()), b["failures"]) for b in answer["bridges"]]
    print(table(("bridge", "kind", "upstream", "connected", "queued", "forwarded", "received", "dropped",
                 "failures"), rows))
    for b in answer["bridges"]:
        if b["last_error"]:
            print(f"{b['name']}: last error: {b['last_error']}")
    print(f"{len(rows)} bridge(s)")
    return 0


def resolve(args: argparse.Namespace) -> None:
    """Fill in `args.url` and `args.token` from the environment and the config file."""
    args.url = args.url or os.environ.get("ROSETTAMQ_URL")
    args.token = args.token or os.environ.get("ROSETTAMQ_TOKEN")
    if args.config is not None and (args.url is None or (args.token is None and args.user is None)):
        try:
            http = load_config(args.config).http
        except ConfigError as exc:
            raise SystemExit(f"rosettamq: configuration error: {exc}") from None
        if args.url is None:
            if not http.enabled:
                raise SystemExit(f"rosettamq: {args.config}: [http] is off (enabled = false): no admin API to ask")
            host = WILDCARDS.get(http.listen.host, http.listen.host)
            args.url = f"http://{f'[{host}]' if ':' in host else host}:{http.listen.port}"
        args.token = args.token or http.api_token
    args.url = args.url or DEFAULT_URL


def run(args: argparse.Namespace) -> int:
    resolve(args)
    return {"status": status, "clients": clients, "bridges": bridges}[args.command](args)
