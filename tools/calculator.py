"""The ``calculator`` tool: arithmetic over Python's ``ast``, never ``eval``.

Everything that could take long or grow large is bounded before it is computed:
the expression's length and node count, integer sizes, and exponents (so
``9**9**9`` is refused at once instead of computing a 369-million-digit number).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from tools.spec import ToolSpec

MAX_EXPRESSION_CHARS = 200
MAX_NODES = 400
# Integers stay below 2**1024: about the range of a float, 309 digits at most.
MAX_INT_BITS = 1024
MAX_ROUND_DIGITS = 400  # more than any bounded int or float has

Number = int | float


class CalculatorError(ValueError):
    """The expression is not allowed or cannot be computed."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    # name: (function, fewest arguments, most arguments)
    "abs": (abs, 1, 1),
    "round": (round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (math.log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "min": (min, 2, 8),
    "max": (max, 2, 8),
}

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def evaluate(expression: str) -> Number:
    """The value of ``expression``, or CalculatorError saying why not."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculatorError("not a valid arithmetic expression") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError(f"expression has more than {MAX_NODES} parts")
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("result too large") from None
    except CalculatorError:
        raise
    except ValueError as exc:  # math domain errors: sqrt(-1), log(0)
        raise CalculatorError(f"math error: {exc}") from None
    return _checked(value)


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"{type(node.value).__name__} values are not numbers")
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id not in _CONSTANTS:
            raise CalculatorError(f"unknown name {node.id[:20]!r}")
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        operand = _eval(node.operand)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        op = _BINARY.get(type(node.op))
        if op is None:
            raise CalculatorError(f"operator {type(node.op).__name__} is not allowed")
        # Both operands are below MAX_INT_BITS, so the product has at most twice as
        # many bits: cheap to compute, then refused by _checked if too big.
        return _checked(op(left, right))
    if isinstance(node, ast.Call):
        return _call(node)
    raise CalculatorError(f"{type(node).__name__} is not allowed in an expression")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        raise CalculatorError("only the listed math functions can be called")
    if node.keywords:
        raise CalculatorError("functions take no keyword arguments")
    function, fewest, most = _FUNCTIONS[node.func.id]
    if not fewest <= len(node.args) <= most:
        raise CalculatorError(f"{node.func.id} takes {fewest} to {most} arguments")
    args = [_eval(arg) for arg in node.args]  # a Starred argument is refused here
    if node.func.id == "round" and len(args) == 2:
        # round(5, -10**8) would compute 10**(10**8): bound the digits first.
        digits = args[1]
        if not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
            raise CalculatorError(f"round takes a whole number of digits up to {MAX_ROUND_DIGITS}")
    return _checked(function(*args))


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        # The result has about exponent * bits(base) bits: refuse before computing.
        if base not in (-1, 0, 1) and exponent * (abs(base).bit_length() - 1) > MAX_INT_BITS:
            raise CalculatorError("result too large")
        result: int = base**exponent
        return result
    if base == 0 and exponent < 0:
        raise ZeroDivisionError
    # Float power: overflow raises OverflowError, which evaluate() reports; a negative
    # base with a fractional exponent raises ValueError instead of going complex.
    return math.pow(base, exponent)


def _checked(value: Number) -> Number:
    """``value`` if it is within bounds. Operands are checked numbers, so results of
    the allowed operations are ints or floats: only their size needs checking."""
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("result too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("result too large")
    return value


async def _handle(arguments: dict[str, Any]) -> dict[str, Any]:
    expression: str = arguments["expression"]
    return {"expression": expression, "result": evaluate(expression)}


def calculator_tool() -> ToolSpec:
    return ToolSpec(
        name="calculator",
        description=(
            "Evaluate an arithmetic expression: numbers, + - * / // % **, parentheses, "
            "pi, e, and abs round floor ceil sqrt exp log log10 log2 sin cos tan min max."
        ),
        parameters={
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_EXPRESSION_CHARS,
                    "description": "for example (2 + 3) * 4 / sqrt(2)",
                }
            },
            "required": ["expression"],
            "additionalProperties": False,
        },
        handler=_handle,
        timeout_s=2.0,
        cancel_on_barge_in=True,
        max_result_bytes=2048,
    )
