"""The gateway: app, config, CLI, admin API, cluster, bridges."""

import core  # noqa: F401  (core's import guard decides compiled or source before any gateway module loads)
