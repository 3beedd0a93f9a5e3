"""`rosettamq passwd FILE USER`: prompts, stdin, deletion and errors, run in-process."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
import pytest

from core.passwords import PasswordFile
from gateway.cli import passwd
from gateway.cli import main

FAST = ["--iterations", "1000"]


class Prompts:
    """Answers getpass gives, in order, and the prompts it showed."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.shown: list[str] = []

    def getpass(self, prompt: str = "") -> str:
        self.shown.append(prompt)
        return self.answers.pop(0)


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> Prompts:
    fake = Prompts()
    monkeypatch.setattr(passwd.getpass, "getpass", fake.getpass)
    return fake


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(passwd.sys, "stdin", io.StringIO(text))


def test_the_password_is_asked_twice_and_the_file_is_created_private(tmp_path: Path, prompts: Prompts) -> None:
    path = tmp_path / "passwd"
    prompts.answers.extend(["wonderland", "wonderland"])
    assert main(["passwd", str(path), "alice", *FAST]) == 0
    assert prompts.shown == ["Password: ", "Reenter password: "]
    assert PasswordFile.load(path).verify("alice", b"wonderland")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_two_different_answers_change_nothing(tmp_path: Path, prompts: Prompts, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "passwd"
    prompts.answers.extend(["wonderland", "wonder1and"])
    assert main(["passwd", str(path), "alice", *FAST]) == 1
    assert "passwords do not match" in capsys.readouterr().err
    assert not path.exists()


def test_password_stdin_reads_one_line_and_changes_an_existing_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "passwd"
    stdin(monkeypatch, "first one\nignored\n")
    assert main(["passwd", str(path), "alice", "--password-stdin", *FAST]) == 0
    stdin(monkeypatch, "second one\r\n")
    assert main(["passwd", str(path), "bob", "--password-stdin", *FAST]) == 0
    stdin(monkeypatch, "changed")
    assert main(["passwd", str(path), "alice", "--password-stdin", *FAST]) == 0
    users = PasswordFile.load(path)
    assert users.usernames() == ["alice", "bob"]
    assert users.verify("alice", b"changed") and users.verify("bob", b"second one")


def test_an_empty_password_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stdin(monkeypatch, "\n")
    assert main(["passwd", str(tmp_path / "passwd"), "alice", "--password-stdin"]) == 1
    assert "empty password" in capsys.readouterr().err


def test_delete_removes_the_user_and_keeps_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "passwd"
    users = PasswordFile()
    users.set("alice", "a", iterations=1000)
    users.set("bob", "b", iterations=1000)
    users.save(path)
    assert main(["passwd", str(path), "alice", "--delete"]) == 0
    assert PasswordFile.load(path).usernames() == ["bob"]


def test_deleting_an_unknown_user_or_from_a_missing_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "passwd"
    assert main(["passwd", str(path), "alice", "--delete"]) == 1
    assert "no such file" in capsys.readouterr().err
    PasswordFile().save(path)
    assert main(["passwd", str(path), "alice", "--delete"]) == 1
    assert "no user 'alice'" in capsys.readouterr().err


def test_a_malformed_file_is_reported_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "passwd"
    path.write_text("# ok\nbroken line\n", encoding="utf-8")
    stdin(monkeypatch, "pw\n")
    assert main(["passwd", str(path), "alice", "--password-stdin"]) == 1
    assert f"{path}:2:" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == "# ok\nbroken line\n"


def test_a_username_with_a_colon_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stdin(monkeypatch, "pw\n")
    assert main(["passwd", str(tmp_path / "passwd"), "a:b", "--password-stdin"]) == 1
    assert "must not contain ':'" in capsys.readouterr().err
