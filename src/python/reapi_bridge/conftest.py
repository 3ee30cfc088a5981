"""Fixtures the bridge's tests share: a real bridge on a loopback port, a client connected to
it, and an in-process executor. A test module that needs other settings overrides
`bridge_config`."""

import pytest

from reapi_bridge.config import BridgeConfig, ExecutionConfig, ServerConfig
from reapi_bridge_testing.bridge import client_for, running_bridge, running_executor, traversable_temp_dir


@pytest.fixture
def bridge_config(tmp_path) -> BridgeConfig:
    return BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=tmp_path / "state", max_workers=32),
        execution=ExecutionConfig(lease_timeout_seconds=5, unmatched_grace_seconds=2),
    )


@pytest.fixture
def bridge(bridge_config):
    with running_bridge(bridge_config) as b:
        yield b


@pytest.fixture
def address(bridge) -> str:
    return f"127.0.0.1:{bridge.port}"


@pytest.fixture
def client(address):
    with client_for(address) as c:
        yield c


@pytest.fixture
def open_dir():
    """A temp dir every user can traverse (executors run actions as `nobody` when root)."""
    with traversable_temp_dir() as d:
        yield d


@pytest.fixture
def executor(address, open_dir):
    with running_executor(address, open_dir) as ex:
        yield ex
