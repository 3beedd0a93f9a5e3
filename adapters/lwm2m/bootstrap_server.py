"""``/bs``: the bootstrap server's CoAP resource and its sessions (the thin layer over `bootstrap`).

A Bootstrap-Request is answered 2.04 when a configuration exists for the endpoint: the
file ``{bootstrap_dir}/{ep}.json``, else ``[lwm2m.bootstrap]``; 4.00 otherwise. A session
then sends `bootstrap.bootstrap_requests` one at a time to the address the request came
from, and publishes on ``{prefix}/{ep}/up/bootstrap`` that it was requested, and then
finished or failed (with the step and the client's code). A client that does not answer
a step within ``command_timeout`` fails the session with ``coap_timeout``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

from aiocoap import Message as CoAPMessage
from aiocoap import error as coap_error
from aiocoap.numbers.codes import Code
from aiocoap.resource import Resource

from .bootstrap import BootstrapConfig, BootstrapConfigError, bootstrap_message, bootstrap_requests, \
    parse_bootstrap_config, parse_bootstrap_request
from .coap import CoapRequest, code_text, is_success
from .device import coap_message
from .errors import LwM2MError
from .formats import ContentFormat
from .topics import bootstrap_topic

if TYPE_CHECKING:
    from .server import LwM2MServer

log = logging.getLogger("rosettamq.lwm2m")

__all__ = ["BootstrapResource", "load_bootstrap_config"]


def load_bootstrap_config(directory: str | None, endpoint: str,
                          default: BootstrapConfig | None) -> BootstrapConfig | None:
    """The endpoint's own file in `directory` if there is one, else `default`."""
    if directory is not None:
        try:
            with open(os.path.join(directory, endpoint + ".json"), encoding="utf-8") as file:
                return parse_bootstrap_config(json.load(file))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:  # BootstrapConfigError is a ValueError, as is bad JSON
            log.warning("bootstrap configuration of endpoint=%s unusable: %s", endpoint, exc)
            return None
    return default


class BootstrapResource(Resource):
    """POST ``/bs?ep=..[&pct=..]`` (Bootstrap-Request)."""

    def __init__(self, server: "LwM2MServer") -> None:
        super().__init__()
        self.server = server

    def get_link_description(self) -> None:
        return None

    async def render_post(self, request: CoAPMessage) -> CoAPMessage:
        try:
            endpoint, fmt = parse_bootstrap_request(request.opt.uri_query)
        except LwM2MError as exc:
            return CoAPMessage(code=Code.BAD_REQUEST, payload=str(exc).encode("utf-8"))
        settings = self.server.settings
        config = load_bootstrap_config(settings.bootstrap_dir, endpoint, settings.bootstrap)
        if config is None:
            return CoAPMessage(code=Code.BAD_REQUEST, payload=b"no bootstrap configuration for this endpoint")
        try:
            requests = bootstrap_requests(config, fmt, settings.registry)
        except (LwM2MError, BootstrapConfigError) as exc:
            log.warning("bootstrap of endpoint=%s cannot be written: %s", endpoint, exc)
            return CoAPMessage(code=Code.INTERNAL_SERVER_ERROR)
        self._publish(endpoint, bootstrap_message("requested", format=int(fmt or ContentFormat.TLV)))
        self.server.spawn(self._session(endpoint, requests, request.remote), f"lwm2m bootstrap {endpoint}")
        return CoAPMessage(code=Code.CHANGED)

    async def _session(self, endpoint: str, requests: list[CoapRequest], remote: Any) -> None:
        timeout = self.server.settings.command_timeout
        for step in requests:
            where = {"method": step.method, "path": "/" + "/".join(step.path)}
            try:
                _, reply = await self.server.exchange(coap_message(step, remote), timeout)
            except (TimeoutError, coap_error.Error) as exc:
                log.info("bootstrap of endpoint=%s failed at %s: %s", endpoint, where, exc)
                self._publish(endpoint, bootstrap_message("failed", **where, code="5.04", codeMsg="coap_timeout"))
                return
            code = code_text(int(reply.code))
            if not is_success(code) and not (step.method == "DELETE" and code == "4.04"):
                self._publish(endpoint, bootstrap_message("failed", **where, code=code))
                return
        log.info("bootstrap finished endpoint=%s", endpoint)
        self._publish(endpoint, bootstrap_message("finished"))

    def _publish(self, endpoint: str, message: dict[str, Any]) -> None:
        self.server.publish(endpoint, bootstrap_topic(endpoint, self.server.settings.prefix), message)
