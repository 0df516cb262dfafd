"""Sessions hopping between two nodes that share Redis, under load.

A real redis-server and two real server processes (the numbered test pipeline).
Each session streams ``count`` events; its client drops the connection at random
moments (no close handshake) and resumes on a random node. We report lost and
duplicated events (both must be 0), resume latency (connect → welcome) and Redis
commands per delivered event.

    .venv/bin/python -m bench.cluster_load [--sessions 40] [--events 300] [--interval-ms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import summary_ms, write_result
from tests.support.client import Client, Closed
from tests.support.redis_server import run_redis
from tests.support.server import ServerProcess, numbered_config, run_server

SECRET = "bench-cluster-secret-0123456789"


def redis_ops(node: ServerProcess) -> float:
    total = 0.0
    for line in node.get("/metrics").text.splitlines():
        if line.startswith("parley_redis_ops_total{"):
            total += float(line.split()[-1])
    return total


async def one_session(
    nodes: list[ServerProcess], events: int, interval_ms: int, rng: random.Random
) -> dict[str, Any]:
    got: list[int] = []
    resumes: list[float] = []
    errors: list[str] = []
    client = await Client.open(rng.choice(nodes).url, "msgpack")
    await client.hello(session={"mode": "agent"})
    await client.send({"type": "text", "text": f"count {events} {interval_ms}"})
    while True:
        hold = rng.uniform(0.2, 1.0)
        try:
            deadline = time.monotonic() + hold
            while time.monotonic() < deadline:
                message = await client.recv(timeout=max(0.01, deadline - time.monotonic()))
                if message["type"] == "caption.final":
                    got.append(int(message["segment"]))
                if len(got) % 50 == 0 and "seq" in message:
                    await client.send({"type": "ack", "seq": client.last_seq})
        except TimeoutError:
            pass
        except (Closed, AssertionError) as exc:  # AssertionError: a seq gap or repeat
            errors.append(type(exc).__name__)
        if got and got[-1] == events - 1:
            break
        client.abort()
        previous = client
        for _ in range(40):
            started = time.perf_counter()
            client = await Client.open(rng.choice(nodes).url, "msgpack")
            try:
                await client.hello(**previous.resume_fields())
            except (AssertionError, Closed):
                await asyncio.sleep(0.1)  # overloaded while the session moves: again
                continue
            resumes.append(time.perf_counter() - started)
            break
        else:
            errors.append("never resumed")
            break
    await client.send({"type": "bye"})
    return {"got": got, "resumes": resumes, "errors": errors}


async def run(
    nodes: list[ServerProcess], sessions: int, events: int, interval_ms: int
) -> dict[str, Any]:
    rng = random.Random(7)
    ops_before = sum(redis_ops(n) for n in nodes)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            one_session(nodes, events, interval_ms, random.Random(rng.random()))
            for _ in range(sessions)
        )
    )
    elapsed = time.perf_counter() - started
    await asyncio.sleep(1.0)  # let the last flushes land before counting commands
    ops = sum(redis_ops(n) for n in nodes) - ops_before
    lost = sum(len(set(range(events)) - set(r["got"])) for r in results)
    duplicated = sum(len(r["got"]) - len(set(r["got"])) for r in results)
    resumes = [t for r in results for t in r["resumes"]]
    delivered = sum(len(r["got"]) for r in results)
    return {
        "sessions": sessions,
        "events_per_session": events,
        "interval_ms": interval_ms,
        "seconds": round(elapsed, 2),
        "events_delivered": delivered,
        "lost_events": lost,
        "duplicated_events": duplicated,
        "client_errors": sorted({e for r in results for e in r["errors"]}),
        "resumes": summary_ms(resumes),
        "redis_ops": int(ops),
        "redis_ops_per_event": round(ops / max(1, sessions * events), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--interval-ms", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        redis = stack.enter_context(run_redis(root))
        nodes = []
        for name in ("node-a", "node-b"):
            (root / name).mkdir()
            config = numbered_config(heartbeat_s=15.0)
            config["server"] = {"node": name, "secret": SECRET}
            config["open_access"] = {"max_sessions": 1000}
            nodes.append(
                stack.enter_context(
                    run_server(root / name, config, args=("--redis-url", redis.url))
                )
            )
        data = asyncio.run(run(nodes, args.sessions, args.events, args.interval_ms))
    print(
        f"{data['sessions']} sessions x {data['events_per_session']} events over 2 nodes: "
        f"lost {data['lost_events']}, duplicated {data['duplicated_events']}, "
        f"{data['resumes']['n']} resumes p50 {data['resumes']['p50_ms']} ms "
        f"p99 {data['resumes']['p99_ms']} ms, {data['redis_ops_per_event']} Redis ops/event"
    )
    write_result("cluster_load", data)


if __name__ == "__main__":
    main()
