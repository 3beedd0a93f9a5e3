"""AMQP logins use the gateway's one authenticator ([auth] password_file), PLAIN and AMQPLAIN alike."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pika
import pytest
from pika.exceptions import ProbableAuthenticationError

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.amqp_support import amqp_config, amqp_port

FAST = 1000  # PBKDF2 iterations: enough for a test


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[RunningGateway]:
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=FAST)
    path = tmp_path / "passwd"
    users.save(path)
    running = RunningGateway(amqp_config(auth={"password_file": str(path)}))
    try:
        yield running
    finally:
        running.stop()


def login(gateway: RunningGateway, user: str, password: str) -> pika.BlockingConnection:
    credentials = pika.PlainCredentials(user, password)
    return pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, amqp_port(gateway), credentials=credentials))


def test_a_user_of_the_password_file_logs_in_over_amqp(secured: RunningGateway) -> None:
    with login(secured, "alice", "wonderland") as conn:
        assert conn.channel().queue_declare("", exclusive=True).method.queue


@pytest.mark.parametrize("user, password", [("alice", "wrong"), ("guest", "guest")])
def test_a_wrong_password_or_unknown_user_is_refused_with_403(secured: RunningGateway, user: str,
                                                              password: str) -> None:
    with pytest.raises(ProbableAuthenticationError) as refused:
        login(secured, user, password)
    assert "ACCESS_REFUSED" in str(refused.value)
