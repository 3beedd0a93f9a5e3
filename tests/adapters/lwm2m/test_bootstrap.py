"""Bootstrap configurations -> the Bootstrap-Delete, -Write and -Finish requests, and their errors."""

from __future__ import annotations

import json

import pytest

from adapters.lwm2m.bootstrap import (BootstrapConfigError, bootstrap_requests, parse_bootstrap_config,
                                      parse_bootstrap_request)
from adapters.lwm2m.errors import RegistrationError
from adapters.lwm2m.formats import ContentFormat, decode_content
from gateway.config import ConfigError, config_from_dict

from .strategies import REGISTRY

CONFIG = {"security": {"0": {"uri": "coap://gw:5683", "bootstrap": False, "mode": 0, "shortId": 9,
                             "identity": "dev-1", "secretKey": "s3cret"}},
          "server": {"0": {"shortId": 9, "lifetime": 300, "binding": "UQ"}}}


def test_a_configuration_becomes_delete_writes_then_finish_in_tlv_by_default() -> None:
    requests = bootstrap_requests(parse_bootstrap_config(CONFIG), None, REGISTRY)
    assert [(r.method, r.path) for r in requests] == [
        ("DELETE", ()), ("PUT", ("0", "0")), ("PUT", ("1", "0")), ("POST", ("bs",))]
    security, server = requests[1], requests[2]
    assert security.content_format == server.content_format == 11542
    assert decode_content(11542, security.payload, (0, 0), REGISTRY) == {
        "/0/0/0": "coap://gw:5683", "/0/0/1": False, "/0/0/2": 0, "/0/0/3": b"dev-1", "/0/0/5": b"s3cret",
        "/0/0/10": 9}
    assert decode_content(11542, server.payload, (1, 0), REGISTRY) == {"/1/0/0": 9, "/1/0/1": 300, "/1/0/7": "UQ"}


def test_writes_go_in_the_format_the_client_prefers_and_deletes_follow_the_configuration() -> None:
    config = parse_bootstrap_config({**CONFIG, "delete": ["/0", "/1"]})
    requests = bootstrap_requests(config, ContentFormat.SENML_JSON, REGISTRY)
    assert [r.path for r in requests[:2]] == [("0",), ("1",)]
    assert requests[2].content_format == 110 and json.loads(requests[3].payload)[0]["bn"] == "/1/0/"


@pytest.mark.parametrize("document, reason", [
    ({}, "at least one"),
    ({"servers": {}}, "unknown keys"),
    ({"security": {"x": {}}}, "instance id"),
    ({"security": {"0": {"url": "coap://x"}}}, "unknown"),
    ({"server": {"0": {"lifetime": "300"}}}, "integer"),
    ({"server": {"0": {"notifStoring": 1}}}, "bool"),
    ({"security": {"0": {"identity": 5}}}, "text"),
    ({"security": {"0": {"mode": 3}}, "delete": ["/a"]}, "delete"),
])
def test_configuration_mistakes_say_what_is_wrong(document: dict, reason: str) -> None:
    with pytest.raises(BootstrapConfigError, match=reason):
        parse_bootstrap_config(document)


def test_a_bootstrap_request_names_its_endpoint_and_may_prefer_a_format() -> None:
    assert parse_bootstrap_request(["ep=dev", "pct=110"]) == ("dev", ContentFormat.SENML_JSON)
    assert parse_bootstrap_request(["ep=dev"]) == ("dev", None)
    assert parse_bootstrap_request(["ep=dev", "pct=0"]) == ("dev", None)  # text cannot carry an instance
    for query in ([], ["ep=a/b"], ["ep=.hidden"], ["ep=d", "pct=xml"]):
        with pytest.raises(RegistrationError):
            parse_bootstrap_request(query)


def test_the_gateway_config_reads_lwm2m_bootstrap_and_refuses_a_bad_one() -> None:
    config = config_from_dict({"lwm2m": {"bootstrap": CONFIG, "bootstrap_dir": "/tmp/bs"}})
    assert config.lwm2m.bootstrap == parse_bootstrap_config(CONFIG)
    assert config.lwm2m.bootstrap_dir == "/tmp/bs"
    assert config_from_dict({}).lwm2m.bootstrap is None
    with pytest.raises(ConfigError, match="lwm2m.bootstrap"):
        config_from_dict({"lwm2m": {"bootstrap": {"server": {"0": {"lifetime": True}}}}})
