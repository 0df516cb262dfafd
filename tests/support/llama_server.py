"""llama.cpp's own OpenAI-compatible server (``python -m llama_cpp.server``) on a free
loopback port: a real peer standing in for ``vllm serve``, which cannot run on CPU
machines. Its base URL is ``LlamaServer.base_url``; its model alias is ``gemma``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from pipelines.text.openai_engine import OpenAISettings

START_TIMEOUT_S = 90.0
MODEL_ALIAS = "gemma"


@dataclass(frozen=True)
class LlamaServer:
    base_url: str
    model: str
    process: subprocess.Popen[bytes]

    def settings(self, **overrides: object) -> OpenAISettings:
        """Engine settings for this server: llama.cpp's json_object schema form."""
        return OpenAISettings.model_validate({**self.options(), **overrides})

    def options(self) -> dict[str, Any]:
        """The same settings as a plain table (``[pipeline_options.agent]``)."""
        return {"base_url": self.base_url, "model": self.model, "json_schema_mode": "json_object"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_llama_server(gguf_path: Path, *, n_threads: int = 1) -> Iterator[LlamaServer]:
    port = free_port()
    # Flags from FINDINGS.md: without them prefill is 2x slower and a new request
    # cuts off a running stream.
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", str(n_threads),
        "--logits_all", "False",
        "--interrupt_requests", "False",
        "--chat_format", "gemma",
        "--verbose", "False",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"}
        )
        server = LlamaServer(f"http://127.0.0.1:{port}/v1", MODEL_ALIAS, process)
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
    deadline = time.monotonic() + START_TIMEOUT_S
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
