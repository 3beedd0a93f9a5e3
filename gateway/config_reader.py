"""Reading one TOML table of the configuration: typed values, resolved paths, and unknown keys
refused with the closest known name (gateway/config.py reads every section through it)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, NoReturn

from gateway.config_sections import _ORIGIN, _TOML_TYPES, ConfigError, ListenAddress, _toml_type, parse_listen


def reject_unknown(kind: str, names: list[str], known: list[str]) -> NoReturn:
    parts = []
    for name in sorted(names):
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(f"unknown {kind}: {', '.join(parts)}; known: {', '.join(known)}")


class Section:
    """Typed reads from one TOML table; `done()` rejects keys never read."""

    def __init__(self, name: str, data: Any, base_dir: Path | None) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"[{name}]: expected a table, got {_toml_type(data)}")
        self.name, self.data, self.base_dir = name, data, base_dir
        self.known: list[str] = []

    def _get(self, key: str, kind: type, default: Any) -> Any:
        self.known.append(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if type(value) is not kind:  # exact: a boolean is not an integer
            raise ConfigError(f"{self.name}.{key}: expected {_TOML_TYPES[kind]}, "
                              f"got {_toml_type(value)} {value!r}")
        return value

    def boolean(self, key: str, default: bool | None) -> bool | None:
        return self._get(key, bool, default)

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value: int = self._get(key, int, default)
        if not lo <= value <= hi:
            raise ConfigError(f"{self.name}.{key}: must be from {lo} to {hi}, got {value}")
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        """A float; an integer is accepted too (``rate = 5`` means 5.0)."""
        self.known.append(key)
        value = self.data.get(key, default)
        if type(value) not in (int, float):
            raise ConfigError(f"{self.name}.{key}: expected float, got {_toml_type(value)} {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(f"{self.name}.{key}: must be from {lo} to {hi}, got {value}")
        return float(value)

    def string(self, key: str, default: str | None) -> str | None:
        return self._get(key, str, default)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default).lower()  # type: ignore[union-attr]
        if value not in choices:
            raise ConfigError(f"{self.name}.{key}: must be one of {', '.join(choices)}, got {value!r}")
        return value

    def origins(self, key: str) -> tuple[str, ...]:
        """An array of web origins like ``"https://example.com:8443"`` (no path, no slash)."""
        value = self._get(key, list, [])
        for item in value:
            if not isinstance(item, str) or not _ORIGIN.fullmatch(item):
                raise ConfigError(f'{self.name}.{key}: expected origins like "https://example.com", got {item!r}')
        return tuple(value)

    def url_path(self, key: str, default: str) -> str:
        value: str = self.string(key, default)  # type: ignore[assignment]
        if not value.startswith("/"):
            raise ConfigError(f'{self.name}.{key}: must start with "/", got {value!r}')
        return value

    def listen(self, default: ListenAddress) -> ListenAddress:
        value = self.string("listen", None)
        return default if value is None else parse_listen(value, f"{self.name}.listen")

    def path(self, key: str) -> str | None:
        value = self.string(key, None)
        return None if value is None else self.resolve(key, value)

    def resolve(self, key: str, value: str) -> str:
        """Expand ``~`` and make a relative path relative to the config's folder."""
        if not value.strip():
            raise ConfigError(f"{self.name}.{key}: must not be empty")
        path = Path(os.path.expanduser(value))
        if self.base_dir is not None and not path.is_absolute():
            path = self.base_dir / path
        return str(path)

    def require_file(self, key: str, path: str | None) -> None:
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{self.name}.{key}: file not found: {path}")

    def done(self) -> None:
        extra = [k for k in self.data if k not in self.known]
        if extra:
            reject_unknown(f"key in [{self.name}]", extra, self.known)
