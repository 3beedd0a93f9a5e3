"""Retained messages: the last retained message per topic, found by walking a tree of topic levels.

`match` follows the filter down the tree (a literal level is one dict lookup,
`+` visits every child at that level, `#` takes the whole subtree including the
node itself), so a filter with a literal prefix never scans unrelated topics.
Root wildcards skip first levels starting with `$` (MQTT-4.7.2-1).

Expired messages are treated as absent and pruned when a lookup meets them;
`prune_expired` sweeps the whole store for a periodic tick. Each pruned topic is
passed to `on_expired` (the broker deletes it from its store there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .message import Message

__all__ = ["RetainedStore"]


class _Level:
    """One topic level: its children and the message retained exactly here, if any."""

    __slots__ = ("children", "message")

    def __init__(self) -> None:
        self.children: dict[str, _Level] = {}
        self.message: Message | None = None


class RetainedStore:
    """The retained message of every topic that has one."""

    __slots__ = ("_root", "_count", "on_expired")

    def __init__(self) -> None:
        self._root = _Level()
        self._count = 0
        self.on_expired: Callable[[str], None] | None = None

    def set(self, message: Message) -> bool:
        """Retain `message` for its topic, replacing any; an empty payload deletes instead (MQTT-3.3.1-10).

        Returns True if the store changed. The message is kept as given.
        """
        if not message.payload:
            return self.delete(message.topic)
        node = self._root
        for level in message.topic.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Level()
            node = child
        if node.message is None:
            self._count += 1
        node.message = message
        return True

    def get(self, topic: str, now: float | None = None) -> Message | None:
        """The retained message of `topic`, or None (also when it has expired, which prunes it)."""
        node: _Level | None = self._root
        for level in topic.split("/"):
            node = node.children.get(level)  # type: ignore[union-attr]
            if node is None:
                return None
        message = node.message  # type: ignore[union-attr]
        if message is not None and message.is_expired(now):
            self._expire(topic)
            return None
        return message

    def delete(self, topic: str) -> bool:
        """Forget the retained message of `topic`; True if there was one. Empty levels are pruned."""
        node = self._root
        path: list[tuple[_Level, str]] = []
        for level in topic.split("/"):
            child = node.children.get(level)
            if child is None:
                return False
            path.append((node, level))
            node = child
        if node.message is None:
            return False
        node.message = None
        self._count -= 1
        while path and node.message is None and not node.children:
            parent, level = path.pop()
            del parent.children[level]
            node = parent
        return True

    def match(self, topic_filter: str, now: float | None = None) -> list[Message]:
        """Every unexpired retained message whose topic matches the (valid) `topic_filter`."""
        found: list[Message] = []
        current = [self._root]
        at_root = True
        for level in topic_filter.split("/"):
            if level == "#":
                stack: list[_Level] = []
                for node in current:
                    if at_root:
                        # `#` as first level: every topic except those starting with `$`.
                        stack.extend(child for name, child in node.children.items() if name[:1] != "$")
                    else:
                        stack.append(node)
                while stack:
                    node = stack.pop()
                    if node.message is not None:
                        found.append(node.message)
                    stack.extend(node.children.values())
                return self._drop_expired(found, now)
            following: list[_Level] = []
            if level == "+":
                for node in current:
                    if at_root:
                        following.extend(child for name, child in node.children.items() if name[:1] != "$")
                    else:
                        following.extend(node.children.values())
            else:
                for node in current:
                    child = node.children.get(level)
                    if child is not None:
                        following.append(child)
            if not following:
                return []
            current = following
            at_root = False
        for node in current:
            if node.message is not None:
                found.append(node.message)
        return self._drop_expired(found, now)

    def prune_expired(self, now: float | None = None) -> int:
        """Delete every expired message; returns how many were deleted."""
        expired = [message.topic for message in self._messages() if message.is_expired(now)]
        for topic in expired:
            self._expire(topic)
        return len(expired)

    def _expire(self, topic: str) -> None:
        if self.delete(topic) and self.on_expired is not None:
            self.on_expired(topic)


    def __len__(self) -> int:
        """Number of retained messages held, including expired ones not yet pruned."""
        return self._count

    def __iter__(self) -> Iterator[Message]:
        """Every unexpired retained message, from a snapshot taken now."""
        return iter([message for message in self._messages() if not message.is_expired()])

    def _messages(self) -> list[Message]:
        found: list[Message] = []
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.message is not None:
                found.append(node.message)
            stack.extend(node.children.values())
        return found

    def _drop_expired(self, messages: list[Message], now: float | None) -> list[Message]:
        """`messages` without the expired ones, which are deleted from the store."""
        live: list[Message] = []
        for message in messages:
            if message.expiry is not None and message.is_expired(now):
                self._expire(message.topic)
            else:
                live.append(message)
        return live
