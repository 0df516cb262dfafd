"""Real LLM parts for the text tests, each started once per test session.

- ``gguf_path``: the gemma-3-270m GGUF assembled from its PyPI package.
- ``llama_engine``: one in-process llama.cpp engine (1 instance, 1 thread, n_ctx
  2048, a queue of 8). Tests that use it leave it idle when they finish.
- ``llama_server``: llama.cpp's own OpenAI-compatible server (``python -m
  llama_cpp.server``) on a free loopback port, a real peer standing in for ``vllm
  serve``. Its base URL is ``llama_server.base_url``; its model alias is ``gemma``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from engine_support import LlamaServer, free_port

from pipelines.text.llama_engine import LlamaEngine, LlamaSettings
from pipelines.text.models import default_gguf_path

SERVER_START_TIMEOUT_S = 90.0


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
    port = free_port()
    # Flags from FINDINGS.md: without them prefill is 2x slower and a new request
    # cuts off a running stream. One thread: the in-process engine has the rest.
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path),
        "--model_alias", "gemma",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", "1",
        "--logits_all", "False",
        "--interrupt_requests", "False",
        "--chat_format", "gemma",
        "--verbose", "False",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"}
        )
        server = LlamaServer(f"http://127.0.0.1:{port}/v1", "gemma", process)
        try:
            _wait_until_ready(server, log)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(server: LlamaServer, log: IO[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llama_cpp.server exited: {log.read()[-2000:]!r}")
        try:
            if httpx.get(f"{server.base_url}/models", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("llama_cpp.server did not start in time")
