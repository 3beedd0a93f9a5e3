"""What the LwM2M server allows and does by itself, as one value the wiring reads.

Times are seconds. `republish` maps an observed resource path to a topic
template (``{ep}`` is the endpoint name), for a plain-number copy of each
value a dashboard can plot without parsing the answer JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .bootstrap import BootstrapConfig
from .objects import ObjectRegistry
from .queue_mode import AWAKE_WINDOW
from .topics import PREFIX

__all__ = ["LwM2MSettings"]


@dataclass(frozen=True, slots=True)
class LwM2MSettings:
    """The LwM2M server's limits, timers and automatic behaviour."""

    prefix: str = PREFIX  # first level of every LwM2M topic
    registry: ObjectRegistry = field(default_factory=ObjectRegistry.builtin)
    lifetime_grace: float = 30.0  # a registration lives lt + this after its last Register/Update
    min_lifetime: int = 15  # a shorter requested lt is raised to this
    max_lifetime: int = 86400  # a longer (or 0, "as long as allowed") lt is lowered to this
    command_timeout: float = 30.0  # a request the device has not answered by then gets coap_timeout
    queue_ttl: float = 86400.0  # how long a command waits for a queue-mode device (a command's "ttl" wins)
    awake_window: float = AWAKE_WINDOW  # a queue-mode device listens this long after it last spoke
    max_queued: int = 100  # commands waiting per queue-mode device; the oldest are dropped
    auto_observe: tuple[str, ...] = ()  # paths observed on every registration that announces them
    republish: Mapping[str, str] = field(default_factory=dict)  # path -> topic template with {ep}
    qos: int = 0  # QoS of the messages the server publishes
    endpoint_pattern: str = "%u"  # endpoint names a logged-in identity may register (adapters/lwm2m/access.py)
    bootstrap: BootstrapConfig | None = None  # what /bs writes to a client without its own file
    bootstrap_dir: str | None = None  # per-endpoint bootstrap configurations, {ep}.json
