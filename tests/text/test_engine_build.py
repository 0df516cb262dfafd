"""build_engine: the configured engine, by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.text.engine import EngineError, LlmEngine
from pipelines.text.engines import EngineSettings, build_engine
from pipelines.text.llama_engine import LlamaEngine, LlamaSettings
from pipelines.text.openai_engine import OpenAIEngine, OpenAISettings
from pipelines.text.vllm_engine import VllmSettings, vllm_available

pytestmark = pytest.mark.anyio


async def test_the_default_is_llama_cpp_in_process(gguf_path: Path) -> None:
    settings = EngineSettings(llama=LlamaSettings(model_path=str(gguf_path), n_threads=1))
    engine: LlmEngine = build_engine(settings)
    try:
        assert isinstance(engine, LlamaEngine)
        assert engine.name == "llama" and engine.supports_json_schema
        assert engine.count_tokens("hello world") == 2
        assert engine.estimated_wait_ms() == 0.0
    finally:
        await engine.aclose()


async def test_openai_names_the_http_engine() -> None:
    settings = EngineSettings.model_validate(
        {"engine": "openai", "openai": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}
    )
    engine = build_engine(settings)
    try:
        assert isinstance(engine, OpenAIEngine)
        assert engine.settings == OpenAISettings(base_url="http://127.0.0.1:9/v1", model="m")
        assert engine.count_tokens("four") == 1
    finally:
        await engine.aclose()


def test_vllm_needs_a_model_and_vllm_itself() -> None:
    with pytest.raises(EngineError, match=r"settings\.model"):
        build_engine(EngineSettings(engine="vllm"))
    if not vllm_available():  # CPU machines: the wheels are CUDA-only
        with pytest.raises(EngineError, match="vLLM is not installed"):
            build_engine(EngineSettings(engine="vllm", vllm=VllmSettings(model="/models/x")))


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        EngineSettings.model_validate({"engine": "gpt"})
    with pytest.raises(ValidationError):
        EngineSettings.model_validate({"llama": {"instances": 0}})
    with pytest.raises(ValidationError):
        EngineSettings.model_validate({"openai": {"json_schema_mode": "grammar"}})
    with pytest.raises(ValidationError):
        EngineSettings.model_validate({"llama": {"n_ctx": 4096, "typo": 1}})
