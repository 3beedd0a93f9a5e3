"""Values keyed by MQTT topic filter, found for a topic through the subscription trie.

The one topic matcher of the core (`core.trie.SubscriptionTrie`) serves routing,
retained lookup and shared subscriptions; `FilterIndex` lets everything else that
asks "which of these filters match this topic" use it too: the ACL's rules
(`core.acl`), a bridge's `out` filters, an AMQP queue's MQTT filters. A topic is
matched by walking only the trie branches it can reach, so the cost does not grow
with the number of filters, and `$` topics follow the same rule everywhere (no
root wildcard matches them, MQTT-4.7.2-1).
"""

from __future__ import annotations

from typing import Generic, Iterable, TypeVar

from core.trie import SubscriptionTrie

V = TypeVar("V")

__all__ = ["FilterIndex"]


class FilterIndex(Generic[V]):
    """Filters (validated when added), each with a value; `match` returns the values of those that match."""

    __slots__ = ("_trie", "_next", "filters")

    def __init__(self, items: Iterable[tuple[str, V]] = ()) -> None:
        self._trie: SubscriptionTrie[int, V] = SubscriptionTrie()
        self._next = 0
        self.filters: list[str] = []
        for topic_filter, value in items:
            self.add(topic_filter, value)

    @classmethod
    def of(cls, filters: Iterable[str]) -> "FilterIndex[str]":
        """An index whose values are the filters themselves."""
        index: FilterIndex[str] = FilterIndex()
        for topic_filter in filters:
            index.add(topic_filter, topic_filter)
        return index

    def add(self, topic_filter: str, value: V) -> None:
        """Add one filter (raises core.topics.InvalidTopic for a malformed one)."""
        self._trie.add(topic_filter, self._next, value)
        self._next += 1
        self.filters.append(topic_filter)

    def match(self, topic: str) -> list[V]:
        """The values of every filter matching `topic` (a valid topic name), in no set order."""
        return [value for _key, value in self._trie.match(topic)]

    def matches(self, topic: str) -> bool:
        """True when at least one filter matches `topic`."""
        return bool(self._trie.match(topic))

    def __len__(self) -> int:
        return len(self.filters)

    def __bool__(self) -> bool:
        return bool(self.filters)
