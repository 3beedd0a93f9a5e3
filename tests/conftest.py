"""Shared fixtures: a real gateway on OS-chosen loopback ports, run in a background thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import socket
import threading
from typing import Any, Callable, Iterator, TypeVar

import pytest

from gateway.app import Gateway
from gateway.config import Config, config_from_dict

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


def ipv6_loopback_available() -> bool:
    """Whether this host can bind ::1 (a kernel or container without IPv6 cannot)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        if exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            return False
        raise
    return True


HAS_IPV6 = ipv6_loopback_available()


@pytest.fixture
def ipv6_loopback() -> None:
    """Tests that prove the listeners serve ::1 need it, as the project's machines (Debian 12) have
    it: without it they fail saying so, never skip. The no-IPv6 fallback has its own tests, on a
    simulated kernel (tests/test_dual_stack_bind.py)."""
    assert HAS_IPV6, "this host cannot bind ::1 (no IPv6 loopback): these tests check the listeners on it"


def make_config(**sections: dict[str, Any]) -> Config:
    """Every listener off except MQTT on 127.0.0.1:0, memory store, no $SYS; `sections` override."""
    data: dict[str, Any] = {
        "mqtt": {"listen": f"{LOOPBACK}:0"},
        "ws": {"enabled": False},
        "amqp": {"enabled": False},
        "coap": {"enabled": False},
        "http": {"enabled": False},
        "store": {"path": "memory"},
        "sys": {"interval": 0},  # no $SYS publishing unless a test asks for it
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


class RunningGateway:
    """A `Gateway` running on its own event loop in a thread; tests talk to it over loopback."""

    def __init__(self, config: Config, store: Any = None, loop: str = "asyncio") -> None:
        """`loop`: "asyncio" (the standard loop) or "uvloop" (what `rosettamq run` uses when installed)."""
        if loop == "uvloop":
            import uvloop

            self.loop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.gateway = Gateway(config, store=store)
        self._thread = threading.Thread(target=self.loop.run_forever, name="gateway", daemon=True)
        self._thread.start()
        self.call_async(self.gateway.start())

    @property
    def mqtt_port(self) -> int:
        return self.gateway.ports["mqtt"]

    @property
    def broker(self):  # type: ignore[no-untyped-def]
        return self.gateway.broker

    def call(self, fn: Callable[[], T], timeout: float = 10) -> T:
        """Run `fn` on the gateway's loop (the core is not thread-safe) and return its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # pragma: no cover - re-raised in the test thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def call_async(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        try:
            self.call_async(self.gateway.stop(), timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config())
    try:
        yield running
    finally:
        running.stop()
