"""The pyannote backend's configuration: local checkpoints only, clear errors, and a
server that installs and runs without pyannote.audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.audio.diarization_stage import (
    DiarizationRuntime,
    DiarizationSettings,
    build_embedder,
    settings_from_env,
)
from pipelines.audio.pyannote_backend import (
    PyannoteConfigError,
    PyannoteSettings,
    checkpoint_file,
    pyannote_available,
    validate,
)


def test_a_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PyannoteConfigError, match="embedding checkpoint not found"):
        validate(PyannoteSettings(embedding=str(tmp_path / "nope.bin")))
    with pytest.raises(PyannoteConfigError, match="no path configured"):
        validate(PyannoteSettings(embedding=""))


def test_a_hub_name_is_not_a_path_and_is_never_fetched() -> None:
    with pytest.raises(PyannoteConfigError, match="never downloaded"):
        validate(PyannoteSettings(embedding="pyannote/wespeaker-voxceleb-resnet34-LM"))


def test_a_directory_must_hold_the_checkpoint_file(tmp_path: Path) -> None:
    with pytest.raises(PyannoteConfigError, match=r"pytorch_model\.bin"):
        checkpoint_file(str(tmp_path), "segmentation")
    (tmp_path / "pytorch_model.bin").write_bytes(b"weights")
    assert checkpoint_file(str(tmp_path), "segmentation") == tmp_path / "pytorch_model.bin"


def test_both_checkpoints_are_checked_before_anything_is_imported(tmp_path: Path) -> None:
    emb = tmp_path / "emb.bin"
    emb.write_bytes(b"weights")
    assert validate(PyannoteSettings(embedding=str(emb))) == (emb, None)
    with pytest.raises(PyannoteConfigError, match="segmentation checkpoint not found"):
        validate(PyannoteSettings(embedding=str(emb), segmentation=str(tmp_path / "seg")))
    for bad in ({"overlap_gate": 0.0}, {"window_s": 0.0}, {"device": "tpu"}):
        with pytest.raises(PyannoteConfigError):
            validate(PyannoteSettings(embedding=str(emb), **bad))


def test_building_the_backend_fails_at_startup_not_per_session(tmp_path: Path) -> None:
    settings = settings_from_env(
        {
            "PARLEY_DIARIZATION_BACKEND": "pyannote",
            "PARLEY_PYANNOTE_EMBEDDING": str(tmp_path / "missing"),
        }
    )
    assert settings.pyannote is not None and settings.pyannote.segmentation is None
    with pytest.raises(PyannoteConfigError, match="not found"):
        DiarizationRuntime(settings)


def test_with_a_checkpoint_present_it_needs_pyannote_audio_or_says_so(tmp_path: Path) -> None:
    emb = tmp_path / "pytorch_model.bin"
    emb.write_bytes(b"not a real checkpoint")
    settings = DiarizationSettings(backend="pyannote", pyannote=PyannoteSettings(str(tmp_path)))
    if pyannote_available():
        with pytest.raises(Exception):  # noqa: B017 - pyannote's own loading error
            build_embedder(settings)
    else:
        with pytest.raises(PyannoteConfigError, match="pip install 'parley\\[pyannote\\]'"):
            build_embedder(settings)


def test_env_settings_and_their_checks() -> None:
    s = settings_from_env({"PARLEY_DIARIZATION_MAX_SPEAKERS": "3"})
    assert (s.backend, s.max_speakers, s.pyannote) == ("ge2e", 3, None)
    assert s.session_params(1.6).cluster.max_speakers == 3
    assert s.session_params(1.0).windows.hop_s == pytest.approx(0.4)
    with pytest.raises(ValueError, match="unknown backend"):
        settings_from_env({"PARLEY_DIARIZATION_BACKEND": "magic"})
    with pytest.raises(ValueError, match="max_speakers"):
        DiarizationSettings(max_speakers=0)
    with pytest.raises(ValueError, match="PyannoteSettings"):
        DiarizationSettings(backend="pyannote")
