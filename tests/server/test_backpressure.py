"""Slow clients, a full audio queue and idle connections, on the real server."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.support.client import Client
from tests.support.server import ServerProcess, numbered_config, run_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Small queues and a slow audio pipeline."""
    config = numbered_config(
        heartbeat_s=5.0,
        max_pending_events=64,
        replay_events=8192,
        max_audio_queue_s=0.5,
    )
    config["pipeline_options"] = {"caption": {"chunk_delay_s": 0.02}}
    with run_server(Path(tmp_path_factory.mktemp("tight")), config) as proc:
        yield proc


@pytest.fixture(scope="module")
def brisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A short heartbeat and a short resume window."""
    config = numbered_config(heartbeat_s=0.5, resume_ttl_s=1.5)
    with run_server(Path(tmp_path_factory.mktemp("brisk")), config) as proc:
        yield proc


async def ping_rtts(client: Client, count: int) -> list[float]:
    rtts = []
    for i in range(count):
        started = time.perf_counter()
        await client.send({"type": "ping", "id": i})
        await client.recv_until(lambda m, i=i: m["type"] == "pong" and m["id"] == i, timeout=5)
        rtts.append(time.perf_counter() - started)
        await anyio.sleep(0.01)
    return rtts


async def test_slow_reader_gets_4008_fast_one_unaffected_then_catches_up(
    tight: ServerProcess,
) -> None:
    fast = await Client.open(tight.url)
    await fast.hello()
    before = await ping_rtts(fast, 10)

    # The slow client reads nothing: its receive queue fills, then TCP buffers, then
    # the server's queue for it passes the limit.
    slow = await Client.open(tight.url, max_queue=4, rcvbuf=32 * 1024)
    await slow.hello()
    total = 8000
    await slow.send({"type": "text", "text": f"count {total} 0 4000"})

    async def keep_alive() -> None:
        # A live client that does not read: it still sends its heartbeats.
        while True:
            await slow.send({"type": "ping"})
            await anyio.sleep(0.2)

    async with anyio.create_task_group() as tg:
        tg.start_soon(keep_alive)
        during = await ping_rtts(fast, 30)
        # Read only once the server holds more for it than the limit: the verdict.
        with anyio.fail_after(30):
            while tight.metric("parley_outbound_queue_max_events") <= 64:
                await anyio.sleep(0.1)
        closed = await slow.closed(timeout=30)
        tg.cancel_scope.cancel()
    assert closed.code == 4008
    assert closed.received[-1]["code"] == "slow_consumer"
    # Latency of the other session: it keeps answering quickly (a loose bound: the
    # machine is shared; bench/ measures the real figures).
    assert max(during) < 1.0
    assert statistics.median(during) < max(0.05, 10 * statistics.median(before))

    # The session stayed resumable: everything arrives, once, in order.
    again = await Client.open(tight.url)
    await again.hello(**slow.resume_fields())
    rest = await again.recv_until(
        lambda m: m["type"] == "caption.final" and m["segment"] == total - 1, timeout=60
    )
    seen = [m["segment"] for m in closed.received + rest if m["type"] == "caption.final"]
    assert seen == list(range(total))
    await again.close()
    await fast.close()


async def test_full_audio_queue_stops_reading_and_loses_nothing(tight: ServerProcess) -> None:
    client = await Client.open(tight.url)
    await client.hello(session={"mode": "caption"})
    chunk = b"\x01\x00" * 1600  # 0.1 s at 16 kHz; the pipeline takes 0.02 s for each
    peak = 0.0
    for index in range(60):  # 6 s of audio, sent as fast as the socket takes it
        await client.send({"type": "audio", "data": chunk, "chunk": index})
        if index % 10 == 0:
            peak = max(peak, tight.metric("parley_input_queue_audio_seconds"))
    got = await client.recv_until(
        lambda m: m["type"] == "caption.final" and m["segment"] == 59, timeout=30
    )
    assert [m["segment"] for m in got if m["type"] == "caption.final"] == list(range(60))
    # The queue never held much more than its bound (one frame may be in flight).
    assert peak <= 0.5 + 0.1 + 1e-6
    await client.close()


async def test_silent_connection_is_closed_and_session_detaches(brisk: ServerProcess) -> None:
    client = await Client.open(brisk.url, ping_interval=None)
    await client.hello()
    detached_before = brisk.metric("parley_sessions", 'state="detached"')
    started = time.monotonic()
    closed = await client.closed(timeout=10)
    assert closed.code == 1001 and closed.reason == "idle_timeout"
    assert time.monotonic() - started >= 0.9  # twice heartbeat_s of silence
    await anyio.sleep(0.1)
    assert brisk.metric("parley_sessions", 'state="detached"') == detached_before + 1
    again = await Client.open(brisk.url)
    assert (await again.hello(**client.resume_fields()))["resumed"] is True
    await again.close()


async def test_detached_session_ends_after_its_resume_window(brisk: ServerProcess) -> None:
    ended = brisk.metric("parley_sessions_ended_total", 'reason="resume_ttl"')
    client = await Client.open(brisk.url)
    await client.hello()
    client.abort()
    await anyio.sleep(2.5)
    # (An earlier test's detached session may expire in the same window.)
    assert brisk.metric("parley_sessions_ended_total", 'reason="resume_ttl"') >= ended + 1
    late = await Client.open(brisk.url)
    await late.send({"type": "hello", "v": 1, "token": "t", **client.resume_fields()})
    closed = await late.closed()
    assert closed.code == 4004 and closed.received[0]["code"] == "resume_failed"
