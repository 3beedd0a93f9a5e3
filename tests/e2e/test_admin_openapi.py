"""Every admin API route the HTTP listener serves is in its OpenAPI document (issue 20 added many)."""

from __future__ import annotations

from openapi_spec_validator import validate

from gateway.http import build_app
from tests.e2e.admin_support import admin_gateway, http


def test_every_api_route_and_method_is_documented_and_the_document_is_valid() -> None:
    running = admin_gateway(lwm2m={})
    try:
        document = http(running, "GET", "/api/v1/openapi.json").json()
        validate(document)
        served = set()
        for route in build_app(running.gateway).router.routes():
            path = route.resource.canonical if route.resource is not None else ""
            if not path.startswith("/api/") or route.method == "HEAD":
                continue
            kinds = ["exchanges", "queues", "bindings"] if path == "/api/v1/amqp/{kind}" else [None]
            for kind in kinds:  # {kind:exchanges|queues|bindings}: one documented path each
                served.add((path if kind is None else path.replace("{kind}", kind), route.method.lower()))
        documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
        assert served - documented == set()
        assert ("/api/v1/lwm2m/devices/{endpoint}/commands", "post") in served
    finally:
        running.stop()
