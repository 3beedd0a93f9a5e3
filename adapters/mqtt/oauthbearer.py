"""OAUTHBEARER (RFC 7628) as an MQTT 5 enhanced-authentication method: an access token in AUTH data.

The client's Authentication Data is RFC 7628's initial response,
``n,a=USER,\\x01auth=Bearer TOKEN\\x01\\x01`` (the ``a=`` part optional), or, for simple clients,
the token alone. Nothing here checks the token: `Login` (login.py) hands it to the gateway's
authenticator as the password of the CONNECT, or of a re-authentication (AUTH 0x19), the same
way a token in the password field goes, off the event loop when a key must be fetched. So a
method object is never stepped: `start` and `step` only answer failure. No I/O.
"""

from __future__ import annotations

from adapters.mqtt.enhanced_auth import FAILURE, AuthStep

OAUTHBEARER = "OAUTHBEARER"


def bearer_credentials(data: bytes | None) -> tuple[str | None, bytes] | None:
    """(authorization identity or None, token) from Authentication Data; None when it holds no token."""
    if not data:
        return None
    if b"\x01" not in data:
        return None, data.strip()  # the bare token
    header, _, rest = data.partition(b"\x01")
    parts = header.split(b",")
    if len(parts) < 3 or parts[0] not in (b"n", b"y"):
        return None
    authzid = parts[1][2:].decode("utf-8", "replace") if parts[1].startswith(b"a=") else None
    for pair in rest.split(b"\x01"):
        key, sep, value = pair.partition(b"=")
        if sep and key == b"auth":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return authzid or None, token.strip()
    return None


class OAuthBearer:
    """The method's entry in `MQTTSettings.auth_methods`; its token goes to the authenticator (see above)."""

    takes_token = True  # Login: give the Authentication Data to the authenticator as a password

    def start(self, data: bytes | None) -> AuthStep:
        return AuthStep(FAILURE)

    def step(self, data: bytes | None) -> AuthStep:
        return AuthStep(FAILURE)
