"""The tools every deployment has: ``current_time``, ``calculator``, and
``search_documents`` when the operator configures a documents folder."""

from __future__ import annotations

from pathlib import Path

from tools.calculator import calculator_tool
from tools.clock import current_time_tool
from tools.documents import search_documents_tool
from tools.registry import ToolRegistry


def builtin_registry(documents_dir: Path | None = None) -> ToolRegistry:
    """A registry of the built-in tools. Raises NotADirectoryError for a configured
    documents folder that is not one, so a bad setting fails at startup."""
    registry = ToolRegistry([current_time_tool(), calculator_tool()])
    if documents_dir is not None:
        registry.register(search_documents_tool(documents_dir))
    return registry
