"""Nodes going away: killed (kill -9) or drained (SIGTERM). The sessions continue on
the surviving node with every durable event that reached Redis; a turn cut short by
a lost node ends with ``turn.done`` ``failed``/``node_lost``, never silently."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tests.redis.conftest import run_cluster
from tests.redis.helpers import durable, resume
from tests.support.client import Client, Closed, Message
from tests.support.redis_server import RedisProcess
from tests.support.server import ServerProcess

pytestmark = pytest.mark.anyio

STATEFUL = "tests.redis.stateful:create_provider"


def turn_done(turn_id: str) -> Callable[[Message], bool]:
    return lambda m: m["type"] == "turn.done" and m["turn_id"] == turn_id


async def test_kill_9_of_the_owner_mid_turn(tmp_path: Path, redis: RedisProcess) -> None:
    with run_cluster(tmp_path, redis, STATEFUL) as (a, b):
        client = await Client.open(a.url, "msgpack")
        await client.hello(session={"mode": "agent"})
        await client.send({"type": "text", "text": "tokens 3"})
        await client.recv_until(turn_done("t1"))  # t1 completes: node-a snapshots
        await client.send({"type": "text", "text": "tokens 1000 10"})
        await client.recv_until(lambda m: m["type"] == "token" and m["turn_id"] == "t2")
        await anyio.sleep(0.3)
        a.proc.kill()  # SIGKILL: nothing is flushed on the way out
        with pytest.raises(Closed):
            while True:
                await client.recv(timeout=5)
        seen_before = client.last_seq
        started = time.monotonic()
        moved = await resume(b, client)
        rest = await moved.recv_until(turn_done("t2"))
        resume_s = time.monotonic() - started
        assert rest[-1]["status"] == "failed" and rest[-1]["reason"] == "node_lost"
        # Replayed from Redis, then the turn's end: seqs go on without a gap.
        assert [m["seq"] for m in durable(rest)] == list(
            range(seen_before + 1, seen_before + 1 + len(durable(rest)))
        )
        assert all(m["type"] == "token" for m in rest[:-1])
        assert resume_s < 10
        # The surviving node runs the session now, with the pipeline's state restored.
        await moved.send({"type": "text", "text": "tokens 2"})
        got = await moved.recv_until(lambda m: m["type"] == "turn.done")
        assert got[0] == {
            "type": "turn.started",
            "seq": got[0]["seq"],
            "turn_id": "t3",
            "input": "text",
        }
        assert got[-1]["status"] == "completed"
        assert b.metric("parley_lease_takeovers_total", 'why="node_lost"') == 1.0
        await moved.close()


async def test_sigterm_drain_moves_every_client_without_loss(
    tmp_path: Path, redis: RedisProcess
) -> None:
    with run_cluster(tmp_path, redis, STATEFUL) as (a, b):
        clients: list[Client] = []
        for _ in range(3):
            client = await Client.open(a.url, "msgpack")
            await client.hello(session={"mode": "agent"})
            clients.append(client)
        for client in clients:
            await client.send({"type": "text", "text": "tokens 60 20"})  # about 1.2 s
            await client.recv_until(lambda m: m["type"] == "token")
        started = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(lambda: _readyz_flips(a), abandon_on_cancel=True)
        transcripts: list[list[Message]] = [list(c.received) for c in clients]

        async def follow(i: int) -> None:
            client = clients[i]
            # goaway from node-a, then (possibly) from node-b's mirror when node-a
            # hands the session over: resume each time, never losing an event.
            while True:
                try:
                    while True:
                        message = await client.recv(timeout=15)
                        transcripts[i].append(message)
                        if message["type"] == "turn.done":
                            return
                except Closed as closed:
                    assert closed.code == 1001, closed.code
                    goaway = [m for m in closed.received if m["type"] == "goaway"]
                    assert goaway, closed.received
                    client = clients[i] = await resume(b, client)

        async with anyio.create_task_group() as tg:
            for i in range(len(clients)):
                tg.start_soon(follow, i)
        assert await anyio.to_thread.run_sync(a.proc.wait, 30) == 0
        assert time.monotonic() - started < 15
        for transcript in transcripts:
            tokens = "".join(m["text"] for m in transcript if m["type"] == "token")
            assert tokens == "".join(f"{i}," for i in range(60))
            assert transcript[-1]["status"] == "completed"
        # Handed over: the next command runs on node-b, the turn count carried over.
        # A client still on node-b's mirror was told to resume once more.
        client = clients[0]
        try:
            while True:
                await client.recv(timeout=2)
        except Closed as closed:
            assert closed.code == 1001
            assert closed.received[-1] == {
                "type": "goaway",
                "reason": "owner_moved",
                "reconnect_after_ms": 0,
            }
            client = await resume(b, client)
        except TimeoutError:
            pass
        await client.send({"type": "text", "text": "tokens 1"})
        got = await client.recv_until(lambda m: m["type"] == "turn.done")
        assert got[0]["turn_id"] == "t2" and got[-1]["status"] == "completed"
        await client.close()


def _readyz_flips(node: ServerProcess) -> bool:
    """/readyz says 503 (or the process is gone) soon after SIGTERM."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if node.get("/readyz").status_code == 503:
                return True
        except Exception:  # the node may already have exited
            return True
        time.sleep(0.02)
    return False
