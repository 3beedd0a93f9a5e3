"""The JSON the server publishes: answers, notifications, failures and lifecycle.

Shapes follow EMQX's LwM2M gateway. An answer echoes the command's top-level
fields (``reqID``...), and carries the device's code:

    {"reqID": 1, "msgType": "read",
     "data": {"reqPath": "/3/0", "code": "2.05", "codeMsg": "content",
              "content": [{"path": "/3/0/0", "value": "Open Mobile Alliance"}, ...]}}

- read, observe, cancel-observe (and their composite forms, whose data also
  lists the ``paths``): ``content`` is the decoded values;
- discover: ``content`` is the list of links (``"</3/0/7>;dim=8;pmin=10"``);
- create: ``location`` is the new instance's path (the device's Location-Path, else
  the one instance the command's content named);
- a payload that does not decode: code 4.00 ``bad_request`` with ``error``;
- notifications: ``msgType`` "notify" and the Observe number as ``seqNum``;
- no answer, or RST: ``msgType`` "coap_timeout" / "coap_reset", the
  command's data plus ``reqPath``, ``code`` (5.04 / 5.02) and ``codeMsg``;
- lifecycle: ``{"msgType": "register", "data": {"ep", "lt", "lwm2m", "b",
  "alternatePath", "objectList": ["/1/0", "/3/0"], ...}}``; update has the same
  data after the update; deregister adds ``reason`` (deregister, expired, replaced).
"""

from __future__ import annotations

from typing import Any, Mapping

from .coap import CoapResponse, code_name, is_success
from .commands import Command
from .content import content_to_json
from .errors import CommandError, LwM2MError
from .formats import decode_content
from .link_format import split_links
from .objects import ObjectRegistry
from .paths import format_path
from .rd import RdEvent
from .registration import SENSITIVE_PARAMS
from .registrations import Registration

__all__ = [
    "response_answer", "notify_answer", "ack_answer", "failure_answer",
    "invalid_command_answer", "registration_data", "lifecycle_message", "plain_value", "plain_values",
]

_VALUED = ("read", "observe", "cancel-observe", "notify", "read-composite", "observe-composite",
           "cancel-observe-composite")
_FAILURE_CODES = {"coap_timeout": "5.04", "coap_reset": "5.02"}
_REGISTRATION_KEYS = {"ep", "lt", "lwm2m", "b", "sms"}


def _base(command: Command | Mapping[str, Any], msg_type: str) -> dict[str, Any]:
    raw = command.raw if isinstance(command, Command) else command
    answer = {key: value for key, value in raw.items() if key != "data"}
    answer["msgType"] = msg_type
    return answer


def _data(command: Command, code: str) -> dict[str, Any]:
    data: dict[str, Any] = {"reqPath": command.req_path, "code": code, "codeMsg": code_name(code)}
    if command.paths:  # a composite operation
        data["paths"] = [format_path(path) for path in command.paths]
    return data


def _with_content(command: Command, msg_type: str, response: CoapResponse,
                  registry: ObjectRegistry) -> dict[str, Any]:
    answer = _base(command, msg_type)
    data = answer["data"] = _data(command, response.code)
    if not is_success(response.code):
        return answer
    try:
        if command.msg_type == "discover":
            data["content"] = split_links(response.payload.decode("utf-8"))
        elif command.msg_type in _VALUED and response.code == "2.05":
            data["content"] = content_to_json(decode_content(
                response.content_format, response.payload, command.path, registry))
    except (LwM2MError, UnicodeDecodeError) as exc:
        answer["data"] = {**_data(command, "4.00"), "error": str(exc)}
        return answer
    if command.msg_type == "create" and is_success(response.code):
        if response.location_path:
            data["location"] = "/" + "/".join(response.location_path)
        elif len(command.path) == 2:  # the one instance the content named
            data["location"] = format_path(command.path)
    return answer


def response_answer(command: Command, response: CoapResponse,
                    registry: ObjectRegistry) -> dict[str, Any]:
    """The answer to publish on ``up/resp`` when the device responds to `command`."""
    answer = _with_content(command, command.msg_type, response, registry)
    if command.msg_type == "observe" and response.observe:
        answer["seqNum"] = response.observe
    return answer


def notify_answer(command: Command, response: CoapResponse,
                  registry: ObjectRegistry) -> dict[str, Any]:
    """A notification of the observation `command` started, for ``up/notify``."""
    answer = _with_content(command, "notify", response, registry)
    if response.observe is not None:
        answer["seqNum"] = response.observe
    return answer


def ack_answer(command: Command) -> dict[str, Any]:
    """The device acknowledged but will answer separately (EMQX's "ack")."""
    answer = _base(command, "ack")
    answer["data"] = {"path": command.req_path}
    return answer


def failure_answer(command: Command, msg_type: str = "coap_timeout") -> dict[str, Any]:
    """No answer in time (or a queued command expired): "coap_timeout"; RST: "coap_reset"."""
    code = _FAILURE_CODES[msg_type]
    answer = _base(command, msg_type)
    answer["data"] = {**command.raw.get("data", {}), **_data(command, code)}
    return answer


def invalid_command_answer(raw: Mapping[str, Any] | None, error: CommandError) -> dict[str, Any]:
    """The answer to a command that could not be sent (4.00 and the reason)."""
    raw = raw if isinstance(raw, Mapping) else {}
    msg_type = raw.get("msgType") if isinstance(raw.get("msgType"), str) else "error"
    answer = _base(raw, msg_type)
    data = raw.get("data") if isinstance(raw.get("data"), Mapping) else {}
    req_path = data.get("path", data.get("basePath"))
    answer["data"] = {"reqPath": req_path.partition("?")[0] if isinstance(req_path, str) else None,
                      "code": error.code, "codeMsg": code_name(error.code), "error": str(error)}
    return answer


def registration_data(registration: Registration) -> dict[str, Any]:
    """What a lifecycle message says about a registration (no secrets from the query)."""
    sent = dict(registration.params)
    data: dict[str, Any] = {
        "ep": registration.endpoint,
        "lt": registration.lifetime,
        "lwm2m": sent.get("lwm2m") or registration.version,
        "b": registration.binding,
        "alternatePath": registration.alternate_path,
        "objectList": [str(link) for link in registration.objects],
    }
    if registration.sms is not None:
        data["sms"] = registration.sms
    for key, value in registration.params:
        if key not in _REGISTRATION_KEYS and key.lower() not in SENSITIVE_PARAMS:
            data[key] = True if value is None else value
    return data


def lifecycle_message(event: RdEvent) -> dict[str, Any]:
    """The message for ``up/register``, ``up/update`` or ``up/deregister``."""
    data = registration_data(event.registration)
    if event.kind == "deregister":
        data["reason"] = event.reason or "deregister"
    return {"msgType": event.kind, "data": data}


def plain_values(answer: Mapping[str, Any], path: str) -> list[bytes]:
    """The numbers at `path` in an answer's content as plain text ([b"21.5"]), in order, for
    republishing a sensor's values where a dashboard can plot them (a Send may carry several)."""
    content = answer.get("data", {}).get("content")
    values = []
    for item in content if isinstance(content, list) else ():
        if not isinstance(item, Mapping) or item.get("path") != path:
            continue
        value = item.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values.append(repr(value).encode("ascii"))
    return values


def plain_value(answer: Mapping[str, Any], path: str) -> bytes | None:
    """The first of `plain_values`; None when there is none."""
    values = plain_values(answer, path)
    return values[0] if values else None
