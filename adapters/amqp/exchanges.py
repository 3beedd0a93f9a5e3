"""Exchanges and their bindings: direct, fanout, topic and headers, routing to destinations.

Pure routing tables with no knowledge of queues' contents. A destination is a
queue name (a `str`) or, for an exchange-to-exchange binding, a `ToExchange`
(never equal to a queue of the same name). The vhost owns them and turns a
route's destinations into deliveries (routing.py). amq.topic of the
shared vhost is an ordinary `TopicExchange` here (it keeps its bindings as
records); its routing runs through the core router instead (see vhost.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Union

from adapters.amqp.mapping import topic_key_matches

FieldTable = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToExchange:
    """The destination of an exchange-to-exchange binding (exchange.bind)."""

    name: str
    kind = "exchange"  # the admin API's destination_type

    def __str__(self) -> str:
        return self.name


Destination = Union[str, ToExchange]  # a queue name, or an exchange


def _frozen(arguments: FieldTable | None) -> tuple:
    """A hashable form of a binding's arguments (binding identity includes them)."""
    if not arguments:
        return ()
    return tuple(sorted((key, repr(value)) for key, value in arguments.items()))


class Exchange:
    """Common state: declaration flags and the set of (destination, key, arguments) bindings."""

    kind = ""

    def __init__(self, name: str, *, durable: bool = False, auto_delete: bool = False, internal: bool = False,
                 arguments: FieldTable | None = None, builtin: bool = False) -> None:
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = dict(arguments or {})
        self.builtin = builtin
        self.owner: object = None  # the Principal that declared it (adapters/amqp/permissions.py)
        self.bindings: dict[tuple[Destination, str, tuple], FieldTable] = {}

    def equivalent(self, kind: str, durable: bool, auto_delete: bool, internal: bool) -> bool:
        return (kind, durable, auto_delete, internal) == (self.kind, self.durable, self.auto_delete, self.internal)

    def bind(self, queue: Destination, key: str, arguments: FieldTable | None) -> bool:
        """Add a binding; False if it was already there."""
        ident = (queue, key, _frozen(arguments))
        if ident in self.bindings:
            return False
        self.bindings[ident] = dict(arguments or {})
        self._add(queue, key, self.bindings[ident])
        return True

    def unbind(self, queue: Destination, key: str, arguments: FieldTable | None) -> bool:
        ident = (queue, key, _frozen(arguments))
        if self.bindings.pop(ident, None) is None:
            return False
        self._remove(queue, key, ident[2])
        return True

    def unbind_queue(self, queue: str) -> list[tuple[str, FieldTable]]:
        """Drop every binding to `queue` (it is being deleted); returns (key, arguments) of each."""
        gone = [(ident, args) for ident, args in self.bindings.items() if ident[0] == queue]
        for ident, args in gone:
            self.unbind(queue, ident[1], args)
        return [(ident[1], args) for ident, args in gone]

    def queues_bound(self) -> set[Destination]:
        return {ident[0] for ident in self.bindings}

    def route(self, routing_key: str, headers: FieldTable | None) -> Iterable[Destination]:
        raise NotImplementedError

    def _add(self, queue: Destination, key: str, arguments: FieldTable) -> None:
        pass

    def _remove(self, queue: Destination, key: str, frozen_args: tuple) -> None:
        pass


class DirectExchange(Exchange):
    kind = "direct"

    def __init__(self, name: str, **flags: Any) -> None:
        super().__init__(name, **flags)
        self._by_key: dict[str, dict[Destination, int]] = {}

    def _add(self, queue: Destination, key: str, arguments: FieldTable) -> None:
        counts = self._by_key.setdefault(key, {})
        counts[queue] = counts.get(queue, 0) + 1

    def _remove(self, queue: Destination, key: str, frozen_args: tuple) -> None:
        counts = self._by_key.get(key)
        if counts is not None:
            counts[queue] -= 1
            if not counts[queue]:
                del counts[queue]
            if not counts:
                del self._by_key[key]

    def route(self, routing_key: str, headers: FieldTable | None) -> Iterable[Destination]:
        return self._by_key.get(routing_key, {}).keys()


