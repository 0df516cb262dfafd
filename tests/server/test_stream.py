"""The session protocol over the real server and the real websockets client."""

from __future__ import annotations

import struct
from collections.abc import Callable

import anyio
import pytest

from tests.support.client import Client
from tests.support.server import ServerProcess

pytestmark = pytest.mark.anyio


def final(segment: int) -> Callable[[dict[str, object]], bool]:
    return lambda m: m["type"] == "caption.final" and m["segment"] == segment


def numbers(messages: list[dict[str, object]]) -> list[int]:
    return [int(m["segment"]) for m in messages if m["type"] == "caption.final"]  # type: ignore[call-overload]


@pytest.mark.parametrize("kind", ["json", "msgpack"])
async def test_welcome_then_numbered_durable_events(server: ServerProcess, kind: str) -> None:
    client = await Client.open(server.url, kind)
    welcome = await client.hello(session={"mode": "agent"})
    assert welcome["resumed"] is False
    assert welcome["last_seq"] == 0 and welcome["audio_next"] == 0
    assert welcome["limits"]["replay_events"] > 0
    assert client.ws.subprotocol == f"parley.v1.{kind}"
    await client.send({"type": "text", "text": "count 20"})
    got = await client.recv_until(final(19))
    assert numbers(got) == list(range(20))
    assert [m["seq"] for m in got] == list(range(1, 21))
    await client.send({"type": "ping", "id": "p1"})
    pong = await client.recv()
    assert pong["type"] == "pong" and pong["id"] == "p1" and pong["server_time"] > 1.7e9
    await client.send({"type": "bye"})
    closed = await client.closed()
    assert closed.code == 1000


async def test_no_subprotocol_means_json(server: ServerProcess) -> None:
    from websockets.asyncio.client import connect

    async with connect(server.url) as ws:
        assert ws.subprotocol is None
        await ws.send('{"type": "hello", "v": 1, "token": "t"}')
        assert '"welcome"' in str(await ws.recv())


@pytest.mark.parametrize("kind", ["json", "msgpack"])
async def test_audio_chunks_in_both_encodings(server: ServerProcess, kind: str) -> None:
    client = await Client.open(server.url, kind)
    await client.hello(session={"mode": "caption"})
    pcm = struct.pack("<160h", *range(160))
    await client.send({"type": "audio", "data": pcm, "chunk": 0})
    if kind == "json":
        await client.send_raw(pcm)  # a binary frame is audio without a chunk index
    else:
        await client.send({"type": "audio", "data": pcm})
    got = await client.recv_until(final(1))
    finals = [m for m in got if m["type"] == "caption.final"]
    assert [m["text"] for m in finals] == ["chunk 0 320", "chunk 1 320"]
    await client.close()


async def test_resume_after_abrupt_drop_replays_exactly_once(server: ServerProcess) -> None:
    client = await Client.open(server.url, "msgpack")
    await client.hello(session={"mode": "agent"})
    await client.send({"type": "text", "text": "count 300 3"})
    await client.recv_until(final(40))
    client.abort()
    await anyio.sleep(0.3)  # the stream goes on into the replay buffer meanwhile
    again = await Client.open(server.url, "msgpack")
    welcome = await again.hello(**client.resume_fields())
    assert welcome["resumed"] is True
    assert welcome["session_id"] == client.welcome["session_id"]
    assert welcome["last_seq"] > client.last_seq
    rest = await again.recv_until(final(299))
    assert numbers(client.received) + numbers(rest) == list(range(300))
    await again.close()


async def test_used_garbage_and_foreign_tokens_are_refused(server: ServerProcess) -> None:
    first = await Client.open(server.url)
    await first.hello()
    await first.close()
    resume = first.resume_fields()
    second = await Client.open(server.url)
    await second.hello(**resume)
    await second.close()
    # The same token again: single use.
    third = await Client.open(server.url)
    await third.send({"type": "hello", "v": 1, "token": "t", **resume})
    closed = await third.closed()
    assert closed.code == 4004
    assert closed.received[0]["code"] == "resume_failed"
    garbage = await Client.open(server.url)
    await garbage.send(
        {"type": "hello", "v": 1, "token": "t", "resume": {"token": "x.y", "last_seq": 0}}
    )
    assert (await garbage.closed()).code == 4004


