"""Binding the listeners: every one first, then one "listening" line each.

A gateway that cannot bind one of its addresses (in use, not an address of
this host, a privileged port) must not announce the others and then fail:
`Listening` records which listener is binding, so the failure becomes one
`ListenerError` naming it, and the lines are logged only once all are bound.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from adapters.net.server import addresses, shown_host
from gateway.config import ListenAddress

log = logging.getLogger("rosettamq.gateway")


class ListenerError(Exception):
    """A listener could not bind its address."""

    def __init__(self, listener: str, address: ListenAddress, cause: OSError) -> None:
        super().__init__(f"{listener} listener cannot bind {address}: {describe(cause)}")
        self.listener, self.address, self.cause = listener, address, cause

    @property
    def in_use(self) -> bool:
        return self.cause.errno == errno.EADDRINUSE


def describe(exc: OSError) -> str:
    """"address already in use" rather than asyncio's "[Errno 98] error while attempting to bind ..."."""
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    return str(exc)


@dataclass
class Listening:
    """The listeners bound so far, by name, and the one being bound.

    `bound` is how each is shown (banner): ("localhost", port) when it bound both loopbacks, else
    its one address; `addresses` lists every address it bound (the "listening" line).
    """

    bound: dict[str, tuple[str, int]] = field(default_factory=dict)
    addresses: dict[str, list[str]] = field(default_factory=dict)
    binding: tuple[str, ListenAddress] | None = None

    def begin(self, name: str, address: ListenAddress) -> None:
        """`name` is about to bind `address`: an OSError until `done` is its failure."""
        self.binding = (name, address)

    def done(self, name: str, host: str, port: int, bound: list[str] | None = None) -> None:
        self.bound[name] = (host, port)
        self.addresses[name] = bound or [host]
        self.binding = None

    def done_sockets(self, name: str, sockets: list[Any]) -> int:
        """`name` is bound on these sockets (adapters.net.server: "localhost" binds two); its port."""
        host = self.binding[1].host if self.binding is not None else ""
        port = int(sockets[0].getsockname()[1])
        self.done(name, shown_host(host, sockets), port, addresses(sockets))
        return port

    def failure(self, exc: OSError) -> ListenerError | None:
        """The ListenerError of the listener that was binding when `exc` was raised, if one was."""
        if self.binding is None:
            return None
        return ListenerError(self.binding[0], self.binding[1], exc)

    def announce(self) -> None:
        for name, (host, port) in self.bound.items():
            log.info("listening listener=%s address=%s port=%d", name, ",".join(self.addresses.get(name, [host])), port)
