"""Two real server processes sharing sessions through one real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_server import RedisProcess, run_redis
from tests.support.server import ServerProcess, numbered_config, run_server

SECRET = "cluster-secret-0123456789abcdef"
LEASE_MS = 1500


def node_config(node: str, provider: str | None = None, **limits: Any) -> dict[str, Any]:
    config = numbered_config(heartbeat_s=5.0, **limits)
    if provider is not None:
        config["pipelines"] = dict.fromkeys(config["pipelines"], provider)
    config["server"] = {"node": node, "secret": SECRET, "drain_timeout_s": 5.0}
    config["cluster"] = {"lease_ms": LEASE_MS, "redis_timeout_s": 1.0}
    return config


@contextmanager
def run_node(
    tmp: Path, redis: RedisProcess, node: str, provider: str | None = None
) -> Iterator[ServerProcess]:
    path = tmp / node
    path.mkdir(exist_ok=True)
    with run_server(path, node_config(node, provider), args=("--redis-url", redis.url)) as server:
        yield server


@contextmanager
def run_cluster(
    tmp: Path, redis: RedisProcess, provider: str | None = None
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with ExitStack() as stack:
        a = stack.enter_context(run_node(tmp, redis, "node-a", provider))
        b = stack.enter_context(run_node(tmp, redis, "node-b", provider))
        yield a, b


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with run_redis(tmp_path_factory.mktemp("redis")) as proc:
        yield proc


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, redis: RedisProcess
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two nodes for the tests that leave both running."""
    with run_cluster(tmp_path_factory.mktemp("nodes"), redis) as pair:
        yield pair
