"""The router: subscriptions of every protocol in one trie, and fan-out of each publish.

`publish` walks the trie once, merges overlapping subscriptions of the same
subscriber into one delivery (highest QoS, every subscription identifier:
MQTT 5 section 3.3.4 allows this), picks one member per shared-subscription
group, and hands each subscriber a `Delivery` plus an encode cache shared by
the whole fan-out. Only the door (`core.door`) calls `publish`: it has already
validated and authorized the message.

A subscriber that raises while taking a delivery (a message its protocol cannot
encode, a bug) loses that one delivery: the error is counted in
`delivery_errors`, logged once per subscriber protocol per minute, and the
fan-out and the publisher carry on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Callable, Final, Iterable

from core.fabric import NO_FABRIC, Fabric
from core.log_throttle import LogThrottle
from core.message import Message
from core.traffic import Traffic
from core.retained import RetainedStore
from core.subscriptions import Delivery, EncodeCache, Subscriber, SubscriptionOptions
from core.topics import parse_shared_filter
from core.trie import SubscriptionTrie

RetainedListener = Callable[[Message, bool], None]
log = logging.getLogger("rosettamq.core")
_tuple_new: Final = tuple.__new__
MATCH_CACHE: Final = 4096  # topics whose matches the router keeps (the cache restarts when full)


class Router:
    """Routes messages from any protocol to subscribers of any protocol."""

    def __init__(self, retained: RetainedStore | None = None) -> None:
        self.retained = retained if retained is not None else RetainedStore()
        self._trie: SubscriptionTrie[Subscriber, SubscriptionOptions] = SubscriptionTrie()
        self._options: dict[SubscriptionOptions, SubscriptionOptions] = {}
        # The same instances by id(): a subscription whose options are one of them already (the MQTT
        # adapter shares one per value) is not hashed, an interpreted dataclass __hash__ per SUBSCRIBE.
        # Kept instances live as long as the router, so no other object can have their id.
        self._options_by_id: dict[int, SubscriptionOptions] = {}
        # topic -> (matched, shared, overlapping): the trie's answer, kept until a filter matching it changes
        self._matches: dict[str, tuple[list[Any], list[Any], bool]] = {}
        self._share_cursor: dict[tuple[str, str], int] = {}
        self.retained_listeners: list[RetainedListener] = []
        self.published = 0
        self.delivered = 0
        self.dropped_no_subscribers = 0
        self.delivery_errors = 0  # deliveries lost because a subscriber raised (see the module docstring)
        self._error_log = LogThrottle(60.0)
        # Messages and payload bytes by origin protocol, and deliveries to each subscriber protocol
        # (core/metrics.py reads them at scrape time; a dict lookup per publish and per delivery).
        self.traffic: dict[str, Traffic] = {}
        # Called with every published message (the admin console's topic counter); empty normally.
        self.taps: list[Callable[[Message], None]] = []
        # The cluster (core/fabric.py): told when a filter gains its first local subscriber or
        # loses its last (counted per filter and share group in `_interest`).
        self.fabric: Fabric = NO_FABRIC
        self.clustered = False  # a fabric is attached (the door skips the call to NO_FABRIC)
        self._interest: dict[tuple[str, str | None], int] = {}

    def attach_fabric(self, fabric: Fabric) -> None:
        """Join a cluster: the fabric learns every filter local subscribers already have."""
        self.fabric = fabric
        self.clustered = fabric is not NO_FABRIC
        for bare_filter, group in self._interest:
            fabric.interest_added(bare_filter, group)

    # -- subscriptions -------------------------------------------------------

    def subscribe(self, subscriber: Subscriber, topic_filter: str, options: SubscriptionOptions) -> bool:
        """Add or replace a subscription; True if it already existed. Validates the filter."""
        group, bare_filter = parse_shared_filter(topic_filter)
        kept = self._options_by_id.get(id(options))
        if kept is None and options.subscription_id is None:  # (with an identifier: one per subscription,
            kept = self._options.setdefault(options, options)  # not kept, or a client could grow the table
            self._options_by_id[id(kept)] = kept  # with every identifier it picks)
        if kept is not None:
            options = kept  # one instance per distinct value
        added = self._trie.add(bare_filter, subscriber, options, group)
        self._forget_matches(bare_filter)
        if added:
            key = (bare_filter, group)
            count = self._interest[key] = self._interest.get(key, 0) + 1
            if count == 1 and self.clustered:
                self.fabric.interest_added(bare_filter, group)
        return not added

    def unsubscribe(self, subscriber: Subscriber, topic_filter: str) -> bool:
        """Remove a subscription; True if it existed."""
        group, bare_filter = parse_shared_filter(topic_filter)
        removed = self._trie.remove(bare_filter, subscriber, group)
        if removed:
            self._forget_matches(bare_filter)
            key = (bare_filter, group)
            count = self._interest.get(key, 1) - 1
            if count > 0:
                self._interest[key] = count
            else:
                self._interest.pop(key, None)
                if self.clustered:
                    self.fabric.interest_removed(bare_filter, group)
        return removed

    def _forget_matches(self, bare_filter: str) -> None:
        """Drop the kept matches a change of `bare_filter` makes stale: a filter without wildcards
        matches only the topic of the same name (a device subscribing to its own topic leaves every
        other topic's matches kept); a wildcard filter may match any kept topic, so all go."""
        if "+" in bare_filter or "#" in bare_filter:
            self._matches.clear()
        else:
            self._matches.pop(bare_filter, None)

    def retained_for(self, topic_filter: str) -> list[Message]:
        """Retained messages a new subscription to `topic_filter` should receive (none for shared)."""
        if not len(self.retained):
            return []  # none held (the filter was validated when it was subscribed)
        group, bare_filter = parse_shared_filter(topic_filter)
        if group is not None:
            return []  # MQTT-3.8.4-? : retained messages are not sent for shared subscriptions
        return self.retained.match(bare_filter)

    def subscription_count(self) -> int:
        return len(self._trie)

    def subscriptions(self) -> Iterable[tuple[str, str | None, Subscriber, SubscriptionOptions]]:
        return self._trie.subscriptions()

    # -- publishing ----------------------------------------------------------

    def publish(self, message: Message, encoded: EncodeCache | None = None, remote: bool = False,
                congested: list[Subscriber] | None = None) -> int:
        """Store it if retained, deliver it to every matching subscriber; returns deliveries made.

        `encoded` seeds the fan-out's encode cache with forms the publisher already has. A
        `remote` message (from the cluster fabric) does not set retained messages here (the
        fabric keeps every node's retained messages in step). With a fabric that shares across
        nodes, share groups are served by `deliver_to_share`, not here. Subscribers whose
        `deliver` answers True (an outbox past high water, its client draining it) are appended
        to `congested`, for the producer to wait on (core/flow.py)."""
        self.published += 1
        traffic = self.traffic.get(message.origin.protocol)
        if traffic is None:
            traffic = self.traffic[message.origin.protocol] = Traffic()
        size = len(message.payload)
        traffic.messages_in += 1
        traffic.bytes_in += size
        if self.taps:
            for tap in self.taps:
                tap(message)
        if message.retain and not remote:
            self.set_retained(message)
        matched, shared, overlapping = self._match(message.topic)
        if shared and self.fabric.shares_across_nodes:
            shared = []
        cache: EncodeCache = {} if encoded is None else encoded
        count = 0
        if matched:
            if overlapping:
                matched = _merge_overlapping(message, matched)
            count = self._deliver_each(message, matched, cache, traffic, size, congested)
        for share, members in shared:
            chosen = self._pick_share_member(share, members, message)
            if chosen is not None:
                subscriber, options = chosen
                try:
                    if subscriber.deliver(_delivery(message, options), cache) and congested is not None:
                        congested.append(subscriber)
                except Exception as exc:
                    self.delivery_failed(subscriber, message, exc)
                    continue
                traffic.count(getattr(subscriber, "protocol", "internal"), size)
                count += 1
        if count == 0:
            self.dropped_no_subscribers += 1
        self.delivered += count
        return count

    def deliver_to_share(self, message: Message, group: str, bare_filter: str) -> int:
        """The fabric chose this node for a message of share group `group` on `bare_filter`:
        one local member gets it (1), or none is left here (0)."""
        members = self._trie.share_members(bare_filter, group)
        chosen = self._pick_share_member((group, bare_filter), members, message) if members else None
        if chosen is None:
            self.dropped_no_subscribers += 1
            return 0
        subscriber, options = chosen
        try:
            subscriber.deliver(_delivery(message, options), {})
        except Exception as exc:
            self.delivery_failed(subscriber, message, exc)
            return 0
        self.delivered += 1
        return 1

    def delivery_failed(self, subscriber: Subscriber, message: Message, exc: Exception) -> None:
        """Count and (throttled) log a delivery a subscriber could not take; the fan-out goes on."""
        self.delivery_errors += 1
        protocol = getattr(subscriber, "protocol", "internal")
        suppressed = self._error_log.allow(protocol, time.monotonic())
        if suppressed is not None:
            log.error("delivery failed subscriber=%r topic=%s error=%r (+%d more since the last line)",
                      subscriber, message.topic, exc, suppressed)

    def _deliver_each(
        self, message: Message, matched: list[tuple[Subscriber, SubscriptionOptions]], cache: EncodeCache,
        traffic: Traffic, size: int, congested: list[Subscriber] | None,
    ) -> int:
        """Hand the message to each subscriber; subscribers with equal options share one Delivery.

        `traffic` counts deliveries and their payload bytes by the subscriber's protocol
        (a subscriber without a `protocol` attribute counts as "internal").
        """
        if len(matched) == 1:
            subscriber, options = matched[0]
            if options.no_local and subscriber.is_origin_of(message):
                return 0
            try:
                if subscriber.deliver(_delivery(message, options), cache) and congested is not None:
                    congested.append(subscriber)
            except Exception as exc:
                self.delivery_failed(subscriber, message, exc)
                return 0
            traffic.count(getattr(subscriber, "protocol", "internal"), size)
            return 1
        deliveries: dict[SubscriptionOptions, Delivery] = {}
        count = 0
        for subscriber, options in matched:
            if options.no_local and subscriber.is_origin_of(message):
                continue
            delivery = deliveries.get(options)
            if delivery is None:
                delivery = deliveries[options] = _delivery(message, options)
            try:
                if subscriber.deliver(delivery, cache) and congested is not None:
                    congested.append(subscriber)
            except Exception as exc:
                self.delivery_failed(subscriber, message, exc)
                continue
            traffic.count(getattr(subscriber, "protocol", "internal"), size)
            count += 1
        return count

    def _match(self, topic: str) -> tuple[list[Any], list[Any], bool]:
        """The trie's matches for `topic` (one walk), and whether a subscriber appears twice; kept
        per topic until a subscription that can match it changes, as devices publish to the same topics again."""
        found = self._matches.get(topic)
        if found is None:
            matched, shared = self._trie.match_all(topic)
            overlapping = len(matched) > 1 and len({subscriber for subscriber, _ in matched}) != len(matched)
            if len(self._matches) >= MATCH_CACHE:
                self._matches.clear()
            found = self._matches[topic] = (matched, shared, overlapping)
        return found

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


def _delivery(message: Message, options: SubscriptionOptions) -> Delivery:
    """Delivered QoS = min(published, subscribed); retain kept live only with retain-as-published."""
    return _tuple_new(Delivery, (  # type: ignore[no-any-return]  # (the NamedTuple's __new__ is a Python frame)
        message,
        min(options.qos, message.qos),
        message.retain and options.retain_as_published,
        _ids(options) if options.subscription_ids is None else options.subscription_ids,
    ))


def _merge_overlapping(
    message: Message, matched: list[tuple[Subscriber, SubscriptionOptions]]
) -> list[tuple[Subscriber, SubscriptionOptions]]:
    """One entry per subscriber whose filters overlap: highest QoS, every subscription id.

    MQTT 5 section 3.3.4 lets the server deliver once for overlapping subscriptions.
    No-local applies per subscription, so those entries are dropped before merging.
    """
    merged: dict[Subscriber, SubscriptionOptions] = {}
    for subscriber, options in matched:
        if options.no_local and subscriber.is_origin_of(message):
            continue
        seen = merged.get(subscriber)
        if seen is None:
            merged[subscriber] = replace(options, no_local=False, subscription_ids=_ids(options))
        else:
            merged[subscriber] = replace(
                seen,
                qos=max(seen.qos, options.qos),
                retain_as_published=seen.retain_as_published or options.retain_as_published,
                subscription_ids=(seen.subscription_ids or ()) + _ids(options),
            )
    return list(merged.items())
