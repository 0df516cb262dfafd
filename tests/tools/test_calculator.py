"""The calculator: exact arithmetic over a parsed tree, everything else refused fast."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.calculator import MAX_EXPRESSION_CHARS, CalculatorError, calculator_tool, evaluate
from tools.execute import ToolInvocation, execute
from tools.outcome import ToolErrorCode
from tools.registry import ToolRegistry


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("2.5 ** 2", 6.25),
        ("-3 + +4", 1),
        ("--5", 5),
        ("1_000 * 3", 3000),
        ("1e3 + .5", 1000.5),
        ("  12  ", 12),
        ("abs(-4)", 4),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("round(123456, -400)", 0),
        ("round(1.25, 400)", 1.25),
        ("floor(2.7) + ceil(2.1)", 5),
        ("sqrt(16)", 4.0),
        ("log(e)", 1.0),
        ("log(8, 2)", 3.0),
        ("log10(1000) + log2(8)", 6.0),
        ("exp(0)", 1.0),
        ("sin(0) + cos(0) + tan(0)", 1.0),
        ("min(3, 1, 2) + max(3, 1, 2)", 4),
        ("pi * 2", math.tau),
        ("-" * 199 + "1", -1),
        ("(" * 99 + "1" + ")" * 99, 1),
        ("2 ** 1023", 2**1023),
        ("3 ** 646", 3**646),
        ("(-1) ** (10 ** 300)", 1),
        ("0 ** 5000", 0),
    ],
)
def test_arithmetic_gives_the_exact_value(expression: str, value: float) -> None:
    result = evaluate(expression)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("9**9**9", "result too large"),
        ("2 ** 1024", "result too large"),
        ("3 ** 647", "result too large"),
        ("10.0 ** 400", "result too large"),
        ("1e308 * 10", "result too large"),
        ("exp(1000)", "result too large"),
        ("(2 ** 1000) * (2 ** 1000)", "result too large"),
        ("(2 ** 1023) / 0.5", "result too large"),
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("5 % 0.0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("sqrt(-1)", "math error: math domain error"),
        ("log(0)", "math error: math domain error"),
        ("(-8) ** (1 / 3)", "math error: math domain error"),
        ("round(2.5, 1.5)", "round takes a whole number of digits up to 400"),
        ("round(5, -10**8)", "round takes a whole number of digits up to 400"),
        ("round(5, 401)", "round takes a whole number of digits up to 400"),
        ("1e999", "result too large"),
        ("__import__('os').system('id')", "only the listed math functions"),
        ("math.sqrt(4)", "only the listed math functions"),
        ("open('/etc/passwd')", "only the listed math functions"),
        ("sqrt(x=4)", "no keyword arguments"),
        ("sqrt(1, 2)", "sqrt takes 1 to 1 arguments"),
        ("min(1)", "min takes 2 to 8 arguments"),
        ("sqrt(*[4])", "Starred is not allowed"),
        ("x + 1", "unknown name 'x'"),
        ("True + 1", "bool values are not numbers"),
        ("'a' * 3", "str values are not numbers"),
        ("1j * 2", "complex values are not numbers"),
        ("None", "NoneType values are not numbers"),
        ("1 << 100", "operator LShift is not allowed"),
        ("6 & 3", "operator BitAnd is not allowed"),
        ("~5", "UnaryOp is not allowed"),
        ("not 1", "UnaryOp is not allowed"),
        ("1 < 2", "Compare is not allowed"),
        ("1 if 1 else 2", "IfExp is not allowed"),
        ("[1, 2]", "List is not allowed"),
        ("(lambda: 1)()", "only the listed math functions"),
        ("().__class__", "Attribute is not allowed"),
        ("1 +", "not a valid arithmetic expression"),
        ("", "not a valid arithmetic expression"),
        ("1\x00", "not a valid arithmetic expression"),
        ("x = 1", "not a valid arithmetic expression"),
        ("1" * (MAX_EXPRESSION_CHARS + 1), "longer than 200 characters"),
    ],
)
def test_everything_else_is_refused_with_a_reason(expression: str, reason: str) -> None:
    with pytest.raises(CalculatorError, match=re.escape(reason)):
        evaluate(expression)


def test_the_node_limit_holds_for_inputs_shorter_than_the_length_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tools.calculator.MAX_NODES", 10)
    with pytest.raises(CalculatorError, match="more than 10 parts"):
        evaluate("1 + 2 + 3 + 4 + 5")


def test_huge_powers_are_refused_before_they_are_computed() -> None:
    started = time.perf_counter()
    for expression in ("9**9**9", "10**10**10", "99**99**99", "2**(2**(2**(2**2)))"):
        with pytest.raises(CalculatorError):
            evaluate(expression)
    assert time.perf_counter() - started < 0.5


# Expressions with their exact value, built side by side: an oracle that is not eval.
def _combine(pair: tuple[tuple[str, int], str, tuple[str, int]]) -> tuple[str, int]:
    (left, a), op, (right, b) = pair
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return f"({left} {op} {right})", value


EXPRESSIONS = st.recursive(
    st.integers(min_value=-1000, max_value=1000).map(lambda n: (f"({n})", n)),
    lambda inner: st.tuples(inner, st.sampled_from("+-*"), inner).map(_combine),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(EXPRESSIONS)
def test_generated_integer_arithmetic_is_exact(case: tuple[str, int]) -> None:
    expression, value = case
    if len(expression) <= MAX_EXPRESSION_CHARS:
        assert evaluate(expression) == value


@settings(max_examples=500, deadline=None)
@given(
    st.text(max_size=MAX_EXPRESSION_CHARS)
    | st.text(alphabet="0123456789.+-*/%()e, sqrtlogminax_pi", max_size=MAX_EXPRESSION_CHARS)
    | st.text(alphabet="9*()-", max_size=60)
)
def test_any_text_gives_a_number_or_a_calculator_error_quickly(expression: str) -> None:
    started = time.perf_counter()
    try:
        value = evaluate(expression)
    except CalculatorError:
        pass
    else:
        assert isinstance(value, int | float)
        assert not isinstance(value, bool)
        assert isinstance(value, int) or math.isfinite(value)
    assert time.perf_counter() - started < 0.5


@pytest.fixture
def calculator() -> ToolRegistry:
    return ToolRegistry([calculator_tool()])


async def run(registry: ToolRegistry, arguments: Any) -> Any:
    return await execute(
        registry,
        ToolInvocation("c1", "calculator", arguments),
        frozenset({"calculator"}),
        audit=None,
    )


@pytest.mark.anyio
async def test_the_tool_answers_with_the_expression_and_its_value(
    calculator: ToolRegistry,
) -> None:
    outcome = await run(calculator, {"expression": "(2 + 3) * 4"})
    assert outcome.ok
    assert outcome.result == {"expression": "(2 + 3) * 4", "result": 20}


@pytest.mark.anyio
async def test_the_tool_reports_a_refused_expression_as_a_failure(
    calculator: ToolRegistry,
) -> None:
    outcome = await run(calculator, {"expression": "9**9**9"})
    assert outcome.error_code is ToolErrorCode.TOOL_FAILED
    assert outcome.error_message == "CalculatorError: result too large"


@pytest.mark.anyio
async def test_the_tool_refuses_expressions_over_the_schema_bound(
    calculator: ToolRegistry,
) -> None:
    outcome = await run(calculator, {"expression": "1+" * 200 + "1"})
    assert outcome.error_code is ToolErrorCode.BAD_ARGUMENTS
    assert outcome.error_message.startswith("arguments.expression: '1+1+")
