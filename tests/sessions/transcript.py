"""A scripted peer for transcript tests of the sans-I/O session core.

``Server`` holds what one node shares (limits, token signer, authenticator, session
manager) and ``now``, a plain float the test moves forward by hand. ``Peer`` is one
client socket: it encodes messages with the real codec, feeds the frames to a
``Connection``, plays the shell's part for the events that come out (hello → the
manager, input → the pipeline's list, bye → the manager ends the session) and reads
what the server sends as a client would, with a strict decoder.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from sessions.auth import Authenticator
from sessions.codec import Codec, Frame, Kind
from sessions.connection import (
    ByeReceived,
    Connection,
    ConnectionEvent,
    HelloReceived,
    InputReceived,
)
from sessions.inputs import PipelineInput
from sessions.limits import Limits
from sessions.manager import HelloAccepted, SessionManager
from sessions.session import Session
from sessions.tenants import TenantPolicy
from sessions.tokens import TokenSigner

SECRET = b"transcript-secret-0123456789abcdef"
ACME_KEY = "key-acme"
GLOBEX_KEY = "key-globex"
ACME = TenantPolicy("acme", max_sessions=3, allowed_tools=("search", "clock"))
GLOBEX = TenantPolicy("globex", max_sessions=10, allowed_modes=("agent",))

# Every close code of docs/protocol.md, "Errors and close codes".
SPEC_CLOSE_CODES = frozenset({1000, 1001, 1009, 1011, 4001, 4003, 4004, 4008, 4009, 4029})
# The error codes of the spec, plus the two that explain a 4008 and a 4009.
SPEC_ERROR_CODES = frozenset(
    {
        "bad_message",
        "too_large",
        "unauthorized",
        "forbidden",
        "resume_failed",
        "replay_gap",
        "audio_gap",
        "rate_limited",
        "quota_exceeded",
        "overloaded",
        "unsupported",
        "tool_rejected",
        "internal",
        "slow_consumer",
        "superseded",
    }
)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def client_decode(frame: Frame, kind: Kind) -> dict[str, Any]:
    """A server frame as a strict client reads it: msgpack frames are binary, JSON
    frames are text that is valid UTF-8 and standard JSON (no NaN, no Infinity)."""
    if kind == "msgpack":
        assert isinstance(frame, bytes), f"text frame {frame!r} on msgpack"
        value = msgpack.unpackb(frame, raw=False)
    else:
        assert isinstance(frame, str), f"binary frame {frame!r} on JSON"
        frame.encode("utf-8")  # a text frame must be UTF-8 on the wire
        value = json.loads(frame, parse_constant=_no_constant)
    assert isinstance(value, dict) and isinstance(value.get("type"), str)
    return value


class Server:
    def __init__(
        self,
        limits: Limits | None = None,
        *,
        tenants: dict[str, TenantPolicy] | None = None,
        open_access: TenantPolicy | None = None,
        max_sessions: int = 1000,
        now: float = 1000.0,
        wall_offset: float = 0.0,
    ) -> None:
        self.limits = limits or Limits()
        self.signer = TokenSigner(SECRET)
        self.auth = Authenticator(
            {ACME_KEY: ACME, GLOBEX_KEY: GLOBEX} if tenants is None else tenants,
            self.signer,
            open_access=open_access,
        )
        self.manager = SessionManager(
            self.limits,
            self.signer,
            self.auth,
            node="node-t",
            version="9.9",
            max_sessions=max_sessions,
        )
        self.now = now
        # Wall clock minus monotonic clock, as the shell measures it.
        self.wall_offset = wall_offset

    def connect(self, kind: Kind = "msgpack") -> Peer:
        return Peer(self, kind)


class Peer:
    def __init__(self, server: Server, kind: Kind) -> None:
        self.server = server
        self.kind: Kind = kind
        self.codec = Codec(kind, server.limits.max_frame_bytes)
        self.conn = Connection(
            self.codec, server.limits, server.now, wall_offset=server.wall_offset
        )
        # What reached the pipeline, in order.
        self.inputs: list[PipelineInput] = []
        self.audio_seconds: list[float] = []
        self.accepted: HelloAccepted | None = None
        # Frames that came after the welcome in the same read.
        self.backlog: list[dict[str, Any]] = []

    # -- client → server --------------------------------------------------------

    def send(self, message: dict[str, Any], at: float | None = None) -> list[ConnectionEvent]:
        """One message, encoded with the sub-protocol's real codec."""
        return self.send_frame(self.codec.encode(message), at)

    def send_frame(self, frame: Frame, at: float | None = None) -> list[ConnectionEvent]:
        """One raw frame; the shell's part for what comes out of it."""
        now = self.server.now if at is None else at
        self.conn.receive_frame(frame, now)
        events = self.conn.events_received()
        for event in events:
            match event:
                case HelloReceived(hello):
                    accepted = self.server.manager.handle_hello(self.conn, hello, now)
                    if accepted is not None:
                        self.accepted = accepted
                case InputReceived(item, seconds):
                    self.inputs.append(item)
                    self.audio_seconds.append(seconds)
                case ByeReceived(session):
                    self.server.manager.end(session)
        return events

    def hello(self, token: str = ACME_KEY, **fields: Any) -> dict[str, Any]:
        """Send ``hello`` and return the ``welcome`` (the first frame back)."""
        self.send({"type": "hello", "v": 1, "token": token, **fields})
        frames = self.receive()
        assert frames and frames[0]["type"] == "welcome", frames
        self.backlog = frames[1:]
        return frames[0]

    def resume(self, welcome: dict[str, Any], last_seq: int, **fields: Any) -> None:
        """Send a resuming ``hello`` with the token of ``welcome``."""
        self.send(
            {
                "type": "hello",
                "v": 1,
                "token": fields.pop("token", ACME_KEY),
                "resume": {"token": welcome["resume_token"], "last_seq": last_seq},
                **fields,
            }
        )

    # -- server → client --------------------------------------------------------

    def receive(self) -> list[dict[str, Any]]:
        """Every frame due now, decoded as a strict client would."""
        out = []
        while (frame := self.conn.next_frame()) is not None:
            out.append(client_decode(frame, self.kind))
        return out

    # -- time and the socket ----------------------------------------------------

    def tick(self, at: float | None = None) -> None:
        """The shell's timer fires."""
        self.conn.timer(self.server.now if at is None else at)

    def drop(self, at: float | None = None) -> None:
        """The socket went away (after a close, or without one)."""
        self.conn.connection_lost(self.server.now if at is None else at)

    @property
    def session(self) -> Session:
        assert self.conn.session is not None
        return self.conn.session

    @property
    def closed_with(self) -> int | None:
        """The close code, once every frame before the close has been read."""
        return self.conn.close_code if self.conn.finished() else None


def error(code: str, message: str, *, fatal: bool) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "fatal": fatal}
