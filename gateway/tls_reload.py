"""The TLS contexts of the listeners, kept so that SIGHUP can load renewed certificates.

A context's certificate chain and CA are loaded again in place: connections opened after the
reload get the new certificate, open ones keep theirs. A new certificate that does not load
(a missing file, a key that does not match) is refused whole, with an error line, and the
listener keeps serving the old one.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

log = logging.getLogger("rosettamq.gateway")


class TLSContexts:
    """One `ssl.SSLContext` per TLS listener, made from its config section (`ssl_context()`)."""

    def __init__(self) -> None:
        self._contexts: dict[str, tuple[ssl.SSLContext, Any]] = {}

    def context(self, name: str, section: Any) -> ssl.SSLContext:
        ctx = section.ssl_context()
        self._contexts[name] = (ctx, section)
        return ctx

    def reload(self) -> bool:
        """Load every listener's certificate files again; False if one kept its old certificate."""
        ok = True
        for name, (ctx, section) in self._contexts.items():
            try:
                section.ssl_context()  # a scratch context first: a bad pair must not half-load
                ctx.load_cert_chain(section.certfile, section.keyfile)
                if section.cafile:
                    ctx.load_verify_locations(cafile=section.cafile)
            except (OSError, ssl.SSLError, ValueError) as exc:
                ok = False
                log.error("tls reload failed listener=%s: %s; keeping the current certificate", name, exc)
                continue
            log.info("tls certificate reloaded listener=%s certfile=%s", name, section.certfile)
        return ok
