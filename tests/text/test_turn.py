"""Pure decisions of an agent turn: the state table, the decision protocol, admission."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipelines.text.turn import (
    TRANSITIONS,
    Admission,
    AnswerDecision,
    InvalidDecision,
    Step,
    ToolDecision,
    TurnAction,
    TurnPhase,
    TurnState,
    admit,
    decision_schema,
    decision_text,
    finish_status,
    must_call_tool,
    next_step,
    parse_decision,
)
from sessions.errors import IllegalTransition
from tools.registry import ToolRegistry
from tools.spec import ToolSpec


async def _handler(arguments: dict[str, object]) -> object:
    return arguments


def _registry() -> ToolRegistry:
    return ToolRegistry(
        [
            ToolSpec(
                "lookup",
                "Look a word up.",
                {
                    "type": "object",
                    "properties": {"word": {"type": "string", "maxLength": 20}},
                    "required": ["word"],
                    "additionalProperties": False,
                },
                _handler,
            ),
            ToolSpec(
                "add",
                "Add two numbers.",
                {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                    "required": ["a", "b"],
                    "additionalProperties": False,
                },
                _handler,
            ),
        ]
    )


# --- the state table -------------------------------------------------------------


def test_a_turn_with_one_tool_round_walks_the_table() -> None:
    state = TurnState()
    for action in (
        TurnAction.DECIDE,
        TurnAction.CALL_TOOL,
        TurnAction.TOOL_DONE,
        TurnAction.DECIDE,
        TurnAction.ANSWER,
        TurnAction.FINISH,
    ):
        state = state.apply(action)
    assert state == TurnState(TurnPhase.DONE, tool_rounds=1)


def test_an_answer_without_tools_is_two_steps() -> None:
    state = TurnState().apply(TurnAction.ANSWER).apply(TurnAction.FINISH)
    assert state.phase is TurnPhase.DONE
    assert state.tool_rounds == 0


@pytest.mark.parametrize("phase", [p for p in TurnPhase if p is not TurnPhase.DONE])
@pytest.mark.parametrize("action", [TurnAction.CANCEL, TurnAction.FAIL])
def test_cancel_and_fail_end_a_turn_from_every_live_phase(
    phase: TurnPhase, action: TurnAction
) -> None:
    assert TurnState(phase).apply(action).phase is TurnPhase.DONE


@pytest.mark.parametrize("action", list(TurnAction))
def test_nothing_leaves_done(action: TurnAction) -> None:
    done = TurnState(TurnPhase.DONE, tool_rounds=2)
    with pytest.raises(IllegalTransition):
        done.apply(action)


def test_an_illegal_transition_changes_nothing() -> None:
    state = TurnState(TurnPhase.ANSWERING)
    with pytest.raises(IllegalTransition) as info:
        state.apply(TurnAction.CALL_TOOL)
    assert state == TurnState(TurnPhase.ANSWERING)
    assert info.value.state == "answering"
    assert info.value.action == "call_tool"


def test_tokens_only_come_from_the_answering_phase() -> None:
    # FINISH (the end of a streamed answer) is legal only while answering.
    assert [p for (p, a) in TRANSITIONS if a is TurnAction.FINISH] == [TurnPhase.ANSWERING]


# --- when to decide, when to answer -------------------------------------------------


def test_next_step_decides_while_tools_are_offered_and_rounds_remain() -> None:
    assert next_step(0, 2, {"lookup"}, "auto") is Step.DECIDE
    assert next_step(1, 2, {"lookup"}, "auto") is Step.DECIDE
    assert next_step(2, 2, {"lookup"}, "auto") is Step.ANSWER


def test_next_step_answers_without_tools_or_with_choice_none() -> None:
    assert next_step(0, 2, set(), "auto") is Step.ANSWER
    assert next_step(0, 2, set(), "required") is Step.ANSWER
    assert next_step(0, 2, {"lookup"}, "none") is Step.ANSWER
    assert next_step(0, 0, {"lookup"}, "required") is Step.ANSWER


def test_required_forces_only_the_first_round() -> None:
    assert must_call_tool(0, "required")
    assert not must_call_tool(1, "required")
    assert not must_call_tool(0, "auto")


# --- the decision schema -------------------------------------------------------------


def test_decision_schema_accepts_answer_and_each_offered_tool() -> None:
    registry = _registry()
    call_schema = registry.call_schema({"lookup", "add"})
    assert call_schema is not None
    validator = Draft202012Validator(decision_schema(call_schema, tool_required=False))
    assert validator.is_valid({"action": "answer"})
    assert validator.is_valid({"action": "tool", "name": "lookup", "arguments": {"word": "x"}})
    assert validator.is_valid({"action": "tool", "name": "add", "arguments": {"a": 1, "b": 2}})


def test_decision_schema_refuses_what_was_not_offered() -> None:
    registry = _registry()
    call_schema = registry.call_schema({"lookup"})
    assert call_schema is not None
    validator = Draft202012Validator(decision_schema(call_schema, tool_required=False))
    assert not validator.is_valid({"action": "tool", "name": "add", "arguments": {"a": 1, "b": 2}})
    # A name paired with another tool's arguments, an extra field, no action.
    assert not validator.is_valid({"action": "tool", "name": "lookup", "arguments": {"a": 1}})
    assert not validator.is_valid({"action": "answer", "text": "hi"})
    assert not validator.is_valid({"name": "lookup", "arguments": {"word": "x"}})


def test_required_decision_schema_has_no_answer_branch() -> None:
    call_schema = _registry().call_schema({"lookup"})
    assert call_schema is not None
    validator = Draft202012Validator(decision_schema(call_schema, tool_required=True))
    assert not validator.is_valid({"action": "answer"})
    assert validator.is_valid({"action": "tool", "name": "lookup", "arguments": {"word": "y"}})


def test_decision_schema_puts_action_first() -> None:
    call_schema = _registry().call_schema({"lookup", "add"})
    assert call_schema is not None
    schema = decision_schema(call_schema, tool_required=False)
    for branch in schema["anyOf"]:
        assert next(iter(branch["properties"])) == "action"
        assert branch["required"][0] == "action"


# --- parsing what the model wrote -----------------------------------------------------


def test_parse_answer_and_tool_decisions() -> None:
    assert parse_decision('{"action": "answer"}', {"lookup"}) == AnswerDecision()
    decision = parse_decision(
        '{"action": "tool", "name": "lookup", "arguments": {"word": "cat"}}', {"lookup"}
    )
    assert decision == ToolDecision("lookup", {"word": "cat"}, offered=True)


def test_a_tool_that_was_not_offered_is_reported_as_such() -> None:
    decision = parse_decision('{"action":"tool","name":"delete_all","arguments":{}}', {"lookup"})
    assert decision == ToolDecision("delete_all", {}, offered=False)


def test_arguments_are_passed_on_unchecked_for_the_tools_package() -> None:
    decision = parse_decision('{"action":"tool","name":"lookup","arguments":[1,2]}', {"lookup"})
    assert isinstance(decision, ToolDecision)
    assert decision.arguments == [1, 2]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "answer",
        "{",
        '{"action": "answer"',  # truncated by max_tokens
        "[]",
        "null",
        '"answer"',
        '{"action": "shout"}',
        '{"action": "tool"}',
        '{"action": "tool", "name": ""}',
        '{"action": "tool", "name": 42}',
        "[" * 5000 + "]" * 5000,
        "x" * 80_000,
    ],
)
def test_garbage_is_an_invalid_decision(raw: str) -> None:
    assert isinstance(parse_decision(raw, {"lookup"}), InvalidDecision)


@given(st.text(max_size=300))
def test_parse_decision_never_raises(raw: str) -> None:
    decision = parse_decision(raw, {"lookup"})
    assert isinstance(decision, AnswerDecision | ToolDecision | InvalidDecision)


@given(st.binary(max_size=200))
def test_parse_decision_survives_any_decoded_bytes(raw: bytes) -> None:
    decision = parse_decision(raw.decode("utf-8", "replace"), {"lookup"})
    assert isinstance(decision, AnswerDecision | ToolDecision | InvalidDecision)


def test_a_very_long_tool_name_is_cut() -> None:
    raw = json.dumps({"action": "tool", "name": "n" * 1000, "arguments": {}})
    decision = parse_decision(raw, {"lookup"})
    assert isinstance(decision, ToolDecision)
    assert len(decision.name) == 64
    assert not decision.offered


def test_decision_text_round_trips() -> None:
    decision = ToolDecision("lookup", {"word": "ünï"}, offered=True)
    again = parse_decision(decision_text(decision), {"lookup"})
    assert again == decision


# --- admission and statuses ------------------------------------------------------------


def test_admission_starts_queues_then_rejects() -> None:
    assert admit(running=False, queued=0, max_queued=2) is Admission.START
    assert admit(running=True, queued=0, max_queued=2) is Admission.QUEUE
    assert admit(running=True, queued=1, max_queued=2) is Admission.QUEUE
    assert admit(running=True, queued=2, max_queued=2) is Admission.REJECT
    assert admit(running=True, queued=0, max_queued=0) is Admission.REJECT
    # Submitted but not yet picked up: it still counts.
    assert admit(running=False, queued=1, max_queued=1) is Admission.REJECT


def test_finish_status_maps_engine_reasons() -> None:
    assert finish_status("stop") == "completed"
    assert finish_status(None) == "completed"
    assert finish_status("length") == "length"
    assert finish_status("cancelled") == "cancelled"
    assert finish_status("error") == "failed"
