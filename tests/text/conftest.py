"""Real LLM parts for the text tests, each started once per test session.

- ``gguf_path``: the gemma-3-270m GGUF assembled from its PyPI package.
- ``llama_engine``: one in-process llama.cpp engine (1 instance, 1 thread, n_ctx
  2048, a queue of 8). Tests that use it leave it idle when they finish.
- ``llama_server``: llama.cpp's own OpenAI-compatible server (``python -m
  llama_cpp.server``) on a free loopback port, a real peer standing in for ``vllm
  serve``. Its base URL is ``llama_server.base_url``; its model alias is ``gemma``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.text.llama_engine import LlamaEngine, LlamaSettings
from pipelines.text.models import default_gguf_path
from tests.support.llama_server import LlamaServer, run_llama_server


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    return default_gguf_path()


@pytest.fixture(scope="session")
def llama_engine(gguf_path: Path) -> Iterator[LlamaEngine]:
    engine = LlamaEngine(
        LlamaSettings(model_path=str(gguf_path), n_ctx=2048, n_threads=1, max_queue=8)
    )
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path) -> Iterator[LlamaServer]:
    with run_llama_server(gguf_path) as server:
        yield server
