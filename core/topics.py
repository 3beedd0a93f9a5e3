"""Topic names and topic filters in MQTT syntax, the canonical syntax of every protocol.

Adapters translate their own addressing (AMQP routing keys, CoAP paths) into
these strings; the router, the subscription trie and the retained store only
ever see MQTT-style topics. Rules follow MQTT 5.0 section 4.7 (topic names and
filters) and 4.8.2 (shared subscriptions).

`topic_matches` is the plain reference matcher: the trie and the retained store
are tested against it.
"""

from __future__ import annotations

from typing import Final

MAX_TOPIC_BYTES: Final = 65535
SHARE_PREFIX: Final = "$share/"
# Filters found valid, with what `parse_shared_filter` makes of them. A SUBSCRIBE's filter is checked
# by the adapter, the router, the trie and the retained lookup, and again when it is removed: once
# is enough. Restarted when full, as the router's match cache is; only filters of up to
# PARSED_MAX_CHARS are kept, so a client's long filters cannot make it hold more than about 1 MiB.
_PARSED: Final[dict[str, tuple[str | None, str]]] = {}
PARSED_KEPT: Final = 4096
PARSED_MAX_CHARS: Final = 256

__all__ = [
    "InvalidTopic",
    "MAX_TOPIC_BYTES",
    "SHARE_PREFIX",
    "is_wildcard",
    "parse_shared_filter",
    "topic_matches",
    "validate_topic_filter",
    "validate_topic_name",
]


class InvalidTopic(ValueError):
    """A topic name or topic filter that breaks MQTT's syntax rules."""


def _check_common(text: str, kind: str) -> None:
    """Checks shared by names and filters: non-empty, no NUL, valid UTF-8, size."""
    if not text:
        raise InvalidTopic(f"{kind} must not be empty")
    if "\x00" in text:
        raise InvalidTopic(f"{kind} must not contain U+0000")
    # encode() measures the wire size and rejects lone surrogates in one step.
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidTopic(f"{kind} is not valid UTF-8: {exc.reason}") from None
    if size > MAX_TOPIC_BYTES:
        raise InvalidTopic(f"{kind} is {size} bytes long, more than {MAX_TOPIC_BYTES}")


def validate_topic_name(topic: str) -> None:
    """Raise InvalidTopic unless `topic` may be published to (no wildcards)."""
    _check_common(topic, "topic name")
    if "+" in topic or "#" in topic:
        raise InvalidTopic(f"topic name {topic!r} must not contain wildcards '+' or '#'")


def validate_topic_filter(topic_filter: str) -> None:
    """Raise InvalidTopic unless `topic_filter` is a well-formed subscription filter."""
    if topic_filter in _PARSED:  # (a valid shared filter is a valid filter too)
        return
    _check_common(topic_filter, "topic filter")
    if "+" not in topic_filter and "#" not in topic_filter:
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level:
            if level != "#":
                raise InvalidTopic(
                    f"topic filter {topic_filter!r}: '#' must occupy a whole level"
                )
            if index != last:
                raise InvalidTopic(
                    f"topic filter {topic_filter!r}: '#' must be the last level"
                )
        elif "+" in level and level != "+":
            raise InvalidTopic(
                f"topic filter {topic_filter!r}: '+' must occupy a whole level"
            )


def parse_shared_filter(topic_filter: str) -> tuple[str | None, str]:
    """Split `$share/{group}/{filter}` into (group, filter); other filters give (None, filter).

    Both forms are validated; a malformed shared filter raises InvalidTopic.
    """
    found = _PARSED.get(topic_filter)
    if found is not None:
        return found
    parsed = _parse_shared_filter(topic_filter)
    if len(topic_filter) <= PARSED_MAX_CHARS:
        if len(_PARSED) >= PARSED_KEPT:
            _PARSED.clear()
        _PARSED[topic_filter] = parsed
    return parsed


def _parse_shared_filter(topic_filter: str) -> tuple[str | None, str]:
    if not topic_filter.startswith(SHARE_PREFIX):
        validate_topic_filter(topic_filter)
        return None, topic_filter
    group, slash, inner = topic_filter[len(SHARE_PREFIX):].partition("/")
    if not group:
        raise InvalidTopic(f"shared filter {topic_filter!r} has an empty share name")
    if "+" in group or "#" in group or "\x00" in group:
        raise InvalidTopic(
            f"shared filter {topic_filter!r}: share name must not contain '+', '#' or U+0000"
        )
    if not slash or not inner:
        raise InvalidTopic(f"shared filter {topic_filter!r} has no topic filter after the share name")
    _check_common(topic_filter, "shared filter")
    validate_topic_filter(inner)
    return group, inner


def topic_matches(topic_filter: str, topic: str) -> bool:
    """True if the (valid) `topic_filter` matches the (valid) topic name `topic`.

    `#` also matches its parent level (`a/#` matches `a`), `+` matches an empty
    level, and a filter starting with a wildcard never matches a topic starting
    with `$` (MQTT-4.7.2-1).
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    topic_depth = len(topic_levels)
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= topic_depth:
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == topic_depth


def is_wildcard(topic_filter: str) -> bool:
    """True if the filter contains `+` or `#` and so may match more than one topic."""
    return "+" in topic_filter or "#" in topic_filter
