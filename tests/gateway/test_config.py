"""Tests of gateway.config: TOML file -> frozen Config dataclasses."""

from __future__ import annotations

import dataclasses
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from gateway.config import (
    AuthConfig,
    Config,
    ConfigError,
    LimitsConfig,
    ListenAddress,
    ListenerConfig,
    LogConfig,
    MQTTLimits,
    StoreConfig,
    TLSListenerConfig,
    WSListenerConfig,
    WSSListenerConfig,
    apply_cli_overrides,
    config_from_dict,
    load_config,
    parse_listen,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rosettamq.toml"


def write(tmp_path: Path, text: str, name: str = "rosettamq.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def touch(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / name).write_text("x", encoding="utf-8")


# --- defaults ----------------------------------------------------------------


def test_no_file_gives_the_embedded_defaults() -> None:
    config = load_config(None)
    assert config == Config() == config_from_dict({})
    assert config.mqtt == ListenerConfig(True, ListenAddress("localhost", 1883))  # 127.0.0.1 and ::1
    assert config.ws == WSListenerConfig(True, ListenAddress("localhost", 8083), "/mqtt")
    assert config.amqp.listen == ListenAddress("localhost", 5672)
    assert config.coap.listen == ListenAddress("localhost", 5683)
    assert config.http.listen == ListenAddress("localhost", 8080)
    assert config.mqtt_tls.listen.port == 8883 and not config.mqtt_tls.enabled
    assert config.wss.listen.port == 8084 and not config.wss.enabled
    assert config.amqps.listen.port == 5671 and not config.amqps.enabled
    assert config.store == StoreConfig("rosettamq.db") and not config.store.is_memory
    assert config.auth == AuthConfig(None, None, allow_anonymous=True)
    assert config.log == LogConfig("info", "text")
    assert config.mqtt_limits == MQTTLimits(
        max_packet_size=1048576, max_inflight=20, max_queued_messages=1000,
        max_keepalive=65535, retain_available=True, max_qos=2,
        session_expiry_max=4294967295, topic_alias_maximum=10,
    )


def test_every_listener_binds_loopback_only_until_its_listen_names_another_address() -> None:
    """As mosquitto 2 without listeners configured: nothing is reachable from another host by default."""
    config = config_from_dict({"mqtt_tls": {"certfile": __file__}, "ws": {"path": "/x"}})
    assert {name: listener.listen.host for name, listener in Config().enabled_listeners().items()} == {
        name: "localhost" for name in ("mqtt", "ws", "amqp", "coap", "http")}  # both loopbacks, nothing else
    assert config.mqtt_tls.listen == ListenAddress("localhost", 8883) and config.ws.listen.host == "localhost"
    opened = config_from_dict({"mqtt": {"listen": "0.0.0.0:1883"}, "amqp": {"listen": ":5672"}})
    assert opened.mqtt.listen.host == opened.amqp.listen.host == "0.0.0.0" and opened.coap.listen.host == "localhost"


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()


def test_default_listeners_are_the_five_plain_ones() -> None:
    assert list(Config().enabled_listeners()) == ["mqtt", "ws", "amqp", "coap", "http"]


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().mqtt.enabled = False  # type: ignore[misc]


def test_the_example_file_documents_the_defaults() -> None:
    config = load_config(EXAMPLE)
    assert config.store.path == str(EXAMPLE.parent / "rosettamq.db")
    assert dataclasses.replace(config, store=StoreConfig()) == Config()


# --- a full file ---------------------------------------------------------------


def test_a_full_file_sets_every_section(tmp_path: Path) -> None:
    touch(tmp_path, "server.pem", "server.key", "ca.pem", "passwd", "acl")
    path = write(tmp_path, """
        [mqtt]
        listen = "127.0.0.1:11883"
        max_packet_size = 65536
        max_inflight = 5
        max_queued_messages = 10
        max_keepalive = 600
        retain_available = false
        max_qos = 1
        session_expiry_max = 3600
        topic_alias_maximum = 0
        max_queued_bytes = 1000000
        overflow = "disconnect"
        [limits]
        max_memory = 5000000
        max_message_size = 100000
        [ws]
        listen = ":18083"
        path = "/ws"
        [amqp]
        listen = "15672"
        [coap]
        enabled = false
        [http]
        listen = "localhost:0"
        [mqtt_tls]
        listen = "[::]:18883"
        certfile = "server.pem"
        keyfile = "server.key"
        cafile = "ca.pem"
        require_client_cert = true
        [wss]
        certfile = "server.pem"
        path = "/secure"
        [amqps]
        certfile = "server.pem"
        enabled = false
        [store]
        path = "data/gw.db"
        [auth]
        password_file = "passwd"
        acl_file = "acl"
        [log]
        level = "DEBUG"
        format = "json"
    """)
    config = load_config(path)
    assert config.mqtt.listen == ListenAddress("127.0.0.1", 11883)
    assert config.mqtt_limits == MQTTLimits(65536, 5, 10, 600, False, 1, 3600, 0,
                                            max_queued_bytes=1_000_000, overflow="disconnect")
    assert config.limits == LimitsConfig(max_memory=5_000_000, max_message_size=100_000)
    assert config.ws == WSListenerConfig(True, ListenAddress("0.0.0.0", 18083), "/ws")
    assert config.amqp.listen == ListenAddress("0.0.0.0", 15672)
    assert not config.coap.enabled
    assert config.http.listen == ListenAddress("localhost", 0)
    assert config.mqtt_tls == TLSListenerConfig(
        True, ListenAddress("::", 18883), str(tmp_path / "server.pem"),
        str(tmp_path / "server.key"), str(tmp_path / "ca.pem"), True,
    )
    assert config.wss == WSSListenerConfig(
        True, ListenAddress("localhost", 8084), str(tmp_path / "server.pem"), path="/secure",
    )
    assert not config.amqps.enabled
    assert config.store.path == str(tmp_path / "data" / "gw.db")
    assert config.auth == AuthConfig(str(tmp_path / "passwd"), str(tmp_path / "acl"), False)
    assert config.log == LogConfig("debug", "json")
    assert list(config.enabled_listeners()) == ["mqtt", "ws", "amqp", "http", "mqtt_tls", "wss"]


def test_absolute_paths_are_kept_as_written(tmp_path: Path) -> None:
    touch(tmp_path, "passwd")
    config = config_from_dict({"auth": {"password_file": str(tmp_path / "passwd")}},
                              base_dir="/elsewhere")
    assert config.auth.password_file == str(tmp_path / "passwd")


# --- listen addresses ------------------------------------------------------------


@pytest.mark.parametrize(("text", "host", "port"), [
    ("127.0.0.1:1883", "127.0.0.1", 1883),
    ("localhost:1883", "localhost", 1883),
    ("[::1]:1883", "::1", 1883),
    ("[::]:0", "::", 0),
    (":1883", "0.0.0.0", 1883),
    ("1883", "0.0.0.0", 1883),
    ("0", "0.0.0.0", 0),
    ("0.0.0.0:65535", "0.0.0.0", 65535),
])
def test_listen_accepts_each_documented_form(text: str, host: str, port: int) -> None:
    assert parse_listen(text) == ListenAddress(host, port)


@pytest.mark.parametrize("text", [
    "", "host", "host:", "::1:1883", "[::1]", "[::1]1883", "[nope]:1883",
    "1.2.3.999:1883", "host:65536", "host:-1", "host:http", "bad host:1883",
])
def test_listen_rejects_malformed_addresses(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^mqtt\.listen: "):
        parse_listen(text, "mqtt.listen")


def test_port_zero_asks_the_os_for_a_port(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[mqtt]\nlisten = "127.0.0.1:0"\n'))
    assert config.mqtt.listen == ListenAddress("127.0.0.1", 0)


def test_an_ipv6_listen_address_keeps_its_brackets_when_printed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[amqp]\nlisten = "[::1]:5673"\n'))
    assert config.amqp.listen == ListenAddress("::1", 5673)
    assert str(config.amqp.listen) == "[::1]:5673"
    assert str(config.http.listen) == "localhost:8080"


def test_a_bad_listen_in_a_file_names_its_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"coap\.listen: .*'5683:udp'"):
        load_config(write(tmp_path, '[coap]\nlisten = "5683:udp"\n'))


def test_enabled_false_turns_a_listener_off(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[ws]\nenabled = false\n[amqp]\nenabled = false\n"))
    assert not config.ws.enabled and not config.amqp.enabled
    assert config.ws.listen == ListenAddress("localhost", 8083)
    assert list(config.enabled_listeners()) == ["mqtt", "coap", "http"]


def test_a_websocket_path_must_start_with_a_slash() -> None:
    with pytest.raises(ConfigError, match=r'ws\.path: must start with "/"'):
        config_from_dict({"ws": {"path": "mqtt"}})


def test_websocket_listeners_default_to_any_origin_no_proxy_and_20_second_pings() -> None:
    for section in (Config().ws, Config().wss):
        assert section.allowed_origins == ()
        assert section.trust_proxy is False
        assert section.ping_interval == 20


def test_websocket_origin_proxy_and_ping_keys_are_read_for_ws_and_wss(tmp_path: Path) -> None:
    touch(tmp_path, "server.pem")
    keys = {"allowed_origins": ["https://app.example.com", "http://127.0.0.1:8080"],
            "trust_proxy": True, "ping_interval": 0}
    config = config_from_dict({"ws": dict(keys), "wss": {"certfile": "server.pem", **keys}}, base_dir=tmp_path)
    for section in (config.ws, config.wss):
        assert section.allowed_origins == ("https://app.example.com", "http://127.0.0.1:8080")
        assert section.trust_proxy is True
        assert section.ping_interval == 0


@pytest.mark.parametrize("origin", ["example.com", "https://example.com/", "https://example.com/app", "", 8080])
def test_an_allowed_origin_must_be_scheme_and_host_only(origin: object) -> None:
    with pytest.raises(ConfigError, match=r"ws\.allowed_origins: expected origins like"):
        config_from_dict({"ws": {"allowed_origins": [origin]}})


def test_allowed_origins_must_be_an_array() -> None:
    with pytest.raises(ConfigError, match=r"wss\.allowed_origins: expected array, got string"):
        config_from_dict({"wss": {"allowed_origins": "https://example.com"}})


def test_a_negative_ping_interval_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"ws\.ping_interval: must be from 0 to 86400, got -1"):
        config_from_dict({"ws": {"ping_interval": -1}})


# --- TLS ---------------------------------------------------------------------------


def test_a_tls_listener_is_off_without_a_certfile() -> None:
    config = config_from_dict({"mqtt_tls": {"listen": ":8883"}, "wss": {"path": "/x"}})
    assert not config.mqtt_tls.enabled and not config.wss.enabled


def test_a_certfile_alone_enables_a_tls_listener(tmp_path: Path) -> None:
    touch(tmp_path, "combined.pem")
    config = load_config(write(tmp_path, '[amqps]\ncertfile = "combined.pem"\n'))
    assert config.amqps.enabled
    assert config.amqps.certfile == str(tmp_path / "combined.pem")
    assert config.amqps.keyfile is None and config.amqps.cafile is None


def test_enabled_false_wins_over_a_certfile_and_skips_the_file_check(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[wss]\nenabled = false\ncertfile = "gone.pem"\n'))
    assert not config.wss.enabled


@pytest.mark.parametrize("key", ["certfile", "keyfile", "cafile"])
def test_a_missing_tls_file_is_an_error_that_names_it(tmp_path: Path, key: str) -> None:
    touch(tmp_path, "server.pem", "server.key", "ca.pem")
    files = {"certfile": "server.pem", "keyfile": "server.key", "cafile": "ca.pem"}
    files[key] = "missing.pem"
    body = "".join(f'{k} = "{v}"\n' for k, v in files.items())
    with pytest.raises(ConfigError, match=rf"mqtt_tls\.{key}: file not found: .*missing\.pem"):
        load_config(write(tmp_path, "[mqtt_tls]\n" + body))


@pytest.mark.parametrize("body", [
    "enabled = true\n", 'keyfile = "server.key"\n', "require_client_cert = true\n",
])
def test_tls_settings_without_a_certfile_are_an_error(tmp_path: Path, body: str) -> None:
    touch(tmp_path, "server.key")
    with pytest.raises(ConfigError, match=r"mqtt_tls\.certfile: required"):
        load_config(write(tmp_path, "[mqtt_tls]\n" + body))


def test_requiring_client_certificates_needs_a_cafile(tmp_path: Path) -> None:
    touch(tmp_path, "server.pem")
    with pytest.raises(ConfigError, match=r"amqps\.require_client_cert: needs amqps\.cafile"):
        load_config(write(tmp_path, '[amqps]\ncertfile = "server.pem"\nrequire_client_cert = true\n'))


def test_a_tls_listener_builds_a_server_ssl_context(tmp_path: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )
    path = write(tmp_path, '[mqtt_tls]\ncertfile = "cert.pem"\nkeyfile = "key.pem"\n'
                           'cafile = "cert.pem"\nrequire_client_cert = true\n')
    ctx = load_config(path).mqtt_tls.ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED


# --- errors ---------------------------------------------------------------------------


def test_an_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, '[mqtt]\nlisen = ":1883"\n'))
    message = str(info.value)
    assert "[mqtt]" in message and "'lisen'" in message and "did you mean 'listen'" in message


def test_an_unknown_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown section: 'mqqt' \(did you mean 'mqtt'\?\)"):
        load_config(write(tmp_path, '[mqqt]\nlisten = ":1883"\n'))


def test_a_top_level_key_is_an_unknown_section() -> None:
    with pytest.raises(ConfigError, match=r"unknown section: 'listen'"):
        config_from_dict({"listen": ":1883"})


def test_a_section_that_is_not_a_table_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"\[store\]: expected a table, got string"):
        config_from_dict({"store": "memory"})


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("mqtt", "max_inflight", '"20"', "integer, got string '20'"),
    ("mqtt", "max_qos", "true", "integer, got boolean True"),
    ("mqtt", "max_packet_size", "1.5", "integer, got float 1.5"),
    ("mqtt", "retain_available", '"yes"', "boolean, got string 'yes'"),
    ("ws", "listen", "8083", "string, got integer 8083"),
    ("auth", "allow_anonymous", "1", "boolean, got integer 1"),
    ("log", "level", "[]", "string, got array []"),
])
def test_a_wrong_type_names_the_key_and_the_expected_type(
    tmp_path: Path, section: str, key: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"[{section}]\n{key} = {value}\n"))
    assert str(info.value) == f"{section}.{key}: expected {expected}"


