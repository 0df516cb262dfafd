"""Where sessions live, and the pure half of the shared store (docs/deployment.md).

``SessionStore`` is the node-local store the ``SessionManager`` works on;
``MemoryStore`` (a dict) is the only one a single node needs. A cluster adds a shared
store (Redis, ``server/redis_store.py``): this module holds its pure parts, the
session record (a flat map of strings) and the replay-log entries, so that what a
node reads back from the store is validated here like any other untrusted input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgpack

from sessions.config import SessionConfig, parse_config
from sessions.errors import ErrorCode, ProtocolError
from sessions.events import ServerEvent, StoredEvent, to_wire
from sessions.session import Session

RECORD_VERSION = "1"
# A stored entry larger than this is not an event this server wrote.
MAX_ENTRY_BYTES = 1 << 20


class SessionStore(Protocol):
    """The sessions a node holds, by id."""

    def get(self, session_id: str) -> Session | None: ...

    def add(self, session: Session) -> None: ...

    def remove(self, session_id: str) -> Session | None: ...

    def values(self) -> Iterable[Session]: ...

    def __len__(self) -> int: ...


class MemoryStore(dict[str, Session]):
    """The in-memory store: a dict from session id to session."""

    def add(self, session: Session) -> None:
        self[session.session_id] = session

    def remove(self, session_id: str) -> Session | None:
        return self.pop(session_id, None)


def _unreadable(what: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.RESUME_FAILED, f"the session's stored state is unreadable ({what})", fatal=True
    )


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What another node needs to resume, mirror or take over a session."""

    session_id: str
    tenant_id: str
    config: SessionConfig
    generation: int = 0
    audio_next: int = 0
    last_seq: int = 0  # the newest seq in the shared log
    acked_seq: int = 0
    turn: str = ""  # the turn that started and has no turn.done yet
    state: Literal["open", "closed"] = "open"
    attached: str = ""  # the connection attached last: "<node> <connection id>"
    resume_ttl_s: float = 120.0

    @classmethod
    def of(cls, session: Session, *, attached: str = "") -> SessionRecord:
        return cls(
            session.session_id,
            session.tenant.tenant_id,
            session.config,
            session.token_generation,
            session.audio_next,
            session.flushed_seq,
            session.acked_seq,
            attached=attached,
            resume_ttl_s=session.limits.resume_ttl_s,
        )

    def to_fields(self) -> dict[str, str]:
        return {
            "v": RECORD_VERSION,
            "tenant": self.tenant_id,
            "config": json.dumps(self.config.model_dump(mode="json"), separators=(",", ":")),
            "gen": str(self.generation),
            "audio_next": str(self.audio_next),
            "last_seq": str(self.last_seq),
            "acked": str(self.acked_seq),
            "turn": self.turn,
            "state": self.state,
            "attached": self.attached,
            "ttl": repr(self.resume_ttl_s),
        }


def _text(fields: Mapping[Any, Any], key: str) -> str:
    value = fields.get(key, fields.get(key.encode()))
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _unreadable(key) from None
    if not isinstance(value, str):
        raise _unreadable(f"{key} missing")
    return value


def _count(fields: Mapping[Any, Any], key: str) -> int:
    text = _text(fields, key)
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise _unreadable(key)
    return int(text)


def parse_record(session_id: str, fields: Mapping[Any, Any]) -> SessionRecord:
    """The record in a stored map (bytes or str keys and values); ``resume_failed``
    for anything this server did not write."""
    if _text(fields, "v") != RECORD_VERSION:
        raise _unreadable("version")
    state = _text(fields, "state")
    if state not in ("open", "closed"):
        raise _unreadable("state")
    try:
        config = parse_config(json.loads(_text(fields, "config")))
    except (ValueError, ProtocolError):
        raise _unreadable("config") from None
    try:
        ttl = float(_text(fields, "ttl"))
    except ValueError:
        raise _unreadable("ttl") from None
    if not math.isfinite(ttl) or ttl <= 0:
        raise _unreadable("ttl")
    tenant = _text(fields, "tenant")
    if not tenant:
        raise _unreadable("tenant")
    return SessionRecord(
        session_id,
        tenant,
        config,
        generation=_count(fields, "gen"),
        audio_next=_count(fields, "audio_next"),
        last_seq=_count(fields, "last_seq"),
        acked_seq=_count(fields, "acked"),
        turn=_text(fields, "turn"),
        state="open" if state == "open" else "closed",
        attached=_text(fields, "attached"),
        resume_ttl_s=ttl,
    )


# -- the replay log -------------------------------------------------------------


def encode_entry(event: ServerEvent) -> bytes:
    """One durable event as stored in the log (its seq is the entry's id)."""
    packed: bytes = msgpack.packb(to_wire(event), use_bin_type=True)
    return packed


def entry_id(seq: int) -> str:
    return f"{seq}-0"


def decode_entry(entry: object, data: object) -> tuple[int, StoredEvent]:
    """The seq and event of one stored log entry; ``resume_failed`` on garbage."""
    raw_id = entry.decode("ascii", "replace") if isinstance(entry, bytes) else entry
    if not isinstance(raw_id, str):
        raise _unreadable("log entry id")
    seq_text, dash, zero = raw_id.partition("-")
    if dash != "-" or zero != "0" or not seq_text.isdigit() or len(seq_text) > 16:
        raise _unreadable("log entry id")
    if not isinstance(data, bytes) or len(data) > MAX_ENTRY_BYTES:
        raise _unreadable("log entry")
    try:
        wire = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:  # msgpack raises a zoo of types on garbage
        raise _unreadable("log entry") from None
    if not isinstance(wire, dict):
        raise _unreadable("log entry")
    kind = wire.pop("type", None)
    if not isinstance(kind, str) or not kind or "seq" in wire:
        raise _unreadable("log entry")
    return int(seq_text), StoredEvent(kind, wire)


def open_turn(turn: str, events: Iterable[ServerEvent]) -> str:
    """The turn still running after ``events``: a ``turn.started`` opens one, its
    ``turn.done`` closes it (what a node taking over must end as ``node_lost``)."""
    for event in events:
        kind = event.wire_type()
        if kind not in ("turn.started", "turn.done"):
            continue
        turn_id = event.payload().get("turn_id")
        if kind == "turn.started" and isinstance(turn_id, str):
            turn = turn_id
        elif turn_id == turn:
            turn = ""
    return turn
