"""Shutdown: SIGTERM drains with goaway and 1001, then the process exits."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
import pytest

from tests.support.client import Client
from tests.support.server import numbered_config, run_server

pytestmark = pytest.mark.anyio


async def test_sigterm_sends_goaway_and_closes_1001(tmp_path: Path) -> None:
    with run_server(tmp_path, numbered_config()) as server:
        clients = [await Client.open(server.url, kind) for kind in ("json", "msgpack")]
        for client in clients:
            await client.hello()
            await client.send({"type": "text", "text": "count 100000 1"})
        await anyio.sleep(0.2)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        for client in clients:
            closed = await client.closed(timeout=15)
            assert closed.code == 1001
            goaway = [m for m in closed.received if m["type"] == "goaway"]
            assert goaway and goaway[0]["reason"] == "shutdown"
            assert goaway[0]["reconnect_after_ms"] >= 0
        assert await anyio.to_thread.run_sync(server.proc.wait, 30) == 0
        assert time.monotonic() - started < 15
        assert any('"drained"' in line for line in server.lines)
