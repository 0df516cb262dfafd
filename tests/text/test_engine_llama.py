"""LlamaEngine with the real gemma-3-270m: streaming, limits, cancellation, fairness.

Greedy output of this small base model can change between builds, so the tests
assert properties (it streams, it stops, it is valid JSON), never exact text.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import jsonschema
import pytest
from anyio.abc import TaskStatus
from engine_support import STORY, TOOL_CHOICE, ask, long_prompt, read_all

from pipelines.text.engine import EngineError, EngineOverloaded, GenerationChunk
from pipelines.text.llama_engine import LlamaEngine, LlamaSettings

pytestmark = pytest.mark.anyio
Status = TaskStatus[None]


async def test_tokens_stream_and_the_last_chunk_says_why_it_stopped(
    llama_engine: LlamaEngine,
) -> None:
    async with llama_engine.stream(ask(max_tokens=12)) as chunks:
        seen = await read_all(chunks)

    assert len(seen.chunks) >= 2
    assert all(c.finish_reason is None and c.stats is None for c in seen.chunks[:-1])
    assert seen.text.strip()
    last = seen.last
    assert last.finish_reason in ("stop", "length")
    assert last.stats is not None
    assert last.stats.prompt_tokens == len(llama_engine.prompt_tokens(ask()))
    assert 0 < last.stats.completion_tokens <= 12
    assert 0 <= last.stats.queue_ms <= last.stats.ttft_ms <= last.stats.total_ms
    # Chunks arrived one by one, not all at the end.
    assert seen.arrivals[-1] - seen.arrivals[0] > 0.01


async def test_max_tokens_is_respected(llama_engine: LlamaEngine) -> None:
    async with llama_engine.stream(ask(max_tokens=3)) as chunks:
        seen = await read_all(chunks)

    assert seen.last.finish_reason == "length"
    assert seen.last.stats is not None and seen.last.stats.completion_tokens == 3
    assert llama_engine.count_tokens(seen.text) <= 4  # re-tokenizing may split differently


async def test_a_stop_string_ends_the_answer(llama_engine: LlamaEngine) -> None:
    async with llama_engine.stream(ask(max_tokens=30)) as chunks:
        first_word = (await read_all(chunks)).text.split()[0]
    async with llama_engine.stream(ask(max_tokens=30, stop=(first_word,))) as chunks:
        seen = await read_all(chunks)

    assert first_word not in seen.text
    assert seen.last.finish_reason == "stop"


async def test_leaving_mid_generation_stops_the_worker_at_once(
    llama_engine: LlamaEngine,
) -> None:
    async with llama_engine.stream(ask(max_tokens=200)) as chunks:
        received = [await chunks.__anext__() for _ in range(3)]
        left_at = time.perf_counter()
    exit_s = time.perf_counter() - left_at

    assert all(c.finish_reason is None for c in received)
    assert exit_s < 0.5
    # The exit waited for the worker: it is free now, and the stream yields nothing more.
    assert llama_engine.statistics()["running"] == 0
    assert [c async for c in chunks] == []
    async with llama_engine.stream(ask(max_tokens=2, request_id="next")) as chunks:
        nxt = await read_all(chunks)
    assert nxt.last.stats is not None and nxt.last.stats.queue_ms < 50


async def test_cancelling_the_scope_mid_generation_stops_it(llama_engine: LlamaEngine) -> None:
    got: list[GenerationChunk] = []
    with anyio.move_on_after(0.4) as scope:
        async with llama_engine.stream(ask(max_tokens=200)) as chunks:
            async for chunk in chunks:
                got.append(chunk)
    cancelled_at = anyio.current_time()

    assert scope.cancelled_caught
    assert got and got[-1].finish_reason is None  # it was cut off, not finished
    # Leaving the scope waited (shielded) for the worker to let go of the job.
    assert llama_engine.statistics()["running"] == 0
    assert scope.deadline <= cancelled_at < scope.deadline + 0.5


async def test_cancelling_during_a_long_prefill_aborts_it(llama_engine: LlamaEngine) -> None:
    request = long_prompt()
    assert len(llama_engine.prompt_tokens(request)) > 1000  # seconds of prefill here
    with anyio.move_on_after(0.3) as scope:
        async with llama_engine.stream(request) as chunks:
            await read_all(chunks)
    cancelled_at = anyio.current_time()

    assert scope.cancelled_caught
    assert llama_engine.statistics()["running"] == 0
    assert scope.deadline <= cancelled_at < scope.deadline + 0.5
    # The instance was reset and still answers.
    async with llama_engine.stream(ask(max_tokens=3, request_id="after")) as chunks:
        after = await read_all(chunks)
    assert after.last.finish_reason in ("stop", "length")


async def test_sessions_are_served_round_robin(llama_engine: LlamaEngine) -> None:
    started: list[str] = []
    blocker_running = anyio.Event()

    async def run(name: str, session: str, max_tokens: int, *, task_status: Status) -> None:
        request = ask(max_tokens=max_tokens, request_id=name, session_id=session)
        async with llama_engine.stream(request) as chunks:
            task_status.started()
            async for _ in chunks:
                if name not in started:
                    started.append(name)
                    blocker_running.set()

    async with anyio.create_task_group() as tg:
        await tg.start(run, "blocker", "x", 12)
        await blocker_running.wait()  # the worker holds it: the rest must queue
        for name, session in (("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c")):
            await tg.start(run, name, session, 1)

    assert started == ["blocker", "a1", "b1", "c1", "a2", "a3"]


async def test_beyond_the_queue_bound_requests_are_refused(llama_engine: LlamaEngine) -> None:
    capacity = int(llama_engine.statistics()["queue_capacity"])
    refused: list[str] = []

    async def hold(name: str, *, task_status: Status) -> None:
        try:
            async with llama_engine.stream(ask(max_tokens=50, request_id=name, session_id=name)):
                task_status.started()
                await anyio.sleep_forever()
        except EngineOverloaded:
            refused.append(name)
            task_status.started()

    async with anyio.create_task_group() as tg:
        await tg.start(hold, "r0")
        # The worker must have taken r0 before the queue fills, or r0 holds a slot too.
        with anyio.fail_after(10):
            while llama_engine.statistics()["running"] < 1:
                await anyio.sleep(0.01)
        for index in range(1, capacity + 2):  # `capacity` wait, one is too many
            await tg.start(hold, f"r{index}")
        stats = llama_engine.statistics()
        wait_ms = llama_engine.estimated_wait_ms()
        tg.cancel_scope.cancel()

    assert refused == [f"r{capacity + 1}"]
    assert stats["queued"] == capacity and stats["running"] == 1
    assert wait_ms > 0
    assert llama_engine.statistics()["running"] == 0
    assert llama_engine.statistics()["queued"] == 0
    assert llama_engine.estimated_wait_ms() == 0.0


async def test_json_schema_output_is_valid_json(llama_engine: LlamaEngine) -> None:
    request = ask(
        "Which tool tells the weather in Paris? Answer in JSON.",
        max_tokens=40,
        json_schema=TOOL_CHOICE,
    )
    async with llama_engine.stream(request) as chunks:
        seen = await read_all(chunks)

    assert seen.last.finish_reason == "stop"
    jsonschema.validate(json.loads(seen.text), TOOL_CHOICE)


async def test_an_unusable_schema_fails_before_queueing(llama_engine: LlamaEngine) -> None:
    with pytest.raises(EngineError, match="json_schema"):
        async with llama_engine.stream(ask(json_schema={"type": "no-such-type"})):
            pass
    assert llama_engine.statistics()["queued"] == 0


async def test_a_prompt_longer_than_the_context_is_refused(llama_engine: LlamaEngine) -> None:
    with pytest.raises(EngineError, match="n_ctx"):
        async with llama_engine.stream(ask("word " * 3000)):
            pass


async def test_generation_never_blocks_the_event_loop(llama_engine: LlamaEngine) -> None:
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await anyio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        async with llama_engine.stream(ask(STORY * 30, max_tokens=12)) as chunks:
            await read_all(chunks)
        tg.cancel_scope.cancel()

    assert len(gaps) > 20
    # Prefill of this ~400-token prompt alone takes about a second: had it run on
    # the loop, one gap would show it.
    assert max(gaps) < 0.25


async def test_closing_the_engine_fails_running_and_waiting_requests(gguf_path: Path) -> None:
    engine = await anyio.to_thread.run_sync(
        lambda: LlamaEngine(LlamaSettings(model_path=str(gguf_path), n_threads=1, n_ctx=512))
    )
    failures: list[str] = []

    async def use(name: str, *, task_status: Status) -> None:
        try:
            async with engine.stream(ask(max_tokens=300, request_id=name, session_id=name)) as c:
                task_status.started()
                await read_all(c)
        except EngineError:
            failures.append(name)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(use, "running")
            await tg.start(use, "waiting")
            await engine.aclose()

    assert sorted(failures) == ["running", "waiting"]
    with pytest.raises(EngineError, match="closed"):
        async with engine.stream(ask()):
            pass
