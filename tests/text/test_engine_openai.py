"""OpenAIEngine against real peers.

``llama_server`` is llama.cpp's own OpenAI-compatible server, standing in for
``vllm serve``. ``broken_server`` is a small loopback HTTP server of this file that
answers with malformed, truncated or hostile event streams.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator

import anyio
import jsonschema
import pytest
from anyio.abc import SocketStream, TaskStatus
from engine_support import TOOL_CHOICE, ask, read_all

from pipelines.text.engine import EngineError, EngineOverloaded
from pipelines.text.openai_engine import OpenAIEngine, OpenAISettings
from tests.support.llama_server import LlamaServer, free_port

pytestmark = pytest.mark.anyio


async def test_tokens_stream_from_the_server(llama_server: LlamaServer) -> None:
    engine = OpenAIEngine(llama_server.settings())
    try:
        async with engine.stream(ask(max_tokens=8)) as chunks:
            seen = await read_all(chunks)
    finally:
        await engine.aclose()

    assert seen.text.strip()
    assert all(c.finish_reason is None for c in seen.chunks[:-1])
    assert seen.last.finish_reason == "length"
    stats = seen.last.stats
    assert stats is not None
    assert stats.completion_tokens == 8  # counted from deltas: this server sends no usage
    assert stats.prompt_tokens > 0  # estimated from the messages
    assert 0 < stats.ttft_ms <= stats.total_ms


async def test_json_schema_in_llama_cpp_form_gives_valid_json(llama_server: LlamaServer) -> None:
    engine = OpenAIEngine(llama_server.settings())
    request = ask("Which tool tells the weather in Paris?", max_tokens=40, json_schema=TOOL_CHOICE)
    try:
        async with engine.stream(request) as chunks:
            seen = await read_all(chunks)
    finally:
        await engine.aclose()

    assert seen.last.finish_reason == "stop"
    jsonschema.validate(json.loads(seen.text), TOOL_CHOICE)


async def test_leaving_mid_stream_frees_the_server(llama_server: LlamaServer) -> None:
    engine = OpenAIEngine(llama_server.settings())
    try:
        # 400 tokens would keep this one-thread server busy for seconds.
        async with engine.stream(ask(max_tokens=400)) as chunks:
            first = [await chunks.__anext__() for _ in range(3)]
            left_at = time.perf_counter()
        exit_s = time.perf_counter() - left_at
        after_exit = [c async for c in chunks]

        async with engine.stream(ask(max_tokens=4, request_id="next")) as chunks:
            nxt = await read_all(chunks)
    finally:
        await engine.aclose()

    assert all(c.text and c.finish_reason is None for c in first)
    assert exit_s < 0.5
    assert after_exit == []
    assert nxt.last.stats is not None
    # The server stopped the abandoned generation: the next answer starts at once.
    assert nxt.last.stats.ttft_ms < 2000


async def test_beyond_the_queue_bound_requests_are_refused(llama_server: LlamaServer) -> None:
    engine = OpenAIEngine(llama_server.settings(max_in_flight=1, max_queue=1))

    async def hold(name: str, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        async with engine.stream(ask(max_tokens=50, request_id=name, session_id=name)):
            await anyio.sleep_forever()

    try:
        async with anyio.create_task_group() as tg:
            await tg.start(hold, "running")
            await tg.start(hold, "waiting")
            await anyio.sleep(0.05)
            with pytest.raises(EngineOverloaded):
                async with engine.stream(ask(request_id="third", session_id="third")):
                    pass
            assert engine.statistics()["queued"] == 1
            tg.cancel_scope.cancel()
    finally:
        await engine.aclose()
    assert engine.statistics()["running"] == 0


# -- a peer that misbehaves ------------------------------------------------------------

TEXT = b'data: {"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
CASES: dict[str, bytes] = {
    "good": TEXT
    + b'data: {"choices":[{"delta":{"content":"lo"},"finish_reason":null}]}\n\n'
    + b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
    + b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n'
    + b"data: [DONE]\n\n",
    "not_json": b"data: {not json\n\n",
    "truncated": TEXT + b'data: {"choices":[{"delta":{"content":"hal',
    "no_finish": TEXT,
    "done_without_finish": TEXT + b"data: [DONE]\n\n",
    "error_event": TEXT + b'data: {"error":{"message":"boom"}}\n\n',
    "binary": b"data: \xff\xfe\xfd\x00\n\n",
    "endless_line": b"data: " + b"x" * 20000,
    "wrong_shape": b'data: {"choices":[{"delta":{"content":["a"]}}]}\n\n',
}


async def serve_case(stream: SocketStream) -> None:
    async with stream:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
        length = int(match[1]) if match else 0
        while len(body) < length:
            body += await stream.receive()
        case = head.split(b" ")[1].decode().split("/")[1]
        if case == "http_500":
            await stream.send(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n"
                b"Connection: close\r\n\r\nkaput"
            )
            return
        await stream.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Connection: close\r\n\r\n" + CASES[case]
        )


@pytest.fixture
async def broken_server() -> AsyncIterator[int]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve_case)
        yield port
        tg.cancel_scope.cancel()
    await listener.aclose()


def engine_for(port: int, case: str) -> OpenAIEngine:
    return OpenAIEngine(
        OpenAISettings(base_url=f"http://127.0.0.1:{port}/{case}/v1", max_event_bytes=4096)
    )


async def test_a_well_formed_stream_with_usage(broken_server: int) -> None:
    engine = engine_for(broken_server, "good")
    try:
        async with engine.stream(ask()) as chunks:
            seen = await read_all(chunks)
    finally:
        await engine.aclose()

    assert [c.text for c in seen.chunks] == ["Hel", "lo", ""]
    assert seen.last.finish_reason == "stop"
    assert seen.last.stats is not None
    assert (seen.last.stats.prompt_tokens, seen.last.stats.completion_tokens) == (9, 2)


@pytest.mark.parametrize("case", sorted(set(CASES) - {"good"} | {"http_500"}))
async def test_a_broken_stream_is_an_engine_error(broken_server: int, case: str) -> None:
    engine = engine_for(broken_server, case)
    seen: list[str] = []
    try:
        with anyio.fail_after(5), pytest.raises(EngineError):
            async with engine.stream(ask()) as chunks:
                async for chunk in chunks:
                    seen.append(chunk.text)
    finally:
        await engine.aclose()
    assert seen in ([], ["Hel"])  # what came before the fault, nothing invented


async def test_an_unreachable_server_is_an_engine_error() -> None:
    engine = OpenAIEngine(OpenAISettings(base_url=f"http://127.0.0.1:{free_port()}/v1"))
    try:
        with pytest.raises(EngineError, match="unreachable"):
            async with engine.stream(ask()):
                pass
    finally:
        await engine.aclose()
