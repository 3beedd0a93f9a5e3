"""Broker-side AMQP limits and features, as one value the connection reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from core.auth import Authenticator
    from core.login_backoff import LoginBackoff

PRODUCT = "RosettaMQ"
VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class AMQPSettings:
    """What the server offers in connection.start / connection.tune, and its timeouts."""

    frame_max: int = 131072
    channel_max: int = 2047
    heartbeat: int = 60  # seconds proposed in connection.tune (0: none)
    handshake_timeout: float = 10.0
    close_timeout: float = 3.0  # wait this long for close-ok after our connection.close
    vhosts: tuple[str, ...] = ("/",)
    shared_vhost: str = "/"  # the vhost whose amq.topic is the core's topic space
    origin_header: bool = False  # add x-origin-client-id to messages from other protocols
    max_message_size: int = 128 * 1024 * 1024
    # Messages held in queues (ready or unacknowledged) above which publishers are blocked
    # (connection.blocked, and their sockets are no longer read) until 80% of it is reached; 0: no limit.
    max_held_messages: int = 1_000_000
    # The bound of a queue fed from other protocols through amq.topic without an x-max-length
    # of its own (drop-head past it, dead-lettered if the queue says so); 0: none.
    core_queue_max_length: int = 100_000
    # False on a cluster node: durable queues would be node-local, so queue.declare refuses them (406).
    durable_queues: bool = True
    authenticator: "Authenticator | None" = None
    login_backoff: "LoginBackoff | None" = None  # failed logins per address slow down later ones
    # Who may use every queue and exchange whatever the ACL file says (adapters/amqp/permissions.py).
    is_admin: Callable[[str | None], bool] | None = None
