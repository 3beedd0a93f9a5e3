"""The WebSocket side of MQTT over WebSocket, with no I/O: handshake policy, client address, close codes.

The framing itself is websockets' Sans-I/O `ServerProtocol`; this module
decides what it accepts, in one place each:

- Path: only `WSSettings.path` upgrades (a query string is ignored); any other
  path gets HTTP 404.
- Subprotocol: the client must offer ``mqtt`` (MQTT 3.1.1 / 5) or
  ``mqttv3.1`` (MQTT 3.1); offering neither, or nothing, is refused with
  HTTP 400 before the upgrade, as Mosquitto does, so a browser's `WebSocket`
  fails to open instead of opening and closing.
- Origin: with an allow-list, a listed ``Origin`` passes and any other gets
  HTTP 403; a request without ``Origin`` passes (non-browser clients send
  none and could forge one anyway: the list protects browsers).
- Client address: the socket's peer, or with `trust_proxy` the last entry of
  ``X-Forwarded-For`` (the address your own proxy saw; entries to its left
  come from the client and are not trusted).
- Close codes: `close_code` maps why the MQTT connection ended to the
  WebSocket close frame (RFC 6455 section 7.4).
- The upgrade request is answered before any byte after it is parsed
  (`request_end`): websockets would otherwise parse what follows as frames
  while still connecting, and fail the connection under its own answer.
"""

from __future__ import annotations

import http
import ipaddress
import logging
from urllib.parse import parse_qsl, urlsplit

from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.typing import Origin, Subprotocol

from adapters.mqtt.errors import ReasonCode
from adapters.ws.settings import WSSettings
from core.redact import RedactFilter

SUBPROTOCOLS = (Subprotocol("mqtt"), Subprotocol("mqttv3.1"))

# MQTT reason codes that mean "the peer broke the protocol": WebSocket 1002.
PROTOCOL_ERRORS = frozenset({
    ReasonCode.MALFORMED_PACKET,
    ReasonCode.PROTOCOL_ERROR,
    ReasonCode.PACKET_TOO_LARGE,
    ReasonCode.TOPIC_NAME_INVALID,
    ReasonCode.TOPIC_ALIAS_INVALID,
    ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
    ReasonCode.PAYLOAD_FORMAT_INVALID,
    ReasonCode.QOS_NOT_SUPPORTED,
    ReasonCode.RETAIN_NOT_SUPPORTED,
})


# websockets' debug lines show the request line and every header: tokens and Authorization masked.
HANDSHAKE_LOG = logging.getLogger("websockets.server")
HANDSHAKE_LOG.addFilter(RedactFilter())


def new_protocol(settings: WSSettings) -> ServerProtocol:
    """A fresh Sans-I/O server for one connection, with our subprotocols, origins and frame limit."""
    origins: list[Origin | None] | None = None
    if settings.allowed_origins:
        origins = [Origin(o.lower()) for o in settings.allowed_origins]
        origins.append(None)  # no Origin header: not a browser
    return ServerProtocol(
        origins=origins,
        subprotocols=list(SUBPROTOCOLS),
        # Messages are streamed frame by frame into the MQTT decoder, never
        # reassembled: bound each frame, not the message.
        max_size=(None, settings.max_frame_size),
        logger=HANDSHAKE_LOG,
    )


def handshake_response(protocol: ServerProtocol, request: Request, settings: WSSettings) -> Response:
    """The answer to an upgrade request: 101, or 404 / 401 / 400 / 403 / 426 with a short text."""
    if urlsplit(request.path).path != settings.path:
        return protocol.reject(http.HTTPStatus.NOT_FOUND, f"Not Found: MQTT over WebSocket is at {settings.path}\n")
    if settings.token_user is not None or settings.access_token is not None:
        token = bearer_token(request)
        if token is not None and token_identity(request, settings) is None and not _access_token(token, settings):
            response = protocol.reject(http.HTTPStatus.UNAUTHORIZED, "Unauthorized: unknown bearer token\n")
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
    return protocol.accept(request)


def request_end(tail: bytes, data: bytes) -> int | None:
    """Where in `data` the HTTP request ends (just after its blank line), or None if it does not.

    `tail`: the last bytes fed before `data` (up to 3), so a ``\r\n\r\n`` split
    between two reads is found. websockets reads request lines ending in CRLF
    only and refuses a request body, so the first blank line ends the request.
    """
    at = (tail + data).find(b"\r\n\r\n")
    return None if at < 0 else at + 4 - len(tail)


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer TOKEN``, or of ``?access_token=TOKEN`` (browsers cannot
    set headers on a WebSocket upgrade); None when the request carries neither."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name, value in parse_qsl(urlsplit(request.path).query):
        if name == "access_token" and value:
            return value
    return None


def _access_token(token: str, settings: WSSettings) -> bool:
    return settings.access_token is not None and settings.access_token(token)


def access_token(request: Request, settings: WSSettings) -> bytes | None:
    """An access token of the upgrade that the CONNECT's login checks as its password (tokens_file first)."""
    token = bearer_token(request)
    if token is None or token_identity(request, settings) is not None or not _access_token(token, settings):
        return None
    return token.encode()


def token_identity(request: Request, settings: WSSettings) -> str | None:
    """The user a valid bearer token names (the upgrade already refused an invalid one)."""
    if settings.token_user is None:
        return None
    token = bearer_token(request)
    return None if token is None else settings.token_user(token)



def client_address(headers: Headers, peer: str, trust_proxy: bool) -> str:
    """Who the client is: `peer` ("host:port"), or the proxy-reported address when trusted."""
    if not trust_proxy:
        return peer
    hops = [hop.strip() for value in headers.get_all("X-Forwarded-For") for hop in value.split(",")]
    hops = [hop for hop in hops if hop]
    if not hops:
        return peer
    address = _parse_ip(hops[-1])
    return address if address is not None else peer


def _parse_ip(text: str) -> str | None:
    """An IP address from an X-Forwarded-For entry ("1.2.3.4", "1.2.3.4:80", "[::1]:80", "::1")."""
    candidates = [text]
    if text.startswith("["):
        candidates = [text[1:].partition("]")[0]]
    elif text.count(":") == 1:
        candidates.append(text.partition(":")[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def close_code(reason: ReasonCode | None) -> tuple[CloseCode, str]:
    """The WebSocket close frame for an MQTT connection the server ended with `reason`.

    None (the client sent DISCONNECT) and every MQTT-level answer (CONNACK
    refusal, keep-alive timeout, session taken over) close normally with
    1000: MQTT already said why. Shutdown is 1001, a peer's protocol error
    1002, our own failure 1011.
    """
    if reason is None:
        return CloseCode.NORMAL_CLOSURE, ""
    if reason == ReasonCode.SERVER_SHUTTING_DOWN:
        return CloseCode.GOING_AWAY, "server shutting down"
    if reason in PROTOCOL_ERRORS:
        return CloseCode.PROTOCOL_ERROR, f"MQTT {ReasonCode(reason).name.lower().replace('_', ' ')}"
    if reason == ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR:
        return CloseCode.INTERNAL_ERROR, "internal error"
    return CloseCode.NORMAL_CLOSURE, ""
