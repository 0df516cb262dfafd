"""search_documents over a real folder: what is indexed, what is skipped, citations."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from tools import documents
from tools.documents import DocumentSearch, load_passages, search_documents_tool
from tools.execute import ToolInvocation, execute
from tools.outcome import ToolErrorCode, ToolOutcome
from tools.registry import ToolRegistry

BILLING = """# Billing

Refunds are paid within 14 days to the card used for the order.
Ask support for a refund by email.

## Invoices

Invoices are sent at the end of each month. They list every order with its tax.
"""

SHIPPING = "Parcels ship within two days.\nTracking numbers arrive by email.\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "faq").mkdir(parents=True)
    (root / "faq" / "billing.md").write_text(BILLING)
    (root / "shipping.TXT").write_text(SHIPPING)
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "deeper" / "returns.md").write_text("Returns are free for 30 days.\n")
    (root / "legacy.txt").write_bytes("Caf\xe9 opening hours: 9 to 5.\n".encode("latin-1"))
    # Everything below must never be searched.
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "keys.md").write_text("refund master password hunter2\n")
    (root / "link.md").symlink_to(outside / "keys.md")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    (root / ".hidden.md").write_text("refund hidden\n")
    (root / ".git").mkdir()
    (root / ".git" / "notes.md").write_text("refund git\n")
    (root / "manual.pdf").write_text("refund pdf\n")
    (root / "big.md").write_text("refund " * (documents.MAX_FILE_BYTES // 7 + 1))
    (root / "folder.md").mkdir()
    os.mkfifo(root / "pipe.md")
    return root


def test_only_bounded_text_documents_inside_the_folder_are_indexed(folder: Path) -> None:
    passages, skipped = load_passages(folder)
    assert sorted({p.doc for p in passages}) == [
        "faq/billing.md",
        "legacy.txt",
        "shipping.TXT",
        "sub/deeper/returns.md",
    ]
    assert skipped == ["big.md", "link.md", "pipe.md"]
    assert all("hunter2" not in p.text for p in passages)
    [legacy] = [p for p in passages if p.doc == "legacy.txt"]
    assert legacy.text == "Caf\ufffd opening hours: 9 to 5."


def test_the_number_of_files_is_bounded(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder's own files come before its subfolders', each in name order.
    monkeypatch.setattr(documents, "MAX_FILES", 2)
    passages, skipped = load_passages(folder)
    assert sorted({p.doc for p in passages}) == ["legacy.txt", "shipping.TXT"]
    assert skipped[-2:] == ["faq/billing.md", "sub/deeper/returns.md"]


def test_the_total_size_is_bounded(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = (folder / "legacy.txt").stat().st_size
    monkeypatch.setattr(documents, "MAX_TOTAL_BYTES", legacy + len(SHIPPING))
    passages, skipped = load_passages(folder)
    assert {p.doc for p in passages} == {"legacy.txt", "shipping.TXT"}
    assert skipped[-2:] == ["faq/billing.md", "sub/deeper/returns.md"]


def test_an_unreadable_file_is_skipped(tmp_path: Path) -> None:
    assert documents._read_bounded(tmp_path / "gone.md") is None


def test_a_folder_that_is_not_one_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        DocumentSearch(tmp_path / "missing")
    (tmp_path / "file.md").write_text("x")
    with pytest.raises(NotADirectoryError):
        DocumentSearch(tmp_path / "file.md")


def test_results_cite_document_passage_lines_and_score(folder: Path) -> None:
    answer = DocumentSearch(folder).search("how long do refunds take", 2)
    assert answer["query"] == "how long do refunds take"
    [first, *_rest] = answer["results"]
    assert first["doc"] == "faq/billing.md"
    assert first["passage"] == 0
    assert first["lines"] == [1, 8]
    assert first["score"] > 0
    assert first["text"].startswith("# Billing\nRefunds are paid within 14 days")
    assert len(answer["results"]) <= 2


def test_the_index_is_built_once_and_lazily(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    search = DocumentSearch(folder)
    with caplog.at_level(logging.INFO, logger="parley.tools"):
        index = search.index()
        (folder / "new.md").write_text("Gift cards never expire.\n")
        assert search.index() is index
        assert search.search("gift cards", 3)["results"] == []
    built = [r.getMessage() for r in caplog.records if r.name == "parley.tools"]
    assert built == ["document index built: 4 passages, 3 files skipped"]
    assert search.skipped == ["big.md", "link.md", "pipe.md"]


async def ask(registry: ToolRegistry, arguments: Any) -> ToolOutcome:
    call = ToolInvocation("c1", "search_documents", arguments)
    return await execute(registry, call, frozenset({"search_documents"}), audit=None)


@pytest.mark.anyio
async def test_the_tool_searches_in_a_worker_thread(folder: Path) -> None:
    registry = ToolRegistry([search_documents_tool(folder)])
    outcome = await ask(registry, {"query": "tracking email", "k": 1})
    assert outcome.ok
    assert [(r["doc"], r["lines"]) for r in outcome.result["results"]] == [("shipping.TXT", [1, 2])]


@pytest.mark.anyio
async def test_concurrent_first_searches_share_one_build(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = ToolRegistry([search_documents_tool(folder)])
    outcomes: list[ToolOutcome] = []

    async def one(query: str) -> None:
        outcomes.append(await ask(registry, {"query": query, "k": 3.0}))

    with caplog.at_level(logging.INFO, logger="parley.tools"):
        async with anyio.create_task_group() as tg:
            for query in ("refund", "invoices", "returns", "parcels"):
                tg.start_soon(one, query)
    assert all(o.ok and o.result["results"] for o in outcomes)
    assert len([r for r in caplog.records if r.name == "parley.tools"]) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "arguments",
    [{}, {"query": ""}, {"query": "x" * 201}, {"query": "a", "k": 11}, {"query": "a", "k": 0}],
)
async def test_the_tool_refuses_arguments_outside_its_schema(folder: Path, arguments: Any) -> None:
    outcome = await ask(ToolRegistry([search_documents_tool(folder)]), arguments)
    assert outcome.error_code is ToolErrorCode.BAD_ARGUMENTS
