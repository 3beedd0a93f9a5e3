"""`rosettamq run [--config FILE] [--mqtt HOST:PORT] ...`: the gateway until SIGINT or SIGTERM.

Start: read the config and flags, bind every listener, then print the ready
banner (stdout) and log one ``ready`` line. A listener that cannot bind ends
the start with one error line naming it and the flag or key that moves it.
SIGHUP re-reads the config file (logging, limits) and the password and ACL
files; connections stay. Under systemd (``Type=notify``) READY=1 is sent once
every listener is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from typing import Any, Coroutine

from core.acl import AclFileError
from core.passwords import PasswordFileError
from core.stores.base import StoreError

from gateway.app import Gateway
from gateway.cli.banner import banner_lines
from gateway.config import Config, ConfigError, apply_cli_overrides, load_config
from gateway.listening import ListenerError
from gateway.logs import configure_logging, logs_to_stderr
from gateway.reload import Reloader
from gateway.systemd import notify
from gateway.workers import WORKER_ENV, Supervisor, worker_config, worker_count

log = logging.getLogger("rosettamq")

# Container allocations between young-generation collections (CPython's default: 700). A reconnect
# storm allocates a few dozen per client, nearly all freed by reference counting; at 700 a
# collection ran every 15-20 clients and walked every in-flight client's objects (about 2% of a
# connect). Garbage in cycles waits a little longer: connections break their own cycles.
YOUNG_COLLECTION_THRESHOLD = 10_000

LISTEN_FLAGS = ("mqtt", "ws", "amqp", "coap", "http")  # listeners with a --NAME HOST:PORT flag


def add_parser(commands: Any) -> None:
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
    run.add_argument("--workers", type=worker_count, default=1, metavar="N",
                     help="gateway processes sharing every port, joined through NATS (a number, or auto: one "
                          "per core; default 1)")


def load(args: argparse.Namespace) -> Config:
    """The config file (or the embedded defaults) with the command-line flags on top, and a worker's
    own settings when this process is one (gateway/workers.py); raises ConfigError."""
    config = apply_cli_overrides(
        load_config(args.config),
        mqtt_listen=args.mqtt, ws_listen=args.ws, amqp_listen=args.amqp, coap_listen=args.coap,
        http_listen=args.http, store_path=args.store,
    )
    spec = worker_spec()
    return config if spec is None else worker_config(config, spec)


def worker_spec() -> dict[str, Any] | None:
    """What the supervisor told this worker, or None when this process is no worker."""
    text = os.environ.get(WORKER_ENV)
    return None if not text else dict(json.loads(text))


def worker_argv(args: argparse.Namespace) -> list[str]:
    """`run`'s flags for a worker: all but --workers and --ports-file (the supervisor's own)."""
    argv: list[str] = []
    for name in ("config", *LISTEN_FLAGS, "store", "log_level", "log_format"):
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def move_hint(listener: str) -> str:
    """How to give `listener` another address."""
    flag = f" or pass --{listener} HOST:PORT" if listener in LISTEN_FLAGS else ""
    return f"change [{listener}] listen in the config file{flag} (port 0: any free port)"


async def serve(args: argparse.Namespace, config: Config) -> None:
    gateway = Gateway(config)
    await gateway.start()
    # What start-up made (modules, config, listeners, restored state) lives as long as the process:
    # out of the cyclic collector's sight, full collections no longer walk it (a few us per client).
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
    if args.ports_file:
        gateway.write_ports_file(args.ports_file)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    reloader = Reloader(gateway, lambda: load(args), args.log_level, args.log_format)
    loop.add_signal_handler(signal.SIGHUP, reloader.reload)
    spec = worker_spec()
    if spec is None or not spec.get("quiet"):
        print("\n".join(banner_lines(gateway, args.config)), flush=True)
    ports = sorted(gateway.ports.items())
    log.info(" ".join(["ready pid=%d"] + [f"{name}=%d" for name, _ in ports]), os.getpid(), *(p for _, p in ports))
    notify("READY=1")
    await stopping.wait()
    notify("STOPPING=1")
    log.info("shutting down")
    await gateway.stop()


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed, else on the stdlib loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def fatal(message: str, code: int) -> int:
    """One error line in the log, and on stderr too when the log goes to a file."""
    log.error("%s", message)
    if not logs_to_stderr():
        print(f"rosettamq: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        config = load(args)
    except ConfigError as exc:
        print(f"rosettamq: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        configure_logging(config, args.log_level, args.log_format)
    except OSError as exc:
        print(f"rosettamq: configuration error: log.file: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1 and worker_spec() is None:
        return Supervisor(worker_argv(args), config, args.workers, args.ports_file).run()
    try:
        run_loop(serve(args, config))
    except ListenerError as exc:
        return fatal(f"cannot start: {exc}; {move_hint(exc.listener)}", 1)
    except PasswordFileError as exc:
        return fatal(f"cannot start: password file: {exc}", 2)
    except AclFileError as exc:
        return fatal(f"cannot start: acl file: {exc}", 2)
    except StoreError as exc:
        return fatal(f"cannot start: store: {exc}", 2)
    except ConfigError as exc:
        return fatal(f"cannot start: configuration error: {exc}", 2)
    except OSError as exc:
        return fatal(f"cannot start: {exc}", 1)
    return 0
