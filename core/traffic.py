"""What the router counts per message: messages in by origin protocol, deliveries out by
subscriber protocol. Compiled with the hot path: counting a delivery is two increments of
native integers, with no dictionary write and no integer object made."""

from __future__ import annotations


class Flow:
    """Deliveries from one origin protocol to subscribers of one protocol, and their payload bytes."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.bytes = 0


class Traffic:
    """Messages published by one origin protocol, and where they went (by subscriber protocol)."""

    def __init__(self) -> None:
        self.messages_in = 0
        self.bytes_in = 0  # payload bytes
        self.flows: dict[str, Flow] = {}  # subscriber protocol -> its deliveries

    def count(self, protocol: str, size: int) -> None:
        """One delivery of `size` payload bytes to a subscriber speaking `protocol`."""
        flow = self.flows.get(protocol)
        if flow is None:
            flow = self.flows[protocol] = Flow()
        flow.deliveries += 1
        flow.bytes += size

    @property
    def to(self) -> dict[str, int]:
        """Subscriber protocol -> deliveries (read at scrape time)."""
        return {protocol: flow.deliveries for protocol, flow in self.flows.items()}

    @property
    def bytes_to(self) -> dict[str, int]:
        """Subscriber protocol -> payload bytes delivered (read at scrape time)."""
        return {protocol: flow.bytes for protocol, flow in self.flows.items()}
