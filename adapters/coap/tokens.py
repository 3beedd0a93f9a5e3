"""Outgoing requests' tokens: aiocoap's token manager, keeping a token a request already has."""

from __future__ import annotations

from typing import Any

from aiocoap.tokenmanager import TokenManager


class TokenKeepingManager(TokenManager):
    """aiocoap's token manager, except that a request which already carries a token keeps it:
    RFC 7641 3.6 cancels an observation with a GET (Observe 1) on the observation's own token
    (aiocoap gives every request a new one; devices that match by token, as wakaama does,
    would otherwise keep notifying)."""

    def request(self, request: Any) -> Any:
        token = request.request.token
        if not token:
            return super().request(request)
        self.next_token = lambda: token  # type: ignore[method-assign]  # this one call only
        try:
            return super().request(request)
        finally:
            del self.next_token
