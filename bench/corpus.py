"""A longer caption corpus for the benches: the pyannote sample (real speech, two
speakers on a phone line) followed by synthetic speech in three voices (piper's
``joe``, two espeak-ng voices) reading varied passages, with short pauses between
utterances and longer ones between passages. About two and a half minutes.

    .venv/bin/python -m bench.corpus [--out bench/results/corpus.wav]

writes the WAV and its reference text (``.txt`` beside it) for ``--wav``/``--ref``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from tests.audio.assets import pyannote_sample, read_wav
from tests.audio.diarization_assets import ESPEAK_F3, ESPEAK_US, PIPER_JOE, speech

Audio = npt.NDArray[np.float32]
RATE = 16000

PASSAGES: list[tuple[str, list[str]]] = [
    (
        PIPER_JOE,
        [
            "Good morning, thanks for calling the support line.",
            "I can see your order was shipped on Tuesday, and it should arrive by Friday.",
            "If the package is damaged, take a photo before you open it.",
            "We will send a replacement at no cost, usually within two business days.",
            "Is there anything else I can help you with today?",
        ],
    ),
    (
        ESPEAK_US,
        [
            "The weather service expects heavy rain tonight across the northern valleys.",
            "Drivers should allow extra time and watch for standing water on the roads.",
            "Temperatures will fall to about five degrees before sunrise.",
        ],
    ),
    (
        PIPER_JOE,
        [
            "Let me explain how the billing cycle works.",
            "Your plan renews on the first of every month.",
            "If you upgrade in the middle of a cycle, we charge only for the days that remain.",
            "You can cancel at any time from the account page, and nothing else is needed.",
        ],
    ),
    (
        ESPEAK_F3,
        [
            "Please remember to bring your badge to the meeting on Thursday.",
            "The room has changed to the third floor, next to the library.",
            "We will start at ten thirty and finish before lunch.",
        ],
    ),
    (
        PIPER_JOE,
        [
            "My favourite part of the trip was the small harbour town.",
            "Every evening the fishing boats came back with the tide.",
            "We ate fresh bread and soup in a cafe that had been open for a hundred years.",
        ],
    ),
]


def silence(seconds: float) -> Audio:
    return np.zeros(int(RATE * seconds), dtype=np.float32)


def build() -> tuple[Audio, str]:
    sample = pyannote_sample()
    parts: list[Audio] = [read_wav(sample.wav), silence(1.5)]
    text = [sample.reference_text()]
    for voice, sentences in PASSAGES:
        for sentence in sentences:
            x = speech(voice, sentence)
            parts += [0.7 * x / max(1e-6, float(np.max(np.abs(x)))), silence(0.8)]
            text.append(sentence)
        parts.append(silence(1.5))
    return np.concatenate(parts), " ".join(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results/corpus.wav"))
    args = ap.parse_args()
    audio, text = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(args.out, audio, RATE, subtype="PCM_16")
    args.out.with_suffix(".txt").write_text(text + "\n")
    print(f"{args.out}: {len(audio) / RATE:.1f} s, {len(text.split())} words")


if __name__ == "__main__":
    main()
