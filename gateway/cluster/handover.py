"""A session as bytes on NATS: whole (`SessionSnapshot`, handed between nodes) or in pieces
(its record and its messages, replicated in JetStream: gateway/cluster/session_state.py). Pure.

Every piece is one tagged value of the store's codec (core/stores/codec.py), messages in the
store's own message encoding. Decoding raises CodecError on anything else, so a node never
adopts half a session.
"""

from __future__ import annotations

from typing import Any

from core.session_handover import SessionSnapshot
from core.stores.base import StoredDelivery, StoredSession
from core.stores.codec import CodecError, decode_message, decode_value, encode_message, encode_value
from core.subscriptions import SubscriptionOptions

VERSION = 1


def _session_value(session: StoredSession) -> dict[str, Any]:
    return {"client_id": session.client_id, "protocol": session.protocol, "expiry": session.expiry_interval,
            "username": session.username, "disconnected_at": session.disconnected_at,
            "will": None if session.will is None else encode_message(session.will),
            "will_delay": session.will_delay, "will_expiry": session.will_expiry_interval}


def _session(value: dict[str, Any]) -> StoredSession:
    will = value["will"]
    username = value["username"]
    return StoredSession(
        client_id=str(value["client_id"]), protocol=str(value["protocol"]), expiry_interval=int(value["expiry"]),
        username=None if username is None else str(username), disconnected_at=value["disconnected_at"],
        will=None if will is None else decode_message(will), will_delay=int(value["will_delay"]),
        will_expiry_interval=value["will_expiry"])


def _delivery_value(d: StoredDelivery) -> list[Any]:
    return [d.seq, encode_message(d.message), d.qos, d.retain, list(d.subscription_ids), d.packet_id, d.released]


def _delivery(value: Any) -> StoredDelivery:
    seq, message, qos, retain, sub_ids, packet_id, released = value
    return StoredDelivery(int(seq), decode_message(message), int(qos), bool(retain), tuple(sub_ids), packet_id,
                          bool(released))


def _options_value(o: SubscriptionOptions) -> list[Any]:
    return [o.qos, o.no_local, o.retain_as_published, o.retain_handling, o.subscription_id]


def _options(value: Any) -> SubscriptionOptions:
    qos, no_local, rap, rh, sub_id = value
    return SubscriptionOptions(int(qos), bool(no_local), bool(rap), int(rh), sub_id)


def _decoding(what: str, decode: Any, data: bytes) -> Any:
    try:
        return decode(decode_value(data))
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"not {what}: {exc!r}") from exc


# -- pieces (replication) ----------------------------------------------------------------------


def encode_session(session: StoredSession) -> bytes:
    return encode_value(_session_value(session))


def decode_session(data: bytes) -> StoredSession:
    return _decoding("a session record", _session, data)


def encode_delivery(delivery: StoredDelivery) -> bytes:
    return encode_value(_delivery_value(delivery))


def decode_delivery(data: bytes) -> StoredDelivery:
    return _decoding("a session message", _delivery, data)


def encode_options(options: SubscriptionOptions) -> bytes:
    return encode_value(_options_value(options))


def decode_options(data: bytes) -> SubscriptionOptions:
    return _decoding("subscription options", _options, data)


# -- whole (handover) ----------------------------------------------------------------------------


def encode_snapshot(snapshot: SessionSnapshot) -> bytes:
    return encode_value({
        "v": VERSION, **_session_value(snapshot.session),
        "subscriptions": {f: _options_value(o) for f, o in snapshot.subscriptions.items()},
        "deliveries": [_delivery_value(d) for d in snapshot.deliveries],
        "qos2": sorted(snapshot.incoming_qos2),
    })


def _snapshot(value: Any) -> SessionSnapshot:
    if not isinstance(value, dict) or value.get("v") != VERSION:
        raise CodecError("not a session snapshot of this version")
    return SessionSnapshot(
        _session(value), {str(f): _options(o) for f, o in value["subscriptions"].items()},
        tuple(_delivery(d) for d in value["deliveries"]), frozenset(int(n) for n in value["qos2"]))


def decode_snapshot(data: bytes) -> SessionSnapshot:
    return _decoding("a session snapshot", _snapshot, data)
