"""What this node sends the other nodes: every local message, encoded at once, batched per subject. Pure.

The door hands `Forwarding.forward` each message published on this node (core/fabric.py). The
message is encoded in the stores' form (core/stores/codec.py) and queued with its NATS subject;
the first message queued since the last flush asks the fabric to flush on the loop's next turn
(`schedule`). The fabric then takes the queue (`take`) and cuts it into envelopes
(`batches`): consecutive messages to one subject, at most `BATCH` each, numbered in order
(gateway/cluster/envelope.py). Compiled with the hot path: the fabric's `forward` is this
class's, so a publish in a cluster runs no interpreted frame on its way out.
"""

from __future__ import annotations

from typing import Any, Callable, Final

from core.message import Message
from core.stores.codec import encode_message

from gateway.cluster.envelope import encode_batch

BATCH: Final = 256  # messages at most in one NATS message (consecutive ones to one subject)
SUBJECT_CACHE: Final = 65536  # topics whose subject is kept (restarted when full)
_OWN_STATUS: Final = "$SYS/"  # each node's own status topics stay on it...
_SHARED_STATUS: Final = "$SYS/broker/nodes/"  # ...but for the per-node copies, which are shared


class Forwarding:
    """The queue of encoded messages waiting for the fabric's next flush, and their numbering."""

    def __init__(self, header: bytes, subject_of: Callable[[str], str], schedule: Callable[[], None],
                 held: Any, clock: Callable[[], float]) -> None:
        """`header`: this node's envelope header; `subject_of`: a topic's NATS subject; `schedule`:
        flush on the next loop turn; `held`: the topics other nodes asked us to hold (flow.py's
        `HeldTopics`, asked only while it holds any); `clock`: the loop's."""
        self._header = header
        self._subject_of = subject_of
        self._schedule = schedule
        self._held = held
        self._clock = clock
        self._subjects: dict[str, str] = {}
        self._out: list[tuple[str, bytes]] = []
        self.flushing = False  # a flush is scheduled or running; the fabric clears it when done
        self.seq = 0  # the number of the last message put in an envelope

    def forward(self, message: Message) -> Any:
        """Queue a local message for the other nodes; the hold on its topic to wait on, if any."""
        topic = message.topic
        if topic.startswith(_OWN_STATUS) and not topic.startswith(_SHARED_STATUS):
            return None
        subjects = self._subjects
        subject = subjects.get(topic)
        if subject is None:
            if len(subjects) >= SUBJECT_CACHE:
                subjects.clear()
            subject = subjects[topic] = self._subject_of(topic)
        self._out.append((subject, encode_message(message)))
        if not self.flushing:
            self.flushing = True
            self._schedule()
        held = self._held
        return held.get(topic, self._clock()) if len(held) else None

    def take(self) -> list[tuple[str, bytes]]:
        """Everything queued, in order; the queue starts again empty."""
        pending = self._out
        self._out = []
        return pending

    def batches(self, pending: list[tuple[str, bytes]]) -> list[tuple[str, bytes, int]]:
        """Consecutive messages to one subject as one envelope each: (subject, envelope, count)."""
        out: list[tuple[str, bytes, int]] = []
        index = 0
        total = len(pending)
        while index < total:
            subject = pending[index][0]
            group = [pending[index][1]]
            end = index + 1
            while end < total and end - index < BATCH:
                following = pending[end]
                if following[0] != subject:
                    break
                group.append(following[1])
                end += 1
            first = self.seq + 1
            self.seq += end - index
            out.append((subject, encode_batch(self._header, first, group), end - index))
            index = end
        return out
