"""Server events (docs/protocol.md, "Server → client").

Events are frozen, slotted dataclasses, valid by construction. ``durable`` events are
numbered with ``seq`` by the session and kept in its replay buffer; the others are
best-effort and may be replaced (partials) or dropped when the connection goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

JsonMap = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """Base of every server → client message."""

    type: ClassVar[str] = ""
    durable: ClassVar[bool] = False

    def is_durable(self) -> bool:
        return self.durable

    def wire_type(self) -> str:
        return self.type

    def payload(self) -> JsonMap:
        """Fields of the wire message, without ``type`` and ``seq``."""
        raise NotImplementedError  # pragma: no cover - every subclass overrides it


@dataclass(frozen=True, slots=True)
class SpeechStarted(ServerEvent):
    type: ClassVar[str] = "speech.started"
    durable: ClassVar[bool] = True
    at: float

    def payload(self) -> JsonMap:
        return {"at": round(self.at, 3)}


@dataclass(frozen=True, slots=True)
class SpeechStopped(ServerEvent):
    type: ClassVar[str] = "speech.stopped"
    durable: ClassVar[bool] = True
    at: float

    def payload(self) -> JsonMap:
        return {"at": round(self.at, 3)}


@dataclass(frozen=True, slots=True)
class Word:
    w: str
    start: float
    end: float
    p: float

    def to_wire(self) -> JsonMap:
        return {
            "w": self.w,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "p": round(self.p, 3),
        }


@dataclass(frozen=True, slots=True)
class CaptionPartial(ServerEvent):
    """A revisable caption: a newer partial of the same segment replaces it."""

    type: ClassVar[str] = "caption.partial"
    segment: int
    text: str
    start: float
    end: float
    speaker: str | None = None

    def payload(self) -> JsonMap:
        out: JsonMap = {
            "segment": self.segment,
            "text": self.text,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
        }
        if self.speaker is not None:
            out["speaker"] = self.speaker
        return out


@dataclass(frozen=True, slots=True)
class CaptionFinal(ServerEvent):
    """A stable caption: never changes once sent."""

    type: ClassVar[str] = "caption.final"
    durable: ClassVar[bool] = True
    segment: int
    text: str
    start: float
    end: float
    speaker: str | None = None
    words: tuple[Word, ...] | None = None

    def payload(self) -> JsonMap:
        out: JsonMap = {
            "segment": self.segment,
            "text": self.text,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "speaker": self.speaker,
        }
        if self.words is not None:
            out["words"] = [w.to_wire() for w in self.words]
        return out


@dataclass(frozen=True, slots=True)
class SpeakersMerged(ServerEvent):
    """Later evidence shows that ``merged`` and ``into`` are one speaker.

    Earlier captions are not rewritten: clients relabel them if they want to.
    """

    type: ClassVar[str] = "speaker.merged"
    durable: ClassVar[bool] = True
    merged: str
    into: str

    def payload(self) -> JsonMap:
        return {"merged": self.merged, "into": self.into}


TurnInput = Literal["text", "speech"]


@dataclass(frozen=True, slots=True)
class TurnStarted(ServerEvent):
    type: ClassVar[str] = "turn.started"
    durable: ClassVar[bool] = True
    turn_id: str
    input: TurnInput
    input_id: str | None = None

    def payload(self) -> JsonMap:
        out: JsonMap = {"turn_id": self.turn_id, "input": self.input}
        if self.input_id is not None:
            out["input_id"] = self.input_id
        return out


@dataclass(frozen=True, slots=True)
class TokenDelta(ServerEvent):
    """A piece of generated text. Unsent deltas of one turn may be merged."""

    type: ClassVar[str] = "token"
    durable: ClassVar[bool] = True
    turn_id: str
    text: str

    def payload(self) -> JsonMap:
        return {"turn_id": self.turn_id, "text": self.text}


@dataclass(frozen=True, slots=True)
class ToolCall(ServerEvent):
    type: ClassVar[str] = "tool.call"
    durable: ClassVar[bool] = True
    turn_id: str
    call_id: str
    name: str
    arguments: JsonMap

    def payload(self) -> JsonMap:
        return {
            "turn_id": self.turn_id,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
        }


@dataclass(frozen=True, slots=True)
class ToolError:
    code: str
    message: str

    def to_wire(self) -> JsonMap:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class ToolResult(ServerEvent):
    type: ClassVar[str] = "tool.result"
    durable: ClassVar[bool] = True
    turn_id: str
    call_id: str
    ok: bool
    result: Any = None
    error: ToolError | None = None

    def payload(self) -> JsonMap:
        out: JsonMap = {"turn_id": self.turn_id, "call_id": self.call_id, "ok": self.ok}
        if self.ok:
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error.to_wire()
        return out


TurnStatus = Literal["completed", "cancelled", "failed", "length"]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def to_wire(self) -> JsonMap:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True, slots=True)
class TurnDone(ServerEvent):
    type: ClassVar[str] = "turn.done"
    durable: ClassVar[bool] = True
    turn_id: str
    status: TurnStatus
    reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, float] = field(default_factory=dict)

    def payload(self) -> JsonMap:
        out: JsonMap = {
            "turn_id": self.turn_id,
            "status": self.status,
            "usage": self.usage.to_wire(),
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class ErrorEvent(ServerEvent):
    """An ``error`` message. It is durable when it concerns session state
    (an ``audio_gap``, an ``overloaded`` pipeline), so a resuming client sees it."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    fatal: bool = False
    session_state: bool = False

    def is_durable(self) -> bool:
        return self.session_state

    def payload(self) -> JsonMap:
        return {"code": self.code, "message": self.message, "fatal": self.fatal}


