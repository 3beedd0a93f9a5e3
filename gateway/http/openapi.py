"""The admin API's OpenAPI 3.1 document, served at ``GET /api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.http import openapi_ui
from gateway.version import gateway_version

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
OPEN: list[dict[str, list[str]]] = []  # security: none needed


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad request", 401: "Credentials required",
            403: "Not allowed: a user with no role, a monitor's action, or the user's topic ACL",
            404: "Not found", 408: "The body did not arrive in time", 409: "Conflicts with the current state",
            413: "Body over [http] max_body_size", 429: "Held back by the login backoff (see Retry-After)",
            503: "Not ready", 504: "No answer in time"}
    return {str(code): _json(ERROR, text[code]) for code in sorted(set(codes))}


def _op(summary: str, response: dict[str, Any], *codes: int, **extra: Any) -> dict[str, Any]:
    """An operation; one that needs credentials may also answer 401, 403 (role) and 429."""
    if extra.get("security") is not OPEN:
        codes += (401, 403, 429)
    operation = {"summary": summary, "responses": {"200": response, **_errors(*codes)}}
    operation.update(extra)
    return operation


def _list(key: str, item: str) -> dict[str, Any]:
    return {"type": "object", "required": [key, "count"], "properties": {
        key: {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}, "count": {"type": "integer"}}}


PROTOCOL = {"name": "protocol", "in": "query", "required": False,
            "schema": {"type": "string", "enum": ["mqtt", "amqp", "coap"]}}
TOPIC_FILTER = {"name": "topic", "in": "query", "required": False, "description": "MQTT topic filter (default #)",
                "schema": {"type": "string", "default": "#"}}
ANY_OBJECT = {"type": "object", "additionalProperties": True}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["status", "message"],
        "properties": {"status": {"type": "integer"}, "message": {"type": "string"}}}}},
    "Client": {"type": "object", "required": ["id", "protocol"], "properties": {
        "id": {"type": "string"}, "protocol": {"type": "string"}, "listener": {"type": "string"},
        "address": {"type": ["string", "null"]}, "username": {"type": ["string", "null"]},
        "connected_since": {"type": ["number", "null"]}, "subscriptions": {"type": "array", "items": {"type": "string"}},
        "queue_depth": {"type": "integer"}, "inflight": {"type": "integer"},
        "node": {"type": "string", "description": "the cluster node it is connected to (cluster mode)"}}},
    "Subscription": {"type": "object", "properties": {
        "topic": {"type": "string"}, "protocol": {"type": "string"}, "client_id": {"type": "string"},
        "qos": {"type": "integer"}, "shared_group": {"type": ["string", "null"]}, "no_local": {"type": "boolean"}}},
    "Message": {"type": "object", "properties": {
        "topic": {"type": "string"}, "payload": {"type": "string"},
        "payload_encoding": {"type": "string", "enum": ["text", "base64"]}, "qos": {"type": "integer"},
        "content_type": {"type": ["string", "null"]}, "origin": {"type": "string"},
        "expiry": {"type": ["number", "null"]}, "retained": {"type": "boolean"}, "messages": {"type": "integer"}}},
    "Publish": {"type": "object", "required": ["topic"], "properties": {
        "topic": {"type": "string"}, "payload": {"type": "string", "default": ""},
        "payload_encoding": {"type": "string", "enum": ["text", "base64"], "default": "text"},
        "qos": {"type": "integer", "enum": [0, 1, 2], "default": 0}, "retain": {"type": "boolean", "default": False},
        "properties": {"type": "object", "properties": {
            "content_type": {"type": "string"}, "correlation_data": {"type": "string"},
            "response_topic": {"type": "string"}, "message_expiry_interval": {"type": "integer", "minimum": 0},
            "user_properties": {"oneOf": [
                {"type": "object", "additionalProperties": {"type": "string"}},
                {"type": "array", "items": {"type": "array", "items": {"type": "string"},
                                            "minItems": 2, "maxItems": 2}}]}}}}},
    "Health": {"type": "object", "required": ["status", "alive", "ready", "listeners"], "properties": {
        "status": {"type": "string"}, "alive": {"type": "boolean"}, "ready": {"type": "boolean"},
        "listeners": {"type": "object", "additionalProperties": {"type": "integer"}},
        "listener_states": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "AMQPObject": ANY_OBJECT,
}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/v1/health": {"get": _op("Liveness and readiness with listener states",
                                      _json({"$ref": "#/components/schemas/Health"}), 503, security=OPEN)},
        "/api/v1/openapi.json": {"get": _op("This document", _json(ANY_OBJECT), security=OPEN)},
        "/metrics": {"get": _op("Prometheus metrics (text format 0.0.4)", {
            "description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}, security=OPEN)},
        "/api/v1/stats": {"get": _op("Totals by protocol and protocol pair", _json(ANY_OBJECT), 401)},
        "/api/v1/clients": {"get": _op("Connected clients of every protocol", _json(_list("clients", "Client")),
                                       400, 401, parameters=[PROTOCOL])},
        "/api/v1/clients/{client_id}": {"delete": _op(
            "Disconnect a client (MQTT DISCONNECT 0x98, AMQP close 320, CoAP connection ended; admins)",
            _json(ANY_OBJECT), 400, 401, 404,
            parameters=[{"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        PROTOCOL])},
        "/api/v1/subscriptions": {"get": _op("Subscriptions in the router", _json(_list("subscriptions", "Subscription")),
                                             400, 401, parameters=[PROTOCOL])},
        "/api/v1/retained": {
            "get": _op("Retained messages matching a filter", _json(_list("retained", "Message")), 400, 401,
                       parameters=[TOPIC_FILTER]),
            "delete": _op("Clear retained messages matching a filter (admins)", _json(ANY_OBJECT), 400, 401,
                          parameters=[TOPIC_FILTER]),
        },
        "/api/v1/publish": {"post": _op(
            "Publish a message to subscribers of every protocol (admins)", _json(ANY_OBJECT), 400, 408, 413,
            requestBody={"required": True, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Publish"}}}})},
        "/api/v1/whoami": {"get": _op("Who the request signed in as and its role (admin or monitor)", _json({
            "type": "object", "required": ["user", "role"], "properties": {
                "user": {"type": ["string", "null"]}, "role": {"type": "string", "enum": ["admin", "monitor"]}}}))},
        "/api/v1/topics": {"get": _op("Topics: retained ones and those seen while a console watches",
                                      _json(_list("topics", "Message")), 401)},
        "/api/v1/events": {"get": _op("Server-sent events: a stats event every second", {
            "description": "OK", "content": {"text/event-stream": {"schema": {"type": "string"}}}}, 401)},
        "/api/v1/bridges": {"get": _op(
            "Each bridge to an upstream MQTT broker, RabbitMQ or webhook: connected, queued, forwarded, received, "
            "dropped by reason, failures, last error", _json({"type": "object", "required": ["bridges"], "properties": {
                "node": {"type": ["string", "null"]}, "bridges": {"type": "array", "items": ANY_OBJECT}}}), 401)},
    }
    for path, operations in openapi_ui.paths(_op, _json).items():  # the management UI's routes (issue 20)
        paths.setdefault(path, {}).update(operations)
    for kind in ("exchanges", "queues", "bindings"):
        paths[f"/api/v1/amqp/{kind}"] = {"get": _op(f"AMQP {kind} of every vhost",
                                                    _json(_list(kind, "AMQPObject")), 401, 404)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "RosettaMQ admin API", "version": gateway_version(),
                 "description": "Management API of the RosettaMQ gateway. Health, metrics and this document are open;"
                                " the rest needs the [http] api_token as a bearer token (an administrator) or, with"
                                " [auth] password_file, HTTP basic credentials of a user in [http] admins (everything)"
                                " or [http] monitors (GET only)."},
        "paths": paths,
        "components": {"schemas": {**SCHEMAS, **openapi_ui.SCHEMAS}, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}, "basic": {"type": "http", "scheme": "basic"}}},
        "security": [{"bearer": []}, {"basic": []}],
    }


async def get_document(request: web.Request) -> web.Response:
    return web.json_response(document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", get_document)
