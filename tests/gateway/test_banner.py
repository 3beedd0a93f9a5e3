"""The ready banner's advice: how to open a local-only gateway, and a warning when an open one lets anyone in."""

from __future__ import annotations

from types import SimpleNamespace

from gateway.cli.banner import banner_lines
from gateway.config import config_from_dict


def banner(bound: dict[str, tuple[str, int]], authenticator: object = None) -> str:
    gateway = SimpleNamespace(config=config_from_dict({}), listening=SimpleNamespace(bound=bound),
                              lwm2m=None, authenticator=authenticator)
    return "\n".join(banner_lines(gateway, None))  # type: ignore[arg-type]


def test_a_local_only_gateway_says_how_to_let_other_hosts_in() -> None:
    text = banner({"mqtt": ("127.0.0.1", 1883), "http": ("127.0.0.1", 8080)})
    assert "local only" in text and "--mqtt 0.0.0.0:1883" in text and "anonymous" not in text


def test_an_open_listener_without_logins_is_named_in_a_warning_and_its_url_reaches_it_locally() -> None:
    text = banner({"mqtt": ("0.0.0.0", 1883), "amqp": ("127.0.0.1", 5672)})
    assert "mqtt://127.0.0.1:1883  (every interface)" in text
    assert "anonymous: anyone who reaches mqtt gets in" in text and "local only" not in text
    assert "anonymous" not in banner({"mqtt": ("0.0.0.0", 1883)}, authenticator=object())
