"""The `rosettamq` command: `rosettamq run [--config FILE] [--mqtt HOST:PORT] ...`, `rosettamq passwd`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Sequence

from core.acl import AclFileError
from core.passwords import PasswordFileError
from core.stores.base import StoreError

from gateway import admin_cli, passwd, token_cli
from gateway.logs import configure_logging
from gateway.app import Gateway
from gateway.config import Config, ConfigError, apply_cli_overrides, load_config

log = logging.getLogger("rosettamq")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rosettamq", description="Multi-protocol IoT gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the gateway")
    run.add_argument("--config", "-c", help="TOML config file (default: embedded defaults)")
    run.add_argument("--mqtt", metavar="HOST:PORT", help="MQTT listen address (port 0: any free port)")
    run.add_argument("--ws", metavar="HOST:PORT", help="MQTT over WebSocket listen address")
    run.add_argument("--amqp", metavar="HOST:PORT", help="AMQP 0-9-1 listen address")
    run.add_argument("--coap", metavar="HOST:PORT", help="CoAP listen address")
    run.add_argument("--http", metavar="HOST:PORT", help="admin HTTP listen address")
    run.add_argument("--store", metavar="PATH", help='store path, or "memory"')
    run.add_argument("--ports-file", metavar="PATH", help="write the listening ports as JSON once ready")
    run.add_argument("--log-level", help="debug, info, warning, error")
    run.add_argument("--log-format", choices=("text", "json"), help="key=value text (default) or one JSON object a line")
    passwd.add_parser(commands)
    token_cli.add_parser(commands)
    admin_cli.add_parsers(commands)
    return parser


async def serve(config: Config, ports_file: str | None) -> None:
    gateway = Gateway(config)
    await gateway.start()
    if ports_file:
        gateway.write_ports_file(ports_file)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    # SIGHUP: re-read the password and ACL files (as Mosquitto); connections stay open.
    loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    log.info("ready ports=%s", gateway.ports)
    await stopping.wait()
    log.info("shutting down")
    await gateway.stop()


def run_loop(coro) -> None:  # type: ignore[no-untyped-def]
    """Run on uvloop when it is installed, else on the stdlib loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "passwd":
        return passwd.run(args)
    if args.command == "token":
        return token_cli.run(args)
    if args.command in ("status", "clients"):
        return admin_cli.run(args)
    try:
        config = load_config(args.config)
        config = apply_cli_overrides(
            config,
            mqtt_listen=args.mqtt,
            ws_listen=args.ws,
            amqp_listen=args.amqp,
            coap_listen=args.coap,
            http_listen=args.http,
            store_path=args.store,
        )
    except ConfigError as exc:
        print(f"rosettamq: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config, args.log_level, args.log_format)
    try:
        run_loop(serve(config, args.ports_file))
    except PasswordFileError as exc:
        log.error("cannot start: password file: %s", exc)
        return 2
    except AclFileError as exc:
        log.error("cannot start: acl file: %s", exc)
        return 2
    except StoreError as exc:
        log.error("cannot start: store: %s", exc)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
