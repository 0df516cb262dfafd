"""The GE2E encoder rebuilt from resemblyzer's weights: same numbers, batched."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pipelines.audio.speaker_embedding import (
    Ge2eEmbedder,
    Ge2eSettings,
    loudness_normalized,
    packaged_weights,
    shared_ge2e,
)
from tests.audio.diarization_assets import ESPEAK_US, PIPER_JOE, speech


@pytest.fixture(scope="session")
def encoder() -> Ge2eEmbedder:
    return shared_ge2e()


def test_matches_the_packaged_encoder_window_by_window(encoder: Ge2eEmbedder) -> None:
    import torch

    with warnings.catch_warnings():  # the package imports a deprecated SciPy module
        warnings.simplefilter("ignore", DeprecationWarning)
        from resemblyzer import VoiceEncoder, wav_to_mel_spectrogram

    reference = VoiceEncoder("cpu", verbose=False)
    x = speech(PIPER_JOE, "The budget review is on Thursday afternoon at three.")
    windows = [x[:25600], x[8000:33600], x[16000:24000]]  # two full, one short
    ours = encoder.embed(windows)
    with torch.no_grad():
        theirs = np.stack(
            [
                reference(
                    torch.from_numpy(wav_to_mel_spectrogram(loudness_normalized(w))[None])
                ).numpy()[0]
                for w in windows
            ]
        )
    assert np.abs(ours - theirs).max() < 1e-4


def test_one_voice_points_one_way(encoder: Ge2eEmbedder) -> None:
    joe = speech(PIPER_JOE, "Could you send me the numbers before the meeting starts?")
    us = speech(ESPEAK_US, "Could you send me the numbers before the meeting starts?")
    e = encoder.embed([joe[:25600], joe[-25600:], us[:25600], us[-25600:]])
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    same = min(e[0] @ e[1], e[2] @ e[3])
    different = max(e[0] @ e[2], e[1] @ e[3])
    assert same > different + 0.15


def test_hostile_windows(encoder: Ge2eEmbedder) -> None:
    assert encoder.embed([]).shape == (0, 256)
    silent = encoder.embed([np.zeros(25600, np.float32)])
    assert np.isfinite(silent).all()
    junk = np.full(25600, np.nan, np.float32)
    junk[::2] = 1e9
    assert np.isfinite(encoder.embed([junk])).all()
    with pytest.raises(ValueError, match="at least"):
        encoder.embed([np.zeros(100, np.float32)])


def test_loaded_once_per_process_and_weights_from_the_package() -> None:
    assert shared_ge2e() is shared_ge2e(Ge2eSettings())
    assert packaged_weights().name == "pretrained.pt"
    with pytest.raises(FileNotFoundError):
        Ge2eEmbedder(Ge2eSettings(weights_path="/nonexistent/pretrained.pt"))


def test_quiet_audio_is_raised_to_the_target_and_loud_audio_left_alone() -> None:
    quiet = np.full(1000, 0.001, np.float32)
    loud = np.full(1000, 0.5, np.float32)
    assert np.sqrt(np.mean(loudness_normalized(quiet) ** 2)) == pytest.approx(
        10 ** (-30 / 20), rel=1e-3
    )
    assert np.array_equal(loudness_normalized(loud), loud)
    assert not loudness_normalized(np.zeros(10, np.float32)).any()
