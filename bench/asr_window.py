"""Decode cost and accuracy against the encoder window, outside the pipeline.

    .venv/bin/python -m bench.asr_window [--windows 10 15 30] [--repeat 3]

Short commands (12 sentences in three voices: piper's ``joe`` and two espeak-ng
voices, with 0.15 s of silence on each side, as the VAD pads a segment), decoded
whole, and 1, 2, 4 and 8 s slices of the pyannote sample: WER against the text
said, and the median decode time per slice length. Writes
bench/results/asr_window.json.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import numpy as np

from bench.common import write_result
from pipelines.audio.asr import AsrSettings, FasterWhisperBackend
from tests.audio.assets import pyannote_sample, read_wav
from tests.audio.diarization_assets import ESPEAK_F3, ESPEAK_US, PIPER_JOE, speech
from tests.audio.helpers import wer

COMMANDS = [
    "Hello there.",
    "What time is it?",
    "Cancel my order.",
    "Yes, please.",
    "Turn on the lights.",
    "Where is my package?",
    "Thank you very much.",
    "Can you help me?",
    "I need a refund.",
    "Book a table for two.",
    "What's the weather like tomorrow?",
    "Stop.",
]
SLICES_S = (1.0, 2.0, 4.0, 8.0)


def text_of(backend: FasterWhisperBackend, audio: np.ndarray) -> tuple[str, float]:
    result = backend.transcribe(audio.astype(np.float32), "")
    return " ".join(w.text for s in result.segments for w in s.words), result.compute_s


def measure(window: float, repeat: int) -> dict[str, Any]:
    backend = FasterWhisperBackend(AsrSettings(workers=1, encoder_window_s=window))
    pad = np.zeros(int(0.15 * 16000), dtype=np.float32)
    errors: list[float] = []
    for voice in (PIPER_JOE, ESPEAK_US, ESPEAK_F3):
        for sentence in COMMANDS:
            heard, _ = text_of(backend, np.concatenate([pad, speech(voice, sentence), pad]))
            errors.append(wer(sentence, heard))
    sample = read_wav(pyannote_sample().wav)
    cost: dict[str, float] = {}
    for length in SLICES_S:
        times = []
        for start in np.arange(3.0, 27.0 - length, 2.0):
            piece = sample[int(start * 16000) : int((start + length) * 16000)]
            times += [text_of(backend, piece)[1] for _ in range(repeat)]
        cost[f"{length:g}s"] = round(statistics.median(times) * 1000, 1)
    return {
        "encoder_window_s": window,
        "commands": len(errors),
        "commands_wer": round(float(np.mean(errors)), 3),
        "decode_ms_median": cost,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=float, nargs="+", default=[10.0, 15.0, 30.0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for window in args.windows:
        row = measure(window, args.repeat)
        rows.append(row)
        print(row, flush=True)
    write_result("asr_window", {"rows": rows})


if __name__ == "__main__":
    main()