async def test_takeover_closes_the_older_connection_with_4009(server: ServerProcess) -> None:
    old = await Client.open(server.url)
    await old.hello()
    new = await Client.open(server.url)
    await new.hello(**old.resume_fields())
    closed = await old.closed()
    assert closed.code == 4009
    assert closed.received[-1]["code"] == "superseded"
    await new.send({"type": "text", "text": "count 3"})
    assert numbers(await new.recv_until(final(2))) == [0, 1, 2]
    await new.close()


async def test_cancel_reaches_the_pipeline(server: ServerProcess) -> None:
    client = await Client.open(server.url)
    await client.hello()
    await client.send({"type": "text", "text": "tokens 1000 5"})
    await client.recv_until(lambda m: m["type"] == "token")
    await client.send({"type": "cancel"})
    got = await client.recv_until(lambda m: m["type"] == "turn.done")
    assert got[-1]["status"] == "cancelled"
    await client.send({"type": "ping", "id": 1})
    after = await client.recv_until(lambda m: m["type"] == "pong")
    assert all(m["type"] != "token" for m in after)
    await client.close()


async def test_audio_resent_after_resume_drops_duplicates(server: ServerProcess) -> None:
    client = await Client.open(server.url)
    await client.hello(session={"mode": "caption"})
    for chunk in range(5):
        await client.send({"type": "audio", "data": b"\x00\x01" * 80, "chunk": chunk})
    await client.recv_until(final(4))
    client.abort()
    again = await Client.open(server.url)
    welcome = await again.hello(**client.resume_fields())
    assert welcome["audio_next"] == 5
    for chunk in range(3, 8):  # 3 and 4 are duplicates
        await again.send({"type": "audio", "data": b"\x00\x01" * 80, "chunk": chunk})
    await again.send({"type": "audio", "data": b"\x00\x01" * 80, "chunk": 10})  # a gap
    got = await again.recv_until(final(10))
    assert numbers(got) == [5, 6, 7, 10]
    gap = [m for m in got if m["type"] == "error"]
    assert gap and gap[0]["code"] == "audio_gap" and gap[0]["fatal"] is False and "seq" in gap[0]
    await again.close()


async def test_logs_carry_no_payloads(server: ServerProcess) -> None:
    secret = "tell-no-one-7f3a9"
    client = await Client.open(server.url)
    await client.hello(token="token-" + secret)
    await client.send({"type": "text", "text": f"count 2 {secret}"})  # parsed as garbage
    await client.send({"type": "text", "text": secret})
    await client.send({"type": "ping", "id": 9})
    await client.recv_until(lambda m: m["type"] == "pong")
    await client.close()
    await anyio.sleep(0.2)
    assert server.lines and not any(secret in line for line in server.lines)


async def test_a_fatal_pipeline_error_ends_the_session_with_its_close_code(
    server: ServerProcess,
) -> None:
    client = await Client.open(server.url)
    await client.hello()
    await client.send({"type": "text", "text": "fatal overloaded"})
    closed = await client.closed()
    assert closed.code == 4029
    assert closed.received[-1] == {
        "type": "error",
        "code": "overloaded",
        "message": "asked to fail",
        "fatal": True,
    }
    late = await Client.open(server.url)
    await late.send({"type": "hello", "v": 1, "token": "t", **client.resume_fields()})
    assert (await late.closed()).code == 4004


async def test_a_crashed_pipeline_restarts_and_says_so(server: ServerProcess) -> None:
    client = await Client.open(server.url)
    await client.hello()
    await client.send({"type": "text", "text": "crash"})
    error = await client.recv()
    assert error["type"] == "error" and error["code"] == "internal" and error["seq"] == 1
    await client.send({"type": "text", "text": "count 2"})
    assert numbers(await client.recv_until(final(1))) == [0, 1]
    await client.close()
