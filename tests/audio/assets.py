"""Test audio: the pyannote sample (a real two-speaker phone call with a reference
transcript) and synthetic speech from espeak-ng.

The sample ships inside the ``pyannote-audio`` wheel; it is fetched with
``pip download --no-deps`` (the package is never installed) and extracted once into
a cache directory (``PARLEY_TEST_CACHE``, default ``~/.cache/parley-tests``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

PYANNOTE_WHEEL = "pyannote-audio==4.0.7"
_MEMBERS = ("pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.stm")


def cache_dir() -> Path:
    path = Path(os.environ.get("PARLEY_TEST_CACHE", Path.home() / ".cache" / "parley-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, slots=True)
class Sample:
    wav: Path
    stm: Path

    def reference_text(self) -> str:
        lines = self.stm.read_text().splitlines()
        return " ".join(" ".join(line.split()[5:]) for line in lines if line.strip())


def fetch_from_pyannote_wheel(members: tuple[str, ...] | list[str], target: Path) -> None:
    """Copy ``members`` of the pyannote.audio wheel (downloaded, never installed) into
    ``target``, flat."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--disable-pip-version-check",
                PYANNOTE_WHEEL,
                "-d",
                tmp,
            ],
            check=True,
            capture_output=True,
        )
        staging = Path(tmp) / "x"
        with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as zf:
            for member in members:
                zf.extract(member, staging)
        target.mkdir(parents=True, exist_ok=True)
        for member in members:
            shutil.copyfile(staging / member, target / Path(member).name)


def pyannote_sample() -> Sample:
    """``sample.wav`` (30 s, 16 kHz mono) and ``sample.stm``, fetched once."""
    target = cache_dir() / "pyannote-sample"
    wav, stm = target / "sample.wav", target / "sample.stm"
    if wav.is_file() and stm.is_file():
        return Sample(wav, stm)
    fetch_from_pyannote_wheel(_MEMBERS, target)
    return Sample(wav, stm)


def espeak(text: str, *, voice: str = "en-us", rate_wpm: int = 160) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng, as float32 16 kHz mono (resampled with sox)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(rate_wpm), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)],
            check=True,
            capture_output=True,
        )
        return read_wav(out)


def read_wav(path: Path) -> npt.NDArray[np.float32]:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if rate != 16000:
        raise ValueError(f"{path}: expected 16 kHz, got {rate}")
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)


def to_pcm16(x: npt.NDArray[np.float32]) -> bytes:
    return bytes((np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


@cache
def _spoken(text: str, voice: str) -> bytes:
    return espeak(text, voice=voice).tobytes()


def say(text: str, voice: str = "en-us") -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng, synthesized once per process (a fresh copy)."""
    return np.frombuffer(_spoken(text, voice), dtype=np.float32).copy()
