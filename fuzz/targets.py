"""What the fuzzer aims at: one `Target` per kind of input, each bound to a gateway listener.

| target | listener | transport | inputs                                                      |
|--------|----------|-----------|-------------------------------------------------------------|
| mqtt   | mqtt     | TCP       | MQTT 3.1, 3.1.1, 5.0 packets after a CONNECT                |
| ws     | ws       | TCP       | the upgrade on /mqtt, WebSocket frames, framed MQTT         |
| amqp   | amqp     | TCP       | AMQP 0-9-1 frames after the handshake                       |
| coap   | coap     | UDP       | CoAP datagrams with every option                            |
| lwm2m  | coap     | UDP       | LwM2M Register / Update / De-register on /rd                |
| http   | http     | TCP       | admin API requests and JSON bodies                          |

A target's `source(rng)` makes a case source: `case()` gives one mutated
input, `counts` counts the mutations applied, and `prepare(context)` (when
present) takes what the probes learnt (the LwM2M location of a real
registration) before each batch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from fuzz.mutate import Case, Mutator
from fuzz.seeds import amqp, coap, http, mqtt, ws


class CaseSource(Protocol):
    counts: dict[str, int]

    def case(self) -> Case: ...


@dataclass(frozen=True)
class Target:
    name: str
    listener: str
    transport: str  # "tcp" or "udp"
    source: Callable[[random.Random], CaseSource]


@dataclass
class LwM2MCases:
    """Registration interface inputs aimed at the location the last probe registered."""

    rng: random.Random
    location: str = "rd/unknown-location"
    mutator: Mutator = field(init=False)

    def __post_init__(self) -> None:
        self.mutator = Mutator(self.rng, coap.lwm2m_seeds(self.location), coap.length_field)

    @property
    def counts(self) -> dict[str, int]:
        return self.mutator.counts

    def prepare(self, context: dict[str, Any]) -> None:
        location = context.get("lwm2m")
        if isinstance(location, str) and location != self.location:
            self.location = location
            self.mutator.seeds = coap.lwm2m_seeds(location)

    def case(self) -> Case:
        return self.mutator.case()


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("mqtt", "mqtt", "tcp", lambda rng: Mutator(rng, mqtt.seeds(), mqtt.length_field)),
    Target("ws", "ws", "tcp", ws.WSCases),
    Target("amqp", "amqp", "tcp", lambda rng: Mutator(rng, amqp.seeds(), amqp.length_field)),
    Target("coap", "coap", "udp", lambda rng: Mutator(rng, coap.coap_seeds(), coap.length_field)),
    Target("lwm2m", "coap", "udp", LwM2MCases),
    Target("http", "http", "tcp", http.HTTPCases),
)}
