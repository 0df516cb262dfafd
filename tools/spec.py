"""``ToolSpec``: what a tool is. Valid by construction: a bad name, schema or limit
raises at definition time, so a registry only ever holds tools that can be offered."""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

JsonMap = dict[str, Any]
# A handler gets the validated arguments and returns a JSON-serializable value.
ToolHandler = Callable[[JsonMap], Awaitable[Any]]

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_DESCRIPTION_CHARS = 1024
MAX_TIMEOUT_S = 300.0
MAX_RESULT_BYTES = 1 << 20

# Keywords that point elsewhere: the argument schema is embedded in the call schema
# (registry.call_schema), where a "#/..." reference would resolve against the wrong
# root, and grammar compilers for constrained decoding handle them poorly anyway.
_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$id", "$anchor", "$dynamicAnchor")


# Identity equality: two specs are the same tool only if they are the same object
# (handlers do not compare meaningfully, and a dict schema is not hashable).
@dataclass(frozen=True, slots=True, eq=False)
class ToolSpec:
    name: str
    description: str
    parameters: JsonMap
    handler: ToolHandler
    timeout_s: float = 10.0
    cancel_on_barge_in: bool = True
    max_result_bytes: int = 16_384
    validator: Draft202012Validator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or NAME_PATTERN.fullmatch(self.name) is None:
            raise ValueError(f"tool name {self.name!r} must match {NAME_PATTERN.pattern}")
        if not self.description or len(self.description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(
                f"tool {self.name}: description must be 1 to {MAX_DESCRIPTION_CHARS} chars"
            )
        if not inspect.iscoroutinefunction(self.handler):
            raise TypeError(f"tool {self.name}: handler must be an async function")
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"tool {self.name}: timeout_s must be in (0, {MAX_TIMEOUT_S}]")
        if not 0 < self.max_result_bytes <= MAX_RESULT_BYTES:
            raise ValueError(
                f"tool {self.name}: max_result_bytes must be in (0, {MAX_RESULT_BYTES}]"
            )
        # A private copy: the caller mutating its dict later must not change the tool.
        schema = copy.deepcopy(self.parameters)
        check_parameters_schema(self.name, schema)
        object.__setattr__(self, "parameters", schema)
        object.__setattr__(self, "validator", Draft202012Validator(schema))

    def manifest(self) -> JsonMap:
        """The tool as described to a model (OpenAI-style ``function`` object)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }


def check_parameters_schema(name: str, schema: object) -> None:
    """Raise ValueError unless ``schema`` is a Draft 2020-12 object schema whose
    strings are bounded and which references nothing outside itself."""
    if not isinstance(schema, dict):
        raise ValueError(f"tool {name}: parameters must be a JSON schema object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"tool {name}: invalid parameters schema: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError(f"tool {name}: parameters schema must have type 'object'")
    for node in _subschemas(schema):
        for keyword in _REFERENCE_KEYWORDS:
            if keyword in node:
                raise ValueError(f"tool {name}: parameters schema may not use {keyword}")
        types = node.get("type")
        is_string = types == "string" or (isinstance(types, list) and "string" in types)
        # An unbounded string lets constrained decoding run until max_tokens.
        if is_string and not {"maxLength", "enum", "const"} & node.keys():
            raise ValueError(f"tool {name}: every string in parameters needs a maxLength")


def _subschemas(schema: JsonMap) -> Iterator[JsonMap]:
    """Every map inside ``schema`` (itself included), depth first, without recursion."""
    stack: list[object] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
