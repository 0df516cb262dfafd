"""What a node serving a client forwards to the node that owns the session.

A client may be attached to any node; the session's pipeline runs on its owner. The
serving node forwards the client's input (audio, text, cancel, update, ack, bye) and
its attach / detach as small msgpack maps through the shared store. The owner decodes
them here: a map it cannot read is refused with ``ValueError`` and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from sessions.config import SessionConfig, parse_config
from sessions.errors import ProtocolError
from sessions.inputs import AudioChunk, AudioEnd, CancelRequest, ConfigUpdated, UserText

MAX_RELAY_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class RemoteAttach:
    """A connection on another node attached; it has seen up to ``last_seq``."""

    attach_id: str
    last_seq: int


@dataclass(frozen=True, slots=True)
class RemoteDetach:
    attach_id: str


@dataclass(frozen=True, slots=True)
class RemoteAck:
    seq: int


@dataclass(frozen=True, slots=True)
class RemoteBye:
    pass


Relayed = (
    AudioChunk
    | AudioEnd
    | UserText
    | CancelRequest
    | ConfigUpdated
    | RemoteAttach
    | RemoteDetach
    | RemoteAck
    | RemoteBye
)


def encode_relay(item: Relayed) -> bytes:
    body: dict[str, Any]
    match item:
        case AudioChunk(data=data, chunk=chunk):
            body = {"k": "audio", "data": data, "chunk": chunk}
        case AudioEnd():
            body = {"k": "end"}
        case UserText(text=text, id=text_id):
            body = {"k": "text", "text": text, "id": text_id}
        case CancelRequest(turn_id=turn_id):
            body = {"k": "cancel", "turn_id": turn_id}
        case ConfigUpdated(config=config):
            body = {"k": "config", "config": config.model_dump(mode="json")}
        case RemoteAttach(attach_id=attach_id, last_seq=last_seq):
            body = {"k": "attach", "id": attach_id, "last_seq": last_seq}
        case RemoteDetach(attach_id=attach_id):
            body = {"k": "detach", "id": attach_id}
        case RemoteAck(seq=seq):
            body = {"k": "ack", "seq": seq}
        case _:  # RemoteBye, the one kind left
            body = {"k": "bye"}
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


def _field(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"relayed {body.get('k')!r}: bad {key}")
    return value


def _count(body: dict[str, Any], key: str) -> int:
    value: int = _field(body, key, int)
    if value < 0:
        raise ValueError(f"relayed {body.get('k')!r}: bad {key}")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    if body.get(key) is None:
        return None
    value: str = _field(body, key, str)
    return value


def _config(raw: object) -> SessionConfig:
    try:
        return parse_config(raw)
    except ProtocolError as exc:
        raise ValueError(f"relayed config: {exc.message}") from None


def decode_relay(data: object, now: float) -> Relayed:
    """One forwarded item; ``now`` stamps the inputs' ``received_at``."""
    if not isinstance(data, bytes) or len(data) > MAX_RELAY_BYTES:
        raise ValueError("relayed item is not bytes of a sane size")
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:  # msgpack raises a zoo of types on garbage
        raise ValueError("relayed item is not msgpack") from None
    if not isinstance(body, dict):
        raise ValueError("relayed item is not a map")
    match body.get("k"):
        case "audio":
            return AudioChunk(_field(body, "data", bytes), _count(body, "chunk"), now)
        case "end":
            return AudioEnd(now)
        case "text":
            return UserText(_field(body, "text", str), _optional_str(body, "id"), now)
        case "cancel":
            return CancelRequest(_optional_str(body, "turn_id"), now)
        case "config":
            return ConfigUpdated(_config(body.get("config")))
        case "attach":
            return RemoteAttach(_field(body, "id", str), _count(body, "last_seq"))
        case "detach":
            return RemoteDetach(_field(body, "id", str))
        case "ack":
            return RemoteAck(_count(body, "seq"))
        case "bye":
            return RemoteBye()
        case other:
            raise ValueError(f"unknown relayed kind {str(other)[:40]!r}")
