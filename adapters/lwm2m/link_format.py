"""CoRE Link Format (RFC 6690), as registration and Discover payloads use it.

``</1/0>,</3/0>;ver=1.1,</>;rt="oma.lwm2m";ct=11543``: links are separated
by commas outside ``<...>`` and quoted strings; each is ``<target>`` then
``;name`` or ``;name=value`` parameters (values possibly quoted).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ContentError

__all__ = ["Link", "split_links", "parse_link", "parse_link_format"]


@dataclass(frozen=True, slots=True)
class Link:
    """One link: its target and its parameters in order (value None for a bare name)."""

    target: str
    params: tuple[tuple[str, str | None], ...] = ()

    def param(self, name: str) -> str | None:
        """The first value of parameter `name` (None when absent or bare)."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.params)


def split_links(text: str) -> list[str]:
    """The raw text of each link, commas inside ``<>`` or quotes kept."""
    links, current = [], []
    in_target = in_quote = False
    for char in text:
        if in_quote:
            in_quote = char != '"'
        elif char == '"':
            in_quote = True
        elif char == "<":
            in_target = True
        elif char == ">":
            in_target = False
        elif char == "," and not in_target:
            links.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if in_quote or in_target:
        raise ContentError(f"link format has an unterminated {'quote' if in_quote else '<'}")
    links.append("".join(current).strip())
    return [link for link in links if link]


def _split_params(text: str) -> list[str]:
    parts, current, in_quote = [], [], False
    for char in text:
        if char == '"':
            in_quote = not in_quote
        elif char == ";" and not in_quote:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def parse_link(raw: str) -> Link:
    """Parse one link's text; ContentError when it has no ``<target>``."""
    raw = raw.strip()
    if not raw.startswith("<") or ">" not in raw:
        raise ContentError(f"link {raw!r} does not start with <target>")
    end = raw.index(">")
    target = raw[1:end].strip()
    params = []
    rest = raw[end + 1:].strip()
    if rest and not rest.startswith(";"):
        raise ContentError(f"link {raw!r}: expected ';' after the target")
    for part in _split_params(rest)[1:] if rest else []:
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not name:
            raise ContentError(f"link {raw!r} has a parameter without a name")
        if not sep:
            params.append((name, None))
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params.append((name, value))
    return Link(target, tuple(params))


def parse_link_format(text: str) -> list[Link]:
    """Every link of a link-format document."""
    return [parse_link(raw) for raw in split_links(text)]
