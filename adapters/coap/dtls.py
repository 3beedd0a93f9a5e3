"""CoAP over DTLS (``coaps://``, RFC 7252 section 9) with pre-shared keys, on aiocoap's tinydtls server.

aiocoap's DTLS server transport (`aiocoap.transports.tinydtls_server`,
experimental upstream) needs the ``DTLSSocket`` package (tinydtls bindings,
built from source: autoconf, automake and libtool must be installed). It is
added to the listener's aiocoap context next to the UDP transport, so one
site, one observer registry and one set of limits serve ``coap://`` and
``coaps://`` alike; the DTLS message manager reports ACK/RST to the same
`AckWatch`.

A client completes the handshake only with an identity and key from the PSK
table (`parse_psk_lines`); other datagrams never reach a resource. The PSK
secures the channel; who the requester is for the ACL is decided as on plain
CoAP (``u``/``p`` or a connection token in the query).

PSK file: one ``identity:key`` a line (``#`` comments and blank lines
ignored); a key written ``hex:0a1b...`` is binary.
"""

from __future__ import annotations

from typing import Any, Callable

from adapters.coap.tokens import TokenKeepingManager

__all__ = ["PSKError", "parse_psk_lines", "start_dtls_transport"]


class PSKError(ValueError):
    """A PSK file line that cannot be used."""


def parse_psk_lines(text: str) -> dict[bytes, bytes]:
    """identity -> key from a PSK file's text; raises PSKError naming the bad line."""
    table: dict[bytes, bytes] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        identity, sep, key = line.partition(":")
        if not sep or not identity or not key:
            raise PSKError(f"line {number}: expected identity:key")
        if key.startswith("hex:"):
            try:
                secret = bytes.fromhex(key[4:])
            except ValueError:
                raise PSKError(f"line {number}: bad hex key") from None
        else:
            secret = key.encode("utf-8")
        if not secret:
            raise PSKError(f"line {number}: empty key")
        table[identity.encode("utf-8")] = secret
    return table


async def start_dtls_transport(context: Any, make_manager: Callable[[Any], Any], host: str, port: int,
                               psks: dict[bytes, bytes], loop: Any) -> int:
    """Serve `context`'s site on DTLS at (host, port) (0: the OS picks); returns the bound port.

    `make_manager(token_manager)` builds the message manager (the listener's watched one).
    """
    from aiocoap.credentials import DTLS, CredentialsMap  # only when [coaps] is on
    from aiocoap.transports.tinydtls_server import MessageInterfaceTinyDTLSServer

    credentials = CredentialsMap()
    for identity, key in psks.items():
        credentials[":" + identity.hex()] = DTLS(psk=key, client_identity=identity)
    context.server_credentials = credentials
    tokens = TokenKeepingManager(context)
    messages = make_manager(tokens)
    # aiocoap's simple socket server binds port + 1 (COAPS_PORT - COAP_PORT); ask for one less
    transport = await MessageInterfaceTinyDTLSServer.create_server(
        (host, port - 1), messages, log=context.log, loop=loop, server_credentials=credentials)
    messages.message_interface = transport
    tokens.token_interface = messages
    context.request_interfaces.append(tokens)
    return int(transport._pool._transport.get_extra_info("socket").getsockname()[1])
