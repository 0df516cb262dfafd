"""ToolSpec is valid by construction: every bad field is refused when it is defined."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tools.spec import MAX_DESCRIPTION_CHARS, ToolSpec, check_parameters_schema

OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


async def answer(arguments: dict[str, Any]) -> Any:
    return 42


async def scaled(factor: int, arguments: dict[str, Any]) -> Any:
    return factor


def spec(**fields: Any) -> ToolSpec:
    base: dict[str, Any] = {
        "name": "lookup_order",
        "description": "Find an order.",
        "parameters": OBJECT,
        "handler": answer,
    }
    return ToolSpec(**(base | fields))


def test_a_well_formed_spec_keeps_its_fields_and_defaults() -> None:
    tool = spec()
    assert tool.name == "lookup_order"
    assert tool.timeout_s == 10.0
    assert tool.cancel_on_barge_in is True
    assert tool.max_result_bytes == 16_384
    assert tool.validator.is_valid({})
    assert not tool.validator.is_valid([])


@pytest.mark.parametrize("name", ["a", "get_weather", "tool2", "a" * 64, "x_1_2"])
def test_names_matching_the_pattern_are_accepted(name: str) -> None:
    assert spec(name=name).name == name


@pytest.mark.parametrize(
    "name",
    ["", "Get", "2fast", "_x", "a-b", "a b", "a" * 65, "café", "a\n", "é", 7, None],
)
def test_other_names_are_refused(name: object) -> None:
    with pytest.raises(ValueError, match="must match"):
        spec(name=name)


@pytest.mark.parametrize("description", ["", "d" * (MAX_DESCRIPTION_CHARS + 1)])
def test_description_must_be_present_and_bounded(description: str) -> None:
    with pytest.raises(ValueError, match="description"):
        spec(description=description)


def test_the_handler_must_be_async() -> None:
    def blocking(arguments: dict[str, Any]) -> Any:
        return 1

    with pytest.raises(TypeError, match="async"):
        spec(handler=blocking)


def test_a_partial_of_an_async_function_is_an_async_handler() -> None:
    assert spec(handler=functools.partial(scaled, 3)).name == "lookup_order"


@pytest.mark.parametrize("timeout_s", [0, -1, 301, float("nan")])
def test_timeout_must_be_positive_and_bounded(timeout_s: float) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        spec(timeout_s=timeout_s)


@pytest.mark.parametrize("size", [0, -5, (1 << 20) + 1])
def test_result_limit_must_be_positive_and_bounded(size: int) -> None:
    with pytest.raises(ValueError, match="max_result_bytes"):
        spec(max_result_bytes=size)


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        ([], "must be a JSON schema object"),
        ("object", "must be a JSON schema object"),
        ({"type": "nope"}, "invalid parameters schema"),
        ({"type": "object", "properties": {"a": {"minLength": -1}}}, "invalid parameters"),
        ({"type": "array"}, "type 'object'"),
        ({"properties": {}}, "type 'object'"),
        ({"type": "object", "properties": {"a": {"type": "string"}}}, "maxLength"),
        ({"type": "object", "properties": {"a": {"type": ["string", "null"]}}}, "maxLength"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "array", "items": {"type": "string"}}},
            },
            "maxLength",
        ),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/b"}}}, r"\$ref"),
        ({"type": "object", "$id": "https://example.com/x"}, r"\$id"),
    ],
)
def test_bad_argument_schemas_are_refused(parameters: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        spec(parameters=parameters)


def test_strings_bounded_by_enum_or_const_need_no_max_length() -> None:
    check_parameters_schema(
        "t",
        {
            "type": "object",
            "properties": {
                "unit": {"type": "string", "enum": ["c", "f"]},
                "mode": {"type": "string", "const": "fast"},
                "note": {"type": "string", "maxLength": 10},
            },
        },
    )


def test_the_spec_keeps_its_own_copy_of_the_schema() -> None:
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"id": {"type": "integer"}},
        "required": ["id"],
    }
    tool = spec(parameters=parameters)
    parameters["required"].append("other")
    parameters["properties"]["id"]["type"] = "string"
    assert tool.parameters["required"] == ["id"]
    assert tool.validator.is_valid({"id": 3})


def test_the_manifest_describes_the_tool_to_a_model() -> None:
    tool = spec()
    manifest = tool.manifest()
    assert manifest == {
        "name": "lookup_order",
        "description": "Find an order.",
        "parameters": {"type": "object", "properties": {}},
    }
    manifest["parameters"]["type"] = "array"
    assert tool.parameters["type"] == "object"


def test_specs_are_frozen() -> None:
    tool = spec()
    with pytest.raises(AttributeError):
        tool.name = "other"  # type: ignore[misc]


def test_specs_are_equal_only_to_themselves_and_hashable() -> None:
    a, b = spec(), spec()
    assert [a] == [a]
    assert a != b
    assert len({a, b, a}) == 2
