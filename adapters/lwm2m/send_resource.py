"""``/dp``: the CoAP resource LwM2M 1.1 devices Send to (the thin layer over `send`).

The sender is the registered device whose latest Register or Update came from the
request's source address; an unknown address is answered 4.04 Not Found, as the
device must register first. Everything else is `device.DeviceLink.sent`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiocoap import Message as CoAPMessage
from aiocoap.numbers.codes import Code
from aiocoap.resource import Resource

from .coap import code_number

if TYPE_CHECKING:
    from .server import LwM2MServer

__all__ = ["SendResource"]


class SendResource(Resource):
    """POST ``/dp`` (Send); any other method 4.05."""

    def __init__(self, server: "LwM2MServer") -> None:
        super().__init__()
        self.server = server

    def get_link_description(self) -> None:
        return None  # not listed in /.well-known/core

    async def render_post(self, request: CoAPMessage) -> CoAPMessage:
        link = self.server.device_at(request.remote)
        if link is None:
            return CoAPMessage(code=Code.NOT_FOUND, payload=b"no registration from this address")
        content_format = request.opt.content_format
        response = link.sent(None if content_format is None else int(content_format),
                             bytes(request.payload), self.server.now())
        self.server.rearm()
        return CoAPMessage(code=Code(code_number(response.code)), payload=response.payload)
