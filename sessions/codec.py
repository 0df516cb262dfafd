"""Frame codecs of the two sub-protocols (docs/protocol.md, "Transport").

``parley.v1.msgpack``: one binary frame, one msgpack map; bytes are ``bin``.
``parley.v1.json``: one text frame, one JSON object; bytes are base64 strings; a
binary frame is raw audio, the same as an ``audio`` message without ``chunk``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

import msgpack

from sessions.errors import ErrorCode, ProtocolError

MSGPACK = "parley.v1.msgpack"
JSON = "parley.v1.json"
SUBPROTOCOLS = (MSGPACK, JSON)

Frame = bytes | str
Kind = Literal["msgpack", "json"]


def select_subprotocol(offered: list[str]) -> str | None:
    """The first offered sub-protocol the server supports; ``None`` means JSON
    without echoing a sub-protocol (the client offered none we know)."""
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    return None


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_MESSAGE, message)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _reject_ext(code: int, data: bytes) -> object:
    raise ValueError(f"msgpack extension type {code} is not allowed")


@dataclass(frozen=True, slots=True)
class Codec:
    kind: Kind
    max_frame_bytes: int

    @classmethod
    def for_subprotocol(cls, name: str | None, max_frame_bytes: int) -> Codec:
        return cls("msgpack" if name == MSGPACK else "json", max_frame_bytes)

    def decode(self, frame: Frame) -> dict[str, Any]:
        """One frame as a message map, or a ``bad_message`` ProtocolError."""
        if self.kind == "msgpack":
            if isinstance(frame, str):
                raise _bad("text frame on the msgpack sub-protocol")
            try:
                value = msgpack.unpackb(
                    frame,
                    raw=False,
                    strict_map_key=True,
                    ext_hook=_reject_ext,
                )
            except Exception as exc:  # msgpack raises a zoo of types on garbage
                raise _bad(f"undecodable msgpack frame ({type(exc).__name__})") from None
        elif isinstance(frame, bytes):
            return {"type": "audio", "data": frame}
        else:
            try:
                value = json.loads(frame, parse_constant=_reject_constant)
                if "\\u" in frame:
                    # An escaped lone surrogate is no UTF-8: echoed back, no frame could carry it.
                    json.dumps(value, ensure_ascii=False).encode("utf-8")
            except (ValueError, RecursionError):
                raise _bad("undecodable JSON frame") from None
        if not isinstance(value, dict):
            raise _bad("a message must be a map")
        return value

    def encode(self, message: dict[str, Any]) -> Frame:
        if self.kind == "msgpack":
            packed: bytes = msgpack.packb(message, use_bin_type=True)
            return packed
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=_b64)

    def decode_bytes(self, value: object, field: str) -> bytes:
        """A byte field: ``bin`` in msgpack, base64 text in JSON."""
        if isinstance(value, bytes):
            return value
        if self.kind == "json" and isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise _bad(f"{field} is not valid base64") from None
        raise _bad(f"{field} must be bytes")


def _b64(value: object) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__}")
