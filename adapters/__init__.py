"""Protocol adapters: each protocol's codec and state machine, and a thin asyncio layer."""

import core  # noqa: F401  (core's import guard decides compiled or source before any adapter loads)
