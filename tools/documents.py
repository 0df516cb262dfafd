"""The ``search_documents`` tool: BM25 over a folder of .txt and .md files chosen by
the operator, answering with passages and their citations.

The index is built once, on the first search (or on ``DocumentSearch.index()`` at
startup), in a worker thread: the event loop never reads files or ranks passages.
Files are bounded in size and number; links and hidden files are skipped, so the
tool reads nothing outside the folder.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import anyio.to_thread

from tools.bm25 import Bm25Index, Passage, split_passages
from tools.spec import ToolSpec

SUFFIXES = frozenset({".txt", ".md"})
MAX_FILE_BYTES = 1 << 20
MAX_FILES = 5000
MAX_TOTAL_BYTES = 64 << 20
MAX_QUERY_CHARS = 200
MAX_K = 10

logger = logging.getLogger("parley.tools")


def load_passages(root: Path) -> tuple[list[Passage], list[str]]:
    """Passages of every document below ``root`` in path order, and the relative
    paths of the documents skipped (too large, too many, not UTF-8 decodable)."""
    passages: list[Passage] = []
    skipped: list[str] = []
    files = total = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        # Sorted in place: os.walk then visits folders in a stable order.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(directory, filename)
            if filename.startswith(".") or path.suffix.lower() not in SUFFIXES:
                continue
            relative = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file():
                skipped.append(relative)
                continue
            data = _read_bounded(path)
            if data is None or files >= MAX_FILES or total + len(data) > MAX_TOTAL_BYTES:
                skipped.append(relative)
                continue
            files += 1
            total += len(data)
            passages.extend(split_passages(relative, data.decode("utf-8", "replace")))
    return passages, skipped


def _read_bounded(path: Path) -> bytes | None:
    """The file's bytes, or None when it is larger than MAX_FILE_BYTES or unreadable.
    Reads one byte past the limit rather than trusting stat: the file may grow."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_FILE_BYTES else None


class DocumentSearch:
    """The index of one folder, built on first use. Thread-safe: searches run in
    worker threads, and the first ones wait for a single build."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise NotADirectoryError(f"documents folder {root} is not a directory")
        self.root = root
        self.skipped: list[str] = []
        self._index: Bm25Index | None = None
        self._lock = threading.Lock()

    def index(self) -> Bm25Index:
        with self._lock:
            if self._index is None:
                passages, self.skipped = load_passages(self.root)
                self._index = Bm25Index(passages)
                logger.info(
                    "document index built: %d passages, %d files skipped",
                    len(passages),
                    len(self.skipped),
                )
            return self._index

    def search(self, query: str, k: int) -> dict[str, Any]:
        hits = self.index().search(query, k)
        return {
            "query": query,
            "results": [
                {
                    "doc": hit.passage.doc,
                    "passage": hit.passage.index,
                    "lines": [hit.passage.first_line, hit.passage.last_line],
                    "score": round(hit.score, 4),
                    "text": hit.passage.text,
                }
                for hit in hits
            ],
        }


def search_documents_tool(root: Path) -> ToolSpec:
    search = DocumentSearch(root)

    async def handle(arguments: dict[str, Any]) -> dict[str, Any]:
        # Abandoned on cancel: a timeout or barge-in does not wait for the thread; a
        # build it started still completes and serves the next search.
        return await anyio.to_thread.run_sync(
            search.search,
            arguments["query"],
            int(arguments.get("k", 3)),  # JSON schema's "integer" admits 3.0
            abandon_on_cancel=True,
        )

    return ToolSpec(
        name="search_documents",
        description=(
            "Search the reference documents. Returns the best matching passages, each "
            "with its document, passage number and line range to cite."
        ),
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
                "k": {"type": "integer", "minimum": 1, "maximum": MAX_K},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        handler=handle,
        timeout_s=10.0,
        cancel_on_barge_in=True,
        max_result_bytes=65_536,
    )
