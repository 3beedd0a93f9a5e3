"""PasswordAuthenticator: the one login rule every protocol uses, and its reload."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.auth import AllowAnonymous, Credentials, DenyAll, PasswordAuthenticator
from core.passwords import PasswordFile

FAST = 1000


def login(username: str | None, password: bytes | None, protocol: str = "mqtt") -> Credentials:
    return Credentials(protocol, "client-1", username, password, "127.0.0.1:5000")


@pytest.fixture
def password_path(tmp_path: Path) -> Path:
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=FAST)
    path = tmp_path / "passwd"
    users.save(path)
    return path


def test_a_user_with_the_right_password_is_accepted_on_any_protocol(password_path: Path) -> None:
    auth = PasswordAuthenticator(password_path, allow_anonymous=False)
    assert all(auth.authenticate(login("alice", b"wonderland", protocol)) for protocol in ("mqtt", "amqp", "coap"))


def test_a_wrong_password_an_unknown_user_or_a_missing_password_is_refused(password_path: Path) -> None:
    auth = PasswordAuthenticator(password_path, allow_anonymous=True)
    assert not auth.authenticate(login("alice", b"looking-glass"))
    assert not auth.authenticate(login("mallory", b"wonderland"))
    assert not auth.authenticate(login("alice", None))


def test_a_client_without_a_username_gets_in_only_when_anonymous_access_is_allowed(password_path: Path) -> None:
    assert PasswordAuthenticator(password_path, allow_anonymous=True).authenticate(login(None, None))
    assert not PasswordAuthenticator(password_path, allow_anonymous=False).authenticate(login(None, None))
    assert not PasswordAuthenticator(password_path, allow_anonymous=False).authenticate(login(None, b"wonderland"))


def test_an_already_loaded_password_file_can_be_passed_in(password_path: Path) -> None:
    auth = PasswordAuthenticator(PasswordFile.load(password_path), allow_anonymous=False)
    assert auth.authenticate(login("alice", b"wonderland"))
    assert auth.path == password_path


def test_reload_picks_up_added_changed_and_removed_users(password_path: Path) -> None:
    auth = PasswordAuthenticator(password_path, allow_anonymous=False)
    users = PasswordFile.load(password_path)
    users.set("bob", "builder", iterations=FAST)
    users.remove("alice")
    users.save()
    assert auth.authenticate(login("alice", b"wonderland"))  # nothing changes before reload
    assert auth.reload() is True
    assert auth.authenticate(login("bob", b"builder"))
    assert not auth.authenticate(login("alice", b"wonderland"))


def test_a_broken_file_on_reload_keeps_the_old_users_and_logs_an_error(
    password_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auth = PasswordAuthenticator(password_path, allow_anonymous=False)
    password_path.write_text(password_path.read_text() + "bob:not-a-hash\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="rosettamq.auth"):
        assert auth.reload() is False
    assert auth.authenticate(login("alice", b"wonderland"))
    assert not auth.authenticate(login("bob", b"not-a-hash"))
    assert any(":2: " in r.getMessage() and "keeping 1 users" in r.getMessage() for r in caplog.records)


def test_a_missing_file_on_reload_keeps_the_old_users(password_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    auth = PasswordAuthenticator(password_path, allow_anonymous=False)
    password_path.unlink()
    with caplog.at_level(logging.ERROR, logger="rosettamq.auth"):
        assert auth.reload() is False
    assert auth.authenticate(login("alice", b"wonderland"))
    assert caplog.records


def test_allow_anonymous_accepts_and_deny_all_refuses_everyone() -> None:
    assert AllowAnonymous().authenticate(login(None, None))
    assert not DenyAll().authenticate(login(None, None))
    assert not DenyAll().authenticate(login("alice", b"wonderland"))


def test_a_verified_login_is_answered_quickly_next_time_and_a_failed_one_never_is(password_path: Path) -> None:
    auth = PasswordAuthenticator(password_path, allow_anonymous=False)
    assert auth.quick_check(login("alice", b"wonderland")) is None  # needs PBKDF2 the first time
    assert auth.authenticate(login("alice", b"wonderland"))
    assert auth.quick_check(login("alice", b"wonderland")) is True
    assert not auth.authenticate(login("alice", b"wrong"))
    assert auth.quick_check(login("alice", b"wrong")) is None


def test_remembered_logins_are_keyed_by_a_keyed_hash_never_the_password(password_path: Path) -> None:
    auth = PasswordAuthenticator(password_path, allow_anonymous=False)
    auth.authenticate(login("alice", b"wonderland"))
    (key,) = auth._verified
    assert b"wonderland" not in key and len(key) == 32
    other = PasswordAuthenticator(password_path, allow_anonymous=False)
    other.authenticate(login("alice", b"wonderland"))
    assert set(other._verified) != {key}  # a per-process secret: the key reveals nothing portable


def test_a_reload_forgets_remembered_logins_so_a_changed_password_stops_working(password_path: Path) -> None:
    auth = PasswordAuthenticator(password_path, allow_anonymous=False)
    assert auth.authenticate(login("alice", b"wonderland"))
    users = PasswordFile.load(password_path)
    users.set("alice", "looking-glass", iterations=FAST)
    users.save(password_path)
    assert auth.reload()
    assert auth.quick_check(login("alice", b"wonderland")) is None
    assert not auth.authenticate(login("alice", b"wonderland"))


def test_quick_answer_decides_at_once_for_cheap_authenticators_and_defers_pbkdf2(password_path: Path) -> None:
    from core.auth import quick_answer

    assert quick_answer(AllowAnonymous(), login("x", b"y")) is True
    assert quick_answer(DenyAll(), login("x", b"y")) is False
    auth = PasswordAuthenticator(password_path, allow_anonymous=True)
    assert quick_answer(auth, login(None, None)) is True
    assert quick_answer(auth, login("alice", None)) is False
    assert quick_answer(auth, login("alice", b"wonderland")) is None
