#!/usr/bin/env python3
"""An LwM2M device on aiocoap: registers with a server and is managed through it.

    python examples/lwm2m_device.py --server 127.0.0.1:5683 --endpoint sim-1

It serves the Device object (/3/0: manufacturer, model, serial number,
firmware version, reboot, current time, UTC offset, timezone, binding) and
an IPSO Temperature sensor (/3303/0: a drifting value at /3303/0/5700, its
min/max and units, reset min/max), and answers read, write (text/plain or
SenML JSON), execute, discover (link format), write-attributes, observe and
cancel-observe. It registers with ``POST /rd?ep=..&lt=..&lwm2m=1.1&b=U``,
updates before its lifetime runs out (queue mode: ``b=UQ``, and it wakes up
with an update every --wake-interval seconds), and deregisters on Ctrl-C.

With RosettaMQ, drive it from MQTT::

    mosquitto_sub -t 'lwm2m/sim-1/up/#' -v &
    mosquitto_pub -t lwm2m/sim-1/dn -m '{"reqID":1,"msgType":"read","data":{"path":"/3/0"}}'

The encoding is written here by hand (text/plain for one resource, SenML
JSON for more), independent of the gateway's codecs. `Device` can also be
used from Python (the gateway's tests do): ``await Device("ep").start(host, port)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import time
from typing import Any, Callable

from aiocoap import Context, Message
from aiocoap.numbers.codes import Code
from aiocoap.resource import ObservableResource, Site

log = logging.getLogger("lwm2m_device")

TEXT, LINK_FORMAT, SENML_JSON = 0, 40, 110
# resource id -> (name, operations, kind); kind: string, integer, float, time or "" for executables
DEVICE_RESOURCES: dict[int, tuple[str, str, str]] = {
    0: ("Manufacturer", "R", "string"), 1: ("Model Number", "R", "string"),
    2: ("Serial Number", "R", "string"), 3: ("Firmware Version", "R", "string"),
    4: ("Reboot", "E", ""), 13: ("Current Time", "RW", "time"), 14: ("UTC Offset", "RW", "string"),
    15: ("Timezone", "RW", "string"), 16: ("Supported Binding and Modes", "R", "string"),
}
TEMPERATURE_RESOURCES: dict[int, tuple[str, str, str]] = {
    5700: ("Sensor Value", "R", "float"), 5601: ("Min Measured Value", "R", "float"),
    5602: ("Max Measured Value", "R", "float"), 5701: ("Sensor Units", "R", "string"),
    5605: ("Reset Min and Max Measured Values", "E", ""),
}
Path = tuple[int, ...]


def path_text(path: Path) -> str:
    return "/" + "/".join(map(str, path))


class ObjectTree:
    """The device's objects: instance -> resource values, with their definitions."""

    def __init__(self, serial: str, binding: str, temperature: float) -> None:
        self.definitions = {3: DEVICE_RESOURCES, 3303: TEMPERATURE_RESOURCES}
        self.values: dict[Path, dict[int, Any]] = {
            (3, 0): {0: "RosettaMQ", 1: "lwm2m-device.py", 2: serial, 3: "1.0.0",
                     13: int(time.time()), 14: "+00:00", 15: "Etc/UTC", 16: binding},
            (3303, 0): {5700: temperature, 5601: temperature, 5602: temperature, 5701: "Cel"},
        }

    def kind(self, object_id: int, resource_id: int) -> str | None:
        spec = self.definitions.get(object_id, {}).get(resource_id)
        return None if spec is None else spec[2]

    def operations(self, object_id: int, resource_id: int) -> str:
        spec = self.definitions.get(object_id, {}).get(resource_id)
        return "" if spec is None else spec[1]

    def items(self, path: Path) -> list[tuple[Path, Any]] | None:
        """The readable (path, value) pairs at or below `path`; None if nothing is there."""
        found = []
        for instance, values in self.values.items():
            if instance[:len(path)] != path[:2]:
                continue
            for resource_id, value in sorted(values.items()):
                full = instance + (resource_id,)
                if full[:len(path)] == path and "R" in self.operations(instance[0], resource_id):
                    found.append((full, value))
        if not found and not (len(path) == 3 and (path[0], path[1]) in self.values
                              and self.operations(path[0], path[2]) == "E"):
            return None
        return found

    def links(self, path: Path) -> list[str]:
        """Discover: the object or instance and its resources, in link format."""
        links = [f"<{path_text(path)}>"]
        for instance, values in self.values.items():
            if instance[:len(path)] == path[:2] and len(path) <= 2:
                ids = sorted(set(values) | {r for r, spec in self.definitions[instance[0]].items() if spec[1] == "E"})
                if len(path) == 1:
                    links.append(f"<{path_text(instance)}>")
                links.extend(f"<{path_text(instance + (r,))}>" for r in ids)
        return links


