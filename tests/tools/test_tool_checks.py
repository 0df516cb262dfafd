"""The pure checks: admission, argument validation, result acceptance, hashing."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.checks import (
    MAX_ARGUMENT_BYTES,
    MAX_ARGUMENT_DEPTH,
    MAX_VALUES,
    admit,
    arguments_digest,
    canonical_json,
    check_arguments,
    check_result,
    format_path,
    json_problem,
    json_type,
)
from tools.outcome import Rejection, ToolErrorCode
from tools.registry import ToolRegistry
from tools.spec import ToolSpec


async def nothing(arguments: dict[str, Any]) -> Any:
    return None


ORDER = ToolSpec(
    name="order_status",
    description="Status of an order.",
    parameters={
        "type": "object",
        "properties": {
            "order_id": {"type": "integer", "minimum": 1},
            "email": {"type": "string", "maxLength": 50},
            "items": {
                "type": "array",
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {"sku": {"type": "string", "maxLength": 8}},
                    "required": ["sku"],
                },
            },
        },
        "required": ["order_id"],
        "additionalProperties": False,
    },
    handler=nothing,
    max_result_bytes=100,
)


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"a": [value]}
    return value


# admission


def test_a_registered_allowed_tool_is_admitted() -> None:
    assert admit(ToolRegistry([ORDER]), "order_status", frozenset({"order_status"})) is ORDER


def test_an_unknown_tool_is_refused_before_the_allowlist_is_read() -> None:
    verdict = admit(ToolRegistry([ORDER]), "rm_rf", frozenset({"rm_rf"}))
    assert verdict == Rejection(ToolErrorCode.UNKNOWN_TOOL, "no tool named 'rm_rf'")


def test_a_known_tool_outside_the_allowlist_is_not_allowed() -> None:
    verdict = admit(ToolRegistry([ORDER]), "order_status", frozenset({"other"}))
    assert verdict == Rejection(
        ToolErrorCode.NOT_ALLOWED, "tool 'order_status' is not allowed here"
    )


# arguments


def test_valid_arguments_pass() -> None:
    assert check_arguments(ORDER, {"order_id": 5, "items": [{"sku": "A1"}]}) is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([1, 2], "arguments must be an object, not array"),
        ("order 5", "arguments must be an object, not string"),
        (None, "arguments must be an object, not null"),
        (5, "arguments must be an object, not number"),
        (True, "arguments must be an object, not boolean"),
        ({}, "arguments: 'order_id' is a required property"),
        ({"order_id": "5"}, "arguments.order_id: '5' is not of type 'integer'"),
        ({"order_id": 0}, "arguments.order_id: 0 is less than the minimum of 1"),
        (
            {"order_id": 1, "items": [{"sku": "A"}, {"sku": 7}]},
            "arguments.items[1].sku: 7 is not of type 'string'",
        ),
        ({"order_id": 1, "debug": True}, "arguments: Additional properties are not allowed"),
        ({"order_id": 1, 2: 3}, "arguments: object keys must be strings"),
        ({"order_id": math.nan}, "arguments.order_id: nan is not a JSON number"),
        ({"order_id": b"1"}, "arguments.order_id: bytes values are not JSON"),
        ({"order_id": 1, "x": {"a b": object()}}, 'arguments.x["a b"]: object values are not JSON'),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(arguments: object, message: str) -> None:
    rejection = check_arguments(ORDER, arguments)
    assert rejection is not None
    assert rejection.code is ToolErrorCode.BAD_ARGUMENTS
    assert rejection.message.startswith(message)


def test_deeply_nested_arguments_are_refused_without_recursion() -> None:
    rejection = check_arguments(ORDER, {"order_id": 1, "x": nested(100_000)})
    assert rejection is not None
    assert "nested deeper than 32 levels" in rejection.message


def test_arguments_with_too_many_values_are_refused() -> None:
    rejection = check_arguments(ORDER, {"order_id": 1, "x": [0] * MAX_VALUES})
    assert rejection is not None
    assert rejection.message == f"arguments holds more than {MAX_VALUES} values"


def test_oversized_arguments_are_refused_before_schema_validation() -> None:
    rejection = check_arguments(ORDER, {"order_id": 1, "email": "e" * MAX_ARGUMENT_BYTES})
    assert rejection is not None
    assert rejection.message.startswith("arguments are 65561 bytes, more than the limit of 65536")


def test_messages_quoting_a_huge_value_stay_short() -> None:
    rejection = check_arguments(ORDER, {"order_id": 1, "email": "e" * 10_000})
    assert rejection is not None
    assert rejection.message.startswith("arguments.email: 'eeee")
    assert len(rejection.message) <= 300
    assert rejection.message.endswith("…")


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
    | st.binary(max_size=5)
)
HOSTILE = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=5)
        | st.tuples(inner)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_any_hostile_value_gets_a_verdict_never_an_exception(arguments: object) -> None:
    rejection = check_arguments(ORDER, arguments)
    if rejection is None:
        assert isinstance(arguments, dict)
        assert ORDER.validator.is_valid(arguments)
    else:
        assert rejection.code is ToolErrorCode.BAD_ARGUMENTS
        assert 0 < len(rejection.message) <= 300
    digest, _size = arguments_digest(arguments)
    assert len(digest) == 64


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=MAX_ARGUMENT_DEPTH + 1, max_value=5000), st.text(max_size=3))
def test_any_deep_nesting_is_refused(depth: int, leaf: str) -> None:
    value: Any = leaf
    for _ in range(depth):
        value = [value]
    rejection = check_arguments(ORDER, {"order_id": 1, "deep": value})
    assert rejection is not None
    assert "nested deeper" in rejection.message


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers(min_value=1, max_value=3))
def test_huge_strings_are_refused_by_size_or_schema(text: str, scale: int) -> None:
    huge = text * (scale * MAX_ARGUMENT_BYTES // len(text) // 2 + 1)
    rejection = check_arguments(ORDER, {"order_id": 1, "email": huge, huge[:200]: huge})
    assert rejection is not None
    assert len(rejection.message) <= 300


# results


def test_a_result_comes_back_as_plain_json() -> None:
    assert check_result(ORDER, {"ids": (1, 2), "ok": True}) == ({"ids": [1, 2], "ok": True}, None)


@pytest.mark.parametrize(
    ("result", "code", "message"),
    [
        ({1, 2}, ToolErrorCode.BAD_RESULT, "result: set values are not JSON"),
        ({"x": math.inf}, ToolErrorCode.BAD_RESULT, "result.x: inf is not a JSON number"),
        (nested(70), ToolErrorCode.BAD_RESULT, "result.a[0].a…: nested deeper than 64"),
        ("x" * 99, ToolErrorCode.RESULT_TOO_LARGE, "result is 101 bytes, more than"),
        pytest.param(
            10**5000,
            ToolErrorCode.BAD_RESULT,
            "result is not JSON: Exceeds the limit",
            id="int-too-long-to-print",
        ),
    ],
)
def test_bad_results_are_refused(result: object, code: ToolErrorCode, message: str) -> None:
    value, rejection = check_result(ORDER, result)
    assert value is None
    assert rejection is not None
    assert rejection.code is code
    assert rejection.message.startswith(message)


# canonical form and digest


def test_canonical_json_does_not_depend_on_key_order() -> None:
    a = canonical_json({"b": [1, {"d": "é", "c": None}], "a": 1.5})
    b = canonical_json({"a": 1.5, "b": [1, {"c": None, "d": "é"}]})
    assert a == b == '{"a":1.5,"b":[1,{"c":null,"d":"é"}]}'.encode()


def test_the_digest_is_the_sha256_of_the_canonical_json() -> None:
    digest, size = arguments_digest({"q": "refund", "n": 2})
    expected = b'{"n":2,"q":"refund"}'
    assert (digest, size) == (hashlib.sha256(expected).hexdigest(), len(expected))


@pytest.mark.parametrize(
    "value",
    [{1, 2}, {"n": 10**5000}, {"x": math.nan}, nested(40)],
    ids=["set", "int-too-long", "nan", "too-deep"],
)
def test_values_that_are_not_json_get_a_marker_digest(value: object) -> None:
    digest, size = arguments_digest(value)
    name = type(value).__name__
    assert digest == hashlib.sha256(f"<not json: {name}>".encode()).hexdigest()
    assert size == 0


@pytest.mark.parametrize(
    ("value", "name"),
    [({}, "object"), ([], "array"), ((), "array"), (1.5, "number"), (object(), "object")],
)
def test_json_type_names(value: object, name: str) -> None:
    assert json_type(value) == name


def test_paths_name_fields_readably() -> None:
    assert format_path("arguments", ("items", 2, "sku")) == "arguments.items[2].sku"
    assert format_path("arguments", ("a b", "x" * 50)) == f'arguments["a b"].{"x" * 40}'
    assert json_problem({"ok": [1, "two", None, 2.5, False]}, "v", 3) is None
