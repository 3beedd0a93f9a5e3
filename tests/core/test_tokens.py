"""Bearer token files: only hashes are kept, tokens map to users, bad lines are named."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from core.tokens import TokenFile, TokenFileError, token_hash


def test_a_new_token_maps_to_its_user_and_only_its_hash_is_written(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    tokens = TokenFile.load(path)
    token = tokens.add("alice")
    tokens.save()
    text = path.read_text()
    assert token not in text and f"alice:{token_hash(token)}" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reloaded = TokenFile.load(path)
    assert reloaded.user_for(token) == "alice"
    assert reloaded.user_for(token + "x") is None


def test_two_tokens_of_one_user_both_work(tmp_path: Path) -> None:
    tokens = TokenFile.load(tmp_path / "tokens")
    first, second = tokens.add("bob"), tokens.add("bob")
    assert first != second
    assert tokens.user_for(first) == tokens.user_for(second) == "bob"


def test_a_malformed_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# tokens\nalice:" + "0" * 64 + "\nbob:not-a-hash\n")
    with pytest.raises(TokenFileError, match=r"tokens:3:"):
        TokenFile.load(path)


def test_a_username_with_a_colon_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError):
        TokenFile.load(tmp_path / "tokens").add("a:b")
