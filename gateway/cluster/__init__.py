"""Several gateway nodes as one, through a NATS cluster (core/fabric.py is the core's side).

- `subjects`: topics and filters as NATS subjects, reversibly (pure);
- `envelope`: a message between nodes, with its node and sequence number (pure);
- `view`: the other nodes, from their heartbeats (pure);
- `settings`: ``[cluster]``;
- `nats_fabric`: the asyncio layer on nats-py: interest, forwarding, shares, retained, heartbeats.
"""
