"""Agent turns through the real server vs the engine called directly, in one run.

    .venv/bin/python -m bench.agent_latency [--turns 20] [--max-tokens 96] [--instances 1]

The server runs as its own process with the default agent provider (llama.cpp in
process, the packaged gemma GGUF, 1 thread an instance); the bench process loads a
second engine with the same settings and calls it directly. Sessions are offered no
tools, so a turn is one engine request and both sides run the same prompt.

- TTFT: ``text`` sent → first ``token`` received, vs ``stream()`` entered → first
  chunk; a fresh session per turn (so both prompts are system prompt + one message),
  the two paths interleaved so they see the same machine load.
- Cancel to stop: after 5 tokens, ``cancel`` sent → ``turn.done`` received (the turn's
  scope exits only once the engine has let go of the request), and the next turn's
  ``queue_ms`` (its wait for the engine: near 0 when the engine was free); vs leaving
  ``stream()`` → ``stream()`` returned with the worker free.
- Throughput: 1, 4 and 8 sessions each send one turn at once; tokens/s per session
  (answer tokens over first token → ``turn.done``) and aggregate (all answer tokens
  over first send → last ``turn.done``).

Prints the figures and writes bench/results/agent_latency.json (with ``--instances
N`` other than 1: agent_latency_N_instances.json).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bench.common import percentile, summary_ms, write_result
from pipelines.text.agent import DEFAULT_SYSTEM_PROMPT, AgentSettings
from pipelines.text.context import build_context
from pipelines.text.engine import ChatMessage, GenerationRequest
from pipelines.text.llama_engine import LlamaEngine, LlamaSettings
from server.settings import Settings
from tests.support.client import Client, Message
from tests.support.server import ServerProcess, run_server

STORY = "Write a very long story about a dragon who learns to sing."
CANCEL_AFTER = 5  # tokens


def question(i: int) -> str:
    return f"Question {i}: tell me something about the number {i * 7 + 3}."


def config(max_tokens: int, instances: int) -> dict[str, Any]:
    llama = {"n_ctx": 2048, "n_threads": 1, "instances": instances}
    return {
        "limits": {"heartbeat_s": 15.0},
        # A budget no wait reaches: every turn runs at full size, none is refused.
        "open_access": {"latency_budget_ms": 600_000},
        "pipelines": {"agent": Settings().pipelines["agent"]},
        "pipeline_options": {
            "agent": {
                "engine": {"engine": "llama", "llama": llama},
                "agent": {"max_tokens": max_tokens},
            }
        },
    }


async def session(server: ServerProcess) -> Client:
    client = await Client.open(server.url, "msgpack")
    await client.hello(session={"mode": "agent", "tools": []})
    return client


async def until(client: Client, kind: str, timeout: float = 120) -> Message:
    with anyio.fail_after(timeout):
        while True:
            message = await client.recv(timeout)
            if message["type"] == kind:
                return message


async def server_sample(server: ServerProcess, text: str) -> dict[str, float]:
    """One turn: TTFT, then a cancel after a few tokens; seconds."""
    client = await session(server)
    sent = time.perf_counter()
    await client.send({"type": "text", "text": text})
    await until(client, "token")
    ttft = time.perf_counter() - sent
    for _ in range(CANCEL_AFTER - 1):
        if (await client.recv(60))["type"] == "turn.done":
            raise RuntimeError("the answer ended before the cancel")
    cancelled = time.perf_counter()
    await client.send({"type": "cancel"})
    done = await until(client, "turn.done")
    stop = time.perf_counter() - cancelled
    if done["status"] != "cancelled":
        raise RuntimeError(f"turn ended {done['status']}, not cancelled")
    # The next turn's wait for the engine shows whether the engine was free.
    await client.send({"type": "text", "text": "Hi."})
    after = await until(client, "turn.done")
    await client.send({"type": "bye"})
    await client.closed()
    return {
        "ttft": ttft,
        "server_ttft": done["timings"]["ttft_ms"] / 1000,
        "stop": stop,
        "next_queue": after["timings"]["queue_ms"] / 1000,
    }


async def direct_sample(engine: LlamaEngine, text: str, max_tokens: int) -> dict[str, float]:
    """The same prompt straight to the engine: TTFT, and leaving the stream → freed."""
    system = DEFAULT_SYSTEM_PROMPT
    budget = AgentSettings().context_tokens
    messages = build_context(system, [], [ChatMessage("user", text)], budget, engine.count_tokens)
    request = GenerationRequest("direct", messages.messages, max_tokens=max_tokens)
    started = time.perf_counter()
    ttft = 0.0
    got = 0
    async with engine.stream(request) as chunks:
        async for chunk in chunks:
            if chunk.text:
                got += 1
                ttft = ttft or time.perf_counter() - started
            if got >= CANCEL_AFTER:
                break
        left = time.perf_counter()
    return {"ttft": ttft, "stop": time.perf_counter() - left}


async def concurrent(server: ServerProcess, sessions: int) -> dict[str, Any]:
    clients = [await session(server) for _ in range(sessions)]
    results: list[dict[str, float]] = []

    async def one(client: Client, sent: float) -> None:
        first = None
        while True:
            message = await client.recv(300)
            if message["type"] == "token" and first is None:
                first = time.perf_counter()
            if message["type"] == "turn.done":
                break
        done_at = time.perf_counter()
        tokens = message["usage"]["output_tokens"]
        decode_s = done_at - (first or done_at)
        results.append(
            {
                "tokens": tokens,
                "ttft_s": (first or done_at) - sent,
                "done_s": done_at - sent,
                "tokens_per_s": (tokens - 1) / decode_s if decode_s > 0 else 0.0,
                "status": message["status"],
            }
        )

    sent = time.perf_counter()
    async with anyio.create_task_group() as group:
        for client in clients:
            await client.send({"type": "text", "text": STORY})
            group.start_soon(one, client, sent)
    wall = max(r["done_s"] for r in results)
    for client in clients:
        await client.send({"type": "bye"})
        await client.closed()
    rates = [r["tokens_per_s"] for r in results]
    return {
        "sessions": sessions,
        "statuses": sorted({str(r["status"]) for r in results}),
        "answer_tokens": sum(int(r["tokens"]) for r in results),
        "wall_s": round(wall, 3),
        "aggregate_tokens_per_s": round(sum(r["tokens"] for r in results) / wall, 1),
        "per_session_tokens_per_s_p50": round(statistics.median(rates), 1),
        "per_session_tokens_per_s_min": round(min(rates), 1),
        "ttft": summary_ms([r["ttft_s"] for r in results]),
    }


def ms(values: list[float], q: float) -> float:
    return round(1000 * percentile(values, q), 2)


async def bench(turns: int, max_tokens: int, instances: int) -> dict[str, Any]:
    settings = LlamaSettings(n_ctx=2048, n_threads=1)
    engine = await anyio.to_thread.run_sync(LlamaEngine, settings)
    server_runs: list[dict[str, float]] = []
    direct_runs: list[dict[str, float]] = []
    throughput = []
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            run_server(Path(tmp), config(max_tokens, instances)) as server,
        ):
            await server_sample(server, question(-1))  # warm both: first turns are cold
            await direct_sample(engine, question(-1), max_tokens)
            for i in range(turns):
                server_runs.append(await server_sample(server, question(i)))
                direct_runs.append(await direct_sample(engine, question(i), max_tokens))
            for n in (1, 4, 8):
                throughput.append(await concurrent(server, n))
    finally:
        await engine.aclose()

    def column(runs: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in runs]

    ttft_server, ttft_direct = column(server_runs, "ttft"), column(direct_runs, "ttft")
    return {
        "params": {
            "turns": turns,
            "max_tokens": max_tokens,
            "instances": instances,
            "n_threads": 1,
            "cancel_after_tokens": CANCEL_AFTER,
        },
        "ttft": {
            "server": summary_ms(ttft_server),
            "server_reported": summary_ms(column(server_runs, "server_ttft")),
            "direct": summary_ms(ttft_direct),
            "p50_ratio": round(percentile(ttft_server, 50) / percentile(ttft_direct, 50), 2),
            "p90_ratio": round(percentile(ttft_server, 90) / percentile(ttft_direct, 90), 2),
            "p50_overhead_ms": round(ms(ttft_server, 50) - ms(ttft_direct, 50), 2),
        },
        "cancel": {
            "server_cancel_to_done": summary_ms(column(server_runs, "stop")),
            "server_next_turn_queue": summary_ms(column(server_runs, "next_queue")),
            "direct_leave_to_free": summary_ms(column(direct_runs, "stop")),
        },
        "throughput": throughput,
    }


def report(data: dict[str, Any]) -> None:
    ttft, cancel = data["ttft"], data["cancel"]
    for name in ("server", "server_reported", "direct"):
        s = ttft[name]
        print(f"TTFT {name:16s} p50 {s['p50_ms']:8.1f} ms  p90 {s['p90_ms']:8.1f} ms")
    print(f"TTFT server/direct: p50 x{ttft['p50_ratio']}  p90 x{ttft['p90_ratio']}")
    for name, s in cancel.items():
        print(f"{name:24s} p50 {s['p50_ms']:8.1f} ms  p90 {s['p90_ms']:8.1f} ms")
    for row in data["throughput"]:
        print(
            f"{row['sessions']} session(s): per session p50 "
            f"{row['per_session_tokens_per_s_p50']} tok/s, aggregate "
            f"{row['aggregate_tokens_per_s']} tok/s, TTFT p50 {row['ttft']['p50_ms']:.0f} ms "
            f"p90 {row['ttft']['p90_ms']:.0f} ms, {row['statuses']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--instances", type=int, default=1)
    args = parser.parse_args()
    data = anyio.run(bench, args.turns, args.max_tokens, args.instances)
    report(data)
    suffix = "" if args.instances == 1 else f"_{args.instances}_instances"
    write_result("agent_latency" + suffix, data)


if __name__ == "__main__":
    main()
