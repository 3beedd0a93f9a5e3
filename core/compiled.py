"""The optional compiled hot path: which modules mypyc compiles, and whether this process runs them.

`HOT_MODULES` (codecs, trie, router, door, session delivery, retained messages, the SQLite
store's queue, the CoAP publish fast path, and what every connection goes through once:
transport drivers, the connection gate, the MQTT login, ACL views and the session registry)
are compiled together by ``scripts/build_hot_path.py`` into one extension group:
``core/hotpath__mypyc*.so`` plus a small extension beside each module. Python prefers an
extension to a ``.py`` of the same name, so a built tree runs compiled, and the ``.py`` files
stay the reference and the fallback.

`install_guard` (run by ``core/__init__``, before any hot module loads) makes the whole group
load from source instead when ``ROSETTAMQ_PURE=1``, or when a hot module's source is newer than
the build (an edit not rebuilt yet). All or none: compiled modules call each other natively, so
one module from source beside compiled callers would run two versions of the code.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

HOT_MODULES: tuple[str, ...] = (
    "core.message",
    "core.topics",
    "core.trie",
    "core.traffic",
    "core.router",
    "core.door",
    "core.session_parts",
    "core.sessions",
    "core.session_loading",  # every attach asks it for a queue waiting in the store
    "core.outbox",
    "core.budget",
    "core.flow",
    "core.broker",
    "core.retained",
    "core.stores.codec",
    "core.stores.sqlite_batch",
    "core.stores.sqlite",
    "gateway.cluster.envelope",
    "gateway.cluster.forwarding",  # every local message of a node in a cluster
    "gateway.cluster.flow",  # every message another node sends passes its holds
    "adapters.mqtt.settings",  # read by every CONNECT, SUBSCRIBE and PUBLISH
    "adapters.mqtt.properties",
    "adapters.mqtt.decoder",
    "adapters.mqtt.encoder",
    "adapters.mqtt.outbound",
    "adapters.mqtt.connection",
    "adapters.mqtt.handlers",
    "adapters.deadlines",
    "adapters.driver",
    "adapters.mqtt.server",
    "adapters.mqtt.login",
    "adapters.mqtt.connect",
    "core.session_registry",
    "core.principal",
    "core.limits",  # every accepted connection is admitted and released at its listener's gate
    "core.acl",  # every login asks it for the client's ACL view, every delivery to a client with one
    "core.acl_tokens",  # (its TokenAccess is a ClientAccess: compiled, annotations are checked)
    "adapters.peer",
    "adapters.amqp.server",
    # The CoAP publish fast path and what it calls per datagram. Not adapters.coap.exchange:
    # compiled, it crashed the garbage collector (a segfault) in a block-wise exchange.
    "adapters.coap.fast_path",
    "adapters.coap.fast_publish",
    "adapters.coap.query",
    "adapters.coap.topics",
    "adapters.coap.pubsub",
    "adapters.coap.access",
)
GROUP = "core.hotpath"  # the shared library: core/hotpath__mypyc.<tag>.so
ROOT = Path(__file__).resolve().parent.parent
PURE_ENV = "ROSETTAMQ_PURE"


def source_path(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def extension_paths(module: str, root: Path = ROOT) -> list[Path]:
    """The built extensions of `module` for this interpreter (none when not built)."""
    base = root.joinpath(*module.split("."))
    return [base.with_name(base.name + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if base.with_name(base.name + suffix).exists()]


def group_library(root: Path = ROOT) -> Path | None:
    found = extension_paths(GROUP + "__mypyc", root)
    return found[0] if found else None


def group_manifest(root: Path = ROOT) -> Path:
    """The modules the built group holds, one per line (written by the build)."""
    return root.joinpath(*GROUP.split(".")).with_name(GROUP.rsplit(".", 1)[-1] + "__mypyc.modules")


def build_is_current(root: Path = ROOT, modules: Sequence[str] = HOT_MODULES) -> bool:
    """True when the group was built from exactly `modules`, each has its extension, and none
    is older than its source."""
    if group_library(root) is None:
        return False
    manifest = group_manifest(root)
    if not manifest.exists() or manifest.read_text().split() != list(modules):
        return False
    for module in modules:
        built = extension_paths(module, root)
        if not built or built[0].stat().st_mtime < source_path(module, root).stat().st_mtime:
            return False
    return True


def running_compiled(module: ModuleType) -> bool:
    """Whether `module` was loaded from an extension."""
    return not str(getattr(module, "__file__", "")).endswith(".py")


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Loads the hot modules from their .py files, past any extension beside them."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in HOT_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def wants_pure() -> bool:
    """ROSETTAMQ_PURE=1, or a build that is missing, partial or older than the sources."""
    return os.environ.get(PURE_ENV, "") not in ("", "0") or not build_is_current()


def install_guard() -> None:
    if wants_pure() and not any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())
