"""One WebSocket connection, sans I/O: frames and ``now`` in; events, frames and a
close code out (docs/protocol.md, "Session lifecycle", "Heartbeats", "Backpressure").

The shell calls ``receive_frame``, acts on ``events_received()``, sends what
``next_frame`` returns, closes with ``close_code`` once ``finished()``, and calls
``timer(now)`` at ``next_deadline()``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sessions.codec import Codec, Frame
from sessions.errors import CloseCode, ErrorCode, ProtocolError
from sessions.events import (
    CaptionFinal,
    CaptionPartial,
    ErrorEvent,
    GoAway,
    Pong,
    ServerEvent,
    to_wire,
)
from sessions.inputs import (
    AudioChunk,
    AudioEnd,
    CancelRequest,
    ConfigUpdated,
    PipelineInput,
    UserText,
)
from sessions.limits import Limits
from sessions.messages import (
    Ack,
    Audio,
    AudioEndMessage,
    Cancel,
    ClientMessage,
    Hello,
    Ping,
    Text,
    Update,
    parse_message,
)
from sessions.ratelimit import TokenBucket
from sessions.session import Session
from sessions.states import ConnectionState, connection_next


@dataclass(frozen=True, slots=True)
class HelloReceived:
    hello: Hello


@dataclass(frozen=True, slots=True)
class InputReceived:
    input: PipelineInput
    audio_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ByeReceived:
    session: Session


ConnectionEvent = HelloReceived | InputReceived | ByeReceived


class Connection:
    def __init__(
        self, codec: Codec, limits: Limits, now: float, *, wall_offset: float = 0.0
    ) -> None:
        self.codec = codec
        self.limits = limits
        self.state = ConnectionState.AWAITING_HELLO
        self.session: Session | None = None
        self.opened_at = now
        self.last_received = now
        self.wall_offset = wall_offset
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent_seq = 0
        self.replay_until = 0
        self.bad_frames = 0
        self.frames_in = 0
        self.frames_out = 0
        self._events: list[ConnectionEvent] = []
        self._control: deque[ServerEvent] = deque()
        self._transient: deque[tuple[int, ServerEvent]] = deque()
        self._messages = TokenBucket(limits.messages_per_s, limits.message_burst)
        self._audio: TokenBucket | None = None

    # -- state ------------------------------------------------------------------

    def _move(self, action: str) -> None:
        self.state = connection_next(self.state, action)

    @property
    def is_open(self) -> bool:
        return self.state is ConnectionState.OPEN

    def events_received(self) -> list[ConnectionEvent]:
        events, self._events = self._events, []
        return events

    def fail(self, error: ProtocolError) -> None:
        """Report ``error``; a fatal one closes the connection with its close code."""
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return
        if not error.fatal and len(self._control) >= self.limits.max_pending_control:
            # Errors obey the control bound too (4008), like pongs.
            error = ProtocolError(ErrorCode.SLOW_CONSUMER, "control messages pile up", fatal=True)
        self._control.append(ErrorEvent(error.code, error.message, fatal=error.fatal))
        if error.fatal:
            self._begin_close(error.close_code, error.code)

    def _begin_close(self, code: int, reason: str) -> None:
        self._move("close" if self.is_open else "fail")
        self.close_code = code
        self.close_reason = reason
        # What is queued but not yet sent stays in the replay buffer for a resume.
        self._transient.clear()

    def go_away(self, reason: str, reconnect_after_ms: int) -> None:
        """The server drains: tell the client, then close with 1001."""
        if self.state is not ConnectionState.OPEN:
            return
        self._control.append(GoAway(reason, reconnect_after_ms))
        self._begin_close(CloseCode.GOING_AWAY, reason)

    def finished(self) -> bool:
        """Closing, and every frame that must go before the close has gone."""
        return self.state is ConnectionState.CLOSING and not self._control

    def connection_lost(self, now: float) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        self._move("lost")
        if self.session is not None:
            self.session.detach(self, now)

    # -- frames in ----------------------------------------------------------------

    def receive_frame(self, frame: Frame, now: float) -> None:
        if self.state is not ConnectionState.AWAITING_HELLO and not self.is_open:
            return
        self.last_received = now
        self.frames_in += 1
        size = (
            len(frame) if isinstance(frame, bytes) else len(frame.encode("utf-8", "surrogatepass"))
        )
        try:
            if size > self.limits.max_frame_bytes:
                raise ProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"frame of {size} bytes exceeds {self.limits.max_frame_bytes}",
                    fatal=True,
                )
            if not self._messages.take(1, now):
                raise ProtocolError(ErrorCode.RATE_LIMITED, "too many messages", fatal=True)
            raw = self.codec.decode(frame)
            if self.is_open and raw.get("type") == "hello":
                raise ProtocolError(ErrorCode.BAD_MESSAGE, "a second hello", fatal=True)
            message = parse_message(raw, self.codec)
            self._dispatch(message, now)
            self.bad_frames = 0
        except ProtocolError as error:
            self._refuse(error)

    def _refuse(self, error: ProtocolError) -> None:
        if self.state is ConnectionState.AWAITING_HELLO and not error.fatal:
            # Before welcome, any invalid first message is fatal (4003).
            error = ProtocolError(error.code, error.message, fatal=True)
        if error.code is ErrorCode.BAD_MESSAGE and not error.fatal:
            self.bad_frames += 1
            if self.bad_frames >= self.limits.max_bad_frames:
                error = ProtocolError(
                    ErrorCode.BAD_MESSAGE, f"{self.bad_frames} bad frames in a row", fatal=True
                )
        self.fail(error)

    def _dispatch(self, message: ClientMessage, now: float) -> None:
        if self.state is ConnectionState.AWAITING_HELLO:
            if not isinstance(message, Hello):
                raise ProtocolError(
                    ErrorCode.BAD_MESSAGE, "the first message must be hello", fatal=True
                )
            self._events.append(HelloReceived(message))
            return
        session = self.session
        assert session is not None
        match message:
            case Audio():
                self._audio_in(session, message, now)
            case AudioEndMessage():
                self._events.append(InputReceived(AudioEnd(now)))
            case Text():
                self._text_in(session, message, now)
            case Cancel():
                self._events.append(InputReceived(CancelRequest(message.turn_id, now)))
            case Ack():
                if message.seq > self.sent_seq:
                    raise ProtocolError(
                        ErrorCode.BAD_MESSAGE, f"ack {message.seq} of an event not yet sent"
                    )
                session.ack(message.seq)
            case Ping():
                self._push_control(Pong(message.id, now + self.wall_offset))
            case Update():
                self._update(session, message.session)
            case _:  # Bye, the one kind left
                session.close()
                self._events.append(ByeReceived(session))
                self._begin_close(CloseCode.NORMAL, "bye")

    def _audio_in(self, session: Session, message: Audio, now: float) -> None:
        if session.config.mode == "agent":
            raise ProtocolError(ErrorCode.UNSUPPORTED, "audio is not accepted in agent mode")
        fmt = session.config.audio
        if self._audio is None:
            rate = fmt.bytes_per_second() * self.limits.audio_rate_factor
            self._audio = TokenBucket(rate, fmt.bytes_per_second() * self.limits.audio_burst_s)
        if not self._audio.take(len(message.data), now):
            raise ProtocolError(ErrorCode.RATE_LIMITED, "audio far above real time", fatal=True)
        verdict = session.audio_verdict(message.chunk)
        if verdict.accept:
            seconds = len(message.data) / fmt.bytes_per_second()
            self._events.append(
                InputReceived(AudioChunk(message.data, verdict.chunk, now), seconds)
            )

    def _text_in(self, session: Session, message: Text, now: float) -> None:
        if session.config.mode == "caption":
            raise ProtocolError(ErrorCode.UNSUPPORTED, "text is not accepted in caption mode")
        if len(message.text) > self.limits.max_text_chars:
            raise ProtocolError(
                ErrorCode.TOO_LARGE, f"text longer than {self.limits.max_text_chars} characters"
            )
        self._events.append(InputReceived(UserText(message.text, message.id, now)))

    def _update(self, session: Session, update: dict[str, object]) -> None:
        config = session.config.merged(update)
        if config.mode != session.config.mode:
            raise ProtocolError(ErrorCode.UNSUPPORTED, "the mode of a session cannot change")
        session.tenant.check(config)
        session.config = config
        self._events.append(InputReceived(ConfigUpdated(config)))

    # -- handshake --------------------------------------------------------------

    def accept(self, session: Session, welcome: ServerEvent, last_seq: int) -> None:
        """The shell accepted the hello: ``welcome`` goes first, then the replay."""
        self._move("accept")
        self.session = session
        self.sent_seq = last_seq
        # A replay backlog is not the client's fault: only what comes after it counts
        # toward the slow-consumer limit.
        self.replay_until = session.replay.last_seq
        self._control.append(welcome)

    # -- frames out -------------------------------------------------------------

    def durable_added(self, last_seq: int) -> None:
        if self._transient and self.session is not None:
            entry = self.session.replay.get(last_seq)
            if entry is not None and isinstance(entry.event, CaptionFinal):
                self._drop_partials(entry.event.segment)
        # While the replay backlog is still going out, only the ring-full guard applies.
        behind = last_seq - self.sent_seq if self.sent_seq >= self.replay_until else 0
        # However long the replay backlog, the ring must never overwrite what is unsent.
        full = self.session is not None and last_seq - self.sent_seq >= self.session.replay.capacity
        if self.is_open and (behind > self.limits.max_pending_events or full):
            self.fail(
                ProtocolError(
                    ErrorCode.SLOW_CONSUMER,
                    f"more than {self.limits.max_pending_events} events queued; resume to catch up",
                    fatal=True,
                )
            )

    def transient_added(self, event: ServerEvent) -> None:
        if not self.is_open:
            return
        if isinstance(event, CaptionPartial):
            self._drop_partials(event.segment)
        if len(self._transient) >= self.limits.max_pending_control:
            self._transient.popleft()
        assert self.session is not None
        self._transient.append((self.session.replay.last_seq, event))

    def _drop_partials(self, segment: int) -> None:
        """A newer partial, or the final, of a segment replaces its pending partial."""
        self._transient = deque(
            (s, e)
            for s, e in self._transient
            if not (isinstance(e, CaptionPartial) and e.segment == segment)
        )

    def _push_control(self, event: ServerEvent) -> None:
        if len(self._control) >= self.limits.max_pending_control:
            raise ProtocolError(ErrorCode.SLOW_CONSUMER, "control messages pile up", fatal=True)
        self._control.append(event)

    def superseded(self) -> None:
        self.fail(
            ProtocolError(
                ErrorCode.SUPERSEDED, "a newer connection resumed this session", fatal=True
            )
        )

    def next_frame(self) -> Frame | None:
        """The next frame to send, or ``None`` when nothing is due now."""
        if self._control:
            return self._encode(self._control.popleft(), None)
        if not self.is_open:
            return None
        session = self.session
        assert session is not None
        if self._transient and self._transient[0][0] <= self.sent_seq:
            return self._encode(self._transient.popleft()[1], None)
        if self.sent_seq >= session.replay.last_seq:
            return None
        entry = session.replay.get(self.sent_seq + 1)
        if entry is None:
            # The ring lost an event this client has not seen: never a silent gap.
            self.fail(
                ProtocolError(ErrorCode.REPLAY_GAP, "events were lost from the buffer", fatal=True)
            )
            return self.next_frame()
        self.sent_seq = entry.seq
        session.mark_sent(entry.seq)
        return self._encode(entry.event, entry.seq)

    def _encode(self, event: ServerEvent, seq: int | None) -> Frame:
        self.frames_out += 1
        return self.codec.encode(to_wire(event, seq))

    def pending_events(self) -> int:
        if self.session is None:
            return len(self._control)
        return (
            len(self._control) + len(self._transient) + self.session.replay.last_seq - self.sent_seq
        )

    # -- timers -----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        if self.state is ConnectionState.AWAITING_HELLO:
            return self.opened_at + self.limits.hello_timeout_s
        if self.state is ConnectionState.OPEN:
            return self.last_received + 2 * self.limits.heartbeat_s
        return None

    def timer(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return
        if self.state is ConnectionState.AWAITING_HELLO:
            self.fail(ProtocolError(ErrorCode.BAD_MESSAGE, "no hello in time", fatal=True))
        else:
            # The peer is gone or mute: close; the session detaches and stays resumable.
            self._begin_close(CloseCode.GOING_AWAY, "idle_timeout")
