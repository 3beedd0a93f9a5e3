"""SCRAM-SHA-256 enhanced authentication: RFC 7677 vector, full exchanges and hostile input."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Callable

import pytest

from adapters.mqtt.enhanced_auth import CONTINUE, FAILURE, SUCCESS
from adapters.mqtt.scram import ScramCredentials, ScramSha256, scram_method_factory

# RFC 7677 section 3
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = f"r={RFC_CLIENT_NONCE}{RFC_SERVER_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = (
    f"c=biws,r={RFC_CLIENT_NONCE}{RFC_SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


class ScramClient:
    """A minimal client side of RFC 5802, independent of the server code."""

    def __init__(self, username: str, password: str, nonce: str = "fyko+d2lbbFgONRv9qkxdawL", gs2: str = "n,,") -> None:
        self.password, self.nonce, self.gs2 = password, nonce, gs2
        name = username.replace("=", "=3D").replace(",", "=2C")
        self.first_bare = f"n={name},r={nonce}"

    def first(self) -> bytes:
        return (self.gs2 + self.first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        fields = dict(item.split("=", 1) for item in server_first.decode().split(","))
        assert fields["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c={base64.b64encode(self.gs2.encode()).decode()},r={fields['r']}"
        self.auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def expected_server_final(self) -> bytes:
        return b"v=" + base64.b64encode(hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest())


USERS = {"alice": ScramCredentials.from_password("wonderland", iterations=1024)}


def server(users: dict[str, ScramCredentials] = USERS) -> ScramSha256:
    return ScramSha256(users.get)


def rfc_server() -> ScramSha256:
    creds = ScramCredentials.from_password("pencil", salt=RFC_SALT, iterations=4096)
    return ScramSha256({"user": creds}.get, nonce_factory=lambda: RFC_SERVER_NONCE)


def test_the_rfc_7677_exchange_produces_the_published_messages() -> None:
    method = rfc_server()
    first = method.start(f"n,,n=user,r={RFC_CLIENT_NONCE}".encode())
    assert first.status == CONTINUE and first.data == RFC_SERVER_FIRST.encode()
    final = method.step(RFC_CLIENT_FINAL.encode())
    assert final.status == SUCCESS
    assert final.data == RFC_SERVER_FINAL.encode()
    assert final.username == "user"


def test_the_independent_client_computes_the_rfc_7677_proof() -> None:
    client = ScramClient("user", "pencil", nonce=RFC_CLIENT_NONCE)
    assert client.final(RFC_SERVER_FIRST.encode()) == RFC_CLIENT_FINAL.encode()
    assert client.expected_server_final() == RFC_SERVER_FINAL.encode()


def test_a_client_with_the_right_password_succeeds_and_verifies_the_server_signature() -> None:
    client, method = ScramClient("alice", "wonderland"), server()
    first = method.start(client.first())
    assert first.status == CONTINUE and first.data is not None
    final = method.step(client.final(first.data))
    assert final.status == SUCCESS and final.username == "alice"
    assert final.data == client.expected_server_final()


def test_the_y_gs2_flag_is_accepted_and_its_header_is_checked_in_the_final_message() -> None:
    client, method = ScramClient("alice", "wonderland", gs2="y,,"), server()
    first = method.start(client.first())
    assert first.data is not None
    assert method.step(client.final(first.data)).status == SUCCESS


def test_the_factory_makes_a_fresh_exchange_each_time() -> None:
    factory = scram_method_factory(USERS.get)
    one, two = factory(), factory()
    assert one is not two
    client = ScramClient("alice", "wonderland")
    first = one.start(client.first())
    assert first.data is not None and one.step(client.final(first.data)).status == SUCCESS


def test_server_nonces_are_fresh_and_contain_no_commas() -> None:
    firsts = [server().start(ScramClient("alice", "x", nonce="cn").first()).data for _ in range(5)]
    nonces = {first.split(b",s=")[0] for first in firsts if first is not None}
    assert len(nonces) == 5
    assert all(nonce.startswith(b"r=cn") and len(nonce) > 20 and b"," not in nonce for nonce in nonces)


def test_a_wrong_password_fails() -> None:
    client, method = ScramClient("alice", "looking-glass"), server()
    first = method.start(client.first())
    assert first.data is not None
    assert method.step(client.final(first.data)).status == FAILURE


def test_an_unknown_user_gets_a_normal_looking_server_first_and_then_fails() -> None:
    client, method = ScramClient("mallory", "guess"), server()
    first = method.start(client.first())
    assert first.status == CONTINUE and first.data is not None
    fields = dict(item.split("=", 1) for item in first.data.decode().split(","))
    assert set(fields) == {"r", "s", "i"}
    assert len(base64.b64decode(fields["s"])) == len(USERS["alice"].salt) and fields["i"] == "4096"
    again = server().start(ScramClient("mallory", "other").first())
    assert again.data is not None and again.data.split(b",")[1:] == first.data.split(b",")[1:]
    assert method.step(client.final(first.data)).status == FAILURE


def test_an_unknown_user_fails_even_with_a_proof_made_for_the_fake_salt() -> None:
    method = server({})
    client = ScramClient("alice", "wonderland")
    first = method.start(client.first())
    assert first.data is not None
    assert method.step(client.final(first.data)).status == FAILURE


def test_escaped_usernames_are_decoded() -> None:
    users = {"a,b=c": ScramCredentials.from_password("pw", iterations=64)}
    client, method = ScramClient("a,b=c", "pw"), server(users)
    first = method.start(client.first())
    assert first.data is not None
    assert method.step(client.final(first.data)).username == "a,b=c"


@pytest.mark.parametrize(
    "client_first",
    [
        None,
        b"",
        b"n,,r=abc",  # no n=
        b"n,,n=alice",  # no nonce
        b"n,,n=alice,r=",  # empty nonce
        b"p=tls-unique,,n=alice,r=abc",  # channel binding
        b"x,,n=alice,r=abc",  # bad GS2 flag
        b"n,a=admin,n=alice,r=abc",  # authorization identity
        b"n=alice,r=abc",  # no GS2 header
        b"n,,n=al=41ice,r=abc",  # bad saslname escape
        b"n,,n=alice=,r=abc",  # truncated escape
        b"n,,n=,r=abc",  # empty username
        b"n,,m=ext,n=alice,r=abc",  # mandatory extension
        b"n,,n=alice,r=a\x7fb",  # unprintable nonce
        b"n,,n=\xff\xfe,r=abc",  # not UTF-8
    ],
)
def test_a_malformed_client_first_message_fails_without_raising(client_first: bytes | None) -> None:
    method = server()
    assert method.start(client_first).status == FAILURE
    assert method.step(b"c=biws,r=abc,p=AAAA").status == FAILURE


def completed_first(client: ScramClient, method: ScramSha256) -> tuple[bytes, str]:
    first = method.start(client.first())
    assert first.data is not None
    return client.final(first.data), first.data.decode().split(",")[0][2:]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda final, nonce: final.replace(nonce.encode(), nonce.encode() + b"x"),  # tampered nonce
        lambda final, nonce: final.replace(nonce.encode(), nonce[:-1].encode()),  # truncated nonce
        lambda final, nonce: final.replace(b"c=biws", b"c=eSws"),  # header not the one sent
        lambda final, nonce: final.replace(b"c=biws", b"c=!!!"),  # bad base64 binding
        lambda final, nonce: final.split(b",p=")[0] + b",p=not*base64",  # bad base64 proof
        lambda final, nonce: final.split(b",p=")[0] + b",p=AAAA",  # proof of wrong length
        lambda final, nonce: final.split(b",p=")[0],  # no proof
        lambda final, nonce: b"r=" + nonce.encode() + b",p=AAAA",  # no channel binding
        lambda final, nonce: b"\xff" + final,  # not UTF-8
        lambda final, nonce: b"",
        lambda final, nonce: None,
    ],
)
def test_a_malformed_or_tampered_client_final_message_fails_without_raising(
    tamper: Callable[[bytes, str], bytes | None],
) -> None:
    method = server()
    final, nonce = completed_first(ScramClient("alice", "wonderland"), method)
    assert method.step(tamper(final, nonce)).status == FAILURE


def test_a_step_before_start_fails() -> None:
    assert server().step(b"c=biws,r=abc,p=AAAA").status == FAILURE


def test_a_second_step_after_success_or_failure_fails() -> None:
    client, method = ScramClient("alice", "wonderland"), server()
    final, _ = completed_first(client, method)
    assert method.step(final).status == SUCCESS
    assert method.step(final).status == FAILURE
    bad, method = ScramClient("alice", "nope"), server()
    final, _ = completed_first(bad, method)
    assert method.step(final).status == FAILURE
    assert method.step(final).status == FAILURE


def test_a_second_start_on_the_same_exchange_fails() -> None:
    method = server()
    assert method.start(ScramClient("alice", "x").first()).status == CONTINUE
    assert method.start(ScramClient("alice", "x").first()).status == FAILURE


def test_a_lookup_that_raises_gives_failure_not_an_exception() -> None:
    def broken(username: str) -> ScramCredentials | None:
        raise RuntimeError("store down")

    assert ScramSha256(broken).start(ScramClient("alice", "x").first()).status == FAILURE


def test_credentials_keep_only_derived_keys() -> None:
    creds = ScramCredentials.from_password("pencil", salt=RFC_SALT)
    assert creds.iterations == 4096 and creds.salt == RFC_SALT
    assert len(creds.stored_key) == len(creds.server_key) == 32
    assert "pencil" not in repr(creds)
    assert len(ScramCredentials.from_password("pencil").salt) == 16
    with pytest.raises(ValueError):
        ScramCredentials.from_password("pencil", iterations=0)
