"""The config of one worker of `rosettamq run --workers N` (gateway/workers.py `worker_config`)."""

from __future__ import annotations

from gateway.config import config_from_dict
from gateway.workers import worker_config, worker_store

BRIDGE = {"bridge": {"mqtt": [{"name": "cloud", "url": "mqtt://127.0.0.1:1883", "out": ["sensors/#"]}]}}


def spec(index: int) -> dict:  # type: ignore[type-arg]
    return {"index": index, "ports": {"mqtt": 1883, "amqp": 5672}, "http": index == 1, "amqp": index == 1,
            "bridges": index == 1, "node": f"host-w{index}", "nats": "nats://127.0.0.1:4222",
            "store": worker_store("state/rosettamq.db", index)}


def test_worker_1_keeps_the_admin_api_amqp_and_the_bridges_and_the_others_leave_them_out() -> None:
    config = config_from_dict(BRIDGE)
    first, second = worker_config(config, spec(1)), worker_config(config, spec(2))
    assert first.http.enabled and first.amqp.enabled and len(first.bridges) == 1
    assert not second.http.enabled and not second.amqp.enabled and second.bridges == ()
    for worker in (first, second):
        assert worker.reuse_port and worker.mqtt.listen.port == 1883
        assert worker.cluster is not None and worker.cluster.servers == ("nats://127.0.0.1:4222",)
    assert (first.cluster.node, second.cluster.node) == ("host-w1", "host-w2")  # type: ignore[union-attr]
    assert (first.store.path, second.store.path) == ("state/rosettamq.db", "state/rosettamq-w2.db")


def test_a_memory_store_stays_memory_for_every_worker() -> None:
    assert worker_store("memory", 3) == "memory"


def test_durable_amqp_queues_are_kept_by_worker_1_but_refused_on_a_cluster_node_unless_local() -> None:
    """Workers of one machine have one AMQP node (worker 1): its durable queues are the machine's.
    A node of a user's cluster refuses them (no other node sees its queues), unless told "local"."""
    import pytest

    from gateway.config_sections import ConfigError
    from gateway.settings import amqp_settings

    assert amqp_settings(worker_config(config_from_dict({}), spec(1)), None).durable_queues
    assert amqp_settings(config_from_dict({}), None).durable_queues
    cluster = {"nats": ["nats://127.0.0.1:4222"], "node": "gw-a"}
    assert not amqp_settings(config_from_dict({"cluster": cluster}), None).durable_queues
    local = config_from_dict({"cluster": {**cluster, "durable_queues": "local"}})
    assert amqp_settings(local, None).durable_queues
    assert not amqp_settings(worker_config(config_from_dict({"cluster": cluster}), spec(1)), None).durable_queues
    with pytest.raises(ConfigError, match="durable_queues"):
        config_from_dict({"cluster": {**cluster, "durable_queues": "replicated"}})
