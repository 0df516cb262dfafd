"""The registry: registration, lookup, what a session is offered, the call schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tools.registry import ToolRegistry, effective_allowlist
from tools.spec import ToolSpec


async def nothing(arguments: dict[str, Any]) -> Any:
    return None


def tool(name: str, properties: dict[str, Any] | None = None) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=f"The {name} tool.",
        parameters={
            "type": "object",
            "properties": properties or {},
            "required": sorted(properties or {}),
            "additionalProperties": False,
        },
        handler=nothing,
    )


WEATHER = tool("weather", {"city": {"type": "string", "maxLength": 40}})
REFUND = tool("refund", {"order": {"type": "integer", "minimum": 1}})
TICKET = tool("ticket")


def test_registered_tools_are_found_by_name_in_registration_order() -> None:
    registry = ToolRegistry([WEATHER, REFUND])
    registry.register(TICKET)
    assert registry.lookup("refund") is REFUND
    assert registry.lookup("nope") is None
    assert registry.names() == ("weather", "refund", "ticket")
    assert list(registry) == [WEATHER, REFUND, TICKET]
    assert len(registry) == 3


def test_a_second_tool_with_a_taken_name_is_refused() -> None:
    registry = ToolRegistry([WEATHER])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(tool("weather"))
    assert registry.lookup("weather") is WEATHER


def test_only_allowed_and_registered_tools_are_offered_in_registration_order() -> None:
    registry = ToolRegistry([WEATHER, REFUND, TICKET])
    assert registry.offered(["ticket", "weather", "unknown"]) == [WEATHER, TICKET]
    assert registry.offered(frozenset()) == []
    assert registry.offered(iter(["refund"])) == [REFUND]


def test_no_call_schema_when_nothing_is_offered() -> None:
    assert ToolRegistry([WEATHER]).call_schema(["refund"]) is None


def test_one_offered_tool_gives_its_call_schema_directly() -> None:
    schema = ToolRegistry([WEATHER, REFUND]).call_schema(["weather"])
    assert schema is not None
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"name": "weather", "arguments": {"city": "Oslo"}})
    assert not validator.is_valid({"name": "refund", "arguments": {"order": 3}})
    assert not validator.is_valid({"name": "weather", "arguments": {"city": "x" * 41}})
    assert not validator.is_valid({"name": "weather"})
    assert not validator.is_valid({"name": "weather", "arguments": {"city": "a"}, "x": 1})


def test_several_offered_tools_give_one_branch_each() -> None:
    schema = ToolRegistry([WEATHER, REFUND, TICKET]).call_schema(["weather", "refund"])
    assert schema is not None
    Draft202012Validator.check_schema(schema)
    assert [b["properties"]["name"]["const"] for b in schema["oneOf"]] == ["weather", "refund"]
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"name": "weather", "arguments": {"city": "Oslo"}})
    assert validator.is_valid({"name": "refund", "arguments": {"order": 7}})
    # A name with the other tool's arguments matches neither branch.
    assert not validator.is_valid({"name": "refund", "arguments": {"city": "Oslo"}})
    assert not validator.is_valid({"name": "ticket", "arguments": {}})


def test_the_call_schema_is_a_copy() -> None:
    registry = ToolRegistry([WEATHER])
    schema = registry.call_schema(["weather"])
    assert schema is not None
    schema["properties"]["arguments"]["properties"].clear()
    assert WEATHER.parameters["properties"] == {"city": {"type": "string", "maxLength": 40}}


def test_the_call_schema_compiles_to_a_llama_cpp_grammar() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    schema = ToolRegistry([WEATHER, REFUND, TICKET]).call_schema(["weather", "refund", "ticket"])
    grammar = llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    for name in ("weather", "refund", "ticket"):
        assert f'"\\"{name}\\""' in grammar


@pytest.mark.parametrize(
    ("tenant", "session", "expected"),
    [
        (["a", "b", "c"], None, {"a", "b", "c"}),
        (["a", "b", "c"], ["b", "z"], {"b"}),
        (["a"], [], set()),
        ([], ["a"], set()),
    ],
)
def test_the_effective_allowlist_is_tenant_and_session(
    tenant: list[str], session: list[str] | None, expected: set[str]
) -> None:
    assert effective_allowlist(tenant, session) == frozenset(expected)
