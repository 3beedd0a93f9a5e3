"""A SenML-JSON-only LwM2M 1.1 client on aiocoap, behaving as Eclipse Wakaama's lwm2mclient does
when built with its default CMake options (SenML JSON, no TLV), as issue 18 reproduced it.

Wakaama is C and no registry we may install from ships it, so the tests use this
stand-in. What it copies from wakaama (core/management.c, core/utils.c, core/objects.c):

- it registers ``</>;rt="oma.lwm2m";ct=110`` with ``lwm2m=1.1`` and its object list;
- a read without Accept is read as TLV, which it cannot write: 5.00 (what issue 18 saw);
  an Accept it cannot produce (TLV, LwM2M JSON, SenML CBOR): 4.06; text/plain for one
  resource and SenML JSON for anything;
- a write or create without Content-Format is read as TLV: 4.15 here (no TLV parser);
- create (POST on an object) takes the instance id from the SenML names, answers 2.01 with
  Location-Path ``/O/I``, and 4.06 when the instance exists (wakaama's answer).

Its SenML is written and parsed here by hand, independent of the gateway's codecs.
The interface is examples/lwm2m_device.py's `Device` (start, register, update, deregister,
stop, requests, on_change), so `lwm2m_support.SimulatedDevice` runs either.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, Callable

from aiocoap import Context, Message
from aiocoap.numbers.codes import Code
from aiocoap.resource import ObservableResource

TEXT, LINK_FORMAT, OPAQUE, SENML_JSON = 0, 40, 42, 110
IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3  # /5/0/3 Firmware Update states
Path = tuple[int, ...]
Objects = dict[int, dict[int, dict[int, Any]]]  # object -> instance -> resource -> value (dict: multiple)
EXECUTABLE = {(3, 4), (3, 5), (5, 2), (31024, 2)}
READ_ONLY = {(3, 0), (3, 1), (3, 2), (3, 3), (3, 16), (5, 3), (5, 5)}


def path_text(path: Path) -> str:
    return "/" + "/".join(map(str, path))


def parse_path(parts: Any) -> Path:
    return tuple(int(p) for p in parts if p != "")


def default_objects(endpoint: str) -> Objects:
    """The objects of wakaama's lwm2mclient that the tests use (its test object 31024 included)."""
    return {
        1: {0: {0: 123, 1: 300, 6: False, 7: "U"}},
        3: {0: {0: "Open Mobile Alliance", 1: "Lightweight M2M Client", 2: f"WK-{endpoint}",
                3: "1.0", 7: {0: 3800, 1: 5000}, 13: 1367491215, 14: "+01:00", 15: "Europe/Berlin",
                16: "U"}},
        5: {0: {1: "", 3: 0, 5: 0, 9: 2}},  # Firmware Update: idle, push and pull (package 0 is write-only)
        3303: {0: {5700: 21.5, 5701: "Cel"}},
        31024: {10: {1: 1, 3: 1.5}, 11: {1: 2, 3: 2.5}},
    }


def senml_records(items: list[tuple[Path, Any]], base: Path) -> list[dict[str, Any]]:
    """SenML JSON records as wakaama writes them: ``bn`` on the first, names relative to it."""
    base_name = path_text(base[:2]) + "/" if len(base) >= 2 else path_text(base[:1]) + "/"
    records = []
    for index, (path, value) in enumerate(items):
        full = path_text(path)
        record: dict[str, Any] = {"bn": base_name} if index == 0 else {}
        record["n"] = full[len(base_name):] if full.startswith(base_name) else full
        if isinstance(value, bool):
            record["vb"] = value
        elif isinstance(value, (int, float)):
            record["v"] = value
        elif isinstance(value, bytes):
            record["vd"] = base64.urlsafe_b64encode(value).rstrip(b"=").decode()
        else:
            record["vs"] = str(value)
        records.append(record)
    return records


def parse_senml(payload: bytes) -> list[tuple[Path, Any]]:
    """(absolute path, value) of each record with a value (``bn`` + ``n``)."""
    base, out = "", []
    for record in json.loads(payload):
        base = record.get("bn", base)
        name = base + record.get("n", "")
        for key in ("v", "vs", "vb", "vd", "vlo"):
            if key in record:
                value = record[key]
                if key == "vd":
                    value = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
                out.append((parse_path(name.split("/")), value))
                break
        else:
            out.append((parse_path(name.split("/")), None))
    return out


