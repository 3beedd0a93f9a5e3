"""The RabbitMQ extensions of issue 18 with amqplib (node), the third client family: exchange-to-exchange
bindings (bindExchange / unbindExchange), x-max-priority, and reject-publish nacks on a confirm channel."""

from __future__ import annotations

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import amqp_gateway
from tests.e2e.test_amqp_amqplib import amqplib_installed, run_scenario

__all__ = ["amqp_gateway", "amqplib_installed"]


def test_amqplib_binds_exchanges_reads_by_priority_and_gets_a_nack_for_a_refused_publish(
        amqp_gateway: RunningGateway) -> None:
    out = run_scenario(amqp_gateway, "extensions")
    assert out == {"e2e": "via two exchanges", "priorities": ["high", "mid", "low", "none"],
                   "confirms": ["ack", "nack"]}
