"""LLM engine smoke bench: TTFT, decode speed and cancel-to-stop latency.

    .venv/bin/python -m bench.engine_smoke [--threads 1 2] [--repeats 3] [--no-server]

For the in-process llama.cpp engine (gemma-3-270m Q4_K_M from its PyPI package), per
thread count:
- TTFT cold (new prompt) and warm (same prompt again: the KV cache holds the prefix);
- decode tokens/s over a 64-token answer;
- cancel mid-decode: leaving the stream → ``stream()`` returned with the worker free;
- cancel mid-prefill (a ~1400-token prompt): the scope's deadline → the worker free.
For the OpenAI-compatible engine against ``python -m llama_cpp.server`` (1 thread):
TTFT, tokens/s, and the TTFT of the next request after an abandoned long stream.
Prints the figures and writes bench/results/engine_smoke.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from pipelines.text.engine import ChatMessage, GenerationRequest, GenerationStats, LlmEngine
from pipelines.text.llama_engine import LlamaEngine, LlamaSettings
from pipelines.text.models import default_gguf_path
from pipelines.text.openai_engine import OpenAIEngine, OpenAISettings

RESULTS = Path(__file__).parent / "results" / "engine_smoke.json"
STORY = "Write a very long story about a dragon who learns to sing."


def ask(text: str, max_tokens: int, request_id: str = "bench") -> GenerationRequest:
    return GenerationRequest(request_id, (ChatMessage("user", text),), max_tokens=max_tokens)


def long_text() -> str:
    return "Summarise this list: " + " ".join(f"item{i % 97} is number {i}." for i in range(150))


async def generate(engine: LlmEngine, request: GenerationRequest) -> GenerationStats:
    async with engine.stream(request) as chunks:
        async for chunk in chunks:
            if chunk.stats is not None:
                return chunk.stats
    raise RuntimeError("no stats")


async def cancel_mid_decode(engine: LlmEngine, after_chunks: int = 5) -> float:
    """Milliseconds from leaving a running stream to ``stream()`` having returned."""
    async with engine.stream(ask(STORY, 400, "cancel")) as chunks:
        for _ in range(after_chunks):
            await chunks.__anext__()
        left = time.perf_counter()
    return 1000 * (time.perf_counter() - left)


async def cancel_mid_prefill(engine: LlmEngine, after_s: float = 0.3) -> float:
    """Milliseconds from the cancel deadline to the stream's exit (the worker free)."""
    with anyio.move_on_after(after_s) as scope:
        async with engine.stream(ask(long_text(), 4, "prefill")) as chunks:
            async for _ in chunks:
                pass
    return 1000 * (anyio.current_time() - scope.deadline)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "max": max(values), "n": len(values)}


async def bench_llama(threads: int, repeats: int) -> dict[str, Any]:
    engine = await anyio.to_thread.run_sync(
        lambda: LlamaEngine(LlamaSettings(n_ctx=2048, n_threads=threads))
    )
    try:
        cold, warm, speed, decode_cancel, prefill_cancel = [], [], [], [], []
        for index in range(repeats):
            stats = await generate(engine, ask(f"{index}: {STORY}", 64))
            cold.append(stats.ttft_ms)
            speed.append(stats.tokens_per_s)
            warm.append((await generate(engine, ask(f"{index}: {STORY}", 4))).ttft_ms)
            decode_cancel.append(await cancel_mid_decode(engine))
            prefill_cancel.append(await cancel_mid_prefill(engine))
        prompt_tokens = len(engine.prompt_tokens(ask(long_text(), 4)))
        return {
            "threads": threads,
            "ttft_cold_ms": summary(cold),
            "ttft_warm_ms": summary(warm),
            "decode_tokens_per_s": summary(speed),
            "cancel_mid_decode_to_free_ms": summary(decode_cancel),
            "cancel_mid_prefill_to_free_ms": summary(prefill_cancel),
            "prefill_prompt_tokens": prompt_tokens,
            "measured_prefill_tokens_per_s": engine.statistics()["prefill_tokens_per_s"],
        }
    finally:
        await engine.aclose()


async def bench_openai(repeats: int) -> dict[str, Any]:
    port = 18000 + os.getpid() % 1000
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path()),
        "--model_alias", "gemma", "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1", "--logits_all", "False",
        "--interrupt_requests", "False", "--chat_format", "gemma", "--verbose", "False",
    ]  # fmt: skip
    server = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    engine: OpenAIEngine | None = None
    try:
        with anyio.fail_after(90):
            while True:
                try:
                    async with httpx.AsyncClient() as client:
                        if (await client.get(f"{base}/models")).status_code == 200:
                            break
                except httpx.HTTPError:
                    await anyio.sleep(0.2)
        engine = OpenAIEngine(
            OpenAISettings(base_url=base, model="gemma", json_schema_mode="json_object")
        )
        ttft, speed, exits, next_ttft = [], [], [], []
        for index in range(repeats):
            stats = await generate(engine, ask(f"{index}: {STORY}", 64))
            ttft.append(stats.ttft_ms)
            speed.append(stats.tokens_per_s)
            exits.append(await cancel_mid_decode(engine))
            next_ttft.append((await generate(engine, ask("Say hi.", 4))).ttft_ms)
        return {
            "threads": 1,
            "ttft_ms": summary(ttft),
            "decode_tokens_per_s": summary(speed),
            "cancel_exit_ms": summary(exits),
            "next_request_ttft_after_cancel_ms": summary(next_ttft),
        }
    finally:
        if engine is not None:
            await engine.aclose()
        server.terminate()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await server.wait()


async def main(threads: list[int], repeats: int, with_server: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_at_start": os.getloadavg(),
        "llama": [await bench_llama(n, repeats) for n in threads],
    }
    if with_server:
        results["openai_llama_cpp_server"] = await bench_openai(repeats)
    results["load_average_at_end"] = os.getloadavg()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-server", action="store_true")
    args = parser.parse_args()
    figures = anyio.run(main, args.threads, args.repeats, not args.no_server)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
