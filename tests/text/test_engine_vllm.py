"""VllmEngine in process: only where vLLM imports and a CUDA GPU is visible.

vLLM's wheels are CUDA-only, so on CPU machines this whole module is skipped. Set
``PARLEY_TEST_VLLM_MODEL`` to a local model directory to run it on a GPU host.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator

import anyio
import jsonschema
import pytest
from engine_support import TOOL_CHOICE, ask, read_all

from pipelines.text.vllm_engine import VllmEngine, VllmSettings, vllm_available

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.anyio,
    pytest.mark.skipif(
        not vllm_available(), reason="vLLM wheels are CUDA-only: vllm not importable or no CUDA"
    ),
]


@pytest.fixture
async def engine() -> AsyncIterator[VllmEngine]:
    model = os.environ.get("PARLEY_TEST_VLLM_MODEL", "")
    built = VllmEngine(VllmSettings(model=model, max_model_len=2048, gpu_memory_utilization=0.5))
    yield built
    await built.aclose()


async def test_tokens_stream_and_finish(engine: VllmEngine) -> None:
    async with engine.stream(ask(max_tokens=12)) as chunks:
        seen = await read_all(chunks)
    assert seen.text
    assert seen.last.finish_reason in ("stop", "length")
    assert seen.last.stats is not None and 0 < seen.last.stats.completion_tokens <= 12


async def test_leaving_aborts_the_request(engine: VllmEngine) -> None:
    async with engine.stream(ask(max_tokens=2000)) as chunks:
        await chunks.__anext__()
        left_at = time.perf_counter()
    assert time.perf_counter() - left_at < 0.5
    assert engine.statistics()["running"] == 0
    with anyio.fail_after(5):
        async with engine.stream(ask(max_tokens=4, request_id="next")) as chunks:
            await read_all(chunks)


async def test_json_schema_output_is_valid(engine: VllmEngine) -> None:
    request = ask("Which tool tells the weather?", max_tokens=60, json_schema=TOOL_CHOICE)
    async with engine.stream(request) as chunks:
        seen = await read_all(chunks)
    jsonschema.validate(json.loads(seen.text), TOOL_CHOICE)
