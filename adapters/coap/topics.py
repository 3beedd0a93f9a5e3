"""CoAP URI paths <-> topics: one Uri-Path segment per topic level, below a mount point (``/ps``).

- Each segment is percent-decoded once more (a client that sends ``%23`` in the
  option itself means ``#``), then the segments are joined with ``/``.
- ``+`` in a segment is the single-level wildcard and ``#`` (written ``%23``
  in a URI) the multi-level one; they are allowed only in an observe filter.
- An empty segment is an empty topic level (``/ps/a//b`` is ``a//b``).
- Going back, a topic's levels become Uri-Path / Location-Path segments as they
  are (options carry raw text), and link-format hrefs percent-encode them.
"""

from __future__ import annotations

from typing import Sequence
from urllib.parse import quote, unquote

from core.topics import InvalidTopic, validate_topic_filter, validate_topic_name

from adapters.coap.errors import BadTopic

__all__ = ["filter_from_path", "href_for_topic", "path_for_topic", "topic_from_path"]

_PCHAR_SAFE = "!$&'()*+,;=:@"  # RFC 3986 pchar minus unreserved (which quote keeps anyway)


def _join(segments: Sequence[str]) -> str:
    if not segments:
        raise BadTopic("no topic: the path must name one below the mount point, like /ps/sensors/t1")
    try:
        return "/".join(unquote(segment, errors="strict") for segment in segments)
    except UnicodeDecodeError:
        raise BadTopic("a path segment percent-decodes to invalid UTF-8") from None


def topic_from_path(segments: Sequence[str]) -> str:
    """The topic name a publish, read or delete addresses; raises BadTopic."""
    topic = _join(segments)
    try:
        validate_topic_name(topic)
    except InvalidTopic as exc:
        raise BadTopic(str(exc)) from None
    return topic


def filter_from_path(segments: Sequence[str]) -> str:
    """The topic filter an observe registration addresses; raises BadTopic."""
    topic_filter = _join(segments)
    try:
        validate_topic_filter(topic_filter)
    except InvalidTopic as exc:
        raise BadTopic(str(exc)) from None
    return topic_filter


def path_for_topic(mount: Sequence[str], topic: str) -> tuple[str, ...]:
    """Path segments (for Location-Path) of `topic` under `mount`."""
    return (*mount, *topic.split("/"))


def href_for_topic(mount: Sequence[str], topic: str) -> str:
    """A link-format href (``/ps/a/b``) for `topic`, each level percent-encoded."""
    return "/" + "/".join(quote(level, safe=_PCHAR_SAFE) for level in path_for_topic(mount, topic))
