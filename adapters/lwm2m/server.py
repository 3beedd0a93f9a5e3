"""The LwM2M server on the CoAP listener: the ``/rd`` resource, the devices, one timer.

Mounted through the CoAP listener's hook (adapters/coap/server.py)::

    lwm2m = LwM2MServer(broker, LwM2MSettings(...))
    await start_coap_server(broker, settings, host, port, mounts=[lwm2m.mount])
    ...
    lwm2m.close()          # before the listener stops

``/rd`` requests run through `rd.handle_rd`; ``/dp`` (LwM2M 1.1 Send) through
`send_resource`; ``/bs`` (when a bootstrap configuration is set) through `bootstrap_server`; each event opens, updates or
closes a `device.DeviceLink` and is published as lifecycle JSON on
``{prefix}/{ep}/up/register|update|deregister``. Time-driven work
(registration expiry, queued commands running out of time) is found through
the pure tables' ``next_deadline()`` and run by one ``call_later`` timer,
re-armed after every change; the clock is the loop's monotonic time unless
one is given (tests drive it and call `run_due(now)` themselves).

Registrations are kept in the broker's store (`registration_records`): written
on Register and Update, deleted on De-register and expiry, and the answer to a
Register or Update goes out once that write is durable. At mount (start), the
stored ones still within their lifetime come back under their location ids,
with their command topics subscribed and commands sent to the address they
last spoke from; the others are published as ``up/deregister`` (reason
``expired``) and forgotten.

Everything the server publishes carries the endpoint as origin client id, and
goes through the topic ACL (`can_publish` for ``{ep}`` as client id).

Registrations (POST ``/rd``) take one token per source address from the
gateway's shared `RateLimiter` (`rate_limiter`, the one connections of every
protocol take theirs from); past it the answer is 4.29 Too Many Requests
with Max-Age (RFC 8516), counted in `refused_rate`. Updates are not counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any, Callable, Coroutine, Iterable, Mapping, Sequence

from aiocoap import Message as CoAPMessage
from aiocoap.numbers.codes import Code
from aiocoap.resource import PathCapable, Resource

from core.broker import Broker
from core.limits import RateLimiter, address_key
from core.message import Message
from core.stores.base import StoreError

from adapters.coap.errors import CoAPError, error_response
from adapters.coap.exchange import error_message
from adapters.coap.query import parse_query
from adapters.lwm2m.access import change_refusal, dtls_identity, query_value, register_refusal, split_login_query

from .answers import lifecycle_message
from .coap import CoapResponse, code_number
from .device import DeviceLink, remote_address, remote_from_address
from .rd import RdEvent, expire_events, handle_rd
from .registration_records import KIND, decode_registration, encode_registration
from .registrations import RegistrationTable
from .bootstrap import BOOTSTRAP_PATH
from .bootstrap_server import BootstrapResource
from .send import SEND_PATH
from .send_resource import SendResource
from .settings import LwM2MSettings
from .topics import lifecycle_topic

log = logging.getLogger("rosettamq.lwm2m")

__all__ = ["LwM2MServer", "RegistrationResource", "LocationResource", "RD_MOUNT"]

RD_MOUNT = ("rd",)
wall_clock = time.time  # stored registrations' clock unless one is given (a restart test moves it)
JSON = "application/json"


class LwM2MServer:
    """Registrations, the devices behind them, and what they publish."""

    def __init__(self, broker: Broker, settings: LwM2MSettings | None = None,
                 clock: Callable[[], float] | None = None,
                 wall: Callable[[], float] | None = None, rate_limiter: RateLimiter | None = None) -> None:
        self.broker = broker
        self.rate_limiter = rate_limiter  # registrations per source address (shared with every listener)
        self.refused_rate = 0
        self.store = broker.store
        self._clock = clock  # None: the loop's monotonic time
        self._wall = wall or wall_clock  # the clock stored registrations are timed by
        self.settings = settings or LwM2MSettings()
        self.table = RegistrationTable(grace=self.settings.lifetime_grace,
                                       min_lifetime=self.settings.min_lifetime,
                                       max_lifetime=self.settings.max_lifetime)
        self.devices: dict[str, DeviceLink] = {}
        self.context: Any = None  # the listener's aiocoap Context, a client towards devices
        self.listener: Any = None
        self.refused_owner = 0  # registrations, updates and de-registrations refused by ownership
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None

    def mount(self, listener: Any) -> list[tuple[Sequence[str], Any]]:
        """The CoAP listener's mount hook: serve ``/rd`` and send with its context."""
        self.context = listener.context
        self.listener = listener  # its logins (credentials checked as the CoAP listener checks them)
        self._loop = asyncio.get_running_loop()
        self.restore()
        mounts: list[tuple[Sequence[str], Any]] = [
            (RD_MOUNT, RegistrationResource(self)), (RD_MOUNT, LocationResource(self)),
            (SEND_PATH, SendResource(self))]
        if self.settings.bootstrap is not None or self.settings.bootstrap_dir is not None:
            mounts.append((BOOTSTRAP_PATH, BootstrapResource(self)))
        return mounts

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        assert self._loop is not None, "mount() first"
        return self._loop.time()

    # --- persistence -------------------------------------------------------------------

    def restore(self) -> None:
        """Take back the stored registrations: live ones as devices, ended ones as expired.

        StoreError for a record this version cannot read (never a silent wipe)."""
        now, wall = self.now(), self._wall()
        for endpoint, value in sorted(self.store.load_records(KIND).items()):
            try:
                stored = decode_registration(value, now=now, wall=wall)
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"unreadable LwM2M registration of {endpoint!r} in the store: {exc!r}") from exc
            registration = stored.registration
            if stored.expired:
                self.store.delete_record(KIND, endpoint)
                log.info("deregister endpoint=%s reason=expired_while_stopped", endpoint)
                self._announce(RdEvent("deregister", registration, "expired"))
                continue
            self.table.restore(registration)
            link = self.devices[endpoint] = DeviceLink(self, registration, remote_from_address(stored.address))
            log.info("registration restored endpoint=%s location=%s address=%s", endpoint,
                     registration.location, stored.address)
            link.open(now, restored=True)
        self.rearm()

    def _save(self, event: RdEvent, remote: Any, now: float) -> None:
        endpoint = event.registration.endpoint
        if event.kind != "deregister":
            self.store.put_record(KIND, endpoint, encode_registration(
                event.registration, remote_address(remote), now=now, wall=self._wall()))
        elif self.table.by_endpoint(endpoint) is None:  # not replaced by a new Register
            self.store.delete_record(KIND, endpoint)

    async def durable(self) -> None:
        """Return once every registration change so far is committed (before a CoAP answer)."""
        assert self._loop is not None, "mount() first"
        done = self._loop.create_future()
        self.store.sync(lambda: done.done() or done.set_result(None))
        await done

    # --- I/O for the devices (device.py holds no asyncio) ------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        assert self._loop is not None, "mount() first"
        return self._loop.create_task(coroutine, name=name)

    async def exchange(self, message: CoAPMessage, timeout: float) -> tuple[Any, CoAPMessage]:
        """Send a request to a device; its aiocoap request (for observations) and first answer.

        TimeoutError after `timeout` seconds (the request is cancelled); aiocoap's errors as they come.
        """
        request = self.context.request(message)
        return request, await asyncio.wait_for(request.response, timeout)

    def device_at(self, remote: Any) -> DeviceLink | None:
        """The registered device whose latest Register or Update came from `remote`'s address."""
        address = remote_address(remote)
        if address is None:
            return None
        for link in self.devices.values():
            if remote_address(link.remote) == address:
                return link
        return None

    # --- registration interface -------------------------------------------------------

    def admit_registration(self, address: str) -> int | None:
        """None: a Register from `address` ("host:port") may go on; else the seconds to answer 4.29 with."""
        limiter = self.rate_limiter
        if limiter is None or self._loop is None:
            return None
        if limiter.allow(address_key(address), self._loop.time()):  # the shared limiters' clock
            return None
        self.refused_rate += 1
        return max(1, math.ceil(1.0 / limiter.rate))

    def registration_request(self, method: str, subpath: Sequence[str], query: Sequence[str],
                             payload: bytes, content_format: int | None, remote: Any,
                             owner: str | None = None, presented: bool = False) -> CoapResponse:
        """One ``/rd`` request from `remote` (the device's current address), on behalf of `owner`
        (`presented`: the request proved an identity: DTLS, or credentials)."""
        now = self.now()
        refusal = self._ownership_refusal(method, subpath, query, owner, presented)
        if refusal is not None:
            self.refused_owner += 1
            log.warning("registration request refused owner=%s path=%s: %s", owner, "/".join(subpath), refusal)
            return CoapResponse("4.03", payload=refusal.encode("utf-8"))
        response, events = handle_rd(self.table, method, subpath, query, payload, content_format, now, owner)
        for event in events:
            self._on_event(event, remote, now)
        self.rearm()
        return response

    def _ownership_refusal(self, method: str, subpath: Sequence[str], query: Sequence[str],
                           owner: str | None, presented: bool) -> str | None:
        if not subpath and method.upper() == "POST":
            endpoint = query_value(query, "ep")
            if endpoint is None:
                return None  # the registration's own 4.00 follows
            current = self.table.by_endpoint(endpoint)
            return register_refusal(self.settings.endpoint_pattern, owner, endpoint,
                                    None if current is None else current.owner, current is not None)
        registration = self.table.get(subpath[0]) if len(subpath) == 1 else None
        if registration is None:
            return None  # the 4.04 follows
        return change_refusal(presented, owner, registration.owner)

    def _on_event(self, event: RdEvent, remote: Any, now: float) -> None:
        registration = event.registration
        endpoint = registration.endpoint
        link = self.devices.get(endpoint)
        self._save(event, remote, now)
        if event.kind == "deregister":
            if link is not None and link.registration.id == registration.id:
                del self.devices[endpoint]
                link.close()
            log.info("deregister endpoint=%s reason=%s", endpoint, event.reason)
        elif event.kind == "register":
            link = self.devices[endpoint] = DeviceLink(self, registration, remote)
            log.info("register endpoint=%s location=%s lifetime=%d binding=%s", endpoint,
                     registration.location, registration.lifetime, registration.binding)
        elif link is not None:
            link.updated(registration, remote, now)
        self._announce(event)
        if event.kind == "register":
            link.open(now)  # after up/register: its auto-observe answers follow it

    def _announce(self, event: RdEvent) -> None:
        endpoint = event.registration.endpoint
        self.publish(endpoint, lifecycle_topic(endpoint, event.kind, self.settings.prefix),
                     lifecycle_message(event))

    # --- deadlines ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.table.next_deadline(),
                                 *(link.queue.next_deadline() for link in self.devices.values()))
                     if d is not None]
        return min(deadlines) if deadlines else None

    def rearm(self) -> None:
        """Point the timer at the next deadline (cheap when it has not moved)."""
        if self._loop is None or self._loop.is_closed():
            return
        deadline = self.next_deadline()
        if deadline == self._deadline and (self._timer is not None or deadline is None):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._deadline = None, deadline
        if deadline is not None:
            self._timer = self._loop.call_later(max(0.0, deadline - self.now()), self._fire)

    def _fire(self) -> None:
        self._timer = self._deadline = None
        try:
            self.run_due(self.now())
        finally:
            self.rearm()

    def run_due(self, now: float) -> None:
        """Expire registrations and queued commands whose time has come."""
        for event in expire_events(self.table, now):
            self._on_event(event, None, now)
        for link in list(self.devices.values()):
            link.expire(now)

    # --- publishing ---------------------------------------------------------------------

    def publish(self, endpoint: str, topic: str, document: Mapping[str, Any]) -> None:
        self._publish(endpoint, topic, json.dumps(document, separators=(",", ":")).encode("utf-8"), JSON)

    def publish_raw(self, endpoint: str, topic: str, payload: bytes) -> None:
        self._publish(endpoint, topic, payload, "text/plain")

    def _publish(self, endpoint: str, topic: str, payload: bytes, content_type: str) -> None:
        principal = self.broker.principal("lwm2m", endpoint, None)
        result = self.broker.publish(principal, Message(  # the door: the endpoint's topic ACL applies
            topic, payload, qos=self.settings.qos, content_type=content_type,  # type: ignore[arg-type]
            payload_format_utf8=True, origin=principal.origin))
        if not result.accepted:
            log.info("publish denied endpoint=%s topic=%s reason=%s", endpoint, topic, result.reason)

    # --- stop ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the timer and every device's exchanges (registrations are not published as ended)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for link in list(self.devices.values()):
            link.close(answer=False)
        self.devices.clear()

    def metrics(self) -> dict[str, int]:
        return {"registrations": len(self.table), "refused_rate": self.refused_rate,
                "observations": sum(len(link.observations) for link in self.devices.values()),
                "queued_commands": sum(len(link.queue) for link in self.devices.values())}

    def describe(self) -> Iterable[dict[str, Any]]:
        return [link.describe() for link in self.devices.values()]


