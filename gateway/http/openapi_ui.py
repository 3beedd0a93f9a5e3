"""The OpenAPI paths and schemas of the management UI's routes (issue 20), merged into openapi.py's document."""

from __future__ import annotations

from typing import Any, Callable

ANY_OBJECT = {"type": "object", "additionalProperties": True}
NULLABLE_INT = {"type": ["integer", "null"]}


def _path(name: str, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            **({"description": description} if description else {})}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            **({"description": description} if description else {})}


PAGING = [
    _query("q", {"type": "string"}, "case-insensitive substring to search for"),
    _query("offset", {"type": "integer", "minimum": 0, "default": 0}),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "absent: every row"),
]
VHOST = _path("vhost", "URL-encoded, %2F for /")


def _paged(key: str, item: str) -> dict[str, Any]:
    return {"type": "object", "required": [key, "count", "total"], "properties": {
        key: {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}, "count": {"type": "integer"},
        "total": {"type": "integer"}, "offset": {"type": "integer"}, "limit": NULLABLE_INT}}


SCHEMAS: dict[str, Any] = {
    "ClientDetail": {"allOf": [{"$ref": "#/components/schemas/Client"}, {"type": "object", "properties": {
        "subscriptions_detail": {"type": ["array", "null"], "items": {"type": "object", "properties": {
            "filter": {"type": "string"}, "qos": NULLABLE_INT, "no_local": {"type": ["boolean", "null"]},
            "retain_as_published": {"type": ["boolean", "null"]}, "retain_handling": NULLABLE_INT,
            "subscription_id": NULLABLE_INT}}},
        "session_expiry": {"type": ["integer", "null"], "description": "seconds; null: never expires"},
        "clean_start": {"type": ["boolean", "null"]},
        "will": {"type": ["object", "null"], "properties": {
            "topic": {"type": "string"}, "qos": {"type": "integer"}, "retain": {"type": "boolean"},
            "delay": {"type": "integer"}, "payload_bytes": {"type": "integer"}}},
        "last_errors": {"type": "array", "items": {"type": "object", "properties": {
            "time": {"type": "number"}, "message": {"type": "string"}}}}}}]},
    "Session": {"type": "object", "properties": {
        "client_id": {"type": "string"}, "username": {"type": ["string", "null"]}, "queued": {"type": "integer"},
        "subscriptions": {"type": "array", "items": {"type": "string"}},
        "expires_at": {"type": ["number", "null"], "description": "Unix seconds; null: never"}}},
    "Device": {"type": "object", "properties": {
        "endpoint": {"type": "string"}, "address": {"type": ["string", "null"]}, "lifetime": {"type": "integer"},
        "binding": {"type": "string"}, "version": {"type": "string"}, "registered_at": {"type": "number"},
        "last_update": {"type": "number"}, "queue_mode": {"type": "boolean"}, "awake": {"type": "boolean"},
        "objects": {"type": "array", "items": {"type": "string"}}, "queued": {"type": "integer"},
        "definitions": {"type": "object", "additionalProperties": ANY_OBJECT}}},
    "HistorySample": {"type": "object", "properties": {
        "time": {"type": "number"}, "messages_in": {"type": "object", "additionalProperties": {"type": "number"}},
        "messages_out": {"type": "object", "additionalProperties": {"type": "number"}},
        "connections": {"type": "object", "additionalProperties": {"type": "integer"}},
        "queued": {"type": "integer"}}},
}


def paths(op: Callable[..., dict[str, Any]], json: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """`op(summary, response, *codes, **extra)` and `json(schema)` are openapi.py's builders."""
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
    body = lambda schema: {"required": True, "content": {"application/json": {"schema": schema}}}  # noqa: E731
    events = {"description": "OK", "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    return {
        "/api/v1/clients": {"get": op(
            "Connected clients of every protocol, searched, sorted and paged (every node's in a cluster)",
            json(_paged("clients", "Client")), 400, 401, parameters=[
                *PAGING, _query("protocol", {"type": "string", "enum": ["mqtt", "amqp", "coap"]}),
                _query("sort", {"type": "string", "enum": ["id", "connected_since"], "default": "id"})])},
        "/api/v1/clients/{client_id}": {"get": op(
            "One connected client: subscription options, session expiry, will, last protocol errors",
            json(ref("ClientDetail")), 400, 401, 404, parameters=[_path("client_id")])},
        "/api/v1/sessions": {"get": op("Offline persistent MQTT sessions", json(_paged("sessions", "Session")),
                                       400, 401, parameters=PAGING)},
        "/api/v1/sessions/{client_id}": {"delete": op(
            "End an offline session with its queue (409 while its client is connected; admins)",
            json(ANY_OBJECT), 401, 404, 409, parameters=[_path("client_id")])},
        "/api/v1/retained/value": {"get": op(
            "One retained message: payload in base64, payload_text when UTF-8, its properties",
            json(ANY_OBJECT), 400, 401, 404, parameters=[{**_query("topic", {"type": "string"}), "required": True}])},
        "/api/v1/amqp/queues/{vhost}/{name}": {"delete": op(
            "Delete a queue (if_empty, if_unused: 409 when not met; admins)", json(ANY_OBJECT), 400, 401, 404, 409,
            parameters=[VHOST, _path("name"), _query("if_empty", {"type": "boolean"}),
                        _query("if_unused", {"type": "boolean"})])},
        "/api/v1/amqp/queues/{vhost}/{name}/contents": {"delete": op(
            "Purge a queue (admins)", json(ANY_OBJECT), 401, 404, parameters=[VHOST, _path("name")])},
        "/api/v1/amqp/exchanges/{vhost}/{name}/publish": {"post": op(
            "Publish to an exchange as an administrator's basic.publish (admins)",
            json({"type": "object", "properties": {"routed": {"type": "boolean"}}}), 400, 401, 404, 408, 413,
            parameters=[VHOST, _path("name")], requestBody=body({"type": "object", "properties": {
                "routing_key": {"type": "string"}, "payload": {"type": "string"},
                "payload_encoding": {"type": "string", "enum": ["string", "base64"]},
                "properties": ANY_OBJECT}}))},
        "/api/v1/lwm2m/devices": {"get": op("Registered LwM2M devices", json(_paged("devices", "Device")),
                                            400, 401, 404, parameters=PAGING)},
        "/api/v1/lwm2m/devices/{endpoint}": {"get": op(
            "One device with the definitions of its objects", json(ref("Device")), 401, 404,
            parameters=[_path("endpoint")])},
        "/api/v1/lwm2m/devices/{endpoint}/commands": {"post": op(
            "Run a command as published on lwm2m/{ep}/dn; the answer of up/resp (504 after 30 s; admins)",
            json(ANY_OBJECT), 400, 401, 404, 408, 413, 504, parameters=[_path("endpoint")],
            requestBody=body(ANY_OBJECT))},
        "/api/v1/stream": {"get": op(
            "Server-sent events: a message event per message matching the filter (access_token works)", events,
            400, 401, parameters=[_query("filter", {"type": "string", "default": "#"}, "MQTT topic filter"),
                                  _query("access_token", {"type": "string"})])},
        "/api/v1/history": {"get": op(
            "Metrics of the last hour, one sample per [http] history_interval",
            json({"type": "object", "properties": {"interval": {"type": "number"}, "samples": {
                "type": "array", "items": ref("HistorySample")}}}), 400, 401,
            parameters=[_query("minutes", {"type": "number", "default": 60, "maximum": 60})])},
        "/api/v1/cluster": {"get": op("This node, its NATS connection and the nodes it sees", json(ANY_OBJECT), 401)},
    }
