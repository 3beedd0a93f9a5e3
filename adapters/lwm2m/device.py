"""One registered device on the wire: its address, its command topic, its requests.

A `DeviceLink` lives from a Register to the De-register, expiry or
replacement that ends it. It is the router subscriber of ``{prefix}/{ep}/dn/#``:
each command is parsed and translated by the pure modules (`commands`),
held by the device's `DownlinkQueue` while a queue-mode device sleeps, and
sent with the CoAP listener's aiocoap context acting as a client, one
request at a time (a device is a small thing). Answers, notifications and
failures are built by `answers` and published by the `LwM2MServer`.

The device's address is the source of its latest Register or Update, so
commands follow a NAT rebinding. Observations keep reading notifications
from the address they were made at (that is how aiocoap matches tokens);
a device whose address changes should re-register its observations.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Mapping

from aiocoap import Message as CoAPMessage
from aiocoap import Reliable, Unreliable
from aiocoap import error as coap_error
from aiocoap.message import UndecidedRemote
from aiocoap.numbers.codes import Code

from core.message import Message
from core.subscriptions import Delivery, EncodeCache, SubscriptionOptions

from .answers import failure_answer, invalid_command_answer, notify_answer, plain_values, response_answer
from .coap import CoapRequest, CoapResponse, code_text, is_success
from .commands import Command, parse_command, translate_command
from .errors import CommandError, LwM2MError
from .observations import ObservationTable, auto_observe_commands
from .paths import format_path
from .queue_mode import DownlinkQueue, Release, ttl_of
from .registrations import Registration
from .send import decode_send, send_message
from .topics import command_filter, notify_topic, response_topic, send_topic

if TYPE_CHECKING:
    from .server import LwM2MServer

log = logging.getLogger("rosettamq.lwm2m")
OBSERVING = ("observe", "observe-composite")  # commands whose success starts an observation

__all__ = ["DeviceLink", "coap_message", "coap_response", "remote_address", "remote_from_address"]


def remote_address(remote: Any) -> str | None:
    """A device's address as CoAP hostinfo (``"127.0.0.1:56830"``), to keep in the store."""
    if isinstance(remote, str):
        return remote
    hostinfo = getattr(remote, "hostinfo", None)
    return hostinfo if isinstance(hostinfo, str) else None


def remote_from_address(address: str | None) -> Any:
    """A remote for a stored address: the listener's context resolves it when a request is
    sent, and the request goes out of the listener's socket like any other."""
    return None if address is None else UndecidedRemote("coap", address)


def coap_message(request: CoapRequest, remote: Any) -> CoAPMessage:
    """The aiocoap request for a `CoapRequest`, addressed to `remote`."""
    message = CoAPMessage(code=Code[request.method], uri_path=request.path, uri_query=request.query,
                          payload=request.payload, transport_tuning=Reliable if request.confirmable else Unreliable)
    if request.content_format is not None:
        message.opt.content_format = request.content_format
    if request.accept is not None:
        message.opt.accept = request.accept
    if request.observe is not None:
        message.opt.observe = request.observe
    message.remote = remote
    return message


def coap_response(message: CoAPMessage) -> CoapResponse:
    """What a device answered, for the pure modules."""
    content_format = message.opt.content_format
    return CoapResponse(code_text(int(message.code)),
                        None if content_format is None else int(content_format),
                        bytes(message.payload), message.opt.observe, tuple(message.opt.location_path))