@dataclass(frozen=True, slots=True)
class Pong(ServerEvent):
    type: ClassVar[str] = "pong"
    id: Any
    server_time: float

    def payload(self) -> JsonMap:
        return {"id": self.id, "server_time": round(self.server_time, 3)}


@dataclass(frozen=True, slots=True)
class GoAway(ServerEvent):
    type: ClassVar[str] = "goaway"
    reason: str
    reconnect_after_ms: int

    def payload(self) -> JsonMap:
        return {"reason": self.reason, "reconnect_after_ms": self.reconnect_after_ms}


@dataclass(frozen=True, slots=True)
class Welcome(ServerEvent):
    type: ClassVar[str] = "welcome"
    session_id: str
    resume_token: str
    resumed: bool
    last_seq: int
    audio_next: int
    heartbeat_s: float
    resume_ttl_s: float
    limits: JsonMap
    server: JsonMap
    mode: str = "agent"

    def payload(self) -> JsonMap:
        return {
            "session_id": self.session_id,
            "resume_token": self.resume_token,
            "resumed": self.resumed,
            "last_seq": self.last_seq,
            "audio_next": self.audio_next,
            "heartbeat_s": self.heartbeat_s,
            "resume_ttl_s": self.resume_ttl_s,
            "limits": self.limits,
            "server": self.server,
            "mode": self.mode,
        }


@dataclass(frozen=True, slots=True)
class StoredEvent(ServerEvent):
    """A durable event read back from the shared session store (Redis), as its wire
    fields: another node produced it, this one only passes it on."""

    durable: ClassVar[bool] = True
    kind: str
    fields: JsonMap

    def wire_type(self) -> str:
        return self.kind

    def payload(self) -> JsonMap:
        return dict(self.fields)


def to_wire(event: ServerEvent, seq: int | None = None) -> JsonMap:
    """The wire map of ``event``: ``type``, then ``seq`` for durable events."""
    out: JsonMap = {"type": event.wire_type()}
    if seq is not None:
        out["seq"] = seq
    out.update(event.payload())
    return out
