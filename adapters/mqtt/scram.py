"""SCRAM-SHA-256 (RFC 5802, RFC 7677) as an MQTT 5 enhanced-authentication method.

The server keeps only the derived keys of a password (`ScramCredentials`): salt,
iteration count, StoredKey and ServerKey. One `ScramSha256` object runs one
exchange: `start` takes the client-first message (from CONNECT) and answers
with the server-first message; `step` takes the client-final message and
answers success with the server-final message (`v=ServerSignature`) or failure.

Channel binding is not supported (GS2 flag "p=" fails; "n" and "y" are
accepted), nor is an authorization identity. An unknown user still receives a
plausible server-first message, with a salt derived from the username under a
per-process secret, so user names cannot be enumerated; it fails at the proof.
Malformed input always yields failure, never an exception. No I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Callable

from adapters.mqtt.enhanced_auth import CONTINUE, FAILURE, SUCCESS, AuthStep

DEFAULT_ITERATIONS = 4096
SALT_LENGTH = 16
_FAKE_SECRET = secrets.token_bytes(32)  # per process: fake salts are stable but unguessable
_FAILED = AuthStep(FAILURE)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What the server stores for one user: never the password itself."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: str, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS) -> ScramCredentials:
        """Derive the stored keys from a password (a random 16-byte salt unless one is given)."""
        if iterations < 1:
            raise ValueError("iterations must be at least 1")
        salt = secrets.token_bytes(SALT_LENGTH) if salt is None else salt
        if not salt:
            raise ValueError("salt must not be empty")
        salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
        return cls.from_salted_password(salt, iterations, salted)

    @classmethod
    def from_salted_password(cls, salt: bytes, iterations: int, salted_password: bytes) -> ScramCredentials:
        """Derive the stored keys from SaltedPassword (what a PBKDF2-SHA256 password file holds)."""
        client_key = _hmac(salted_password, b"Client Key")
        return cls(salt, iterations, hashlib.sha256(client_key).digest(), _hmac(salted_password, b"Server Key"))


def _fake_credentials(username: str, iterations: int = DEFAULT_ITERATIONS) -> ScramCredentials:
    """Deterministic stand-in for an unknown user, indistinguishable on the wire."""
    digest = _hmac(_FAKE_SECRET, b"scram-fake\x00" + username.encode("utf-8"))
    return ScramCredentials(digest[:SALT_LENGTH], iterations, _hmac(digest, b"stored"), _hmac(digest, b"server"))


def _valid_nonce(nonce: str) -> bool:
    """RFC 5802 `printable`: %x21-2B / %x2D-7E (visible ASCII except ',')."""
    return bool(nonce) and all("\x21" <= ch <= "\x7e" and ch != "," for ch in nonce)


def _decode_saslname(value: str) -> str | None:
    """Undo the =2C / =3D escaping; any other '=' is invalid."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] != "=":
            out.append(value[i])
            i += 1
        elif value[i + 1 : i + 3] == "2C":
            out.append(",")
            i += 3
        elif value[i + 1 : i + 3] == "3D":
            out.append("=")
            i += 3
        else:
            return None
    return "".join(out) or None


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


