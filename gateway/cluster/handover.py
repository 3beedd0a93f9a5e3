"""A session handed between nodes, as bytes on NATS (core/session_handover.py's `SessionSnapshot`). Pure.

The snapshot is one tagged value of the store's codec (core/stores/codec.py): messages in the
store's own message encoding, the rest as maps and lists. `decode_snapshot` raises CodecError
on anything else, so a node never adopts half a session.
"""

from __future__ import annotations

from typing import Any

from core.session_handover import SessionSnapshot
from core.stores.base import StoredDelivery, StoredSession
from core.stores.codec import CodecError, decode_message, decode_value, encode_message, encode_value
from core.subscriptions import SubscriptionOptions

VERSION = 1


def encode_snapshot(snapshot: SessionSnapshot) -> bytes:
    session = snapshot.session
    return encode_value({
        "v": VERSION,
        "client_id": session.client_id, "protocol": session.protocol, "expiry": session.expiry_interval,
        "username": session.username, "disconnected_at": session.disconnected_at,
        "will": None if session.will is None else encode_message(session.will),
        "will_delay": session.will_delay, "will_expiry": session.will_expiry_interval,
        "subscriptions": {topic_filter: [o.qos, o.no_local, o.retain_as_published, o.retain_handling,
                                         o.subscription_id]
                          for topic_filter, o in snapshot.subscriptions.items()},
        "deliveries": [[d.seq, encode_message(d.message), d.qos, d.retain, list(d.subscription_ids), d.packet_id,
                        d.released] for d in snapshot.deliveries],
        "qos2": sorted(snapshot.incoming_qos2),
    })


def decode_snapshot(data: bytes) -> SessionSnapshot:
    try:
        value = decode_value(data)
        if not isinstance(value, dict) or value.get("v") != VERSION:
            raise CodecError("not a session snapshot of this version")
        will = value["will"]
        session = StoredSession(
            client_id=str(value["client_id"]), protocol=str(value["protocol"]), expiry_interval=int(value["expiry"]),
            username=_optional_text(value["username"]), disconnected_at=value["disconnected_at"],
            will=None if will is None else decode_message(will), will_delay=int(value["will_delay"]),
            will_expiry_interval=value["will_expiry"])
        subscriptions = {str(topic_filter): SubscriptionOptions(int(qos), bool(no_local), bool(rap), int(rh), sub_id)
                         for topic_filter, (qos, no_local, rap, rh, sub_id) in value["subscriptions"].items()}
        deliveries = tuple(
            StoredDelivery(int(seq), decode_message(message), int(qos), bool(retain), tuple(sub_ids), packet_id,
                           bool(released))
            for seq, message, qos, retain, sub_ids, packet_id, released in value["deliveries"])
        return SessionSnapshot(session, subscriptions, deliveries, frozenset(int(n) for n in value["qos2"]))
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"not a session snapshot: {exc!r}") from exc


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
