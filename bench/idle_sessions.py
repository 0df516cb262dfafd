"""Memory per idle session: N sessions held open with heartbeats.

Each client sends an app-level ``ping`` every ``heartbeat_s`` (as browsers must) and
answers the server's WebSocket pings. We read the server's RSS before and after the
sessions attach, and check that every session is still attached at the end.

    .venv/bin/python -m bench.idle_sessions [--sessions 1000] [--hold 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import rss_bytes, summary_ms, write_result
from tests.support.client import Client
from tests.support.server import numbered_config, run_server


async def hold(url: str, sessions: int, seconds: float, heartbeat_s: float) -> dict[str, Any]:
    clients: list[Client] = []
    for start in range(0, sessions, 100):  # connect in batches, as a fleet would
        batch = await asyncio.gather(
            *(Client.open(url) for _ in range(start, min(sessions, start + 100)))
        )
        await asyncio.gather(*(c.hello() for c in batch))
        clients.extend(batch)
    rtts: list[float] = []
    failures: dict[str, int] = {}

    async def beat(client: Client) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            try:
                await client.send({"type": "ping", "id": 1})
                await client.recv_until(lambda m: m["type"] == "pong", timeout=heartbeat_s * 2)
                rtts.append(time.perf_counter() - sent)
            except Exception as exc:
                why = f"{type(exc).__name__} {getattr(exc, 'code', '')}".strip()
                failures[why] = failures.get(why, 0) + 1
                return
            await asyncio.sleep(heartbeat_s)

    await asyncio.gather(*(beat(c) for c in clients))
    return {"clients": clients, "ping_rtt": summary_ms(rtts), "failures": failures}


async def bench(sessions: int, seconds: float, heartbeat_s: float) -> dict[str, Any]:
    config = numbered_config(heartbeat_s=heartbeat_s)
    config["server"] = {"max_sessions": sessions + 10}
    config["open_access"] = {"max_sessions": sessions + 10}
    with tempfile.TemporaryDirectory() as tmp, run_server(Path(tmp), config) as server:
        pid = server.proc.pid
        await asyncio.sleep(1.0)
        before = rss_bytes(pid)
        result = await hold(server.url, sessions, seconds, heartbeat_s)
        during = rss_bytes(pid)
        attached = server.metric("parley_sessions", 'state="attached"')
        for client in result["clients"]:
            await client.close()
    per_session = (during - before) / sessions
    return {
        "params": {"sessions": sessions, "hold_s": seconds, "heartbeat_s": heartbeat_s},
        "rss_before_mb": round(before / 2**20, 1),
        "rss_with_sessions_mb": round(during / 2**20, 1),
        "kib_per_session": round(per_session / 1024, 1),
        "attached_at_end": attached,
        "heartbeat_failures": result["failures"],
        "ping_rtt": result["ping_rtt"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=15.0)
    parser.add_argument("--heartbeat", type=float, default=5.0)
    args = parser.parse_args()
    data = asyncio.run(bench(args.sessions, args.hold, args.heartbeat))
    print(
        f"{args.sessions} idle sessions: {data['kib_per_session']} KiB each "
        f"(RSS {data['rss_before_mb']} → {data['rss_with_sessions_mb']} MB), "
        f"{data['attached_at_end']:.0f} attached at the end, "
        f"heartbeat failures {data['heartbeat_failures']}, "
        f"ping p50 {data['ping_rtt']['p50_ms']} ms p99 {data['ping_rtt']['p99_ms']} ms"
    )
    write_result("idle_sessions", data)


if __name__ == "__main__":
    main()
