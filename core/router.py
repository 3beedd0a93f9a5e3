"""The router: subscriptions of every protocol in one trie, and fan-out of each publish.

`publish` walks the trie once, merges overlapping subscriptions of the same
subscriber into one delivery (highest QoS, every subscription identifier:
MQTT 5 section 3.3.4 allows this), picks one member per shared-subscription
group, and hands each subscriber a `Delivery` plus an encode cache shared by
the whole fan-out.
"""

from __future__ import annotations

from typing import Callable, Iterable

from core.message import Message
from core.retained import RetainedStore
from core.subscriptions import Delivery, EncodeCache, Subscriber, SubscriptionOptions
from core.topics import parse_shared_filter
from core.trie import SubscriptionTrie

RetainedListener = Callable[[Message, bool], None]


class Router:
    """Routes messages from any protocol to subscribers of any protocol."""

    def __init__(self, retained: RetainedStore | None = None) -> None:
        self.retained = retained if retained is not None else RetainedStore()
        self._trie: SubscriptionTrie[Subscriber, SubscriptionOptions] = SubscriptionTrie()
        self._share_cursor: dict[tuple[str, str], int] = {}
        self.retained_listeners: list[RetainedListener] = []
        self.published = 0
        self.delivered = 0
        self.dropped_no_subscribers = 0

    # -- subscriptions -------------------------------------------------------

    def subscribe(self, subscriber: Subscriber, topic_filter: str, options: SubscriptionOptions) -> bool:
        """Add or replace a subscription; True if it already existed. Validates the filter."""
        group, bare_filter = parse_shared_filter(topic_filter)
        return not self._trie.add(bare_filter, subscriber, options, group)

    def unsubscribe(self, subscriber: Subscriber, topic_filter: str) -> bool:
        """Remove a subscription; True if it existed."""
        group, bare_filter = parse_shared_filter(topic_filter)
        return self._trie.remove(bare_filter, subscriber, group)

    def retained_for(self, topic_filter: str) -> list[Message]:
        """Retained messages a new subscription to `topic_filter` should receive (none for shared)."""
        group, bare_filter = parse_shared_filter(topic_filter)
        if group is not None:
            return []  # MQTT-3.8.4-? : retained messages are not sent for shared subscriptions
        return self.retained.match(bare_filter)

    def subscription_count(self) -> int:
        return len(self._trie)

    def subscriptions(self) -> Iterable[tuple[str, str | None, Subscriber, SubscriptionOptions]]:
        return self._trie.subscriptions()

    # -- publishing ----------------------------------------------------------

    def publish(self, message: Message) -> int:
        """Store it if retained, deliver it to every matching subscriber; returns deliveries made."""
        self.published += 1
        if message.retain:
            self.set_retained(message)
        topic = message.topic
        matched, shared = self._trie.match_all(topic)  # one walk of the trie
        merged: dict[Subscriber, list] = {}
        for subscriber, options in matched:
            if options.no_local and subscriber.is_origin_of(message):
                continue
            entry = merged.get(subscriber)
            if entry is None:
                merged[subscriber] = [options.qos, options.retain_as_published, _ids(options)]
            else:
                entry[0] = max(entry[0], options.qos)
                entry[1] = entry[1] or options.retain_as_published
                entry[2] = entry[2] + _ids(options)
        cache: EncodeCache = {}
        count = 0
        qos_in = message.qos
        for subscriber, (qos, rap, ids) in merged.items():
            subscriber.deliver(Delivery(message, min(qos, qos_in), message.retain and rap, ids), cache)
            count += 1
        for share, members in shared:
            chosen = self._pick_share_member(share, members, message)
            if chosen is not None:
                subscriber, options = chosen
                subscriber.deliver(
                    Delivery(message, min(options.qos, qos_in), message.retain and options.retain_as_published, _ids(options)),
                    cache,
                )
                count += 1
        if count == 0:
            self.dropped_no_subscribers += 1
        self.delivered += count
        return count

    def set_retained(self, message: Message) -> None:
        """Store (or clear, for an empty payload) the retained message of a topic."""
        if self.retained.set(message):
            cleared = not message.payload
            for listener in self.retained_listeners:
                listener(message, cleared)

    def _pick_share_member(
        self, share: tuple[str, str], members: dict[Subscriber, SubscriptionOptions], message: Message
    ) -> tuple[Subscriber, SubscriptionOptions] | None:
        """Round-robin over the group's members, skipping offline ones while any is online."""
        candidates = [(s, o) for s, o in members.items() if not (o.no_local and s.is_origin_of(message))]
        if not candidates:
            return None
        start = self._share_cursor.get(share, 0)
        n = len(candidates)
        for step in range(n):
            subscriber, options = candidates[(start + step) % n]
            if subscriber.is_online:
                self._share_cursor[share] = start + step + 1
                return subscriber, options
        self._share_cursor[share] = start + 1
        return candidates[start % n]


def _ids(options: SubscriptionOptions) -> tuple[int, ...]:
    return () if options.subscription_id is None else (options.subscription_id,)
