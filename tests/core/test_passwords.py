"""The password file: hash format, verification, parse errors, editing and saving."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest

from core import passwords
from core.passwords import PasswordFile, PasswordFileError, hash_password

FAST = 1000  # iterations for tests: the format and maths are the same as at 100_000


def entry_line(username: str, password: str, iterations: int = FAST, salt: bytes | None = None) -> str:
    return f"{username}:{hash_password(password, iterations=iterations, salt=salt)}"


def test_a_hash_is_pbkdf2_sha256_of_the_password_with_its_salt_and_iterations() -> None:
    salt = b"0123456789abcdef"
    text = hash_password("secret", iterations=FAST, salt=salt)
    empty, scheme, iterations, salt_b64, hash_b64 = text.split("$")
    assert (empty, scheme, iterations) == ("", "pbkdf2-sha256", str(FAST))
    assert base64.b64decode(salt_b64) == salt
    assert base64.b64decode(hash_b64) == hashlib.pbkdf2_hmac("sha256", b"secret", salt, FAST)


def test_a_new_hash_gets_a_random_16_byte_salt_and_100000_iterations_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, int]] = []
    real = passwords._derive

    def spy(password: bytes, salt: bytes, iterations: int) -> bytes:
        seen.append((salt, iterations))
        return real(password, salt, 1)  # keep the test fast; only the arguments matter here

    monkeypatch.setattr(passwords, "_derive", spy)
    first, second = hash_password("same"), hash_password("same")
    assert first.split("$")[2] == "100000" and [i for _, i in seen] == [100_000, 100_000]
    assert len(seen[0][0]) == 16 and seen[0][0] != seen[1][0]
    assert first != second


def test_verify_accepts_the_right_password_and_refuses_a_wrong_one() -> None:
    users = PasswordFile.parse(entry_line("alice", "wonderland") + "\n")
    assert users.verify("alice", b"wonderland")
    assert not users.verify("alice", b"Wonderland")
    assert not users.verify("alice", b"")


def test_verify_refuses_an_unknown_user_after_hashing_as_much_as_for_a_known_one(monkeypatch: pytest.MonkeyPatch) -> None:
    users = PasswordFile.parse(entry_line("alice", "wonderland", iterations=1234) + "\n")
    costs: list[int] = []
    real = passwords._derive
    monkeypatch.setattr(passwords, "_derive", lambda p, s, i: costs.append(i) or real(p, s, i))
    assert not users.verify("mallory", b"wonderland")
    assert not users.verify("alice", b"guess")
    assert costs == [1234, 1234]


def test_an_unknown_user_is_refused_even_with_the_dummy_entrys_secret() -> None:
    users = PasswordFile.parse("")
    assert len(users) == 0
    assert not users.verify("anyone", b"")


def test_comments_blank_lines_and_surrounding_spaces_are_ignored() -> None:
    text = f"# users\n\n   {entry_line('alice', 'a')}   \n  # bob below\n{entry_line('bob', 'b')}\r\n"
    users = PasswordFile.parse(text)
    assert users.usernames() == ["alice", "bob"]
    assert users.verify("bob", b"b")


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("alice", "expected username:$pbkdf2-sha256$"),
        (":$pbkdf2-sha256$1000$c2FsdA==$" + "A" * 44, "username must not be empty"),
        ("alice:$sha512$1000$c2FsdA==$" + "A" * 44, "unsupported hash scheme 'sha512'"),
        ("alice:$pbkdf2-sha256$0$c2FsdA==$" + "A" * 44, "iterations must be a positive integer"),
        ("alice:$pbkdf2-sha256$many$c2FsdA==$" + "A" * 44, "iterations must be a positive integer"),
        ("alice:$pbkdf2-sha256$1000$!!$" + "A" * 44, "salt is not valid"),
        ("alice:$pbkdf2-sha256$1000$c2FsdA==$c2hvcnQ=", "hash is not 32 bytes"),
        ("alice:$pbkdf2-sha256$1000$c2FsdA==", "expected username:$pbkdf2-sha256$"),
        ("alice:plaintext", "expected username:$pbkdf2-sha256$"),
    ],
)
def test_a_malformed_line_is_reported_with_its_line_number(tmp_path: Path, bad_line: str, message: str) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"# header\n{entry_line('bob', 'b')}\n\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(PasswordFileError) as caught:
        PasswordFile.load(path)
    assert caught.value.lineno == 4
    assert str(caught.value).startswith(f"{path}:4: ")
    assert message in str(caught.value)


def test_a_user_listed_twice_is_an_error_naming_both_lines() -> None:
    text = f"{entry_line('alice', 'a')}\n{entry_line('bob', 'b')}\n{entry_line('alice', 'c')}\n"
    with pytest.raises(PasswordFileError, match=r"<password file>:3: duplicate user 'alice' \(first on line 1\)"):
        PasswordFile.parse(text)


def test_a_file_that_is_not_utf8_is_a_password_file_error(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(b"\xff\xfe:junk\n")
    with pytest.raises(PasswordFileError, match="not UTF-8"):
        PasswordFile.load(path)


def test_set_remove_and_save_round_trip_through_the_file_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    users = PasswordFile()
    users.set("alice", "one", iterations=FAST)
    users.set("bob", "two", iterations=FAST)
    users.set("alice", "three", iterations=FAST)  # a password change keeps alice's place
    users.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = PasswordFile.load(path)
    assert loaded.usernames() == ["alice", "bob"]
    assert loaded.verify("alice", b"three") and not loaded.verify("alice", b"one")
    assert loaded.verify("bob", b"two")
    loaded.remove("alice")
    loaded.save()
    again = PasswordFile.load(path)
    assert again.usernames() == ["bob"] and not again.verify("alice", b"three")
    assert [p.name for p in tmp_path.iterdir()] == ["passwd"]  # no temporary file left behind


def test_saving_keeps_comments_and_the_order_of_users(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    alice, bob = entry_line("alice", "a"), entry_line("bob", "b")
    path.write_text(f"# team A\n{alice}\n\n# team B\n{bob}\n", encoding="utf-8")
    users = PasswordFile.load(path)
    users.set("carol", "c", iterations=FAST)
    users.save()
    assert path.read_text(encoding="utf-8").splitlines()[:5] == ["# team A", alice, "", "# team B", bob]
    assert PasswordFile.load(path).usernames() == ["alice", "bob", "carol"]


def test_saving_over_a_world_readable_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(entry_line("alice", "a") + "\n", encoding="utf-8")
    path.chmod(0o644)
    PasswordFile.load(path).save()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_removing_an_unknown_user_raises_key_error() -> None:
    with pytest.raises(KeyError):
        PasswordFile().remove("nobody")


@pytest.mark.parametrize("name", ["", "a:b", "#admin", " alice", "alice ", "new\nline"])
def test_set_refuses_a_username_the_file_cannot_hold(name: str) -> None:
    with pytest.raises(ValueError):
        PasswordFile().set(name, "pw", iterations=FAST)


def test_scram_credentials_are_the_salt_iterations_and_salted_password() -> None:
    salt = b"fedcba9876543210"
    users = PasswordFile.parse(entry_line("alice", "wonderland", iterations=FAST, salt=salt) + "\n")
    entry = users.scram_credentials("alice")
    assert entry is not None
    assert (entry.salt, entry.iterations) == (salt, FAST)
    assert entry.salted_password == hashlib.pbkdf2_hmac("sha256", b"wonderland", salt, FAST)
    assert users.scram_credentials("nobody") is None


def test_an_unknown_user_pretends_to_have_the_most_common_iteration_count() -> None:
    users = PasswordFile()
    assert users.typical_iterations == passwords.DEFAULT_ITERATIONS
    users.set("a", "x", iterations=FAST)
    users.set("b", "x", iterations=FAST)
    users.set("c", "x", iterations=2000)
    assert users.typical_iterations == FAST
