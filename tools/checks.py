"""Pure, synchronous checks of a tool call: is it admitted, are its arguments valid,
is its result acceptable. The async shell (tools/execute.py) only runs the handler."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Set
from typing import Any

from jsonschema.exceptions import best_match

from tools.outcome import Rejection, ToolErrorCode
from tools.registry import ToolRegistry
from tools.spec import ToolSpec

# Arguments come from a model: bound them before jsonschema (which recurses) sees them.
MAX_ARGUMENT_BYTES = 65_536
MAX_ARGUMENT_DEPTH = 32
MAX_RESULT_DEPTH = 64
MAX_VALUES = 20_000

_Path = tuple[str | int, ...]


def admit(registry: ToolRegistry, name: str, allowed: Set[str]) -> ToolSpec | Rejection:
    """The tool named ``name`` if this call may run it, else why not."""
    spec = registry.lookup(name)
    if spec is None:
        return Rejection(ToolErrorCode.UNKNOWN_TOOL, f"no tool named {name!r}")
    if name not in allowed:
        return Rejection(ToolErrorCode.NOT_ALLOWED, f"tool {name!r} is not allowed here")
    return spec


def check_arguments(spec: ToolSpec, arguments: object) -> Rejection | None:
    """None when ``arguments`` are valid for ``spec``, else a message naming the field."""
    if not isinstance(arguments, dict):
        return _bad(f"arguments must be an object, not {json_type(arguments)}")
    problem = json_problem(arguments, "arguments", MAX_ARGUMENT_DEPTH)
    if problem is not None:
        return _bad(problem)
    size = len(canonical_json(arguments))
    if size > MAX_ARGUMENT_BYTES:
        return _bad(f"arguments are {size} bytes, more than the limit of {MAX_ARGUMENT_BYTES}")
    error = best_match(spec.validator.iter_errors(arguments))
    if error is None:
        return None
    return _bad(f"{format_path('arguments', tuple(error.absolute_path))}: {error.message}")


def check_result(spec: ToolSpec, result: object) -> tuple[Any, Rejection | None]:
    """``result`` as plain JSON values (tuples become lists), or why it is refused."""
    problem = json_problem(result, "result", MAX_RESULT_DEPTH)
    if problem is not None:
        return None, Rejection(ToolErrorCode.BAD_RESULT, problem)
    try:
        encoded = canonical_json(result)
    except ValueError as exc:  # an int too long to print, by sys.set_int_max_str_digits
        return None, Rejection(ToolErrorCode.BAD_RESULT, f"result is not JSON: {exc}")
    if len(encoded) > spec.max_result_bytes:
        return None, Rejection(
            ToolErrorCode.RESULT_TOO_LARGE,
            f"result is {len(encoded)} bytes, more than the limit of {spec.max_result_bytes}",
        )
    return json.loads(encoded), None


def json_problem(value: object, root: str, max_depth: int) -> str | None:
    """What makes ``value`` not a plain, bounded JSON value, or None. Iterative, so a
    hostile depth cannot exhaust the stack."""
    stack: list[tuple[object, _Path]] = [(value, ())]
    seen = 0
    while stack:
        node, path = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return f"{root} holds more than {MAX_VALUES} values"
        if len(path) > max_depth:
            return f"{format_path(root, path[:3])}…: nested deeper than {max_depth} levels"
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    return f"{format_path(root, path)}: object keys must be strings"
                stack.append((item, (*path, key)))
        elif isinstance(node, list | tuple):
            stack.extend((item, (*path, i)) for i, item in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            return f"{format_path(root, path)}: {node} is not a JSON number"
        elif node is not None and not isinstance(node, str | int | float):
            return f"{format_path(root, path)}: {type(node).__name__} values are not JSON"
    return None


def canonical_json(value: object) -> bytes:
    """The one byte form of a JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def arguments_digest(arguments: object) -> tuple[str, int]:
    """sha256 (hex) and size of the canonical JSON of ``arguments``: what the audit log
    keeps instead of the arguments themselves."""
    try:
        if json_problem(arguments, "arguments", MAX_ARGUMENT_DEPTH) is None:
            encoded = canonical_json(arguments)
            return hashlib.sha256(encoded).hexdigest(), len(encoded)
    except ValueError:  # an int too long to print
        pass
    # Not JSON: hash a fixed marker, so the record still says "there was something".
    marker = f"<not json: {type(arguments).__name__}>".encode()
    return hashlib.sha256(marker).hexdigest(), 0


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def format_path(root: str, path: _Path) -> str:
    """``arguments.items[2].name`` for the path ``("items", 2, "name")``."""
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part[:40]}"
        else:
            out += f"[{json.dumps(part[:40])}]"
    return out


def _bad(message: str) -> Rejection:
    return Rejection(ToolErrorCode.BAD_ARGUMENTS, message)
