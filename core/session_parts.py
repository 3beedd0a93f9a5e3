"""What a session is made of besides its logic (core/sessions.py): the connection it sends
through, its bounds, its in-flight entries and its drop counters. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from core.outbox import OutboxLimits
from core.subscriptions import Delivery, EncodeCache

NEVER_EXPIRES = 0xFFFFFFFF


class SessionSink(Protocol):
    """The live connection a session sends through."""

    receive_maximum: int

    def can_send(self) -> bool:
        """False while the transport is paused (slow consumer)."""
        ...

    def send_publish(self, packet_id: int | None, delivery: Delivery, dup: bool, cache: EncodeCache | None) -> bool:
        """Queue the PUBLISH; False if it was discarded (too large for the client): it counts as done."""
        ...

    def send_pubrel(self, packet_id: int) -> None: ...

    def session_taken_over(self) -> None:
        """Another connection opened this session: close this one."""
        ...

    def quota_exceeded(self) -> None:
        """The session's outbox overflowed under the "disconnect" policy: close this one (0x97)."""
        ...


# One entry per distinct configuration the gateway ran with (a reload may add one).
_SHARED_OUTBOX_LIMITS: Final[dict[tuple[int, int, str], OutboxLimits]] = {}


@dataclass(slots=True)
class SessionLimits:
    """Bounds that keep one session from growing memory without limit."""

    max_queued: int = 1000
    max_inflight: int = 65535
    max_queued_bytes: int = 0  # 0: bounded by messages only
    overflow: str = "drop_oldest"  # QoS 1/2 past the bound: drop_oldest, drop_new or disconnect

    @property
    def outbox(self) -> OutboxLimits:
        """The bound of a session's outbox: one shared instance per distinct value (not one per
        session, which cost memory per idle connection and a construction per login)."""
        key = (self.max_queued, self.max_queued_bytes, self.overflow)
        limits = _SHARED_OUTBOX_LIMITS.get(key)
        if limits is None:
            limits = _SHARED_OUTBOX_LIMITS[key] = OutboxLimits(*key)
        return limits

    @property
    def high_water(self) -> int:
        """Outbox length past which a draining client asks its producers to pause."""
        return max(1, self.max_queued // 2)

    @property
    def low_water(self) -> int:
        """Outbox length under which paused producers go on."""
        return self.max_queued // 4


@dataclass(slots=True)
class InFlight:
    """A QoS 1/2 message sent and not yet completed; `released` once PUBREC came back."""

    seq: int
    delivery: Delivery
    released: bool = False


@dataclass(slots=True)
class SessionCounters:
    """Drops a session made, by reason (fed to metrics)."""

    queue_full: int = 0  # QoS 1/2 refused at the bound (drop_new, or offline)
    dropped_oldest: int = 0  # QoS 1/2 dropped from the head to make room (drop_oldest)
    overflow_disconnects: int = 0  # clients disconnected because their outbox overflowed
    expired: int = 0
    offline_qos0: int = 0
    slow_consumer_qos0: int = 0
    acl_denied: int = 0  # messages its client may not read (ACL), though a subscription matched
