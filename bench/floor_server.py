"""The floor of the connect + subscribe row: what uvloop alone costs, with no MQTT work at all.

    python -m bench.floor_server        # prints {"mqtt": port} once listening on 127.0.0.1

Not a broker. It answers every CONNECT with a CONNACK (accepted) and every SUBSCRIBE with a
SUBACK granting QoS 1, and does nothing else: no session, no subscription, no login. Each
accepted client costs what the gateway's event loop costs any client (accept, a transport,
two reads, two writes, the close) and nothing more. `bench compare --group connect-floor`
runs it beside the gateway and mosquitto: any gateway at or below this row is bound by the
event loop, not by its MQTT code.
"""

from __future__ import annotations

import asyncio
import json
import sys

from adapters.mqtt.properties import decode_varint

CONNACK = b"\x20\x02\x00\x00"  # 3.1.1: no session present, accepted
CONNECT, SUBSCRIBE = 1, 8


class FloorProtocol(asyncio.Protocol):
    """Canned answers by packet type; packets may be split or joined across reads."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        answers = []
        while len(buffer) >= 2:
            remaining = decode_varint(buffer, 1)  # the remaining length (the decoder's own reader)
            if remaining is None:
                break  # the length is not all here yet
            length, at = remaining
            end = at + length
            if len(buffer) < end:
                break
            kind = buffer[0] >> 4
            if kind == CONNECT:
                answers.append(CONNACK)
            elif kind == SUBSCRIBE:
                answers.append(b"\x90\x03" + buffer[at:at + 2] + b"\x01")  # its packet id, QoS 1 granted
            buffer = buffer[end:]
        self.buffer = buffer
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))

    def eof_received(self) -> bool:
        return False  # close our side too


async def serve() -> None:
    server = await asyncio.get_running_loop().create_server(FloorProtocol, "127.0.0.1", 0, backlog=4096)
    print(json.dumps({"mqtt": server.sockets[0].getsockname()[1]}), flush=True)
    await server.serve_forever()


def main() -> int:
    try:
        import uvloop
    except ImportError:
        print("bench.floor_server: uvloop is not installed (the gateway's event loop)", file=sys.stderr)
        return 1
    uvloop.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
