"""The process's engine cache: one loaded model per distinct engine setting, shared by
every provider that asks for it, closed when the last one lets go."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from pipelines.text.engine import ChatMessage, GenerationRequest, LlmEngine
from pipelines.text.engines import EngineSettings, build_engine
from pipelines.text.llama_engine import LlamaEngine, LlamaSettings
from pipelines.text.models import ModelUnavailable
from pipelines.text.provider import EngineCache

pytestmark = pytest.mark.anyio


class CountingCache(EngineCache):
    """The real cache over the real builder, counting the loads it makes."""

    def __init__(self) -> None:
        self.builds = 0

        def build(settings: EngineSettings) -> LlmEngine:
            self.builds += 1
            return build_engine(settings)

        super().__init__(build)


def llama(gguf_path: Path, max_queue: int = 16) -> EngineSettings:
    return EngineSettings(
        llama=LlamaSettings(model_path=str(gguf_path), n_ctx=512, n_threads=1, max_queue=max_queue)
    )


async def generate(engine: LlmEngine) -> str:
    request = GenerationRequest("r1", (ChatMessage("user", "Hi."),), max_tokens=2)
    async with engine.stream(request) as chunks:
        return "".join([chunk.text async for chunk in chunks])


async def test_equal_settings_share_one_engine_until_the_last_release(gguf_path: Path) -> None:
    cache = CountingCache()
    got: list[LlmEngine] = []

    async def take() -> None:
        got.append(await cache.acquire(llama(gguf_path)))  # equal, not the same object

    async with anyio.create_task_group() as tg:  # two providers starting at once
        tg.start_soon(take)
        tg.start_soon(take)
    first, second = got
    assert first is second and cache.builds == 1 and cache.users(first) == 2
    assert isinstance(first, LlamaEngine)

    await cache.release(first)
    assert cache.users(first) == 1
    await generate(second)  # still loaded for the other holder
    await cache.release(second)
    assert cache.users(first) == 0 and first._closed
    with pytest.raises(ValueError):
        await cache.release(first)  # released twice: a bug, said loudly

    again = await cache.acquire(llama(gguf_path))
    assert again is not first and cache.builds == 2
    await cache.release(again)


async def test_different_settings_load_different_engines(gguf_path: Path) -> None:
    cache = CountingCache()
    one = await cache.acquire(llama(gguf_path))
    other = await cache.acquire(llama(gguf_path, max_queue=3))
    try:
        assert one is not other and cache.builds == 2
    finally:
        await cache.release(one)
        await cache.release(other)


async def test_a_failed_load_leaves_nothing_behind(gguf_path: Path, tmp_path: Path) -> None:
    cache = CountingCache()
    missing = llama(tmp_path / "missing.gguf")
    with pytest.raises(ModelUnavailable):
        await cache.acquire(missing)
    with pytest.raises(ModelUnavailable):  # tried again, not a cached failure
        await cache.acquire(missing)
    assert cache.builds == 2
    engine = await cache.acquire(llama(gguf_path))
    await cache.release(engine)