@pytest.mark.parametrize(("key", "value"), [
    ("max_qos", 3), ("max_inflight", 0), ("max_keepalive", 65536), ("topic_alias_maximum", -1),
])
def test_a_limit_out_of_range_is_an_error(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=rf"mqtt\.{key}: must be from"):
        config_from_dict({"mqtt": {key: value}})


def test_an_unknown_log_level_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"log\.level: must be one of debug, info"):
        config_from_dict({"log": {"level": "verbose"}})


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[mqtt\n"))


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


# --- store and auth ----------------------------------------------------------------------


def test_store_memory_means_no_persistence(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[store]\npath = "memory"\n'))
    assert config.store == StoreConfig("memory") and config.store.is_memory


def test_a_password_file_turns_anonymous_access_off_by_default(tmp_path: Path) -> None:
    touch(tmp_path, "passwd")
    assert not load_config(write(tmp_path, '[auth]\npassword_file = "passwd"\n')).auth.allow_anonymous
    both = write(tmp_path, '[auth]\npassword_file = "passwd"\nallow_anonymous = true\n', "b.toml")
    assert load_config(both).auth.allow_anonymous


def test_a_missing_password_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth\.password_file: file not found"):
        load_config(write(tmp_path, '[auth]\npassword_file = "passwd"\n'))


# --- command-line overrides -------------------------------------------------------------------


def test_cli_overrides_replace_only_what_they_name() -> None:
    base = config_from_dict({"ws": {"enabled": False, "path": "/x"}})
    config = apply_cli_overrides(base, mqtt_listen="127.0.0.1:0", ws_listen=ListenAddress("::1", 0),
                                 store_path="memory")
    assert config.mqtt.listen == ListenAddress("127.0.0.1", 0)
    assert config.ws == WSListenerConfig(False, ListenAddress("::1", 0), "/x")
    assert config.store.is_memory
    assert (config.amqp, config.coap, config.http) == (base.amqp, base.coap, base.http)
    assert apply_cli_overrides(base) == base


def test_a_bad_cli_listen_override_names_the_listener() -> None:
    with pytest.raises(ConfigError, match=r"http\.listen: "):
        apply_cli_overrides(Config(), http_listen="nowhere")
