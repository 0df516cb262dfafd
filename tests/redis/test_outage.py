"""Redis stopped and started again (no persistence: it comes back empty). Attached
sessions keep flowing from memory, new sessions get ``overloaded`` meanwhile, and the
owners write their sessions back once Redis returns."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from tests.redis.conftest import run_cluster
from tests.redis.helpers import final, resume, segments
from tests.support.client import Client
from tests.support.redis_server import run_redis
from tests.support.server import ServerProcess

pytestmark = pytest.mark.anyio


async def wait_ready(node: ServerProcess, ready: bool, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (node.get("/readyz").status_code == 200) != ready:
        assert time.monotonic() < deadline, f"/readyz never became {ready}"
        await anyio.sleep(0.1)


async def test_redis_restart(tmp_path: Path) -> None:
    with run_redis(tmp_path) as redis, run_cluster(tmp_path, redis) as (a, b):
        client = await Client.open(a.url, "msgpack")
        await client.hello(session={"mode": "agent"})
        await client.send({"type": "text", "text": "count 1500 2"})
        seen = await client.recv_until(final(100))
        redis.stop()
        await wait_ready(a, False)
        assert a.get("/readyz").json()["status"] == "store_unavailable"
        assert a.metric("parley_redis_up") == 0.0
        # The attached client keeps getting its events from node-a's memory.
        seen += await client.recv_until(final(500))
        for node in (a, b):
            refused = await Client.open(node.url)
            await refused.send({"type": "hello", "v": 1, "token": "t"})
            closed = await refused.closed()
            assert closed.code == 4029 and closed.received[0]["code"] == "overloaded"
        redis.start()
        await wait_ready(a, True)
        await wait_ready(b, True)
        seen += await client.recv_until(final(700))
        # node-a wrote the session back: the client can move to node-b.
        await anyio.sleep(0.5)
        client.abort()
        moved = await resume(b, client)
        seen += await moved.recv_until(final(1499))
        assert segments(seen) == list(range(1500))
        fresh = await Client.open(b.url)
        await fresh.hello()
        await fresh.send({"type": "text", "text": "count 2"})
        assert segments(await fresh.recv_until(final(1))) == [0, 1]
        await fresh.close()
        await moved.close()
