"""Client → server messages (docs/protocol.md, "Client → server"), parsed from maps.

``parse_message`` turns a decoded map into one typed message or raises a
``bad_message`` ProtocolError naming the field. Unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sessions.codec import Codec
from sessions.errors import ErrorCode, ProtocolError

MAX_ID_CHARS = 128
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    token: str
    last_seq: int


@dataclass(frozen=True, slots=True)
class Hello:
    v: int
    token: str
    resume: ResumeRequest | None
    session: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Audio:
    data: bytes
    chunk: int | None


@dataclass(frozen=True, slots=True)
class AudioEndMessage:
    pass


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    id: str | None


@dataclass(frozen=True, slots=True)
class Cancel:
    turn_id: str | None


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int


@dataclass(frozen=True, slots=True)
class Ping:
    id: Any


@dataclass(frozen=True, slots=True)
class Update:
    session: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Bye:
    pass


ClientMessage = Hello | Audio | AudioEndMessage | Text | Cancel | Ack | Ping | Update | Bye


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_MESSAGE, message)


def _str(raw: dict[str, Any], key: str, *, limit: int, optional: bool = False) -> str | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _bad(f"{raw.get('type')}.{key} must be a string")
    if len(value) > limit:
        raise _bad(f"{raw.get('type')}.{key} is longer than {limit} characters")
    return value


def _int(raw: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    # bool is an int in Python: refuse it explicitly.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise _bad(f"{raw.get('type')}.{key} must be a non-negative integer")
    return value


def _map(raw: dict[str, Any], key: str, *, optional: bool = False) -> dict[str, Any] | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise _bad(f"{raw.get('type')}.{key} must be a map")
    return value


def _hello(raw: dict[str, Any], codec: Codec) -> Hello:
    v = raw.get("v")
    if v != 1 or isinstance(v, bool):
        raise ProtocolError(ErrorCode.UNSUPPORTED, f"protocol version {v!r}; this server speaks 1")
    token = _str(raw, "token", limit=MAX_TOKEN_CHARS)
    assert token is not None
    resume = None
    resume_raw = _map(raw, "resume", optional=True)
    if resume_raw is not None:
        resume_raw = {"type": "hello.resume", **resume_raw}
        resume_token = _str(resume_raw, "token", limit=MAX_TOKEN_CHARS)
        last_seq = _int(resume_raw, "last_seq")
        assert resume_token is not None and last_seq is not None
        resume = ResumeRequest(resume_token, last_seq)
    return Hello(1, token, resume, _map(raw, "session", optional=True))


def _audio(raw: dict[str, Any], codec: Codec) -> Audio:
    return Audio(
        codec.decode_bytes(raw.get("data"), "audio.data"), _int(raw, "chunk", optional=True)
    )


def _text(raw: dict[str, Any], codec: Codec) -> Text:
    # The text length limit is a session limit (too_large), checked by the connection.
    value = raw.get("text")
    if not isinstance(value, str):
        raise _bad("text.text must be a string")
    return Text(value, _str(raw, "id", limit=MAX_ID_CHARS, optional=True))


def _cancel(raw: dict[str, Any], codec: Codec) -> Cancel:
    return Cancel(_str(raw, "turn_id", limit=MAX_ID_CHARS, optional=True))


def _ack(raw: dict[str, Any], codec: Codec) -> Ack:
    seq = _int(raw, "seq")
    assert seq is not None
    return Ack(seq)


def _ping(raw: dict[str, Any], codec: Codec) -> Ping:
    ping_id = raw.get("id")
    if not isinstance(ping_id, str | int | float | type(None)) or (
        isinstance(ping_id, str) and len(ping_id) > MAX_ID_CHARS
    ):
        raise _bad("ping.id must be a short string or a number")
    return Ping(ping_id)


def _update(raw: dict[str, Any], codec: Codec) -> Update:
    session = _map(raw, "session")
    assert session is not None
    return Update(session)


def _audio_end(raw: dict[str, Any], codec: Codec) -> AudioEndMessage:
    return AudioEndMessage()


def _bye(raw: dict[str, Any], codec: Codec) -> Bye:
    return Bye()


_PARSERS: dict[str, Callable[[dict[str, Any], Codec], ClientMessage]] = {
    "hello": _hello,
    "audio": _audio,
    "audio.end": _audio_end,
    "text": _text,
    "cancel": _cancel,
    "ack": _ack,
    "ping": _ping,
    "update": _update,
    "bye": _bye,
}


def parse_message(raw: dict[str, Any], codec: Codec) -> ClientMessage:
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise _bad("a message needs a string type")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise _bad(f"unknown message type {kind[:40]!r}")
    return parser(raw, codec)
