"""Fixtures shared by the MQTT adapter's tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.conftest import RunningGateway, make_config


@pytest.fixture(params=["asyncio", "uvloop"])
def running(request: pytest.FixtureRequest) -> Iterator[RunningGateway]:
    """A gateway with its defaults, once on each event loop."""
    gateway = RunningGateway(make_config(), loop=request.param)
    try:
        yield gateway
    finally:
        gateway.stop()
