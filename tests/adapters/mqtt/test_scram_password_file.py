"""SCRAM-SHA-256 keys derived from a password file entry equal those derived from the password."""

from __future__ import annotations

from adapters.mqtt.enhanced_auth import CONTINUE, FAILURE, SUCCESS
from adapters.mqtt.scram import ScramCredentials, ScramSha256
from core.passwords import PasswordFile
from tests.scram_client import ScramClient


def test_keys_from_the_files_salted_password_match_keys_from_the_password() -> None:
    salt = b"0123456789abcdef"
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=1000, salt=salt)
    entry = users.scram_credentials("alice")
    assert entry is not None
    assert ScramCredentials.from_salted_password(*entry) == ScramCredentials.from_password(
        "wonderland", salt=salt, iterations=1000
    )


def test_an_exchange_against_password_file_keys_succeeds_only_with_the_password() -> None:
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=1000)

    def lookup(name: str) -> ScramCredentials | None:
        entry = users.scram_credentials(name)
        return None if entry is None else ScramCredentials.from_salted_password(*entry)

    for password, outcome in (("wonderland", SUCCESS), ("wrong", FAILURE)):
        client, method = ScramClient("alice", password), ScramSha256(lookup)
        first = method.start(client.first())
        assert first.status == CONTINUE and first.data is not None
        final = method.step(client.final(first.data))
        assert final.status == outcome
        if outcome == SUCCESS:
            assert final.data == client.expected_server_final.encode()


def test_an_unknown_user_is_shown_the_iteration_count_it_is_given() -> None:
    method = ScramSha256(lambda name: None, fake_iterations=1234)
    first = method.start(ScramClient("mallory", "x").first())
    assert first.status == CONTINUE and first.data is not None
    assert b",i=1234" in first.data
