"""The states of an MQTT connection, shared by the connection and its login flow.

AWAIT_CONNECT -> (AUTHENTICATING | VERIFYING ->) CONNECTED -> CLOSED.
AUTHENTICATING is an MQTT 5 enhanced-auth exchange in progress; VERIFYING a
login waiting for its credential check or for its backoff deadline (no input
is processed meanwhile; see login.py).
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    AWAIT_CONNECT = "await-connect"
    AUTHENTICATING = "authenticating"
    VERIFYING = "verifying"
    CONNECTED = "connected"
    CLOSED = "closed"
