"""SASL responses of connection.start-ok: PLAIN and AMQPLAIN, as RabbitMQ accepts them."""

from __future__ import annotations

import struct
from typing import Any

from pamqp import decode

from adapters.amqp import errors

MECHANISMS = "PLAIN AMQPLAIN"


def credentials(mechanism: str, response: Any) -> tuple[str | None, bytes | None]:
    """Username and password from a PLAIN or AMQPLAIN response (403 for other mechanisms)."""
    raw = response.encode("utf-8") if isinstance(response, str) else bytes(response or b"")
    if mechanism == "PLAIN":
        parts = raw.split(b"\x00")
        if len(parts) != 3:
            raise errors.access_refused("malformed PLAIN response")
        return parts[1].decode("utf-8", "replace"), parts[2]
    if mechanism == "AMQPLAIN":
        try:
            _, table = decode.field_table(struct.pack(">I", len(raw)) + raw)
        except (ValueError, struct.error) as exc:
            raise errors.access_refused(f"malformed AMQPLAIN response: {exc}") from None
        login, password = table.get("LOGIN"), table.get("PASSWORD")
        login = login.decode("utf-8", "replace") if isinstance(login, bytes) else login
        password = password.encode("utf-8") if isinstance(password, str) else password
        return (None if login is None else str(login)), password
    raise errors.access_refused(f"unsupported authentication mechanism '{mechanism}'")
