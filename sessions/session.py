"""A session: the durable state that outlives connections (docs/protocol.md,
"Session lifecycle", "Resume").

It numbers durable events, keeps them for replay, tracks the audio chunk counter and
resume-token generation, and forwards events to the attached connection, if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sessions.config import SessionConfig
from sessions.errors import ErrorCode, ProtocolError
from sessions.events import ErrorEvent, ServerEvent
from sessions.limits import Limits
from sessions.replay import ReplayBuffer
from sessions.states import SessionState, session_next
from sessions.tenants import TenantPolicy


class Outlet(Protocol):
    """What a session needs from the connection it is attached to."""

    def durable_added(self, last_seq: int) -> None: ...

    def transient_added(self, event: ServerEvent) -> None: ...

    def superseded(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AudioVerdict:
    """What to do with one incoming audio chunk."""

    chunk: int
    accept: bool
    gap: int = 0  # chunks missing before this one


class Session:
    def __init__(
        self,
        session_id: str,
        tenant: TenantPolicy,
        config: SessionConfig,
        limits: Limits,
        now: float,
    ) -> None:
        self.session_id = session_id
        self.tenant = tenant
        self.config = config
        self.limits = limits
        self.state = SessionState.DETACHED
        self.replay = ReplayBuffer(limits.replay_events)
        self.token_generation = 0
        self.audio_next = 0
        self.created_at = now
        self.detached_at: float | None = now
        self.outlet: Outlet | None = None
        # The newest seq ever handed to any connection: later events may be merged.
        self.sent_seq = 0
        self.resumes = 0
        # Shared-store deployments (server/redis_*.py): events up to ``flushed_seq``
        # have reached the store, where other nodes may hand them out, so they count
        # as sent; ``acked_seq`` is the newest seq a client acknowledged.
        self.flushed_seq = 0
        self.acked_seq = 0
        # A mirror shows a session that another node owns: its events are numbered
        # there and arrive through ``mirror_event``; it numbers none itself.
        self.mirror = False

    def _move(self, action: str) -> None:
        self.state = session_next(self.state, action)

    # -- events out -------------------------------------------------------------

    def emit(self, event: ServerEvent) -> None:
        """Take an event from the pipeline. Never blocks; never raises for a slow client."""
        if self.state is SessionState.CLOSED:
            return
        if event.is_durable():
            if self.mirror:
                # The owner numbers durable events (an audio_gap too: it sees the
                # same chunks and reports it).
                return
            self.replay.append(event, sent_seq=max(self.sent_seq, self.flushed_seq))
            if self.outlet is not None:
                self.outlet.durable_added(self.replay.last_seq)
        elif self.outlet is not None:
            self.outlet.transient_added(event)

    def mirror_event(self, seq: int, event: ServerEvent) -> bool:
        """Take a durable event the owner numbered; ``False`` on a gap in the seqs."""
        if not self.replay.put(seq, event):
            return False
        if self.outlet is not None:
            self.outlet.durable_added(seq)
        return True

    def mark_sent(self, seq: int) -> None:
        self.sent_seq = max(self.sent_seq, seq)

    def ack(self, seq: int) -> None:
        self.acked_seq = max(self.acked_seq, seq)
        self.replay.trim_to(seq)

    # -- attach / detach --------------------------------------------------------

    def attach_check(self, last_seq: int) -> None:
        """Raise unless a client that has seen up to ``last_seq`` can resume."""
        if self.state is SessionState.CLOSED:
            raise ProtocolError(ErrorCode.RESUME_FAILED, "the session has ended", fatal=True)
        if last_seq > self.replay.last_seq:
            raise ProtocolError(
                ErrorCode.RESUME_FAILED,
                f"last_seq {last_seq} is ahead of the session ({self.replay.last_seq})",
                fatal=True,
            )
        if not self.replay.covers(last_seq):
            raise ProtocolError(
                ErrorCode.REPLAY_GAP,
                f"events after {last_seq} are no longer buffered (oldest {self.replay.first_seq})",
                fatal=True,
            )

    def attach(self, outlet: Outlet, last_seq: int, now: float) -> None:
        """Attach ``outlet``; a connection already attached is superseded (4009)."""
        self.attach_check(last_seq)
        previous = self.outlet
        self._move("attach")
        self.outlet = outlet
        self.detached_at = None
        # The client has everything up to last_seq: nothing before it is replayed.
        self.acked_seq = max(self.acked_seq, last_seq)
        self.replay.trim_to(last_seq)
        if previous is not None and previous is not outlet:
            previous.superseded()

    def detach(self, outlet: Outlet, now: float) -> None:
        """The connection of ``outlet`` went away; a superseded one changes nothing."""
        if self.outlet is not outlet or self.state is not SessionState.ATTACHED:
            return
        self._move("detach")
        self.outlet = None
        self.detached_at = now

    def close(self) -> None:
        if self.state is SessionState.CLOSED:
            return
        self._move("close")
        self.outlet = None

    def expires_at(self) -> float | None:
        if self.state is not SessionState.DETACHED or self.detached_at is None:
            return None
        return self.detached_at + self.limits.resume_ttl_s

    # -- audio in ---------------------------------------------------------------

    def audio_verdict(self, chunk: int | None) -> AudioVerdict:
        """Drop duplicates below ``audio_next``; accept and report gaps above it
        (docs/protocol.md, "Resume": audio)."""
        if chunk is None:
            chunk = self.audio_next
        if chunk < self.audio_next:
            return AudioVerdict(chunk, accept=False)
        gap = chunk - self.audio_next
        self.audio_next = chunk + 1
        if gap:
            self.emit(
                ErrorEvent(
                    ErrorCode.AUDIO_GAP,
                    f"{gap} audio chunk(s) missing before chunk {chunk}",
                    session_state=True,
                )
            )
        return AudioVerdict(chunk, accept=True, gap=gap)
