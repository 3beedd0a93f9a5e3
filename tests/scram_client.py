"""The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), written from the RFCs, not from our server.

Use: `first()` is the client-first message (CONNECT's Authentication Data),
`final(server_first)` the client-final message (AUTH 0x18); afterwards
`expected_server_final` holds the `v=...` the server must answer with.
No channel binding (GS2 header "n,,").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


class ScramClient:
    """One client exchange; a random nonce unless one is given."""

    def __init__(self, username: str, password: str, nonce: str | None = None) -> None:
        self.password = password
        self.nonce = nonce or secrets.token_urlsafe(18)
        name = username.replace("=", "=3D").replace(",", "=2C")
        self.client_first_bare = f"n={name},r={self.nonce}"
        self.expected_server_final = ""

    def first(self) -> bytes:
        return ("n,," + self.client_first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attrs = dict(item.split("=", 1) for item in text.split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = _hmac(salted, b"Client Key")
        without_proof = f"c={base64.b64encode(b'n,,').decode()},r={attrs['r']}"
        auth_message = f"{self.client_first_bare},{text},{without_proof}".encode()
        signature = _hmac(hashlib.sha256(client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        self.expected_server_final = "v=" + base64.b64encode(server_signature).decode()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
