"""The CoAP publish fast path: a POST or PUT on ``/ps/{topic}`` handled below aiocoap, whole.

Every datagram of a listener's UDP socket is shown to `FastPath.take` before aiocoap decodes
it. It takes what `fast_publish.parse_publish` recognises and does what
`resources.PubSubResource._render` / `_publish` would, in the same order and through the same
functions: `parse_query`, `ListenerState.identify_now` (rate limit, login backoff, credentials),
`plan_request`, the identity's principal, `ListenerState.begin_publish` (the pending bound and
the core's door), then, for a CON or QoS > 0, the 2.04 once the store has the message
(`ListenerState.when_durable`). Errors are answered through `errors.error_response` as the
slow path answers them. Anything it does not take goes to aiocoap unchanged, which is every
other exchange (``/rd`` of LwM2M, observe, block-wise, reads, ...) and a publish whose
credentials need a password hash off the event loop (once accepted, the `AuthCache` lets the
next ones through here).

As aiocoap does (RFC 7252 4.5): the response to a CON is a piggybacked ACK with the request's
message id and token; a NON gets a NON response whose message id comes from aiocoap's own
allocator for that socket (`MessageManager._next_message_id`), so ids never collide. A
duplicate (same peer and message id) within EXCHANGE_LIFETIME is published once: a CON one
gets the same response again (nothing while the first waits for the store), a NON one nothing.
A message id aiocoap has seen from that peer goes to aiocoap, whose deduplication answers it.
One difference: when the store is slow (more than aiocoap's EMPTY_ACK_DELAY, 0.1 s) aiocoap
sends an empty ACK and a separate CON 2.04; the fast path piggybacks the 2.04 late instead
(the client's retransmissions, deduplicated, bridge the wait; with a memory store or a
healthy SQLite store the answer comes in milliseconds).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from adapters.coap.access import Identity
from adapters.coap.errors import CoAPError, error_response
from adapters.coap.exchange import ListenerState
from adapters.coap.fast_publish import PENDING, RecentExchanges, error_bytes, parse_publish, response
from adapters.coap.pubsub import plan_request
from adapters.coap.query import parse_query

log = logging.getLogger("rosettamq.coap")

CHANGED = 0x44  # 2.04
Reply = Callable[[bytes, Any, Any], None]  # (datagram, the request's ancillary data, peer address)


class _Peer:
    """A peer address that hashes and compares like aiocoap's `UDP6EndpointAddress` (by sockaddr
    without its scope), to look up aiocoap's (remote, message id) deduplication keys."""

    __slots__ = ("sockaddr",)

    def __init__(self, sockaddr: Any) -> None:
        self.sockaddr = sockaddr

    def __hash__(self) -> int:
        return hash(self.sockaddr[:-1])

    def __eq__(self, other: object) -> bool:
        return self.sockaddr[:-1] == getattr(other, "sockaddr", ())[:-1]


class FastPath:
    """The publish fast path of one listener socket (its aiocoap message manager is `messages`)."""

    def __init__(self, state: ListenerState, messages: Any, hostinfo: Callable[[Any], str], reply: Reply,
                 mount: str = "ps", recent: RecentExchanges | None = None) -> None:
        self.state = state
        self.messages = messages  # aiocoap's MessageManager: its message ids and deduplication
        self.hostinfo = hostinfo  # a peer's address as aiocoap spells it (request.remote.hostinfo)
        self.reply = reply
        self.mount = mount
        self.recent = recent if recent is not None else RecentExchanges()
        self.published = 0  # publishes the door accepted through here
        self._hosts: dict[Any, str] = {}

    def take(self, data: bytes, ancdata: Any, address: Any) -> bool:
        """Handle `data` if it is a publish the fast path takes; False: aiocoap's to handle."""
        request = parse_publish(data, self.mount)
        if request is None:
            return False
        key = (address, request.mid)
        recent = self.recent
        seen = recent.get(key)
        if seen is not None:  # a duplicate
            if seen and request.confirmable:
                self.reply(seen, ancdata, address)
            return True
        messages = self.messages
        if (_Peer(address), request.mid) in messages._recent_messages:
            return False
        state = self.state
        confirmable = request.confirmable
        try:
            query = parse_query(request.query)
            host = self._host(address)
            identity = state.identify_now(host, query)
            if not isinstance(identity, Identity):
                return False  # a password to hash off the loop: aiocoap's task does it
            plan = plan_request(request.method, request.path, query, payload=request.payload,
                                content_format=request.content_format, confirmable=confirmable, observe=None,
                                origin=identity.origin, max_payload=state.settings.max_payload_size,
                                now=state.clock())
            message = plan.message  # type: ignore[union-attr]  # POST and PUT plan a Publish
            wait = state.begin_publish(identity.principal(state.broker), message, confirmable)
        except Exception as exc:
            if not isinstance(exc, CoAPError):
                log.error("coap fast path failed on a publish from %s", address, exc_info=exc)
            mid = request.mid if confirmable else messages._next_message_id()
            answer = error_bytes(confirmable, mid, request.token, error_response(exc))
            recent.add(key, state.loop.time(), answer if confirmable else PENDING)
            self.reply(answer, ancdata, address)
            return True
        self.published += 1
        if not confirmable:
            recent.add(key, state.loop.time())
            answer = response(False, messages._next_message_id(), request.token, CHANGED)
            if wait:
                state.when_durable(lambda: self.reply(answer, ancdata, address))
            else:
                self.reply(answer, ancdata, address)
            return True
        answer = response(True, request.mid, request.token, CHANGED)
        recent.add(key, state.loop.time())

        def durable() -> None:
            recent.answer(key, answer)
            self.reply(answer, ancdata, address)

        state.when_durable(durable)
        return True

    def _host(self, address: Any) -> str:
        host = self._hosts.get(address)
        if host is None:
            if len(self._hosts) >= 4096:
                self._hosts.clear()
            host = self._hosts[address] = self.hostinfo(address)
        return host
