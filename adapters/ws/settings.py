"""The WebSocket listener's options, as one value (built by the gateway from ``[ws]`` / ``[wss]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True, slots=True)
class WSSettings:
    """What one WebSocket listener accepts.

    `max_frame_size` is the largest frame payload read (the gateway sets it to
    the MQTT maximum packet size); messages are not reassembled, so their size
    is bounded only by MQTT's own packet limit. `ping_interval` 0 sends no
    pings. Times are in seconds.
    """

    path: str = "/mqtt"
    allowed_origins: tuple[str, ...] = ()  # empty: any origin
    trust_proxy: bool = False
    max_frame_size: int = 1024 * 1024
    ping_interval: float = 20.0
    handshake_timeout: float = 10.0
    close_timeout: float = 5.0
    # Bearer tokens on the upgrade: token -> user, or None for an unknown token. None: not used.
    token_user: Callable[[str], str | None] | None = None
    # OAuth 2.0 access tokens on the upgrade ([auth.jwt]): False for one refused at once, True when the
    # CONNECT's login is to check it (as its password). None: not used.
    access_token: Callable[[str], bool] | None = None