class ScramSha256:
    """One SCRAM-SHA-256 exchange (server side); a fresh object per exchange."""

    def __init__(
        self,
        lookup: Callable[[str], ScramCredentials | None],
        nonce_factory: Callable[[], str] = lambda: secrets.token_urlsafe(18),
        fake_iterations: int = DEFAULT_ITERATIONS,
    ) -> None:
        self._lookup = lookup
        self._fake_iterations = fake_iterations  # match the real users' count, or it gives them away
        self._nonce_factory = nonce_factory
        self._state = "new"  # new -> started -> done
        self._username = ""
        self._credentials: ScramCredentials | None = None
        self._known = False
        self._gs2_header = ""
        self._nonce = ""
        self._client_first_bare = ""
        self._server_first = ""

    def start(self, data: bytes | None) -> AuthStep:
        """Client-first message in; server-first message out (continue), or failure."""
        if self._state != "new":
            return self._fail()
        self._state = "started"
        try:
            return self._start(data)
        except Exception:  # a lookup or nonce factory failure must not escape either
            return self._fail()

    def step(self, data: bytes | None) -> AuthStep:
        """Client-final message in; success with the server-final message, or failure."""
        if self._state != "started":
            return self._fail()
        self._state = "done"
        try:
            return self._finish(data)
        except Exception:
            return self._fail()

    def _fail(self) -> AuthStep:
        self._state = "done"
        return _FAILED

    def _start(self, data: bytes | None) -> AuthStep:
        if not data:
            return self._fail()
        message = data.decode("utf-8")  # UnicodeDecodeError -> failure
        parts = message.split(",", 2)
        if len(parts) != 3 or parts[0] not in ("n", "y") or parts[1] != "":
            return self._fail()  # "p=" (channel binding), authzid, or garbage
        self._gs2_header = parts[0] + ",,"
        bare = parts[2]
        attributes = bare.split(",")
        if len(attributes) < 2 or attributes[0][:2] != "n=" or attributes[1][:2] != "r=":
            return self._fail()  # also rejects the reserved "m=" extension
        username = _decode_saslname(attributes[0][2:])
        client_nonce = attributes[1][2:]
        server_nonce = self._nonce_factory()
        if username is None or not _valid_nonce(client_nonce) or not _valid_nonce(server_nonce):
            return self._fail()
        credentials = self._lookup(username)
        self._known = credentials is not None
        self._credentials = credentials if credentials is not None else _fake_credentials(username, self._fake_iterations)
        self._username = username
        self._nonce = client_nonce + server_nonce
        self._client_first_bare = bare
        salt = base64.b64encode(self._credentials.salt).decode("ascii")
        self._server_first = f"r={self._nonce},s={salt},i={self._credentials.iterations}"
        return AuthStep(CONTINUE, self._server_first.encode("ascii"))

    def _finish(self, data: bytes | None) -> AuthStep:
        credentials = self._credentials
        if not data or credentials is None:
            return self._fail()
        message = data.decode("utf-8")
        without_proof, sep, proof_b64 = message.rpartition(",p=")
        attributes = without_proof.split(",")
        if not sep or len(attributes) < 2 or "," in proof_b64:
            return self._fail()
        if attributes[0][:2] != "c=" or _b64decode(attributes[0][2:]) != self._gs2_header.encode("ascii"):
            return self._fail()
        if not hmac.compare_digest(attributes[1].encode("utf-8"), f"r={self._nonce}".encode("utf-8")):
            return self._fail()
        proof = _b64decode(proof_b64)
        if proof is None or len(proof) != hashlib.sha256().digest_size:
            return self._fail()
        auth_message = ",".join((self._client_first_bare, self._server_first, without_proof)).encode("utf-8")
        client_signature = _hmac(credentials.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature))
        matches = hmac.compare_digest(hashlib.sha256(client_key).digest(), credentials.stored_key)
        if not (matches and self._known):
            return self._fail()
        server_signature = _hmac(credentials.server_key, auth_message)
        return AuthStep(SUCCESS, b"v=" + base64.b64encode(server_signature), self._username)


def scram_method_factory(
    lookup: Callable[[str], ScramCredentials | None],
    fake_iterations: Callable[[], int] = lambda: DEFAULT_ITERATIONS,
) -> Callable[[], ScramSha256]:
    """A zero-argument factory for `MQTTSettings.auth_methods["SCRAM-SHA-256"]`.

    `fake_iterations` gives the iteration count unknown users are shown (read
    per exchange, so it can follow a reloaded password file).
    """
    return lambda: ScramSha256(lookup, fake_iterations=fake_iterations())
