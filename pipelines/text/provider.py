"""The ``agent`` mode's ``PipelineProvider``: loads the engines and the tools once per
process and makes one ``AgentPipeline`` per session.

Its options are the server's ``[pipeline_options.agent]`` table::

    [pipeline_options.agent]
    documents_dir = "/srv/parley/docs"     # enables the search_documents tool
    engine = { engine = "llama", llama = { n_threads = 2 } }
    fallback = { engine = "openai", openai = { base_url = "http://vllm:8000/v1" } }
    agent = { max_tokens = 256, max_tool_rounds = 2, context_tokens = 1536 }

Engines are shared by every provider of the process (``ENGINES``): the ``agent`` and
``voice_agent`` modes with the same engine settings use one loaded model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict

from pipelines.options import parse_options
from pipelines.text.agent import AgentPipeline, AgentSettings
from pipelines.text.engine import LlmEngine
from pipelines.text.engines import EngineSettings, build_engine
from sessions.pipeline import PipelineContext
from tools.builtins import builtin_registry
from tools.registry import ToolRegistry


@dataclass(slots=True)
class _Held:
    users: int = 0
    engine: LlmEngine | None = None
    loading: threading.Lock = field(default_factory=threading.Lock)


class EngineCache:
    """The process's engines, one per distinct ``EngineSettings``, counted by user.

    ``acquire`` loads an engine on its first use (in a worker thread) and hands the
    same object to every later user of equal settings; ``release`` closes it when its
    last user lets go. Two providers starting at once load once: the second waits on
    the first's load instead of making a second copy of the model in memory.
    """

    def __init__(self, build: Callable[[EngineSettings], LlmEngine] = build_engine) -> None:
        self._build = build
        self._lock = threading.Lock()  # guards the map; held only for a few lines
        self._held: dict[str, _Held] = {}

    async def acquire(self, settings: EngineSettings) -> LlmEngine:
        return await anyio.to_thread.run_sync(self._acquire, settings)

    def _acquire(self, settings: EngineSettings) -> LlmEngine:
        key = settings.model_dump_json()
        with self._lock:
            held = self._held.setdefault(key, _Held())
            held.users += 1
        try:
            with held.loading:  # one load per key; the others wait for it
                if held.engine is None:
                    held.engine = self._build(settings)
                return held.engine
        except BaseException:
            with self._lock:
                held.users -= 1
                if held.users == 0 and self._held.get(key) is held:
                    del self._held[key]
            raise

    async def release(self, engine: LlmEngine) -> None:
        """One user is done with ``engine``; the last one closes it."""
        with self._lock:
            key = next((k for k, h in self._held.items() if h.engine is engine), None)
            if key is None:
                raise ValueError("release of an engine this cache did not hand out")
            held = self._held[key]
            held.users -= 1
            if held.users > 0:
                return
            del self._held[key]
        await engine.aclose()

    def users(self, engine: LlmEngine) -> int:
        """How many holders ``engine`` has (0 once closed)."""
        with self._lock:
            return sum(h.users for h in self._held.values() if h.engine is engine)


ENGINES = EngineCache()


class AgentOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: EngineSettings = EngineSettings()
    fallback: EngineSettings | None = None
    documents_dir: str | None = None
    agent: AgentSettings = AgentSettings()


class AgentProvider:
    def __init__(self, options: AgentOptions, *, engines: EngineCache = ENGINES) -> None:
        self.options = options
        self.engines = engines
        self._engine: LlmEngine | None = None
        self._fallback: LlmEngine | None = None
        self._registry: ToolRegistry | None = None

    async def start(self) -> None:
        """Load the model(s) in a worker thread (or take them from another provider
        of this process): the event loop never waits on a load."""
        options = self.options
        documents = Path(options.documents_dir) if options.documents_dir else None
        self._registry = builtin_registry(documents)
        self._engine = await self.engines.acquire(options.engine)
        if options.fallback is not None:
            self._fallback = await self.engines.acquire(options.fallback)

    def create(self, context: PipelineContext) -> AgentPipeline:
        if self._engine is None or self._registry is None:
            raise RuntimeError("the agent provider was not started")
        return AgentPipeline(
            context,
            self._engine,
            self._registry,
            settings=self.options.agent,
            fallback=self._fallback,
        )

    async def aclose(self) -> None:
        engines = (self._fallback, self._engine)
        self._engine = self._fallback = None
        for engine in engines:
            if engine is not None:
                await self.engines.release(engine)


def create_provider(options: dict[str, Any]) -> AgentProvider:
    """The provider for ``[pipeline_options.agent]``; ValueError names a bad option."""
    return AgentProvider(parse_options(AgentOptions, options, "agent"))
