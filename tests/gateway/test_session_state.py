"""What a cluster node sends JetStream for its sessions (gateway/cluster/session_state.py), without NATS:
the changes waiting to be sent are the replicator's queue."""

from __future__ import annotations

from core.stores.base import StoredSession
from core.stores.memory import MemoryStore
from gateway.cluster.session_state import ReplicatedStore, Replicator


def queued(replicator: Replicator) -> list[tuple[str, bool]]:
    """(subject, is a purge) of every change waiting, in order."""
    return [(subject, payload is None) for _, subject, payload in replicator._ops]


def test_a_clean_session_without_a_will_costs_jetstream_nothing_and_a_persistent_one_is_purged_at_its_end() -> None:
    replicator = Replicator("rmq", 1)
    store = ReplicatedStore(MemoryStore(), replicator)
    replicator.purge_state("clean", ("s",))  # its CONNECT clears a will never written
    store.delete_session("clean")  # its end
    assert queued(replicator) == []
    store.put_session(StoredSession("kept", "mqtt", 600))
    store.delete_session("kept")
    hexid = "kept".encode().hex()
    assert queued(replicator) == [(f"rmq.st.{hexid}.s", False), (f"rmq.st.{hexid}.>", True)]
    store.delete_session("kept")  # nothing of it is left to purge
    assert len(queued(replicator)) == 2


def test_sessions_restored_from_the_store_are_purged_when_they_end() -> None:
    local = MemoryStore()
    local.put_session(StoredSession("restored", "mqtt", 600))
    replicator = Replicator("rmq", 1)
    store = ReplicatedStore(local, replicator)
    store.load()  # an earlier run of this node replicated it
    store.delete_session("restored")
    assert queued(replicator) == [(f"rmq.st.{'restored'.encode().hex()}.>", True)]
