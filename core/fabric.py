"""The cluster fabric as the core sees it: interest out, messages out, messages in. No I/O.

Several gateway nodes act as one when a `Fabric` joins their routers (gateway/cluster/ has
the NATS implementation; single-node mode uses `NO_FABRIC`, which does nothing):

- the router tells it when a topic filter gains its first local subscriber and loses its
  last one (`interest_added` / `interest_removed`, reference-counted per filter, and per
  share group for shared subscriptions), so a node receives only what its subscribers need;
- the door hands it every message published on this node (`forward`) after routing it
  locally; messages that came from the fabric are never forwarded again (no echo, no loops).
  `forward` may answer with a receiver the producer should wait on (core/flow.py's
  `Drainable`): subscribers of the topic on another node whose outboxes are behind, so a
  publisher is held across the cluster as it is by a congested subscriber on its own node;
- the fabric hands remote messages back through the door (`Door.publish_remote`), which
  validates them and routes them locally without the ACL (they were authorized on the node
  they were published on);
- retained messages set or cleared on this node are passed on (`retained_changed`), so every
  node serves the same retained messages.

Shared subscriptions: with a fabric that `shares_across_nodes`, a local publish does not pick
a share-group member itself; the fabric's queue groups pick one member in the whole cluster.

Sessions: with a fabric that `claims_sessions`, a CONNECT first claims its client id in the
whole cluster (`claim_session`, awaited by the adapter off its state machine): exactly one node
holds a session at a time, and the node that held it hands it over (core/session_handover.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Protocol

from core.flow import Drainable
from core.message import Message

if TYPE_CHECKING:
    from core.session_handover import SessionSnapshot


@dataclass(frozen=True, slots=True)
class SessionClaim:
    """What claiming a client id in the cluster gave: the session another node handed over (None:
    nothing to resume from elsewhere), or a refusal (`refused`: it belongs to another user there)."""

    snapshot: SessionSnapshot | None = None
    refused: bool = False
    owner: str | None = None  # the user who owns it, when refused


class Fabric(Protocol):
    """What the router and the door tell the cluster."""

    @property
    def shares_across_nodes(self) -> bool: ...

    def interest_added(self, topic_filter: str, share_group: str | None) -> None: ...

    def interest_removed(self, topic_filter: str, share_group: str | None) -> None: ...

    def forward(self, message: Message) -> Drainable | None: ...

    def retained_changed(self, message: Message, cleared: bool) -> None: ...

    @property
    def claims_sessions(self) -> bool: ...

    def claim_session(self, client_id: str, username: str | None, clean_start: bool) -> Awaitable[SessionClaim]: ...


class NoFabric:
    """Single-node mode: nothing leaves the node."""

    shares_across_nodes = False
    claims_sessions = False

    def interest_added(self, topic_filter: str, share_group: str | None) -> None:
        pass

    def interest_removed(self, topic_filter: str, share_group: str | None) -> None:
        pass

    def forward(self, message: Message) -> Drainable | None:
        return None

    def retained_changed(self, message: Message, cleared: bool) -> None:
        pass

    async def claim_session(self, client_id: str, username: str | None, clean_start: bool) -> SessionClaim:
        return SessionClaim()


NO_FABRIC = NoFabric()
