"""The sessions of one node: hello handling (new or resumed), quotas, expiry.

Pure and synchronous over the in-memory store; the shell calls it with ``now``.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass

from sessions.auth import Authenticator
from sessions.config import MODES, SessionConfig, parse_config
from sessions.connection import Connection
from sessions.errors import ErrorCode, ProtocolError
from sessions.events import Welcome
from sessions.limits import Limits
from sessions.messages import Hello
from sessions.session import Session
from sessions.states import SessionState
from sessions.store import MemoryStore
from sessions.tenants import TenantPolicy
from sessions.tokens import ResumeClaim, TokenSigner


@dataclass(frozen=True, slots=True)
class HelloAccepted:
    session: Session
    resumed: bool
    # A session created by this hello needs its pipeline started by the shell.
    created: bool


class SessionManager:
    """The node's sessions. ``sessions`` is the node-local store (a dict): in memory
    it is the only one; with a shared store (server/redis_*.py) it holds the sessions
    this node owns and the mirrors of sessions it serves for another node."""

    def __init__(
        self,
        limits: Limits,
        signer: TokenSigner,
        auth: Authenticator,
        *,
        node: str = "node-1",
        version: str = "0",
        max_sessions: int = 1000,
    ) -> None:
        self.limits = limits
        self.signer = signer
        self.auth = auth
        self.node = node
        self.version = version
        self.max_sessions = max_sessions
        self.sessions = MemoryStore()
        self.draining = False
        self.starting = False
        # The modes whose pipelines this node runs.
        self.modes: frozenset[str] = frozenset(MODES)
        self.resumes_ok = 0
        self.resumes_failed = 0

    def per_tenant(self) -> Counter[str]:
        return Counter(s.tenant.tenant_id for s in self.sessions.values())

    def handle_hello(
        self, conn: Connection, hello: Hello, now: float, *, session_id: str | None = None
    ) -> HelloAccepted | None:
        """Accept ``hello`` on ``conn`` or fail the connection; never raises.
        ``session_id`` names the session a new-session hello creates (a cluster
        writes its record to the shared store first)."""
        try:
            accepted = self._hello(conn, hello, now, session_id)
        except ProtocolError as error:
            self.refuse(conn, hello, error)
            return None
        session = accepted.session
        session.token_generation += 1
        # Token expiry is wall-clock time: other nodes must read it the same way.
        token = self.signer.resume_token(
            session.session_id,
            session.tenant.tenant_id,
            session.token_generation,
            now + conn.wall_offset + self.limits.resume_token_ttl_s,
        )
        last_seq = hello.resume.last_seq if hello.resume is not None else 0
        welcome = Welcome(
            session_id=session.session_id,
            resume_token=token,
            resumed=accepted.resumed,
            last_seq=session.replay.last_seq,
            audio_next=session.audio_next,
            heartbeat_s=self.limits.heartbeat_s,
            resume_ttl_s=self.limits.resume_ttl_s,
            limits=self.limits.to_wire(),
            server={"version": self.version, "node": self.node},
            mode=session.config.mode,
        )
        conn.accept(session, welcome, last_seq)
        session.attach(conn, last_seq, now)
        if accepted.resumed:
            self.resumes_ok += 1
        return accepted

    def refuse(self, conn: Connection, hello: Hello, error: ProtocolError) -> None:
        """Fail ``conn`` for its hello; whatever is wrong with a hello is fatal."""
        if hello.resume is not None and error.code in (
            ErrorCode.RESUME_FAILED,
            ErrorCode.REPLAY_GAP,
        ):
            self.resumes_failed += 1
        conn.fail(ProtocolError(error.code, error.message, fatal=True))

    def admission(self, hello: Hello, wall_now: float) -> tuple[TenantPolicy, ResumeClaim | None]:
        """The caller's tenant and, for a resume, the token's claim; raises when the
        node admits nothing now or the credentials are bad. Changes nothing."""
        if self.draining or self.starting:
            state = "draining" if self.draining else "starting"
            raise ProtocolError(ErrorCode.OVERLOADED, f"this node is {state}", fatal=True)
        tenant = self.auth.authenticate(hello.token, wall_now)
        if hello.resume is None:
            return tenant, None
        return tenant, self.signer.open_resume_token(hello.resume.token, wall_now)

    def check_resume(
        self, session: Session | None, claim: ResumeClaim, tenant: TenantPolicy, hello: Hello
    ) -> SessionConfig | None:
        """Raise unless ``hello`` may resume ``session``; the config it asks for, if
        any. Checked before anything changes, so a refused resume changes nothing."""
        assert hello.resume is not None
        if claim.tenant_id != tenant.tenant_id:
            raise ProtocolError(
                ErrorCode.RESUME_FAILED, "resume token of another tenant", fatal=True
            )
        if session is None or session.state is SessionState.CLOSED:
            raise ProtocolError(ErrorCode.RESUME_FAILED, "unknown or expired session", fatal=True)
        if claim.generation != session.token_generation:
            raise ProtocolError(ErrorCode.RESUME_FAILED, "resume token already used", fatal=True)
        session.attach_check(hello.resume.last_seq)
        if hello.session is None:
            return None
        # Settings may change on resume, the mode may not.
        config = session.config.merged(hello.session)
        if config.mode != session.config.mode:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED, "the mode of a session cannot change", fatal=True
            )
        tenant.check(config)
        return config

    def check_new(self, hello: Hello, tenant: TenantPolicy) -> SessionConfig:
        """Raise unless this node may start the session ``hello`` asks for."""
        config = parse_config(hello.session)
        if config.mode not in self.modes:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED, f"mode {config.mode!r} is not available here", fatal=True
            )
        tenant.check(config)
        if len(self.sessions) >= self.max_sessions:
            raise ProtocolError(ErrorCode.OVERLOADED, "the server is at capacity", fatal=True)
        if self.per_tenant()[tenant.tenant_id] >= tenant.max_sessions:
            raise ProtocolError(
                ErrorCode.QUOTA_EXCEEDED,
                f"at most {tenant.max_sessions} sessions per tenant",
                fatal=True,
            )
        return config

    @staticmethod
    def new_session_id() -> str:
        return f"s_{secrets.token_urlsafe(12)}"

    def _hello(
        self, conn: Connection, hello: Hello, now: float, session_id: str | None
    ) -> HelloAccepted:
        tenant, claim = self.admission(hello, now + conn.wall_offset)
        if claim is not None:
            session = self.sessions.get(claim.session_id)
            config = self.check_resume(session, claim, tenant, hello)
            assert session is not None
            if config is not None:
                session.config = config
            session.resumes += 1
            return HelloAccepted(session, resumed=True, created=False)
        config = self.check_new(hello, tenant)
        session = Session(session_id or self.new_session_id(), tenant, config, self.limits, now)
        self.sessions.add(session)
        return HelloAccepted(session, resumed=False, created=True)

    def end(self, session: Session) -> None:
        session.close()
        self.sessions.remove(session.session_id)

    def expired(self, now: float) -> list[Session]:
        """Detached sessions whose resume window has passed: closed and forgotten."""
        gone = [s for s in self.sessions.values() if (t := s.expires_at()) is not None and now >= t]
        for session in gone:
            self.end(session)
        return gone

    def next_deadline(self) -> float | None:
        deadlines = [t for s in self.sessions.values() if (t := s.expires_at()) is not None]
        return min(deadlines, default=None)
