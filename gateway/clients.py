"""Clients of every protocol as the admin API shows them, and kicking one.

A client is a JSON object: ``id`` (the client id, AMQP connection name or CoAP
clientid; what ``DELETE /api/v1/clients/{id}`` takes), ``protocol``,
``listener``, ``address``, ``username``, ``connected_since`` (Unix time),
``subscriptions``, ``queue_depth``, ``messages_in`` and ``messages_out``
(PUBLISHes since the CONNECT for MQTT; null where a protocol has no such
count). `client_detail` adds what the management UI's detail view shows
(issue 20). Kicking: MQTT 5 gets DISCONNECT 0x98
(administrative action; 3.1.1 a plain close), AMQP connection.close 320
CONNECTION_FORCED, a CoAP connection ends with its observations (final 4.01).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.coap.exchange import end_observers_of
from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.states import State
from core.session_parts import NEVER_EXPIRES

if TYPE_CHECKING:
    from gateway.app import Gateway

PROTOCOLS = ("mqtt", "amqp", "coap")


def list_clients(gateway: "Gateway", protocol: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if protocol in (None, "mqtt"):
        out.extend(_mqtt_clients(gateway))
    if protocol in (None, "amqp"):
        out.extend(_amqp_clients(gateway))
    if protocol in (None, "coap"):
        out.extend(_coap_clients(gateway))
    return sorted(out, key=lambda c: (c["protocol"], c["id"]))


def _mqtt_clients(gateway: "Gateway") -> list[dict[str, Any]]:
    out = []
    for conn in list(gateway.mqtt_connections.connections):
        if conn.state is not State.CONNECTED or conn.session is None:
            continue
        session = conn.session
        out.append({
            "id": conn.client_id, "protocol": "mqtt", "listener": conn.listener, "address": conn.peer,
            "username": conn.username, "connected_since": conn.connected_at, "protocol_level": conn.level,
            "subscriptions": sorted(session.subscriptions), "queue_depth": session.queued,
            "inflight": len(session.inflight), "keep_alive": conn.keep_alive,
            "messages_in": conn.messages_in, "messages_out": conn.messages_out,
        })
    return out


def _amqp_clients(gateway: "Gateway") -> list[dict[str, Any]]:
    amqp = gateway.amqp
    if amqp is None:
        return []
    out = []
    for conn in list(amqp.connections):
        if conn.username is None and not conn.channels:
            continue  # still in its handshake
        queues: list[str] = []
        depth = unacked = 0
        for channel in conn.channels.values():
            unacked += len(channel.unacked)
            for consumer in channel.consumers.values():
                queues.append(consumer.queue.name)
                depth += len(consumer.queue.ready)
        out.append({
            "id": conn.origin.client_id or conn.peer, "protocol": "amqp", "listener": conn.listener,
            "address": conn.peer, "username": conn.username, "vhost": conn.vhost.name,
            "connected_since": getattr(conn, "connected_at", None), "channels": len(conn.channels),
            "subscriptions": sorted(set(queues)), "queue_depth": depth, "inflight": unacked,
            "messages_in": None, "messages_out": None,
        })
    return out


def _coap_clients(gateway: "Gateway") -> list[dict[str, Any]]:
    coap = gateway.coap
    if coap is None:
        return []
    observers: dict[str, list[Any]] = {}
    for observer in coap.observers.of_all():
        observers.setdefault(observer.client_id or f"observer:{observer.key!s}", []).append(observer)
    out = []
    for connection in coap.state.connections:
        mine = observers.pop(connection.client_id, [])
        out.append(_coap_entry(connection.client_id, connection.username, mine, mode="connection"))
    for name, mine in observers.items():  # observers without a connection (anonymous or by clientid)
        out.append(_coap_entry(name, None, mine, mode="observe"))
    return out


def _coap_entry(client_id: str, username: str | None, observers: list[Any], mode: str) -> dict[str, Any]:
    address = None
    for observer in observers:
        link = observer.attachment
        remote = getattr(link, "remote", None)
        if remote is not None:
            address = str(getattr(remote, "hostinfo", remote))
            break
    return {
        "id": client_id, "protocol": "coap", "listener": "coap", "address": address, "username": username,
        "connected_since": None, "mode": mode, "subscriptions": sorted({o.topic_filter for o in observers}),
        "queue_depth": sum(len(o) for o in observers), "inflight": 0,
        "messages_in": None, "messages_out": None,
    }


def client_detail(gateway: "Gateway", client_id: str, protocol: str | None = None) -> dict[str, Any] | None:
    """The connected client `client_id` (of `protocol`, if given) with its subscriptions' options,
    session expiry, clean start, will and last errors; None if it is not connected here."""
    for row in list_clients(gateway, protocol):
        if row["id"] != client_id:
            continue
        if row["protocol"] == "mqtt":
            return _mqtt_detail(gateway, row)
        detail = dict(row, session_expiry=None, clean_start=None, will=None, last_errors=[])
        detail["subscriptions_detail"] = [{"filter": name, "qos": None, "no_local": None,
                                           "retain_as_published": None, "retain_handling": None,
                                           "subscription_id": None} for name in row["subscriptions"]]
        return detail
    return None


def _mqtt_detail(gateway: "Gateway", row: dict[str, Any]) -> dict[str, Any]:
    conn = next((c for c in list(gateway.mqtt_connections.connections)
                 if c.client_id == row["id"] and c.state is State.CONNECTED and c.session is not None), None)
    detail = dict(row, subscriptions_detail=[], session_expiry=None, clean_start=None, will=None)
    detail["last_errors"] = gateway.mqtt_connections.last_errors(row["id"])
    if conn is None or conn.session is None:
        return detail
    session = conn.session
    detail["subscriptions_detail"] = [
        {"filter": name, "qos": options.qos, "no_local": options.no_local,
         "retain_as_published": options.retain_as_published, "retain_handling": options.retain_handling,
         "subscription_id": options.subscription_id}
        for name, options in sorted(session.subscriptions.items())]
    expiry = session.expiry_interval
    detail["session_expiry"] = None if expiry == NEVER_EXPIRES else expiry
    detail["clean_start"] = conn.clean_start
    will = session.will
    detail["will"] = None if will is None else {"topic": will.topic, "qos": will.qos, "retain": will.retain,
                                                "delay": session.will_delay, "payload_bytes": len(will.payload)}
    return detail


def kick(gateway: "Gateway", client_id: str, protocol: str | None = None) -> list[str]:
    """Disconnect every client with this id (of `protocol`, if given); returns the protocols kicked."""
    kicked: list[str] = []
    if protocol in (None, "mqtt"):
        for conn in list(gateway.mqtt_connections.connections):
            if conn.client_id == client_id and conn.state is State.CONNECTED:
                conn.disconnect(ReasonCode.ADMINISTRATIVE_ACTION, reason_string="kicked by an administrator")
                if conn.on_output is not None:
                    conn.on_output()
                kicked.append("mqtt")
    amqp = gateway.amqp
    if amqp is not None and protocol in (None, "amqp"):
        for conn in list(amqp.connections):
            if (conn.origin.client_id or conn.peer) == client_id and not conn.closing:
                conn.shutdown("closed by an administrator via the management API")
                if conn.on_output is not None:
                    conn.on_output()
                kicked.append("amqp")
    coap = gateway.coap
    if coap is not None and protocol in (None, "coap"):
        had_observers = bool(coap.observers.of_client(client_id))
        if coap.state.connections.drop(client_id) or had_observers:
            end_observers_of(coap.state, client_id, "kicked by an administrator")
            kicked.append("coap")
    return kicked
