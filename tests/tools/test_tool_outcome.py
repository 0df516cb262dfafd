"""ToolOutcome: ok or failed, never both; its one-word code; short messages."""

from __future__ import annotations

import pytest

from sessions.events import ToolError
from tools.outcome import Rejection, ToolErrorCode, ToolOutcome, shorten


def test_an_outcome_is_either_ok_or_has_an_error_code() -> None:
    with pytest.raises(ValueError, match="either ok or has an error_code"):
        ToolOutcome(ok=True, error_code=ToolErrorCode.TIMEOUT)
    with pytest.raises(ValueError, match="either ok or has an error_code"):
        ToolOutcome(ok=False)


def test_success_and_failure_say_what_happened_in_one_word() -> None:
    good = ToolOutcome.success({"n": 1}, duration_ms=3.5)
    bad = ToolOutcome.failure(Rejection(ToolErrorCode.TIMEOUT, "too slow"), duration_ms=9.0)
    assert (good.code, good.result, good.tool_error()) == ("ok", {"n": 1}, None)
    assert (bad.code, bad.result, bad.duration_ms) == ("timeout", None, 9.0)
    assert bad.tool_error() == ToolError(code="timeout", message="too slow")


def test_the_error_codes_are_the_documented_ones() -> None:
    assert sorted(ToolErrorCode) == [
        "bad_arguments",
        "bad_result",
        "not_allowed",
        "result_too_large",
        "timeout",
        "tool_failed",
        "unknown_tool",
    ]


def test_rejection_messages_are_cut_to_a_bounded_length() -> None:
    rejection = Rejection(ToolErrorCode.BAD_ARGUMENTS, "x" * 1000)
    assert len(rejection.message) == 300
    assert rejection.message.endswith("x…")
    assert shorten("short") == "short"
    assert shorten("abcdef", limit=4) == "abc…"