class RegistrationResource(Resource):
    """``/rd``: Register (the site serves ``/rd`` itself and ``/rd/...`` through `LocationResource`)."""

    rt = "core.rd"

    def __init__(self, server: LwM2MServer, prefix: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.server = server
        self.prefix = prefix

    async def render(self, request: CoAPMessage) -> CoAPMessage:
        if request.code == Code.POST and not self.prefix and not request.opt.uri_path:  # Register
            retry = self.server.admit_registration(request.remote.hostinfo)
            if retry is not None:
                refusal = CoAPMessage(code=Code.TOO_MANY_REQUESTS, payload=b"too many registrations from this address")
                refusal.opt.max_age = retry
                return refusal
        content_format = request.opt.content_format
        login, query = split_login_query(request.opt.uri_query)  # credentials are never parsed, stored nor published
        owner = dtls_identity(request.remote)
        presented = owner is not None or bool(login)
        register = request.code == Code.POST and not self.prefix and not request.opt.uri_path
        if owner is None and self.server.listener is not None and (register or login):
            # A Register needs a login when anonymous clients are refused; an Update or De-register
            # is authorized by its unguessable location, and checked against the owner if it logs in.
            try:
                owner = (await self.server.listener.state.identify(request, parse_query(login), admit=False)).username
            except CoAPError as exc:
                return error_message(error_response(exc))  # 4.01 without a valid login, 4.29 held back
        response = self.server.registration_request(
            request.code.name, self.prefix + tuple(request.opt.uri_path), query,
            bytes(request.payload), None if content_format is None else int(content_format),
            request.remote, owner, presented)
        await self.server.durable()  # a registration is acknowledged once it is stored
        message = CoAPMessage(code=Code(code_number(response.code)), payload=response.payload)
        if response.content_format is not None:
            message.opt.content_format = response.content_format
        if response.location_path:
            message.opt.location_path = response.location_path
        return message


class LocationResource(RegistrationResource, PathCapable):
    """``/rd/{id}``: Update and De-register."""

    def get_link_description(self) -> None:
        return None  # registrations are not listed in /.well-known/core
