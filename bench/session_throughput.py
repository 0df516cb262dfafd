"""Durable events through a Parley session vs a bare ``websockets`` server.

Both servers run on this machine in the same run and send the same JSON messages
(same size, same library on the client side). Parley adds: sequence numbers, the
replay buffer, the outbound policy and the session core. We report throughput and
delivery latency (emit → client) for each, and their ratio.

    .venv/bin/python -m bench.session_throughput [--events 20000] [--pad 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from bench.common import summary_ms, write_result
from tests.support.client import Client
from tests.support.server import numbered_config, run_server


async def bare_handler(ws: ServerConnection) -> None:
    """A baseline server: on ``count N interval_ms pad`` it sends N messages shaped
    like Parley's ``caption.final`` with the same padding."""
    async for frame in ws:
        words = json.loads(frame)["text"].split()
        n, interval_ms, pad = int(words[1]), int(words[2]), int(words[3])
        for i in range(n):
            padding = random.Random(i).randbytes(pad // 2).hex() if pad else ""
            text = f"{i} {time.time():.6f} {padding}"
            await ws.send(
                json.dumps(
                    {
                        "type": "caption.final",
                        "seq": i + 1,
                        "segment": i,
                        "text": text,
                        "start": 0.0,
                        "end": 0.0,
                        "speaker": None,
                    },
                    separators=(",", ":"),
                )
            )
            if interval_ms:
                await asyncio.sleep(interval_ms / 1000)


async def bare_server_main() -> None:
    """Run the baseline in its own process, as Parley runs in its own."""
    async with serve(bare_handler, "127.0.0.1", 0, max_size=None) as bare:
        port = next(iter(bare.sockets)).getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


async def drive(
    url: str, events: int, pad: int, hello: bool, interval_ms: int = 0
) -> dict[str, Any]:
    client = await Client.open(url)
    if hello:
        await client.hello()
    latencies: list[float] = []
    started = time.perf_counter()
    await client.send({"type": "text", "text": f"count {events} {interval_ms} {pad}"})
    received = 0
    while received < events:
        message = await client.recv(30)
        if message["type"] != "caption.final":
            continue
        received += 1
        emitted = float(message["text"].split()[1])
        latencies.append(time.time() - emitted)
    elapsed = time.perf_counter() - started
    await client.close()
    return {
        "events": events,
        "seconds": round(elapsed, 3),
        "events_per_s": round(events / elapsed, 1),
        "latency": summary_ms(latencies),
    }


async def bench(events: int, pad: int, rounds: int, paced: int) -> dict[str, Any]:
    burst: dict[str, list[dict[str, Any]]] = {"parley": [], "bare_websockets": []}
    steady: dict[str, list[dict[str, Any]]] = {"parley": [], "bare_websockets": []}
    bare = subprocess.Popen(
        [sys.executable, "-m", "bench.session_throughput", "--bare-server"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bare.stdout is not None
        bare_url = f"ws://127.0.0.1:{int(bare.stdout.readline())}/"
        config = numbered_config(replay_events=events + 16, max_pending_events=events + 8)
        with tempfile.TemporaryDirectory() as tmp, run_server(Path(tmp), config) as server:
            urls = {"parley": server.url, "bare_websockets": bare_url}
            for _ in range(rounds):  # interleaved, so both see the same machine load
                for name, url in urls.items():
                    burst[name].append(await drive(url, events, pad, name == "parley"))
                    steady[name].append(
                        await drive(url, paced, pad, name == "parley", interval_ms=2)
                    )
    finally:
        bare.kill()
        bare.wait()
    best = {k: max(v, key=lambda r: r["events_per_s"]) for k, v in burst.items()}
    p50 = {k: min(r["latency"]["p50_ms"] for r in v) for k, v in steady.items()}
    p99 = {k: min(r["latency"]["p99_ms"] for r in v) for k, v in steady.items()}
    return {
        "params": {
            "events": events,
            "pad_bytes": pad,
            "rounds": rounds,
            "paced_events": paced,
            "paced_interval_ms": 2,
        },
        "burst": burst,
        "paced": steady,
        "throughput_ratio": round(
            best["parley"]["events_per_s"] / best["bare_websockets"]["events_per_s"], 3
        ),
        "paced_p50_ms": p50,
        "paced_p99_ms": p99,
        "p50_ratio": round(p50["parley"] / p50["bare_websockets"], 3),
        "p99_ratio": round(p99["parley"] / p99["bare_websockets"], 3),
        "best": best,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--pad", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paced", type=int, default=1000, help="events of the paced run")
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        asyncio.run(bare_server_main())
        return
    data = asyncio.run(bench(args.events, args.pad, args.rounds, args.paced))
    for name, run in data["best"].items():
        print(
            f"{name:16s} burst {run['events_per_s']:>9.0f} events/s   paced (500/s) "
            f"p50 {data['paced_p50_ms'][name]:.2f} ms  p99 {data['paced_p99_ms'][name]:.2f} ms"
        )
    print(
        f"ratios parley/bare: throughput {data['throughput_ratio']}  "
        f"p50 {data['p50_ratio']}  p99 {data['p99_ratio']}"
    )
    write_result("session_throughput", data)


if __name__ == "__main__":
    main()
