"""The MQTT topics of the LwM2M server (DESIGN.md): ``lwm2m/{endpoint}/...``.

Commands arrive on ``lwm2m/{ep}/dn`` (the server subscribes ``lwm2m/{ep}/dn/#``,
which also takes EMQX's ``dn/dm``); answers go to ``up/resp``, notifications
to ``up/notify``, what devices Send to ``up/send``, and lifecycle messages to ``up/register``, ``up/update`` and
``up/deregister``. Endpoint names cannot contain ``/``, ``+`` or ``#``: the
registration parser refuses them.
"""

from __future__ import annotations

__all__ = ["PREFIX", "command_filter", "command_topic", "endpoint_of_command", "response_topic",
           "notify_topic", "send_topic", "bootstrap_topic", "lifecycle_topic"]

PREFIX = "lwm2m"


def command_filter(endpoint: str, prefix: str = PREFIX) -> str:
    """The subscription that receives an endpoint's commands."""
    return f"{prefix}/{endpoint}/dn/#"


def command_topic(endpoint: str, prefix: str = PREFIX) -> str:
    """Where an application publishes an endpoint's commands."""
    return f"{prefix}/{endpoint}/dn"


def endpoint_of_command(topic: str, prefix: str = PREFIX) -> str | None:
    """``lwm2m/ep1/dn`` (or ``.../dn/dm``) -> ``ep1``; None for any other topic."""
    parts = topic.split("/")
    if len(parts) >= 3 and parts[0] == prefix and parts[2] == "dn" and parts[1]:
        return parts[1]
    return None


def response_topic(endpoint: str, prefix: str = PREFIX) -> str:
    return f"{prefix}/{endpoint}/up/resp"


def notify_topic(endpoint: str, prefix: str = PREFIX) -> str:
    return f"{prefix}/{endpoint}/up/notify"


def send_topic(endpoint: str, prefix: str = PREFIX) -> str:
    """Values a device sent unasked (LwM2M 1.1 Send, ``POST /dp``)."""
    return f"{prefix}/{endpoint}/up/send"


def bootstrap_topic(endpoint: str, prefix: str = PREFIX) -> str:
    """How a client's bootstrap went (``/bs``): requested, finished or failed."""
    return f"{prefix}/{endpoint}/up/bootstrap"


def lifecycle_topic(endpoint: str, kind: str, prefix: str = PREFIX) -> str:
    """`kind` is "register", "update" or "deregister" (an `RdEvent.kind`)."""
    if kind not in ("register", "update", "deregister"):
        raise ValueError(f"no lifecycle topic for {kind!r}")
    return f"{prefix}/{endpoint}/up/{kind}"