class Root(ObservableResource):
    """Every path of the device: one resource dispatching on the Uri-Path, as wakaama's core does."""

    def __init__(self, device: "SenmlDevice") -> None:
        super().__init__()
        self.device = device

    def get_link_description(self) -> None:
        return None

    async def add_observation(self, request: Message, serverobservation: Any) -> None:
        paths = self.device.requested_paths(request)
        if any(self.device.items(path) is None for path in paths):
            return
        entry = (paths, serverobservation)
        self.device.observations.append(entry)
        self.device.changed()

        def cancelled() -> None:
            if entry in self.device.observations:
                self.device.observations.remove(entry)
            self.device.changed()
        serverobservation.accept(cancelled)

    async def render_to_pipe(self, pipe: Any) -> None:
        if pipe.request.opt.block1 is not None:  # each block of a Block1 transfer, before reassembly
            self.device.blocks_received += 1
        await super().render_to_pipe(pipe)

    async def render(self, request: Message) -> Message:
        device = self.device
        device.requests.append((str(request.code), "/" + "/".join(request.opt.uri_path),
                                request.opt.accept, request.opt.content_format))
        try:
            return device.handle(request)
        finally:
            device.changed()


class SenmlDevice:
    """A SenML-JSON-only LwM2M 1.1 client (see the module notes)."""

    version = "1.1"

    def __init__(self, endpoint: str, *, lifetime: int = 60, bind_host: str = "127.0.0.1",
                 objects: Objects | None = None) -> None:
        self.endpoint, self.lifetime, self.bind_host = endpoint, lifetime, bind_host
        self.objects = objects if objects is not None else default_objects(endpoint)
        self.context: Context | None = None
        self.server: tuple[str, int] | None = None
        self.location: str | None = None
        self.executed: list[str] = []
        self.requests: list[tuple[str, str, int | None, int | None]] = []  # method, path, accept, format
        self.observations: list[tuple[tuple[Path, ...], Any]] = []  # observed paths (composite: several)
        self.bootstrapped: Any = None  # an asyncio.Event while a bootstrap runs, set by Bootstrap-Finish
        self.refuse: set[tuple[str, str]] = set()  # (method, path) answered 4.00, to test failures
        self.package: bytes | None = None  # the firmware pushed to /5/0/0
        self.blocks_received = 0
        self.on_change: list[Callable[[], None]] = []

    # --- the objects ------------------------------------------------------------------

    def changed(self) -> None:
        for callback in list(self.on_change):
            callback()

    def items(self, path: Path) -> list[tuple[Path, Any]] | None:
        """Readable (path, value) pairs at or under `path`; None when nothing is there."""
        found: list[tuple[Path, Any]] = []
        for obj, instances in self.objects.items():
            for inst, resources in instances.items():
                for res, value in sorted(resources.items()):
                    if (obj, res) in EXECUTABLE:
                        continue
                    values = sorted(value.items()) if isinstance(value, dict) else [(None, value)]
                    for ri, single in values:
                        full = (obj, inst, res) if ri is None else (obj, inst, res, ri)
                        if full[:len(path)] == path:
                            found.append((full, single))
        if found:
            return found
        exists = len(path) >= 1 and path[0] in self.objects and (
            len(path) == 1 or path[1] in self.objects[path[0]])
        return [] if exists else None

    def set_value(self, path: Path, value: Any) -> None:
        """Change a resource and notify the observations that cover it."""
        self.objects[path[0]][path[1]][path[2]] = value
        for observed, observation in list(self.observations):
            if any(path[:len(one)] == one for one in observed):
                observation.trigger()

    @staticmethod
    def requested_paths(request: Message) -> tuple[Path, ...]:
        """The Uri-Path, or for a composite FETCH the names of its SenML payload."""
        if request.code == Code.FETCH:
            return tuple(path for path, _ in parse_senml(request.payload))
        return (parse_path(request.opt.uri_path),)

    def read_composite(self, request: Message) -> Message:
        """FETCH / (LwM2M 1.1 Read-Composite, observed too): every value of every path asked for."""
        if request.opt.content_format != SENML_JSON:
            return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
        if request.opt.accept != SENML_JSON:
            return Message(code=Code.NOT_ACCEPTABLE)
        if request.opt.observe == 1:
            self.end_observations(self.requested_paths(request))
        records = []
        for path in self.requested_paths(request):
            items = self.items(path)
            if items is None:
                return Message(code=Code.NOT_FOUND)
            records += [{"n": path_text(full), **{k: v for k, v in senml_records([(full, value)], ())[0].items()
                                                  if k not in ("bn", "n")}} for full, value in items]
        return Message(code=Code.CONTENT, content_format=SENML_JSON, payload=json.dumps(records).encode())

    def write_composite(self, request: Message) -> Message:
        """iPATCH / (LwM2M 1.1 Write-Composite): each SenML record to its own resource."""
        if request.opt.content_format != SENML_JSON:
            return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
        items = parse_senml(request.payload)
        if any(len(t) != 3 or t[:2] not in {(o, i) for o in self.objects for i in self.objects[o]}
               for t, _ in items):
            return Message(code=Code.NOT_FOUND)
        if any((t[0], t[2]) in READ_ONLY | EXECUTABLE for t, _ in items):
            return Message(code=Code.METHOD_NOT_ALLOWED)
        for target, value in items:
            self.set_value(target, value)
        return Message(code=Code.CHANGED)

    def end_observations(self, paths: tuple[Path, ...]) -> None:
        """A GET or FETCH with Observe 1: the observations of exactly these paths end."""
        for observed, observation in list(self.observations):
            if observed == paths:
                observation.trigger(is_last=True)

    def read(self, path: Path, accept: int | None) -> Message:
        items = self.items(path)
        if items is None:
            return Message(code=Code.NOT_FOUND)
        if not items:
            return Message(code=Code.METHOD_NOT_ALLOWED if len(path) >= 3 else Code.NOT_FOUND)
        single = len(path) >= 3 and len(items) == 1 and len(items[0][0]) == len(path)
        if accept is None:
            return Message(code=Code.INTERNAL_SERVER_ERROR)  # TLV by default, and no TLV writer
        if accept == TEXT and single:
            return Message(code=Code.CONTENT, content_format=TEXT, payload=str(items[0][1]).encode())
        if accept != SENML_JSON:
            return Message(code=Code.NOT_ACCEPTABLE)
        return Message(code=Code.CONTENT, content_format=SENML_JSON,
                       payload=json.dumps(senml_records(items, path)).encode())

    def write(self, path: Path, request: Message, *, replace: bool) -> Message:
        fmt = request.opt.content_format
        if fmt == TEXT and len(path) == 3:
            text = request.payload.decode()
            current = self.objects.get(path[0], {}).get(path[1], {}).get(path[2])
            items = [(path, type(current)(text) if isinstance(current, (int, float)) else text)]
        elif fmt == SENML_JSON:
            items = parse_senml(request.payload)
        else:
            return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
        for target, _ in items:
            if target[:len(path)] != path or target[:2] not in {(o, i) for o in self.objects
                                                               for i in self.objects[o]}:
                return Message(code=Code.NOT_FOUND if target[:len(path)] == path else Code.BAD_REQUEST)
            if (target[0], target[2]) in READ_ONLY | EXECUTABLE:
                return Message(code=Code.METHOD_NOT_ALLOWED)
        if replace and len(path) == 2:
            self.objects[path[0]][path[1]].clear()
        for target, value in items:
            if len(target) == 4:
                slot = self.objects[target[0]][target[1]].setdefault(target[2], {})
                slot[target[3]] = value
                self.set_value(target[:3], slot)
            else:
                self.set_value(target, value)
        return Message(code=Code.CHANGED)

    def create(self, path: Path, request: Message) -> Message:
        if request.opt.content_format != SENML_JSON:
            return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
        if path[0] not in self.objects:
            return Message(code=Code.NOT_FOUND)
        items = parse_senml(request.payload)
        instances = {target[:2] for target, _ in items}
        if len(instances) != 1 or any(len(t) < 3 or t[0] != path[0] for t, _ in items):
            return Message(code=Code.BAD_REQUEST)
        (_, instance), = instances
        if instance in self.objects[path[0]]:
            return Message(code=Code.NOT_ACCEPTABLE)
        self.objects[path[0]][instance] = {t[2]: v for t, v in items}
        return Message(code=Code.CREATED, location_path=(str(path[0]), str(instance)))

    def bootstrap_write(self, path: Path, request: Message) -> Message:
        """PUT /0/i or /1/i while bootstrapping: the instance is created or replaced."""
        if request.opt.content_format != SENML_JSON or len(path) != 2:
            return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT if len(path) == 2 else Code.BAD_REQUEST)
        items = parse_senml(request.payload)
        if any(t[:2] != path or len(t) != 3 for t, _ in items):
            return Message(code=Code.BAD_REQUEST)
        self.objects.setdefault(path[0], {})[path[1]] = {t[2]: v for t, v in items}
        return Message(code=Code.CHANGED)

    def firmware(self, resource: int, request: Message) -> Message | None:
        """Firmware Update (object 5): a package pushed to /5/0/0 (opaque, Block1 when large) or a
        package URI written to /5/0/1 is "downloaded"; Update (/5/0/2) installs it. State and
        result change as the object's state machine says, each change notified to observers."""
        state = self.objects[5][0][3]
        if request.code == Code.PUT and resource == 0:
            if request.opt.content_format != OPAQUE:
                return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
            self.package = bytes(request.payload)
        elif request.code == Code.PUT and resource == 1:
            uri = request.payload.decode()
            if not uri.startswith(("coap://", "coaps://", "http://", "https://")):
                self.set_value((5, 0, 5), 7)  # Unsupported protocol
                return Message(code=Code.BAD_REQUEST)
            self.set_value((5, 0, 1), uri)
        elif request.code == Code.POST and resource == 2:
            if state != DOWNLOADED:
                return Message(code=Code.METHOD_NOT_ALLOWED)
            self.set_value((5, 0, 3), UPDATING)
            self.objects[3][0][3] = "2.0"
            self.set_value((5, 0, 5), 1)  # Firmware updated successfully
            self.set_value((5, 0, 3), IDLE)
            return Message(code=Code.CHANGED)
        else:
            return None
        self.set_value((5, 0, 5), 0)
        self.set_value((5, 0, 3), DOWNLOADING)
        self.set_value((5, 0, 3), DOWNLOADED)
        return Message(code=Code.CHANGED)

    def handle(self, request: Message) -> Message:
        code = request.code
        if (str(code), "/" + "/".join(request.opt.uri_path)) in self.refuse:
            return Message(code=Code.BAD_REQUEST)
        if request.opt.uri_path == ("bs",):  # Bootstrap-Finish
            if self.bootstrapped is None:
                return Message(code=Code.NOT_FOUND)
            self.bootstrapped.set()
            return Message(code=Code.CHANGED)
        path = parse_path(request.opt.uri_path)
        if path[:2] == (5, 0) and len(path) == 3:
            firmware = self.firmware(path[2], request)
            if firmware is not None:
                return firmware
        if self.bootstrapped is not None:  # Bootstrap-Delete and -Write (wakaama's bootstrap state)
            if code == Code.DELETE and not path:
                self.objects[0], self.objects[1] = {}, {}
                return Message(code=Code.DELETED)
            if code == Code.PUT and path[:1] in ((0,), (1,)):
                return self.bootstrap_write(path, request)
        if code == Code.FETCH and not path:
            return self.read_composite(request)
        if code == Code.iPATCH and not path:
            return self.write_composite(request)
        if code == Code.GET:
            if request.opt.observe == 1:
                self.end_observations((path,))
            if request.opt.accept == LINK_FORMAT:
                links = [f"<{path_text(p)}>" for p, _ in self.items(path) or []]
                return Message(code=Code.CONTENT, content_format=LINK_FORMAT, payload=",".join(links).encode())
            return self.read(path, request.opt.accept)
        if code == Code.PUT:
            return self.write(path, request, replace=True)
        if code == Code.POST and len(path) == 1:
            return self.create(path, request)
        if code == Code.POST and len(path) == 3 and request.opt.content_format in (None, TEXT):
            if (path[0], path[2]) not in EXECUTABLE:
                return Message(code=Code.METHOD_NOT_ALLOWED)
            self.executed.append(path_text(path))
            return Message(code=Code.CHANGED)
        if code == Code.POST:
            return self.write(path, request, replace=False)
        if code == Code.DELETE and len(path) == 2:
            if self.objects.get(path[0], {}).pop(path[1], None) is None:
                return Message(code=Code.NOT_FOUND)
            return Message(code=Code.DELETED)
        return Message(code=Code.METHOD_NOT_ALLOWED)

    # --- the registration interface --------------------------------------------------

    def object_links(self) -> bytes:
        links = ['</>;rt="oma.lwm2m";ct=110']
        for obj in sorted(self.objects):
            instances = self.objects[obj]
            links += [f"</{obj}/{inst}>" for inst in sorted(instances)] if instances else [f"</{obj}>"]
        return ",".join(links).encode()

    async def start(self, host: str, port: int, *, register: bool = True) -> None:
        self.server = (host, port)
        self.context = await Context.create_server_context(Root(self), bind=(self.bind_host, 0),
                                                           transports=["udp6"])
        if register:
            await self.register()

    async def ask(self, code: Code, path: str, query: list[str], payload: bytes = b"",
                  content_format: int | None = None) -> Message:
        assert self.context is not None and self.server is not None
        host, port = self.server
        request = Message(code=code, uri=f"coap://{host}:{port}{path}", payload=payload)
        request.opt.uri_query = query
        if content_format is not None:
            request.opt.content_format = content_format
        return await self.context.request(request).response

    async def bootstrap(self, host: str, port: int, *, timeout: float = 5.0) -> Code:
        """Bootstrap-Request (``pct=110``, as wakaama built SenML-only sends it) to the bootstrap
        server at host:port, and wait for its Bootstrap-Finish; then the server to register with
        is the first non-bootstrap Security instance's URI. The request's answer code."""
        assert self.context is not None
        self.bootstrapped = asyncio.Event()
        self.server = (host, port)
        try:
            response = await self.ask(Code.POST, "/bs", [f"ep={self.endpoint}", "pct=110"])
            if response.code == Code.CHANGED:
                await asyncio.wait_for(self.bootstrapped.wait(), timeout)
                uri = next(r[0] for r in self.objects[0].values() if not r.get(1))
                host_port = uri.split("://", 1)[1]
                self.server = (host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1]))
                self.lifetime = next(iter(self.objects[1].values()))[1]
            return response.code
        finally:
            self.bootstrapped = None

    async def register(self) -> str:
        query = [f"ep={self.endpoint}", f"lt={self.lifetime}", f"lwm2m={self.version}", "b=U"]
        response = await self.ask(Code.POST, "/rd", query, self.object_links(), LINK_FORMAT)
        if response.code != Code.CREATED:
            raise RuntimeError(f"registration refused: {response.code} {response.payload!r}")
        self.location = "/" + "/".join(response.opt.location_path)
        return self.location

    async def update(self, *, with_objects: bool = False) -> Code:
        assert self.location is not None, "register first"
        payload = self.object_links() if with_objects else b""
        response = await self.ask(Code.POST, self.location, [], payload, LINK_FORMAT if payload else None)
        return response.code

    async def send(self, paths: list[Path], *, timestamps: list[int] | None = None) -> Message:
        """LwM2M 1.1 Send: POST the current values of `paths` to ``/dp`` (absolute names; with
        `timestamps`, one record per time of each path, as a device sending a history does)."""
        records: list[dict[str, Any]] = []
        for path in paths:
            for time in timestamps or [None]:
                (record,) = senml_records([(path, self.objects[path[0]][path[1]][path[2]])], ())
                record.pop("bn", None)
                record["n"] = path_text(path)
                if time is not None:
                    record["t"] = time
                records.append(record)
        return await self.ask(Code.POST, "/dp", [], json.dumps(records).encode(), SENML_JSON)

    async def deregister(self) -> Code:
        assert self.location is not None, "register first"
        response = await self.ask(Code.DELETE, self.location, [])
        self.location = None
        return response.code

    async def stop(self, *, deregister: bool = True) -> None:
        if deregister and self.location is not None:
            try:
                await self.deregister()
            except OSError:
                pass
        if self.context is not None:
            await self.context.shutdown()
