"""Hostile clients against the real server: each gets the documented error and close
code, and the process keeps serving everyone else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.client import Client
from tests.support.server import ServerProcess, numbered_config, run_server

pytestmark = pytest.mark.anyio

SPEC_CLOSE_CODES = {1000, 1001, 1009, 1011, 4001, 4003, 4004, 4008, 4009, 4029}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = numbered_config(
        hello_timeout_s=1.0, max_frame_bytes=64 * 1024, messages_per_s=50.0, message_burst=100.0
    )
    with run_server(Path(tmp_path_factory.mktemp("target")), config) as proc:
        yield proc


async def still_serving(server: ServerProcess) -> None:
    client = await Client.open(server.url, "msgpack")
    await client.hello()
    await client.send({"type": "text", "text": "count 3"})
    got = await client.recv_until(lambda m: m.get("segment") == 2)
    assert [m["segment"] for m in got] == [0, 1, 2]
    await client.send({"type": "bye"})
    await client.closed()


async def opened(server: ServerProcess, kind: str = "json") -> Client:
    client = await Client.open(server.url, kind)
    await client.hello()
    return client


@pytest.mark.parametrize(
    ("kind", "frame"),
    [
        ("json", "{not json"),
        ("json", "[1, 2]"),
        ("json", '{"type": 7}'),
        ("json", '{"type": "nope"}'),
        ("json", '{"type": "ack", "seq": "ten"}'),
        ("json", '{"type": "audio", "data": "***"}'),
        ("msgpack", b"\xc1"),
        ("msgpack", msgpack.packb({"type": "text", "text": "hi"})[:-2]),
        ("msgpack", msgpack.packb([1, 2, 3])),
        ("msgpack", "text frame on msgpack"),
    ],
)
async def test_one_bad_frame_is_a_non_fatal_bad_message(
    target: ServerProcess, kind: str, frame: bytes | str
) -> None:
    client = await opened(target, kind)
    await client.send_raw(frame)
    error = await client.recv()
    assert error["type"] == "error" and error["code"] == "bad_message" and not error["fatal"]
    await client.send({"type": "ping", "id": 1})
    assert (await client.recv())["type"] == "pong"
    await client.close()


async def test_three_bad_frames_in_a_row_close_4003(target: ServerProcess) -> None:
    client = await opened(target)
    for _ in range(3):
        await client.send_raw("garbage")
    closed = await client.closed()
    assert closed.code == 4003
    assert [m["fatal"] for m in closed.received] == [False, False, True]


async def test_oversize_frame_is_1009(target: ServerProcess) -> None:
    client = await opened(target, "msgpack")
    await client.send({"type": "text", "text": "x" * (80 * 1024)})
    closed = await client.closed()
    assert closed.code == 1009 and closed.received[-1]["code"] == "too_large"
    await still_serving(target)


async def test_frame_far_over_the_limit_is_refused_by_the_transport(target: ServerProcess) -> None:
    client = await opened(target)
    await client.send_raw(b"\x00" * (1024 * 1024))
    closed = await client.closed()
    assert closed.code == 1009


async def test_ping_flood_is_4029(target: ServerProcess) -> None:
    client = await opened(target)
    for i in range(300):
        await client.send({"type": "ping", "id": i})
    closed = await client.closed()
    assert closed.code == 4029 and closed.received[-1]["code"] == "rate_limited"
    await still_serving(target)


async def test_messages_before_hello_and_a_second_hello(target: ServerProcess) -> None:
    early = await Client.open(target.url)
    await early.send({"type": "ping"})
    assert (await early.closed()).code == 4003
    twice = await opened(target)
    await twice.send({"type": "hello", "v": 1, "token": "t"})
    assert (await twice.closed()).code == 4003
    version = await Client.open(target.url)
    await version.send({"type": "hello", "v": 2, "token": "t"})
    closed = await version.closed()
    assert closed.code == 4003 and closed.received[0]["code"] == "unsupported"


async def test_audio_in_agent_mode_and_text_in_caption_mode(target: ServerProcess) -> None:
    agent = await opened(target)
    await agent.send({"type": "audio", "data": b"\x00\x00"})
    assert (await agent.recv())["code"] == "unsupported"
    caption = await Client.open(target.url)
    await caption.hello(session={"mode": "caption"})
    await caption.send({"type": "text", "text": "hi"})
    assert (await caption.recv())["code"] == "unsupported"
    bad_rate = await Client.open(target.url)
    await bad_rate.send(
        {
            "type": "hello",
            "v": 1,
            "token": "t",
            "session": {"mode": "caption", "audio": {"sample_rate": 1234}},
        }
    )
    assert (await bad_rate.closed()).received[0]["code"] == "unsupported"
    for client in (agent, caption):
        await client.close()


async def test_many_connections_without_hello(target: ServerProcess) -> None:
    """Hundreds of idle sockets: each is closed 4003 at the hello deadline, and a
    good session works meanwhile."""
    codes: list[int | None] = []

    async def idle() -> None:
        client = await Client.open(target.url)
        codes.append((await client.closed(timeout=30)).code)

    async with anyio.create_task_group() as tg:
        for _ in range(400):
            tg.start_soon(idle)
        await still_serving(target)
    assert codes == [4003] * 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
message_types = st.sampled_from(
    ["hello", "audio", "audio.end", "text", "cancel", "ack", "ping", "update", "bye", "x"]
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    frames=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.text(max_size=64),
            st.builds(
                lambda t, extra: json.dumps({"type": t, **extra}),
                message_types,
                st.dictionaries(
                    st.sampled_from(["seq", "text", "data", "session", "id"]), json_values
                ),
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_generated_frames_get_documented_answers(
    target: ServerProcess, frames: list[bytes | str]
) -> None:
    async def run() -> None:
        client = await opened(target)
        for frame in frames:
            await client.send_raw(frame)
        await client.send({"type": "ping", "id": "end"})
        try:
            await client.recv_until(lambda m: m.get("id") == "end", timeout=10)
            await client.close()
        except Exception as exc:  # closed by the server: check how
            code = getattr(exc, "code", None)
            assert code in SPEC_CLOSE_CODES, exc
        for message in client.received:
            if message["type"] == "error":
                assert message["code"] in {
                    "bad_message",
                    "too_large",
                    "unsupported",
                    "forbidden",
                    "rate_limited",
                    "overloaded",
                }

    anyio.run(run)
    # After every generated client, the server still serves a well-behaved one.
    anyio.run(still_serving, target)
