"""Pure decisions of one agent turn: its state table, the tool-decision protocol, and
what to do with a new ``text`` while a turn runs (docs/agent.md).

Nothing here awaits, reads a clock or talks to an engine: the async shell
(``pipelines.text.agent``) feeds it and acts on its answers.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from pipelines.text.engine import FinishReason
from sessions.errors import IllegalTransition
from sessions.events import TurnStatus

ToolChoice = Literal["auto", "required", "none"]
# A model's decision is JSON of a few hundred bytes; anything far longer is garbage.
MAX_DECISION_CHARS = 70_000


class TurnPhase(StrEnum):
    READY = "ready"  # before its first step, and between a tool round and the next
    DECIDING = "deciding"  # the constrained step: answer, or which tool
    CALLING_TOOL = "calling_tool"
    ANSWERING = "answering"  # the streamed answer
    DONE = "done"


class TurnAction(StrEnum):
    DECIDE = "decide"
    CALL_TOOL = "call_tool"
    TOOL_DONE = "tool_done"
    ANSWER = "answer"
    FINISH = "finish"  # the answer ended (completed or length)
    CANCEL = "cancel"
    FAIL = "fail"


_P, _A = TurnPhase, TurnAction
# The state table. CANCEL and FAIL are legal from every phase but DONE; nothing
# leaves DONE, which is what keeps events of a turn from following its turn.done.
TRANSITIONS: dict[tuple[TurnPhase, TurnAction], TurnPhase] = {
    (_P.READY, _A.DECIDE): _P.DECIDING,
    (_P.READY, _A.ANSWER): _P.ANSWERING,
    (_P.DECIDING, _A.CALL_TOOL): _P.CALLING_TOOL,
    (_P.DECIDING, _A.ANSWER): _P.ANSWERING,
    (_P.CALLING_TOOL, _A.TOOL_DONE): _P.READY,
    (_P.ANSWERING, _A.FINISH): _P.DONE,
    **{(p, a): _P.DONE for p in TurnPhase if p is not _P.DONE for a in (_A.CANCEL, _A.FAIL)},
}


@dataclass(frozen=True, slots=True)
class TurnState:
    """Where a turn is, and how many tool rounds it has done."""

    phase: TurnPhase = TurnPhase.READY
    tool_rounds: int = 0

    def apply(self, action: TurnAction) -> TurnState:
        """The state after ``action``; IllegalTransition (and no change) if not allowed."""
        target = TRANSITIONS.get((self.phase, action))
        if target is None:
            raise IllegalTransition("turn", self.phase, action)
        rounds = self.tool_rounds + (1 if action is TurnAction.TOOL_DONE else 0)
        return replace(self, phase=target, tool_rounds=rounds)


class Step(StrEnum):
    DECIDE = "decide"
    ANSWER = "answer"


def next_step(
    tool_rounds: int, max_tool_rounds: int, offered: Collection[str], choice: ToolChoice
) -> Step:
    """Decide again, or answer. Without tools, with ``none``, or once the round limit
    is reached, the turn answers; ``required`` forces one tool round (then auto)."""
    if not offered or choice == "none" or tool_rounds >= max_tool_rounds:
        return Step.ANSWER
    return Step.DECIDE


def must_call_tool(tool_rounds: int, choice: ToolChoice) -> bool:
    """Whether the decision schema offers only tool calls (``required``, first round)."""
    return choice == "required" and tool_rounds == 0


# --- The decision protocol -------------------------------------------------------
# The decision step is constrained to one JSON object:
#   {"action": "answer"}
#   {"action": "tool", "name": <one of the offered tools>, "arguments": {...}}
# The schema is a grammar hint; the parse below is the authority, and the tools
# package validates the arguments with jsonschema before anything runs.


@dataclass(frozen=True, slots=True)
class AnswerDecision:
    pass


@dataclass(frozen=True, slots=True)
class ToolDecision:
    name: str
    arguments: Any  # validated by the tools package, not here: a bad value is data
    offered: bool  # False: the model named a tool it was not offered


@dataclass(frozen=True, slots=True)
class InvalidDecision:
    problem: str


Decision = AnswerDecision | ToolDecision | InvalidDecision


def decision_schema(call_schema: dict[str, Any], *, tool_required: bool) -> dict[str, Any]:
    """The JSON schema of a decision, around ``call_schema`` (``ToolRegistry.call_schema``:
    one branch per offered tool, each ``{"name": const, "arguments": schema}``).
    ``action`` comes first, so the model says whether to call a tool before which."""
    branches = call_schema.get("oneOf") or call_schema.get("anyOf") or [call_schema]
    tool_options: list[dict[str, Any]] = [
        {
            **branch,
            "properties": {"action": {"const": "tool"}, **branch.get("properties", {})},
            "required": ["action", *branch.get("required", [])],
        }
        for branch in branches
    ]
    if not tool_required:
        answer = {
            "type": "object",
            "properties": {"action": {"const": "answer"}},
            "required": ["action"],
            "additionalProperties": False,
        }
        tool_options.insert(0, answer)
    return tool_options[0] if len(tool_options) == 1 else {"anyOf": tool_options}


def parse_decision(text: str, offered: Collection[str]) -> Decision:
    """What the model decided, from its raw output. Never raises: garbage is an
    ``InvalidDecision``, and a tool outside ``offered`` is still reported (and
    refused later), so the client and the audit log see what the model asked for."""
    if len(text) > MAX_DECISION_CHARS:
        return InvalidDecision(f"decision is {len(text)} characters long")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return InvalidDecision("decision is not JSON")
    if not isinstance(value, dict):
        return InvalidDecision("decision is not an object")
    action = value.get("action")
    if action == "answer":
        return AnswerDecision()
    if action != "tool":
        return InvalidDecision("decision has no valid action")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return InvalidDecision("tool decision has no tool name")
    return ToolDecision(
        name=name[:64], arguments=value.get("arguments", {}), offered=name in offered
    )


def decision_text(decision: ToolDecision) -> str:
    """The decision as the model sees it in its own history (compact JSON)."""
    try:
        arguments = json.dumps(decision.arguments, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        arguments = "null"
    return f'{{"action": "tool", "name": {json.dumps(decision.name)}, "arguments": {arguments}}}'


# --- Admission of new input --------------------------------------------------------


class Admission(StrEnum):
    START = "start"  # nothing running: start now
    QUEUE = "queue"  # a turn runs: wait behind it
    REJECT = "reject"  # the queue is full: answer with an error


def admit(running: bool, queued: int, max_queued: int) -> Admission:
    """A ``text`` while a turn runs is queued, up to ``max_queued`` pending turns."""
    if not running and queued == 0:
        return Admission.START
    if queued < max_queued:
        return Admission.QUEUE
    return Admission.REJECT


def finish_status(reason: FinishReason | None) -> TurnStatus:
    """``turn.done`` status for how the answer's generation ended."""
    if reason == "length":
        return "length"
    if reason == "cancelled":
        return "cancelled"
    if reason == "error":
        return "failed"
    return "completed"
