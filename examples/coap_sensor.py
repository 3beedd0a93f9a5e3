"""A CoAP temperature sensor: POSTs readings to the gateway's /ps tree, where MQTT clients read them.

Each reading goes to ``coap://HOST:PORT/ps/{topic}`` as JSON (Content-Format
50, application/json), for example ``{"t": 21.37, "unit": "Cel"}``; an MQTT
subscriber of the same topic receives it with Content Type application/json:

    python examples/coap_sensor.py --port 5683 --topic sensors/t1 --interval 5
    mosquitto_sub -t 'sensors/#' -v

A CON request (the default) is published at QoS 1 and its 2.04 comes back once
the gateway has the message; ``--non`` sends NON requests (QoS 0, no retries).
``--retain`` adds ``?retain=true``, so ``GET /ps/{topic}`` and new MQTT
subscribers see the last reading. With a password file on the gateway, pass
``--username``/``--password`` (sent as the ``u``/``p`` query parameters).

A reading the gateway does not take (it is restarting, the network is down: no
answer, ICMP port unreachable, or a 5.xx) is reported in one line and skipped;
the next one is tried at the next interval, so the sensor carries on by itself
once the gateway is back. A 4.xx (bad credentials, a topic the ACL refuses)
stops it: trying again would not help.

Needs aiocoap (``pip install aiocoap``; a dependency of the gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from urllib.parse import quote, urlencode

import aiocoap
import aiocoap.error
from aiocoap import Message
from aiocoap.numbers.codes import Code

JSON = 50  # CoAP Content-Format of application/json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="gateway CoAP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5683, help="gateway CoAP port (default 5683)")
    parser.add_argument("--topic", default="sensors/t1", help="topic to publish to (default sensors/t1)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between readings (default 5)")
    parser.add_argument("--count", type=int, default=0, help="readings to send, then exit (default 0: forever)")
    parser.add_argument("--non", action="store_true", help="send NON requests (QoS 0) instead of CON (QoS 1)")
    parser.add_argument("--retain", action="store_true", help="retain the last reading on the gateway")
    parser.add_argument("--clientid", help="client id (the c query parameter)")
    parser.add_argument("--username", help="username (u), checked against the gateway's password file")
    parser.add_argument("--password", help="password (p)")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable values")
    return parser.parse_args(argv)


def resource_uri(args: argparse.Namespace) -> str:
    """``coap://host:port/ps/{topic}?...``: one path segment per topic level, percent-encoded."""
    path = "/".join(quote(level, safe="") for level in args.topic.split("/"))
    query = {key: value for key, value in (("retain", "true" if args.retain else None), ("c", args.clientid),
                                           ("u", args.username), ("p", args.password)) if value}
    host = f"[{args.host}]" if ":" in args.host else args.host
    return f"coap://{host}:{args.port}/ps/{path}" + (f"?{urlencode(query)}" if query else "")


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    temperature = rng.uniform(19.0, 23.0)
    uri = resource_uri(args)
    context = await aiocoap.Context.create_client_context()
    tuning = aiocoap.Unreliable if args.non else aiocoap.Reliable
    retry = max(args.interval, 1.0)  # after a reading the gateway did not take
    print(f"publishing to {uri} every {args.interval} s", flush=True)
    sent = 0
    try:
        while args.count == 0 or sent < args.count:
            temperature += rng.gauss(0, 0.15) + (21.0 - temperature) * 0.02  # drifts, pulled back towards 21
            payload = json.dumps({"t": round(temperature, 2), "unit": "Cel"}).encode()
            request = Message(code=Code.POST, uri=uri, payload=payload, content_format=JSON, transport_tuning=tuning)
            try:
                response = await context.request(request).response
            except (aiocoap.error.Error, OSError) as exc:  # no answer, port unreachable, network down
                print(f"not delivered ({type(exc).__name__}: {exc}); trying again in {retry} s",
                      file=sys.stderr, flush=True)
                # A fresh client socket for the next reading: an answer to a retransmission of this one
                # that arrives late (the gateway came back) then finds no socket, rather than a request
                # aiocoap already ended (which it reports with a traceback).
                await context.shutdown()
                context = await aiocoap.Context.create_client_context()
                await asyncio.sleep(retry)
                continue
            if response.code.class_ == 5:
                print(f"not delivered: {response.code}; trying again in {retry} s", file=sys.stderr, flush=True)
                await asyncio.sleep(retry)
                continue
            if not response.code.is_successful():
                print(f"refused: {response.code} {response.payload.decode(errors='replace')}", file=sys.stderr)
                return 1
            print(f"{args.topic} {payload.decode()} -> {response.code}", flush=True)
            sent += 1
            if args.count == 0 or sent < args.count:
                await asyncio.sleep(args.interval)
    finally:
        await context.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return asyncio.run(run(parse_args(argv)))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
