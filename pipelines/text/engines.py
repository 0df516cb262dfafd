"""``build_engine``: the configured ``LlmEngine``.

``EngineSettings.engine`` names it: ``"llama"`` (llama.cpp in process, the embedded
default), ``"openai"`` (an OpenAI-compatible server such as ``vllm serve``) or
``"vllm"`` (vLLM in process, CUDA hosts only). Each engine reads its own section.

The llama engine loads its model while it is built (about half a second per
instance): from async code, build it in a worker thread
(``await anyio.to_thread.run_sync(build_engine, settings)``). The HTTP and vLLM
engines bind to the event loop that first uses them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from pipelines.text.engine import LlmEngine
from pipelines.text.llama_engine import LlamaSettings
from pipelines.text.openai_engine import OpenAISettings
from pipelines.text.vllm_engine import VllmSettings

EngineName = Literal["llama", "openai", "vllm"]


class EngineSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: EngineName = "llama"
    llama: LlamaSettings = LlamaSettings()
    openai: OpenAISettings = OpenAISettings()
    vllm: VllmSettings = VllmSettings()


def build_engine(settings: EngineSettings | None = None) -> LlmEngine:
    settings = settings or EngineSettings()
    if settings.engine == "openai":
        from pipelines.text.openai_engine import OpenAIEngine

        return OpenAIEngine(settings.openai)
    if settings.engine == "vllm":
        from pipelines.text.vllm_engine import VllmEngine

        return VllmEngine(settings.vllm)
    from pipelines.text.llama_engine import LlamaEngine

    return LlamaEngine(settings.llama)
