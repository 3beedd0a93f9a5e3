"""A small OAuth 2.0 / OpenID provider for the JWT tests: a real HTTP server on a loopback port 0.

It serves what a provider serves: ``/.well-known/openid-configuration`` (issuer, jwks_uri,
token_endpoint), ``/jwks`` with the public keys of the keys it generated (RSA, EC P-256,
Ed25519), and ``/token``, a client-credentials token endpoint issuing signed JWT access
tokens for a requested resource (audience), as a device backend would get them. The test can
rotate keys in, make the JWKS answer garbage, or stop the server (the provider is down).
Requests are counted per path so tests can see fetches.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import Counter
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

LOOPBACK = "127.0.0.1"
AUDIENCE = "rosettamq"
CLIENT_ID, CLIENT_SECRET = "device-backend", "backend-secret"


class SigningKey:
    """A private key, its JWS algorithm and its ``kid``."""

    def __init__(self, kid: str, algorithm: str) -> None:
        self.kid, self.algorithm = kid, algorithm
        if algorithm == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk.update(kid=kid, alg=algorithm, use="sig")


class Provider:
    """The identity provider, running on its own event loop in a thread."""

    def __init__(self) -> None:
        self.keys = [SigningKey("rsa-1", "RS256"), SigningKey("ec-1", "ES256"), SigningKey("ed-1", "EdDSA")]
        self.signing = self.keys[0]
        self.garbage: bytes | None = None  # what /jwks answers instead of the keys, when set
        self.hang = False  # /jwks accepts the request and never answers (until close)
        self.requests: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="idp", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.port = self._call(self._start())
        self.issuer = f"http://{LOOPBACK}:{self.port}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _start(self) -> int:
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def _discovery(self, request: web.Request) -> web.Response:
        self.requests["discovery"] += 1
        return web.json_response({"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks",
                                  "token_endpoint": f"{self.issuer}/token",
                                  "grant_types_supported": ["client_credentials"]})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.requests["jwks"] += 1
        if self.hang:
            await self._released.wait()
        if self.garbage is not None:
            return web.Response(body=self.garbage, content_type="text/html")
        return web.json_response({"keys": [key.jwk for key in self.keys]})

    async def _token(self, request: web.Request) -> web.Response:
        """RFC 6749 4.4 client credentials, client authenticated with HTTP basic; `resource` (RFC 8707)."""
        self.requests["token"] += 1
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        client = base64.b64decode(value).decode() if scheme == "Basic" else ""
        form = await request.post()
        if client != f"{CLIENT_ID}:{CLIENT_SECRET}" or form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "invalid_client"}, status=401)
        claims: dict[str, Any] = {"aud": str(form.get("resource", AUDIENCE))}
        if form.get("scope"):
            claims["scope"] = str(form["scope"])
        token = self.issue(sub=str(form.get("sub", CLIENT_ID)), **claims)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 300})

    def issue(self, *, key: SigningKey | None = None, lifetime: float = 300, headers: dict[str, Any] | None = None,
              **claims: Any) -> str:
        """A signed access token: iss, aud, iat and exp by default, `claims` over them."""
        key = key or self.signing
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": AUDIENCE, "iat": now, "exp": now + lifetime, "sub": "device-1",
                   **claims}
        return jwt.encode(payload, key.private, algorithm=key.algorithm, headers={"kid": key.kid, **(headers or {})})

    def rotate(self) -> SigningKey:
        """A new RSA key joins the JWKS and signs from now on (the old ones stay published)."""
        self.signing = SigningKey(f"rsa-{len(self.keys) + 1}", "RS256")
        self.keys.append(self.signing)
        return self.signing

    def stop(self) -> None:
        """The provider goes down: its port refuses connections."""
        if self._runner is not None:
            self._call(self._runner.cleanup())
            self._runner = None

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._released.set)
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def fetch_token(provider: Provider, **form: str) -> str:
    """An access token from the provider's token endpoint, the way a device backend gets one."""
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": AUDIENCE, **form}).encode()
    request = urllib.request.Request(f"{provider.issuer}/token", data=body, method="POST")
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["token_type"] == "Bearer"
    return str(answer["access_token"])


def unsigned_token(**claims: Any) -> str:
    """A token with ``alg: none`` (no signature), as an attacker would send one."""
    return jwt.encode({"iss": "x", "aud": AUDIENCE, "exp": int(time.time()) + 300, "sub": "device-1", **claims},
                      None, algorithm="none")