class DeviceLink:
    """A registered device, and the router subscriber of its command topic."""

    def __init__(self, server: "LwM2MServer", registration: Registration, remote: Any) -> None:
        settings = server.settings
        self.server = server
        self.registration = registration
        self.remote = remote
        self.endpoint = registration.endpoint
        self.filter = command_filter(self.endpoint, settings.prefix)
        self.access = server.broker.authorizer.for_client(self.endpoint, None)  # None: no ACL
        self.observations = ObservationTable()
        self.queue: DownlinkQueue[Command] = DownlinkQueue(
            queue_mode=registration.queue_mode, awake_window=settings.awake_window,
            default_ttl=settings.queue_ttl, max_items=settings.max_queued)
        self.closed = False
        self._ready: deque[Command] = deque()
        self._current: Command | None = None
        self._worker: Any = None  # the task sending `_ready`, one request at a time
        self._watchers: dict[bytes, tuple[Any, Any]] = {}  # token -> (task, aiocoap request) of an observation

    # --- the router's Subscriber interface ----------------------------------------

    @property
    def is_online(self) -> bool:
        return not self.closed

    def is_origin_of(self, message: Message) -> bool:
        return False

    def deliver(self, delivery: Delivery, cache: EncodeCache) -> None:
        message = delivery.message
        if self.closed or (self.access is not None and not self.access.can_read(message.topic)):
            return
        self.command(message.payload)

    # --- lifecycle ----------------------------------------------------------------

    def open(self, now: float, *, restored: bool = False) -> None:
        """Subscribe the command topic and start the configured observations.

        `restored`: the registration comes from the store after a restart; the device has
        not spoken (a queue-mode device is not taken as awake), and its observations of the
        previous run are gone, so the configured ones are made again."""
        if self.access is not None and not self.access.can_subscribe(self.filter):
            log.warning("subscribe denied endpoint=%s filter=%s (its commands are refused)", self.endpoint, self.filter)
        else:
            self.server.broker.router.subscribe(self, self.filter, SubscriptionOptions(qos=1))
        if not restored:
            self._apply(self.queue.seen(now))
        try:
            commands = auto_observe_commands(self.registration, self.server.settings.auto_observe,
                                             self.server.settings.registry)
        except CommandError as exc:
            log.warning("auto_observe failed detail=%s", exc)
            commands = []
        for command in commands:
            self.submit(command, now)

    def updated(self, registration: Registration, remote: Any, now: float) -> None:
        """An Update: the device is awake at `remote`; release what waited for it."""
        self.registration = registration
        self.remote = remote
        if registration.queue_mode != self.queue.queue_mode:
            self._apply(self.queue.set_queue_mode(registration.queue_mode, now))
        self._apply(self.queue.seen(now))

    def expire(self, now: float) -> None:
        """Answer the queued commands whose time to wait ran out."""
        self._apply(self.queue.expire(now))

    def close(self, *, answer: bool = True) -> None:
        """Unsubscribe and end every exchange; with `answer`, what never reached the device
        gets a coap_timeout answer (not silence)."""
        if self.closed:
            return
        self.closed = True
        self.server.broker.router.unsubscribe(self, self.filter)
        pending = list(self.queue.clear()) + list(self._ready)
        if self._current is not None:
            pending.insert(0, self._current)
        self._ready.clear()
        if self._worker is not None:
            self._worker.cancel()
        for token in list(self._watchers):
            self._stop_watching(token)
        self.observations.clear()
        if answer:
            for command in pending:
                self._answer(response_topic, failure_answer(command, "coap_timeout"))

    # --- commands -----------------------------------------------------------------

    def command(self, payload: bytes | Mapping[str, Any]) -> None:
        """One command from ``dn``: translate, then send or queue; a bad one is answered with 4.00."""
        raw: Any = None
        try:
            raw = parse_command(payload)
            command = translate_command(raw, self.registration, self.server.settings.registry)
        except CommandError as exc:
            self._answer(response_topic, invalid_command_answer(raw, exc))
            return
        self.submit(command, self.server.now())

    def submit(self, command: Command, now: float) -> None:
        ttl = ttl_of(command.raw, self.server.settings.queue_ttl)
        self._apply(self.queue.submit(command, now, ttl))

    def _apply(self, release: Release[Command]) -> None:
        for command in release.expired + release.dropped:
            self._answer(response_topic, failure_answer(command, "coap_timeout"))
        if release.send:
            self._ready.extend(release.send)
            if self._worker is None or self._worker.done():
                self._worker = self.server.spawn(self._send_all(), f"lwm2m {self.endpoint}")
        self.server.rearm()

    async def _send_all(self) -> None:
        while self._ready and not self.closed:
            self._current = self._ready.popleft()
            try:
                await self._send(self._current)
            except Exception:  # our bug: log it, answer, keep serving the device
                log.exception("lwm2m endpoint=%s: command failed", self.endpoint)
                self._answer(response_topic, failure_answer(self._current, "coap_timeout"))
            self._current = None

    async def _send(self, command: Command) -> None:
        settings = self.server.settings
        message = coap_message(command.request, self.remote)
        if command.msg_type in ("cancel-observe", "cancel-observe-composite"):
            # Forget it first: nothing the observation still sends is published after this.
            observation = self.observations.by_path(command.path, command.paths)
            if observation is not None:
                self.observations.remove(observation.token)
                self._stop_watching(observation.token)
                message.token = observation.token  # RFC 7641 3.6: the cancellation reuses its token
        try:
            request, reply = await self.server.exchange(message, settings.command_timeout)
        except (TimeoutError, coap_error.TimeoutError):
            self._answer(response_topic, failure_answer(command, "coap_timeout"))
            return
        except coap_error.MessageError:  # the device answered with RST
            self._answer(response_topic, failure_answer(command, "coap_reset"))
            return
        except coap_error.Error as exc:
            log.info("command failed endpoint=%s command=%s detail=%s", self.endpoint, command.msg_type, exc)
            self._answer(response_topic, failure_answer(command, "coap_timeout"))
            return
        if self.closed:
            return
        if isinstance(self.remote, UndecidedRemote) and reply.remote is not None \
                and not isinstance(reply.remote, UndecidedRemote):
            self.remote = reply.remote  # restored from an address: resolved once
        response = coap_response(reply)
        retry = command.retried(response.code)
        if retry is not None:  # 4.06: once more in the device's next format
            log.info("not acceptable endpoint=%s path=%s accept=%s: retrying with %s", self.endpoint,
                     command.req_path, command.request.accept, retry.request.accept)
            await self._send(retry)
            return
        answer = response_answer(command, response, settings.registry)
        self._answer(response_topic, answer)
        self._republish(command, answer)
        if command.msg_type in OBSERVING and is_success(response.code) and response.observe is not None:
            token = bytes(reply.token)
            replaced = self.observations.add(token, command)
            if replaced is not None:
                self._stop_watching(replaced.token)
            self.observations.accept(token, response.observe, self.server.now())
            task = self.server.spawn(self._watch(token, command, request), f"lwm2m {self.endpoint} observe")
            self._watchers[token] = (task, request)

    # --- observations -------------------------------------------------------------

    async def _watch(self, token: bytes, command: Command, request: Any) -> None:
        """Publish the notifications of one observation until it ends."""
        registry = self.server.settings.registry
        try:
            async for reply in request.observation:
                response = coap_response(reply)
                if not self.observations.accept(token, response.observe, self.server.now()):
                    continue
                answer = notify_answer(command, response, registry)
                self._answer(notify_topic, answer)
                self._republish(command, answer)
        except coap_error.Error as exc:
            log.info("observation ended endpoint=%s path=%s detail=%s", self.endpoint,
                     command.req_path, exc)
        finally:
            self._watchers.pop(token, None)
            self.observations.remove(token)

    def _stop_watching(self, token: bytes) -> None:
        """Forget an observation locally: later notifications are answered with RST."""
        watcher = self._watchers.pop(token, None)
        if watcher is None:
            return
        task, request = watcher
        task.cancel()
        if request.observation is not None and not request.observation.cancelled:
            request.observation.cancel()

    # --- publishing -----------------------------------------------------------------

    def _answer(self, topic_of: Any, answer: Mapping[str, Any]) -> None:
        self.server.publish(self.endpoint, topic_of(self.endpoint, self.server.settings.prefix), answer)

    def _republish(self, command: Command, answer: Mapping[str, Any]) -> None:
        if command.msg_type in OBSERVING:
            self._republish_values(answer)

    def _republish_values(self, answer: Mapping[str, Any]) -> None:
        """Each configured resource's numbers in `answer`, as plain text on its own topic."""
        for path, template in self.server.settings.republish.items():
            for value in plain_values(answer, path):
                self.server.publish_raw(self.endpoint, template.replace("{ep}", self.endpoint), value)

    # --- Send (LwM2M 1.1) -------------------------------------------------------------

    def sent(self, content_format: int | None, payload: bytes, now: float) -> CoapResponse:
        """Values the device POSTed to ``/dp``: published on ``up/send`` and republished
        like notifications; the answer to give it (4.xx for what does not decode)."""
        self._apply(self.queue.seen(now))  # a queue-mode device that sends is awake
        try:
            content = decode_send(content_format, payload, self.server.settings.registry)
        except LwM2MError as exc:
            log.info("send refused endpoint=%s detail=%s", self.endpoint, exc)
            return CoapResponse(exc.code, payload=str(exc).encode("utf-8"))
        message = send_message(content)
        self._answer(send_topic, message)
        self._republish_values(message)
        return CoapResponse("2.04")

    def describe(self) -> dict[str, Any]:
        """For the admin API and logs."""
        return {"endpoint": self.endpoint, "location": self.registration.location,
                "queued": len(self.queue), "observing": [format_path(o.command.path) if not o.command.paths
                              else [format_path(p) for p in o.command.paths] for o in self.observations]}
