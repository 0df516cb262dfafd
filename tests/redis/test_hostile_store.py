"""Garbage in Redis: a session whose stored state is not what a node wrote is refused
with a clear ``resume_failed``; nothing crashes and every other session goes on."""

from __future__ import annotations

import msgpack
import pytest

from tests.redis.helpers import final, segments
from tests.support.client import Client
from tests.support.redis_server import RedisProcess
from tests.support.server import ServerProcess

pytestmark = pytest.mark.anyio


async def detached_session(node: ServerProcess) -> Client:
    client = await Client.open(node.url)
    await client.hello()
    await client.send({"type": "text", "text": "count 2"})
    await client.recv_until(final(1))
    await client.close()
    return client


async def refused(node: ServerProcess, previous: Client) -> str:
    client = await Client.open(node.url)
    await client.send({"type": "hello", "v": 1, "token": "t", **previous.resume_fields()})
    closed = await client.closed()
    assert closed.code == 4004, closed.code
    assert closed.received[0]["code"] == "resume_failed"
    return str(closed.received[0]["message"])


async def still_serving(node: ServerProcess) -> None:
    client = await Client.open(node.url, "msgpack")
    await client.hello()
    await client.send({"type": "text", "text": "count 3"})
    assert segments(await client.recv_until(final(2))) == [0, 1, 2]
    await client.send({"type": "bye"})
    await client.closed()


def key(client: Client, part: str) -> str:
    return f"parley:{{{client.welcome['session_id']}}}:{part}"


@pytest.mark.parametrize(
    "plant",
    [
        # The token generation and the attachment belong to the atomic claim: the
        # owner never rewrites them (tests/sessions/test_store.py has the rest).
        ("HSET", "meta", "gen", "not-a-number"),
        ("HSET", "meta", "gen", "-1"),
        ("HDEL", "meta", "attached"),
        ("XADD", "log", "999999-0", "e", "\x00garbage"),
        ("XADD", "log", "999999-0", "x", "no e field"),
    ],
)
async def test_garbage_record_or_log_is_resume_failed_on_both_nodes(
    nodes: tuple[ServerProcess, ServerProcess], redis: RedisProcess, plant: tuple[str, ...]
) -> None:
    a, b = nodes
    victim = await detached_session(a)
    command, part, *rest = plant
    redis.command(command, key(victim, part), *rest)
    if part == "meta":  # node-a reads the record too before resuming its own session
        assert "unreadable" in await refused(a, victim)
    else:
        victim.last_seq = 0  # ask for the whole log, garbage included
    assert "unreadable" in await refused(b, victim)
    await still_serving(a)
    await still_serving(b)


async def test_a_key_of_the_wrong_type_is_resume_failed(
    nodes: tuple[ServerProcess, ServerProcess], redis: RedisProcess
) -> None:
    a, b = nodes
    victim = await detached_session(a)
    redis.command("DEL", key(victim, "meta"))
    redis.command("SET", key(victim, "meta"), "just a string")
    assert "unreadable" in await refused(b, victim)
    assert "unreadable" in await refused(a, victim)
    await still_serving(a)
    await still_serving(b)


async def test_garbage_forwarded_input_and_notices_are_skipped(
    nodes: tuple[ServerProcess, ServerProcess], redis: RedisProcess
) -> None:
    a, b = nodes
    client = await Client.open(a.url)
    await client.hello()
    for junk in (b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"k": "audio", "chunk": -1})):
        redis.command("XADD", key(client, "in"), "*", "m", junk)
    command = msgpack.packb({"k": "text", "text": "count 2"})
    redis.command("XADD", key(client, "in"), "*", "m", command)
    redis.command("PUBLISH", "parley:node:node-a", "{not json")
    redis.command("PUBLISH", "parley:node:node-a", '{"k": "ended", "sid": 7}')
    got = await client.recv_until(final(1))
    assert segments(got) == [0, 1]
    assert any('"bad forwarded input"' in line for line in a.lines)
    await client.close()
    await still_serving(b)
