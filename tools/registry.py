"""``ToolRegistry``: the tools a server knows, and what a session is offered of them.

Allowlist rule (docs/tools.md): a session may use a tool only when the tenant allows
it, the session asked for it (or asked for nothing, which means "all the tenant
allows"), and the registry has it. ``TenantPolicy.session_tools`` computes the first
two; ``offered`` applies the third.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from tools.spec import ToolSpec

JsonMap = dict[str, Any]


class ToolRegistry:
    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ToolSpec) -> None:
        """Add ``spec``; a second tool with the same name is refused (ValueError)."""
        if spec.name in self._specs:
            raise ValueError(f"a tool named {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def lookup(self, name: str) -> ToolSpec | None:
        return self._specs.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def offered(self, allowed: Iterable[str]) -> list[ToolSpec]:
        """The registered tools among ``allowed``, in registration order (stable, so the
        prompt, and the engine's prompt cache, do not change from turn to turn)."""
        wanted = set(allowed)
        return [spec for name, spec in self._specs.items() if name in wanted]

    def call_schema(self, allowed: Iterable[str]) -> JsonMap | None:
        """JSON schema of one call ``{"name": ..., "arguments": {...}}`` to an offered
        tool, for constrained decoding; None when no tool is offered.

        One branch per tool, each with the tool's own argument schema, so the decoder
        cannot pair a name with another tool's arguments. ``name`` comes first: the
        model picks the tool before it writes arguments.
        """
        branches = [_call_branch(spec) for spec in self.offered(allowed)]
        if not branches:
            return None
        if len(branches) == 1:
            return branches[0]
        return {"oneOf": branches}


def effective_allowlist(
    tenant_allowed: Iterable[str], session_requested: Iterable[str] | None
) -> frozenset[str]:
    """Tenant's tools ∩ session's request; a session that requested nothing gets the
    tenant's tools (the same rule as ``TenantPolicy.session_tools``)."""
    tenant = frozenset(tenant_allowed)
    if session_requested is None:
        return tenant
    return tenant & frozenset(session_requested)


def _call_branch(spec: ToolSpec) -> JsonMap:
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "const": spec.name},
            "arguments": copy.deepcopy(spec.parameters),
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }
