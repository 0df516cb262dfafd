"""A session moves between two nodes sharing Redis: the client resumes on either one
and gets every durable event exactly once, in order (tests/support/client.py checks
that each seq follows the one before)."""

from __future__ import annotations

import anyio
import pytest

from tests.redis.helpers import final, resume, segments
from tests.support.client import Client
from tests.support.server import ServerProcess

pytestmark = pytest.mark.anyio


async def test_a_stream_hops_between_nodes_without_loss_or_duplicates(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = nodes
    client = await Client.open(a.url, "msgpack")
    welcome = await client.hello(session={"mode": "agent"})
    assert welcome["server"]["node"] == "node-a"
    await client.send({"type": "text", "text": "count 400 2"})
    seen = await client.recv_until(final(40))
    for hop, (node, name) in enumerate([(b, "node-b"), (a, "node-a"), (b, "node-b")]):
        client.abort()
        await anyio.sleep(0.05 * hop)  # the stream goes on meanwhile
        client = await resume(node, client)
        assert client.welcome["resumed"] is True
        assert client.welcome["server"]["node"] == name
        seen += await client.recv_until(final(40 + 60 * (hop + 1)))
        await client.send({"type": "ack", "seq": client.last_seq})
    seen += await client.recv_until(final(399))
    assert segments(seen) == list(range(400))
    await client.send({"type": "bye"})
    assert (await client.closed()).code == 1000


async def test_input_on_the_other_node_reaches_the_owner(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = nodes
    first = await Client.open(a.url)
    await first.hello(session={"mode": "voice_agent"})
    for chunk in range(3):
        await first.send({"type": "audio", "data": b"\x00\x01" * 80, "chunk": chunk})
    await first.recv_until(final(2))
    await first.close()
    client = await resume(b, first)
    assert client.welcome["server"]["node"] == "node-b"
    assert client.welcome["audio_next"] == 3
    # Text, cancel and audio go to node-a's pipeline; its events come back through Redis.
    await client.send({"type": "text", "text": "tokens 1000 5"})
    await client.recv_until(lambda m: m["type"] == "token")
    await client.send({"type": "cancel"})
    done = await client.recv_until(lambda m: m["type"] == "turn.done")
    assert done[-1]["status"] == "cancelled" and done[0]["type"] in ("token", "turn.done")
    for chunk in (2, 3, 4):  # 2 is a duplicate
        await client.send({"type": "audio", "data": b"\x00\x01" * 80, "chunk": chunk})
    await client.send({"type": "audio", "data": b"\x00\x01" * 80, "chunk": 7})  # a gap
    got = await client.recv_until(final(7))
    assert segments(got) == [3, 4, 7]
    gap = [m for m in got if m["type"] == "error"]
    assert gap and gap[0]["code"] == "audio_gap" and "seq" in gap[0]
    await client.send({"type": "bye"})
    assert (await client.closed()).code == 1000
    # bye through node-b ended the session on node-a: the token is dead everywhere.
    late = await Client.open(a.url)
    await late.send({"type": "hello", "v": 1, "token": "t", **client.resume_fields()})
    closed = await late.closed()
    assert closed.code == 4004 and closed.received[0]["code"] == "resume_failed"


async def test_after_bye_no_node_resumes_the_session(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    """1000 after a bye comes once the end is in the store: a resume sent right after
    it fails on the owner and on the other node, and never brings the session back."""
    a, b = nodes
    for bye_at, first_at in ((a, a), (b, a)):
        first = await Client.open(first_at.url)
        await first.hello()
        client = first if bye_at is first_at else await resume(bye_at, first)
        await client.send({"type": "bye"})
        assert (await client.closed()).code == 1000
        for node in (a, b, a):
            late = await Client.open(node.url)
            await late.send({"type": "hello", "v": 1, "token": "t", **client.resume_fields()})
            closed = await late.closed()
            assert closed.code == 4004, (bye_at.url, node.url, closed)
            assert closed.received[0]["code"] == "resume_failed"


async def test_takeover_closes_the_connection_on_the_other_node_with_4009(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = nodes
    old = await Client.open(a.url)
    await old.hello()
    new = await Client.open(b.url)
    await new.hello(**old.resume_fields())
    closed = await old.closed()
    assert closed.code == 4009 and closed.received[-1]["code"] == "superseded"
    # And back: the mirror on node-b is superseded by a resume on the owner.
    again = await Client.open(a.url)
    await again.hello(**new.resume_fields())
    assert (await new.closed()).code == 4009
    await again.send({"type": "text", "text": "count 3"})
    assert segments(await again.recv_until(final(2))) == [0, 1, 2]
    # A resume token works once, whichever node sees it.
    reused = await Client.open(b.url)
    await reused.send({"type": "hello", "v": 1, "token": "t", **old.resume_fields()})
    assert (await reused.closed()).code == 4004
    await again.close()


async def test_metrics_count_redis_operations_and_leases(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, _ = nodes
    text = a.get("/metrics").text
    assert 'parley_redis_ops_total{op="flush"}' in text
    assert "parley_replicator_lag_events" in text
    assert a.metric("parley_redis_up") == 1.0
    assert a.metric("parley_lease_renewals_total") > 0
    assert a.get("/readyz").json() == {"ready": True, "status": "ready"}
