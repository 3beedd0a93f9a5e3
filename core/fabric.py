"""The cluster fabric as the core sees it: interest out, messages out, messages in. No I/O.

Several gateway nodes act as one when a `Fabric` joins their routers (gateway/cluster/ has
the NATS implementation; single-node mode uses `NO_FABRIC`, which does nothing):

- the router tells it when a topic filter gains its first local subscriber and loses its
  last one (`interest_added` / `interest_removed`, reference-counted per filter, and per
  share group for shared subscriptions), so a node receives only what its subscribers need;
- the door hands it every message published on this node (`forward`) after routing it
  locally; messages that came from the fabric are never forwarded again (no echo, no loops);
- the fabric hands remote messages back through the door (`Door.publish_remote`), which
  validates them and routes them locally without the ACL (they were authorized on the node
  they were published on);
- retained messages set or cleared on this node are passed on (`retained_changed`), so every
  node serves the same retained messages.

Shared subscriptions: with a fabric that `shares_across_nodes`, a local publish does not pick
a share-group member itself; the fabric's queue groups pick one member in the whole cluster.
"""

from __future__ import annotations

from typing import Protocol

from core.message import Message


class Fabric(Protocol):
    """What the router and the door tell the cluster."""

    @property
    def shares_across_nodes(self) -> bool: ...

    def interest_added(self, topic_filter: str, share_group: str | None) -> None: ...

    def interest_removed(self, topic_filter: str, share_group: str | None) -> None: ...

    def forward(self, message: Message) -> None: ...

    def retained_changed(self, message: Message, cleared: bool) -> None: ...


class NoFabric:
    """Single-node mode: nothing leaves the node."""

    shares_across_nodes = False

    def interest_added(self, topic_filter: str, share_group: str | None) -> None:
        pass

    def interest_removed(self, topic_filter: str, share_group: str | None) -> None:
        pass

    def forward(self, message: Message) -> None:
        pass

    def retained_changed(self, message: Message, cleared: bool) -> None:
        pass


NO_FABRIC = NoFabric()