def encode_value(kind: str | None, value: Any) -> str:
    if kind == "float":
        return repr(float(value))
    return str(value)


def decode_text(kind: str | None, text: str) -> Any:
    if kind in ("integer", "time"):
        return int(text)
    if kind == "float":
        return float(text)
    return text


def senml(items: list[tuple[Path, Any]], tree: ObjectTree) -> bytes:
    records = []
    for path, value in items:
        record: dict[str, Any] = {"n": path_text(path)}
        kind = tree.kind(path[0], path[2])
        if kind in ("float", "integer", "time"):
            record["v"] = value
        elif isinstance(value, bool):
            record["vb"] = value
        else:
            record["vs"] = str(value)
        records.append(record)
    return json.dumps(records).encode()


def parse_senml(payload: bytes) -> list[tuple[Path, Any]]:
    """SenML JSON records (with bn/n concatenation) as (path, value) pairs."""
    base, out = "", []
    for record in json.loads(payload):
        base = record.get("bn", base)
        name = base + record.get("n", "")
        value = next((record[key] for key in ("v", "vs", "vb", "vd") if key in record), None)
        out.append((tuple(int(p) for p in name.strip("/").split("/")), value))
    return out


class Node(ObservableResource):
    """One object, instance or resource path of the device; observable."""

    def __init__(self, device: "Device", path: Path) -> None:
        super().__init__()
        self.device, self.path = device, path
        self.attributes: dict[str, str] = {}

    def update_observation_count(self, newcount: int) -> None:
        self.device.observers[self.path] = newcount
        self.device.changed()

    async def add_observation(self, request: Message, serverobservation: Any) -> None:
        if self.device.tree.items(self.path):
            await super().add_observation(request, serverobservation)

    async def render(self, request: Message) -> Message:
        self.device.requests.append((str(request.code), path_text(self.path), request.opt.observe))
        self.device.changed()
        return await super().render(request)

    async def render_get(self, request: Message) -> Message:
        tree = self.device.tree
        if request.opt.observe == 1:  # cancel-observe: end this path's observations
            for observation in list(self._observations):
                observation.trigger(is_last=True)
        if request.opt.accept == LINK_FORMAT:
            return Message(code=Code.CONTENT, payload=",".join(tree.links(self.path)).encode(),
                           content_format=LINK_FORMAT)
        items = tree.items(self.path)
        if not items:
            return Message(code=Code.NOT_FOUND if items is None else Code.METHOD_NOT_ALLOWED)
        single = len(self.path) == 3
        accept = request.opt.accept
        if accept not in (None, TEXT, SENML_JSON) or (accept == TEXT and not single):
            return Message(code=Code.NOT_ACCEPTABLE)
        if single and accept != SENML_JSON:
            (path, value), = items
            return Message(code=Code.CONTENT, content_format=TEXT,
                           payload=encode_value(tree.kind(path[0], path[2]), value).encode())
        return Message(code=Code.CONTENT, content_format=SENML_JSON, payload=senml(items, tree))

    async def render_put(self, request: Message) -> Message:
        if not request.payload and request.opt.uri_query:  # write-attributes
            self.attributes.update(q.partition("=")[::2] for q in request.opt.uri_query)
            return Message(code=Code.CHANGED)
        return self.device.write(self.path, request)

    async def render_post(self, request: Message) -> Message:
        if len(self.path) == 3:
            return self.device.execute(self.path, bytes(request.payload))
        return self.device.write(self.path, request)


