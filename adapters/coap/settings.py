"""CoAP listener limits and timing, as one value the adapter reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.auth import Authenticator
    from core.limits import RateLimiter
    from core.login_backoff import LoginBackoff


@dataclass(frozen=True, slots=True)
class CoAPSettings:
    """What the CoAP listener allows, and the CoAP transmission parameters of its notifications."""

    max_payload_size: int = 1024 * 1024  # bytes of one publish, block-wise transfers included (4.13 past it)
    observer_queue: int = 100  # notifications queued per observer before the oldest is dropped
    max_observers: int = 10_000  # registrations of the whole listener (5.03 past it)
    max_connections: int = 0  # open POST /mqtt/connection connections (5.03 past it); 0 = unlimited
    max_pending_publishes: int = 1000  # CON publishes waiting for the store (5.03 past it)
    heartbeat: float = 120.0  # seconds a connection (POST /mqtt/connection) lives without a heartbeat
    ack_timeout: float = 2.0  # RFC 7252 ACK_TIMEOUT for CON notifications
    max_retransmit: int = 4  # RFC 7252 MAX_RETRANSMIT: an observer is dropped after these go unanswered
    max_wellknown_topics: int = 1000  # retained topics listed in /.well-known/core
    authenticator: "Authenticator | None" = None  # None: anonymous clients allowed
    rate_limiter: "RateLimiter | None" = None  # new identities per source address (shared; 4.29 past it)
    login_backoff: "LoginBackoff | None" = None  # failed logins per address (shared; 4.29 while held)
