"""Where the LLM's weights come from: chunk assembly, checksum, configured paths."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipelines.text import models
from pipelines.text.models import ModelUnavailable, assemble_chunks, resolve_gguf_path


def make_chunks(tmp_path: Path) -> tuple[list[Path], str]:
    parts = [b"GGUF" + b"a" * 1000, b"b" * 3000, b"c" * 7]
    chunks = []
    for index, data in enumerate(parts):
        chunk = tmp_path / f"chunk{index}"
        chunk.write_bytes(data)
        chunks.append(chunk)
    return chunks, hashlib.sha256(b"".join(parts)).hexdigest()


def test_chunks_are_joined_verified_and_recorded(tmp_path: Path) -> None:
    chunks, digest = make_chunks(tmp_path)
    target = tmp_path / "cache" / "model.gguf"

    path = assemble_chunks(chunks, target, digest)

    assert path == target
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert target.with_name("model.gguf.verified").is_file()
    assert [p.name for p in target.parent.iterdir() if p.suffix == ".part"] == []


def test_a_verified_copy_is_reused_without_the_chunks(tmp_path: Path) -> None:
    chunks, digest = make_chunks(tmp_path)
    target = tmp_path / "cache" / "model.gguf"
    assemble_chunks(chunks, target, digest)
    for chunk in chunks:
        chunk.unlink()

    assert assemble_chunks(chunks, target, digest) == target


def test_a_tampered_copy_is_rebuilt(tmp_path: Path) -> None:
    chunks, digest = make_chunks(tmp_path)
    target = tmp_path / "cache" / "model.gguf"
    assemble_chunks(chunks, target, digest)
    target.write_bytes(b"GGUF-corrupted")

    assemble_chunks(chunks, target, digest)

    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest


def test_a_wrong_checksum_leaves_no_model_behind(tmp_path: Path) -> None:
    chunks, _ = make_chunks(tmp_path)
    target = tmp_path / "cache" / "model.gguf"

    with pytest.raises(ModelUnavailable, match="SHA-256"):
        assemble_chunks(chunks, target, "0" * 64)

    assert list(target.parent.iterdir()) == []


def test_missing_chunks_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="missing"):
        assemble_chunks([tmp_path / "nope"], tmp_path / "m.gguf", "0" * 64)


def test_a_configured_path_wins_and_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF")
    assert resolve_gguf_path(model) == model
    monkeypatch.setenv(models.MODEL_PATH_ENV, str(model))
    assert resolve_gguf_path() == model
    with pytest.raises(ModelUnavailable, match="not found"):
        resolve_gguf_path(tmp_path / "absent.gguf")


def test_the_packaged_model_assembles_into_the_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gguf_path: Path
) -> None:
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(models.MODEL_PATH_ENV, raising=False)

    path = resolve_gguf_path()

    assert path == tmp_path / "models" / gguf_path.name
    assert path.stat().st_size == gguf_path.stat().st_size
    assert path.read_bytes()[:4] == b"GGUF"
