"""The states of an MQTT connection, shared by the connection and its login flow.

AWAIT_CONNECT -> (AUTHENTICATING ->) CONNECTED -> CLOSED; AUTHENTICATING is
an MQTT 5 enhanced-auth exchange in progress.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    AWAIT_CONNECT = "await-connect"
    AUTHENTICATING = "authenticating"
    CONNECTED = "connected"
    CLOSED = "closed"
