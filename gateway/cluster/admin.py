"""The admin API over the whole cluster: every node's clients, and kicking one wherever it is.

With `rosettamq run --workers N` the kernel spreads clients over the workers, and in a cluster
over machines: an operator asking one node's admin API for the clients means every node's.
Each node answers on ``<prefix>.ctl.admin.<node>`` (request/reply, JSON):

    {"op": "clients", "protocol": null}   ->  {"clients": [...]}   (gateway/clients.py's objects)
    {"op": "kick", "id": "c1", "protocol": null}  ->  {"kicked": ["mqtt"]}

`ClusterAdmin.clients` asks every node in the view at once and waits `TIMEOUT` at most; a node
that does not answer is named in `missing`, never waited for longer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

log = logging.getLogger("rosettamq.cluster")

TIMEOUT = 1.0  # seconds each node has to answer

Answer = Callable[[dict[str, Any]], dict[str, Any]]


class ClusterAdmin:
    """This node's answers to the others, and its questions to them."""

    def __init__(self, node: str, prefix: str, answer: Answer, nodes: Callable[[], list[str]]) -> None:
        self.node = node
        self.prefix = prefix
        self.answer = answer  # this node's answer to a request (gateway/app.py's admin_answer)
        self.nodes = nodes  # the other nodes in the view
        self._conn: Any = None

    def subject(self, node: str) -> str:
        return f"{self.prefix}.ctl.admin.{node}"

    async def start(self, conn: Any) -> None:
        self._conn = conn
        await conn.subscribe(self.subject(self.node), cb=self._on_request)

    async def _on_request(self, msg: Any) -> None:
        try:
            request = json.loads(msg.data)
            reply = self.answer(request if isinstance(request, dict) else {})
        except (ValueError, TypeError, KeyError) as exc:
            reply = {"error": repr(exc)}
        try:
            await msg.respond(json.dumps(reply).encode())
        except Exception as exc:
            log.debug("cluster: admin answer not sent: %r", exc)

    async def ask_all(self, request: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Every other node's answer, by node name, and the nodes that did not answer in time."""
        others = [node for node in self.nodes() if node != self.node]
        if self._conn is None or not self._conn.is_connected or not others:
            return {}, others
        data = json.dumps(request).encode()
        replies = await asyncio.gather(*(self._conn.request(self.subject(node), data, timeout=TIMEOUT)
                                         for node in others), return_exceptions=True)
        answers: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for node, reply in zip(others, replies):
            try:
                if isinstance(reply, BaseException):
                    raise reply
                answers[node] = json.loads(reply.data)
            except Exception:
                missing.append(node)
        return answers, missing

    async def clients(self, protocol: str | None) -> tuple[list[dict[str, Any]], list[str]]:
        """The clients of every other node (each with its "node"), and the nodes that did not answer."""
        answers, missing = await self.ask_all({"op": "clients", "protocol": protocol})
        out = [dict(client, node=node) for node, answer in answers.items() for client in answer.get("clients", [])]
        return out, missing

    async def kick(self, client_id: str, protocol: str | None) -> list[str]:
        """Kick `client_id` on every other node; the protocols kicked anywhere."""
        answers, _ = await self.ask_all({"op": "kick", "id": client_id, "protocol": protocol})
        return [protocol for answer in answers.values() for protocol in answer.get("kicked", [])]
