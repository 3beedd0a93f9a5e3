"""Observations the server holds on one device, and auto-observe on registration.

`ObservationTable` remembers, per CoAP token, the observe `Command` whose
notifications arrive with that token: ``by_token`` finds the command to
answer a notification with (``answers.notify_answer``), ``by_path`` finds the
token a cancel-observe must reuse (RFC 7641 3.6: GET with Observe=1 and the
same token), and ``accept`` drops notifications that arrive out of order
(RFC 7641 3.4). `auto_observe_commands` builds the observe commands of the
configured paths a freshly registered device announced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Iterator

from .commands import Command, translate_command
from .errors import CommandError
from .objects import ObjectRegistry
from .paths import Path, is_prefix, parse_path
from .registrations import Registration

__all__ = ["Observation", "ObservationTable", "is_fresher", "auto_observe_commands"]

_HALF_RANGE = 1 << 23      # RFC 7641 3.4: sequence numbers are 24-bit
_REORDER_WINDOW = 128.0    # seconds after which any notification counts as newer


def is_fresher(old_seq: int, old_at: float, new_seq: int, new_at: float) -> bool:
    """RFC 7641 3.4: is notification (new_seq, new_at) newer than (old_seq, old_at)?"""
    return ((old_seq < new_seq and new_seq - old_seq < _HALF_RANGE)
            or (old_seq > new_seq and old_seq - new_seq > _HALF_RANGE)
            or new_at > old_at + _REORDER_WINDOW)


@dataclass(frozen=True, slots=True)
class Observation:
    """An observation: its token, the command that started it, the last notification seen."""

    token: bytes
    command: Command
    last_seq: int | None = None
    last_at: float | None = None


class ObservationTable:
    """The observations of one device, by token and by observed path."""

    def __init__(self) -> None:
        self._by_token: dict[bytes, Observation] = {}

    def __iter__(self) -> Iterator[Observation]:
        return iter(list(self._by_token.values()))

    def __len__(self) -> int:
        return len(self._by_token)

    def add(self, token: bytes, command: Command) -> Observation | None:
        """Record an accepted observation; returns the one it replaces on the same path."""
        replaced = self.by_path(command.path, command.paths)
        if replaced is not None:
            del self._by_token[replaced.token]
        self._by_token[token] = Observation(token, command)
        return replaced

    def by_token(self, token: bytes) -> Observation | None:
        return self._by_token.get(token)

    def by_path(self, path: Path, paths: tuple[Path, ...] = ()) -> Observation | None:
        """The observation of `path` (composite: of exactly `paths`, with `path` ())."""
        for observation in self._by_token.values():
            if observation.command.path == path and observation.command.paths == paths:
                return observation
        return None

    def remove(self, token: bytes) -> Observation | None:
        """Forget an observation (cancelled, RST, or an error answer)."""
        return self._by_token.pop(token, None)

    def clear(self) -> list[Observation]:
        """Forget them all (the device deregistered or re-registered)."""
        observations = list(self._by_token.values())
        self._by_token.clear()
        return observations

    def accept(self, token: bytes, seq: int | None, now: float) -> bool:
        """Whether a notification should be published (known token, not older than the last)."""
        observation = self._by_token.get(token)
        if observation is None:
            return False
        if seq is not None and observation.last_seq is not None and observation.last_at is not None \
                and not is_fresher(observation.last_seq, observation.last_at, seq, now):
            return False
        self._by_token[token] = replace(observation, last_seq=seq, last_at=now)
        return True


def auto_observe_commands(registration: Registration, paths: Iterable[str],
                          registry: ObjectRegistry | None = None) -> list[Command]:
    """Observe commands for the configured `paths` the device's object list covers.

    ``/3303/0/5700`` is observed when the device announced ``</3303>`` or
    ``</3303/0>``; the commands carry ``"autoObserve": true`` so their answers
    can be told apart from a user's.
    """
    commands = []
    for text in paths:
        try:
            path = parse_path(text)
        except ValueError as exc:
            raise CommandError(f"auto-observe path {text!r}: {exc}") from None
        if any(is_prefix(link.path, path) for link in registration.objects):
            raw = {"msgType": "observe", "autoObserve": True, "data": {"path": text}}
            commands.append(translate_command(raw, registration, registry))
    return commands