class Device:
    """A simulated LwM2M client: its objects, its CoAP endpoint, its registration."""

    def __init__(self, endpoint: str, *, lifetime: int = 60, queue_mode: bool = False,
                 version: str = "1.1", temperature: float = 21.5, drift_interval: float = 2.0,
                 bind_host: str = "127.0.0.1") -> None:
        self.endpoint, self.lifetime, self.queue_mode, self.version = endpoint, lifetime, queue_mode, version
        self.drift_interval, self.bind_host = drift_interval, bind_host
        self.binding = "UQ" if queue_mode else "U"
        self.tree = ObjectTree(f"SIM-{endpoint}", self.binding, temperature)
        self.nodes: dict[Path, Node] = {}
        self.site = Site()
        for instance, values in self.tree.values.items():
            ids = set(values) | {r for r, spec in self.tree.definitions[instance[0]].items() if spec[1] == "E"}
            for path in [instance[:1], instance] + [instance + (r,) for r in sorted(ids)]:
                if path not in self.nodes:
                    self.nodes[path] = Node(self, path)
                    self.site.add_resource(tuple(map(str, path)), self.nodes[path])
        self.context: Context | None = None
        self.server: tuple[str, int] | None = None
        self.location: str | None = None
        self.executed: list[tuple[str, bytes]] = []  # (path, arguments) of every execute
        self.requests: list[tuple[str, str, int | None]] = []  # (method, path, observe) received
        self.observers: dict[Path, int] = {}
        self.on_change: list[Callable[[], None]] = []  # called after each request and observer change
        self._tasks: list[asyncio.Task[None]] = []

    # --- the objects ----------------------------------------------------------------

    def changed(self) -> None:
        for callback in list(self.on_change):
            callback()

    def set_value(self, path: Path, value: Any) -> None:
        """Change a resource and notify its observers (and those of its instance and object)."""
        self.tree.values[path[:2]][path[2]] = value
        if path[0] == 3303 and path[2] == 5700:
            values = self.tree.values[path[:2]]
            values[5601], values[5602] = min(values[5601], value), max(values[5602], value)
        for depth in (3, 2, 1):
            node = self.nodes.get(path[:depth])
            if node is not None:
                node.updated_state()

    def set_temperature(self, value: float) -> None:
        self.set_value((3303, 0, 5700), round(value, 2))

    def write(self, path: Path, request: Message) -> Message:
        if request.opt.content_format == SENML_JSON:
            try:
                items = parse_senml(request.payload)
            except (ValueError, TypeError, AttributeError):
                return Message(code=Code.BAD_REQUEST)
        elif request.opt.content_format in (None, TEXT) and len(path) == 3:
            items = [(path, request.payload.decode())]
        else:
            return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
        for target, _ in items:
            if len(target) != 3 or target[:2] not in self.tree.values:
                return Message(code=Code.NOT_FOUND)
            if "W" not in self.tree.operations(target[0], target[2]):
                return Message(code=Code.METHOD_NOT_ALLOWED)
        for target, value in items:
            kind = self.tree.kind(target[0], target[2])
            self.set_value(target, decode_text(kind, value) if isinstance(value, str) else value)
        return Message(code=Code.CHANGED)

    def execute(self, path: Path, arguments: bytes) -> Message:
        if path[:2] not in self.tree.values or self.tree.operations(path[0], path[2]) != "E":
            return Message(code=Code.METHOD_NOT_ALLOWED if path[:2] in self.tree.values else Code.NOT_FOUND)
        self.executed.append((path_text(path), arguments))
        if path == (3303, 0, 5605):
            values = self.tree.values[(3303, 0)]
            values[5601] = values[5602] = values[5700]
        self.changed()
        return Message(code=Code.CHANGED)

    # --- the registration interface --------------------------------------------------

    def object_links(self) -> bytes:
        links = ['</>;rt="oma.lwm2m";ct=110', "</1/0>"] + [f"<{path_text(i)}>" for i in self.tree.values]
        return ",".join(links).encode()

    async def start(self, host: str, port: int, *, register: bool = True) -> None:
        """Open the device's CoAP endpoint and register with the server at host:port."""
        self.server = (host, port)
        # plain UDP only: with DTLSSocket installed, aiocoap would also open a tinydtls client interface
        self.context = await Context.create_server_context(self.site, bind=(self.bind_host, 0), transports=["udp6"])
        if register:
            await self.register()

    @property
    def port(self) -> int:
        """The device's UDP port (its source port towards the server)."""
        assert self.context is not None
        for interface in self.context.request_interfaces:
            transport = getattr(getattr(interface, "token_interface", None), "message_interface", None)
            if transport is not None:
                return transport.transport.get_extra_info("socket").getsockname()[1]
        raise RuntimeError("no UDP transport")

    async def _ask(self, code: Code, path: str, query: list[str], payload: bytes = b"") -> Message:
        assert self.context is not None and self.server is not None
        host, port = self.server
        request = Message(code=code, uri=f"coap://{host}:{port}{path}", payload=payload)
        request.opt.uri_query = query
        if payload:
            request.opt.content_format = LINK_FORMAT
        return await self.context.request(request).response

    async def register(self) -> str:
        query = [f"ep={self.endpoint}", f"lt={self.lifetime}", f"lwm2m={self.version}", f"b={self.binding}"]
        response = await self._ask(Code.POST, "/rd", query, self.object_links())
        if response.code != Code.CREATED:
            raise RuntimeError(f"registration refused: {response.code} {response.payload!r}")
        self.location = "/" + "/".join(response.opt.location_path)
        log.info("registered %s at %s", self.endpoint, self.location)
        return self.location

    async def update(self, *, with_objects: bool = False) -> Code:
        assert self.location is not None, "register first"
        response = await self._ask(Code.POST, self.location, [], self.object_links() if with_objects else b"")
        return response.code

    async def deregister(self) -> Code:
        assert self.location is not None, "register first"
        response = await self._ask(Code.DELETE, self.location, [])
        self.location = None
        return response.code

    async def rebind_only(self) -> int:
        """Move to a new UDP port, as a NAT rebinding does; the new port."""
        assert self.context is not None
        old = self.context
        self.context = await Context.create_server_context(self.site, bind=(self.bind_host, 0), transports=["udp6"])
        await old.shutdown()
        return self.port

    async def rebind(self) -> int:
        """Move to a new UDP port and update from it; the new port."""
        port = await self.rebind_only()
        await self.update()
        return port

    # --- running as a program ----------------------------------------------------------

    async def _keep_registered(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            code = await self.update()
            if code == Code.NOT_FOUND:  # the server forgot us: register again
                await self.register()

    async def _drift(self) -> None:
        while True:
            await asyncio.sleep(self.drift_interval)
            value = self.tree.values[(3303, 0)][5700]
            self.set_temperature(value + random.uniform(-0.3, 0.3))
            self.tree.values[(3, 0)][13] = int(time.time())

    def run_in_background(self, update_interval: float) -> None:
        """Update every `update_interval` seconds and drift the temperature."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keep_registered(update_interval)), loop.create_task(self._drift())]

    async def stop(self, *, deregister: bool = True) -> None:
        for task in self._tasks:
            task.cancel()
        if deregister and self.location is not None:
            try:
                await asyncio.wait_for(self.deregister(), 5)
            except (asyncio.TimeoutError, OSError) as exc:
                log.warning("deregister failed: %s", exc)
        if self.context is not None:
            await self.context.shutdown()


def parse_server(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host or "127.0.0.1"), int(port or 5683)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:5683", help="LwM2M server host:port (default %(default)s)")
    parser.add_argument("--endpoint", default="lwm2m-sim-1", help="endpoint client name (default %(default)s)")
    parser.add_argument("--lifetime", type=int, default=60, help="registration lifetime in seconds")
    parser.add_argument("--queue-mode", action="store_true", help="register with binding UQ (queue mode)")
    parser.add_argument("--wake-interval", type=float, default=None,
                        help="seconds between updates (default: 80%% of the lifetime)")
    parser.add_argument("--drift-interval", type=float, default=2.0, help="seconds between temperature changes")
    parser.add_argument("--bind", default="0.0.0.0", help="local address to send from (default %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    device = Device(args.endpoint, lifetime=args.lifetime, queue_mode=args.queue_mode,
                    drift_interval=args.drift_interval, bind_host=args.bind)
    host, port = parse_server(args.server)
    await device.start(host, port)
    device.run_in_background(args.wake_interval or max(1.0, args.lifetime * 0.8))
    try:
        await asyncio.Event().wait()
    finally:
        await device.stop()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
