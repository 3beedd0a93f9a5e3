"""The README's quick starts, run as written (tests/e2e/readme_support.py: only the ports change).

Each test follows one section in a fresh scratch clone; a section that starts no gateway of its own
is run against one started as "Start it" says (`bash scripts/start.sh`). The virtualenv must hold
the examples extra already (scripts/test.sh installs it), so the start command installs nothing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.clients import PahoClient
from tests.e2e.readme_support import README, ROOT, QuickStart, sh_blocks

# Sections with shell blocks the tests do not run, and why.
NOT_RUN = {"Run the tests": "it runs this suite", "Robustness": "tests/e2e/test_fuzz_listeners.py runs the fuzz harness"}
RUN = ("Start it", "Live dashboard", "AMQP 0-9-1", "CoAP quick start", "LwM2M quick start", "TLS quick start")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[QuickStart]:
    venv_stamp = ROOT / ".venv" / ".rosettamq-installed-examples"
    want = subprocess.run(["bash", "-c", 'cat pyproject.toml; .venv/bin/python -V 2>&1'], cwd=ROOT,
                          capture_output=True, text=True).stdout.rstrip("\n")
    if not venv_stamp.exists() or venv_stamp.read_text() != want:
        pytest.fail("the venv lacks the current examples extra: run bash scripts/test.sh (it installs it) first; "
                    "start.sh would otherwise pip-install from the scratch clone")
    quick = QuickStart(tmp_path)
    try:
        yield quick
    finally:
        quick.close()


def test_every_shell_block_of_the_readme_is_run_here_or_excused() -> None:
    headings = []
    heading = ""
    for line in README.read_text().splitlines():
        if re.match(r"#+ ", line):
            heading = line.lstrip("#").strip()
        elif line.strip() == "```sh":
            headings.append(heading)
    assert headings and all(any(h.startswith(t) for t in RUN + tuple(NOT_RUN)) for h in headings), headings


def test_start_it(session: QuickStart) -> None:
    first, options, try_it = sh_blocks("Start it")
    for command in first.splitlines():
        session.run(command)
    assert "local only" in session.gateway.wait_for("local only")  # type: ignore[union-attr]
    for command in options.splitlines():  # each alternative start replaces the previous gateway
        session.run(command.split("  #")[0])
        banner = session.gateway.wait_for("metrics")  # type: ignore[union-attr]
        if "--config" in command:
            assert "config     " + str(session.cwd / "examples" / "rosettamq.toml") in banner
    assert '"mqtt"' in (session.cwd / "ports.json").read_text()  # the README's own --ports-file
    for command in try_it.splitlines():
        session.run(command)
    session.output("mosquitto_sub").wait_for("sensors/t1 21.5")
    assert '"ready": true' in session.printed("curl")


def test_live_dashboard(session: QuickStart) -> None:
    session.run_blocks("Live dashboard")
    session.output("sensor_simulator.py").wait_for("connected to")
    watcher = PahoClient(session.ports["mqtt"]).connect()
    try:
        watcher.subscribe("sensors/#")
        assert watcher.inbox.until_topic("sensors/t1/temperature")
    finally:
        watcher.close()
    assert session.api("/dashboard/config.json")["ws"]["path"] == "/mqtt"


def test_amqp_consumer(session: QuickStart) -> None:
    session.run("bash scripts/start.sh")
    session.run_blocks("AMQP 0-9-1")
    session.output("amqp_consumer.py").wait_for("sensors.hall.temperature: 22.5")


def test_coap(session: QuickStart) -> None:
    session.run("bash scripts/start.sh")
    session.run_blocks("CoAP quick start")
    mqtt = session.output("mosquitto_sub")
    mqtt.wait_for("sensors/t1 21.5")
    mqtt.wait_for('sensors/t1 {"t":21.5}')
    mqtt.wait_for('sensors/kitchen {"t": ')  # the example sensor
    assert session.printed("coap-client-notls coap://127.0.0.1/ps/sensors/t1").strip() == '{"t":21.5}'
    assert "</ps>" in session.printed(".well-known/core")
    session.output("-s 60").wait_for("Location-Path:t1 ] :: '21.5'")  # one line per notification, -v 6


def test_coap_observe_of_sensors_shows_the_example_sensors_whole_readings(session: QuickStart) -> None:
    session.run("bash scripts/start.sh")
    session.run_blocks("CoAP quick start")
    session.output("-s 60").wait_for('Location-Path:kitchen, Content-Format:application/json ] :: \'{"t": ', 5)
    assert "4.00" not in session.output("-s 60").text


def test_lwm2m(session: QuickStart) -> None:
    session.run("bash scripts/start.sh")
    session.run_blocks("LwM2M quick start")
    answers = session.output("mosquitto_sub")
    for req_id, answer in ((1, '"code":"2.05"'), (2, '"code":"2.04"'), (3, '"code":"2.04"'), (5, '"code":"2.05"'),
                           (6, '"code":"2.05"')):
        line = answers.wait_for(f'"reqID":{req_id},').split(f'"reqID":{req_id},')[1].splitlines()[0]
        assert answer in line, line


def test_tls(session: QuickStart) -> None:
    session.run_blocks("TLS quick start")
    assert (session.cwd / "certs" / "ca.pem").exists() and (session.cwd / "tls.toml").exists()
    banner = session.gateway.wait_for("mqtt_tls")  # type: ignore[union-attr]
    assert f"mqtts://127.0.0.1:{session.ports['mqtt_tls']}" in banner
    session.output("mosquitto_sub").wait_for("sensors/t1 21.5")
