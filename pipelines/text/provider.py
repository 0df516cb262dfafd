"""The ``agent`` mode's ``PipelineProvider``: loads the engines and the tools once per
process and makes one ``AgentPipeline`` per session.

Its options are the server's ``[pipeline_options.agent]`` table::

    [pipeline_options.agent]
    documents_dir = "/srv/parley/docs"     # enables the search_documents tool
    engine = { engine = "llama", llama = { n_threads = 2 } }
    fallback = { engine = "openai", openai = { base_url = "http://vllm:8000/v1" } }
    agent = { max_tokens = 256, max_tool_rounds = 2, context_tokens = 1536 }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError

from pipelines.text.agent import AgentPipeline, AgentSettings
from pipelines.text.engine import LlmEngine
from pipelines.text.engines import EngineSettings, build_engine
from sessions.pipeline import PipelineContext
from tools.builtins import builtin_registry
from tools.registry import ToolRegistry


class AgentOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: EngineSettings = EngineSettings()
    fallback: EngineSettings | None = None
    documents_dir: str | None = None
    agent: AgentSettings = AgentSettings()


class AgentProvider:
    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self._engine: LlmEngine | None = None
        self._fallback: LlmEngine | None = None
        self._registry: ToolRegistry | None = None

    async def start(self) -> None:
        """Load the model(s) in a worker thread: the event loop never waits on it."""
        options = self.options
        documents = Path(options.documents_dir) if options.documents_dir else None
        self._registry = builtin_registry(documents)
        self._engine = await anyio.to_thread.run_sync(build_engine, options.engine)
        if options.fallback is not None:
            self._fallback = await anyio.to_thread.run_sync(build_engine, options.fallback)

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
        for engine in (self._fallback, self._engine):
            if engine is not None:
                await engine.aclose()
        self._engine = self._fallback = None


def create_provider(options: dict[str, Any]) -> AgentProvider:
    """The provider for ``[pipeline_options.agent]``; ValueError names a bad option."""
    try:
        parsed = AgentOptions.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"pipeline_options.agent.{where}: {first['msg']}") from None
    return AgentProvider(parsed)