class FanoutExchange(Exchange):
    kind = "fanout"

    def route(self, routing_key: str, headers: FieldTable | None) -> Iterable[Destination]:
        return self.queues_bound()


class _Node:
    __slots__ = ("children", "queues")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.queues: dict[Destination, int] = {}


class TopicExchange(Exchange):
    """Binding keys in a trie of words (`*` one word, `#` zero or more), as RabbitMQ's topic exchange."""

    kind = "topic"

    def __init__(self, name: str, **flags: Any) -> None:
        super().__init__(name, **flags)
        self._root = _Node()

    def _add(self, queue: Destination, key: str, arguments: FieldTable) -> None:
        node = self._root
        for word in key.split("."):
            node = node.children.setdefault(word, _Node())
        node.queues[queue] = node.queues.get(queue, 0) + 1

    def _remove(self, queue: Destination, key: str, frozen_args: tuple) -> None:
        path = [self._root]
        words = key.split(".")
        for word in words:
            path.append(path[-1].children[word])
        leaf = path[-1]
        leaf.queues[queue] -= 1
        if not leaf.queues[queue]:
            del leaf.queues[queue]
        for depth in range(len(words), 0, -1):  # prune empty branches
            node = path[depth]
            if node.queues or node.children:
                break
            del path[depth - 1].children[words[depth - 1]]

    def route(self, routing_key: str, headers: FieldTable | None) -> Iterable[Destination]:
        found: set[Destination] = set()
        self._walk(self._root, routing_key.split("."), 0, found)
        return found

    def _walk(self, node: _Node, words: list[str], index: int, found: set[Destination]) -> None:
        if index == len(words):
            found.update(node.queues)
            hash_node = node.children.get("#")
            if hash_node is not None:
                self._walk(hash_node, words, index, found)
            return
        child = node.children.get(words[index])
        if child is not None:
            self._walk(child, words, index + 1, found)
        star = node.children.get("*")
        if star is not None:
            self._walk(star, words, index + 1, found)
        hash_node = node.children.get("#")
        if hash_node is not None:
            for skip in range(index, len(words) + 1):  # '#' eats zero or more words
                self._walk(hash_node, words, skip, found)

    @staticmethod
    def matches(binding_key: str, routing_key: str) -> bool:
        return topic_key_matches(binding_key, routing_key)


class HeadersExchange(Exchange):
    """Matches binding arguments against message headers (x-match all / any; x-* keys ignored)."""

    kind = "headers"

    def route(self, routing_key: str, headers: FieldTable | None) -> Iterable[Destination]:
        headers = headers or {}
        found: set[Destination] = set()
        for (queue, _key, _args), arguments in self.bindings.items():
            if queue not in found and headers_match(arguments, headers):
                found.add(queue)
        return found


def headers_match(arguments: FieldTable, headers: FieldTable) -> bool:
    mode = arguments.get("x-match", "all")
    if isinstance(mode, bytes):
        mode = mode.decode()
    with_x = mode in ("all-with-x", "any-with-x")
    pairs = [(k, v) for k, v in arguments.items() if k != "x-match" and (with_x or not k.startswith("x-"))]
    if mode in ("any", "any-with-x"):
        return any(_header_equal(headers, k, v) for k, v in pairs)
    return all(_header_equal(headers, k, v) for k, v in pairs)


def _header_equal(headers: FieldTable, key: str, expected: Any) -> bool:
    if key not in headers:
        return False
    if expected is None:  # a void argument matches the key's presence
        return True
    actual = headers[key]
    if isinstance(actual, bytes) and isinstance(expected, str):
        actual = actual.decode("utf-8", "replace")
    if isinstance(expected, bytes) and isinstance(actual, str):
        expected = expected.decode("utf-8", "replace")
    return bool(actual == expected)


KINDS: dict[str, type[Exchange]] = {
    "direct": DirectExchange, "fanout": FanoutExchange, "topic": TopicExchange, "headers": HeadersExchange,
}

BUILTINS: tuple[tuple[str, str], ...] = (
    ("", "direct"), ("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
    ("amq.headers", "headers"), ("amq.match", "headers"),
)
