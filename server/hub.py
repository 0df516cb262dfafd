"""The node's sessions at run time: pipelines' tasks, expiry, drain, readiness.

The pure ``SessionManager`` decides; the hub owns the tasks. A session's pipeline
task belongs to the hub's task group, not to a connection, so it keeps running while
the session is detached, until the resume TTL ends (docs/architecture.md).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from anyio.abc import TaskGroup

from server import metrics
from server.inputs import InputQueue
from server.logs import exception_fields
from server.settings import Settings
from sessions.auth import Authenticator
from sessions.connection import Connection
from sessions.errors import ErrorCode, ProtocolError
from sessions.events import ErrorEvent, ServerEvent
from sessions.manager import SessionManager
from sessions.pipeline import PipelineContext, PipelineProvider
from sessions.session import Session
from sessions.states import SessionState
from sessions.tokens import TokenSigner

if TYPE_CHECKING:
    from server.redis_cluster import Cluster

log = logging.getLogger("parley.hub")

PIPELINE_RESTARTS = 3


class Waker:
    """Wakes a connection's writer when something is queued for it."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()


class RuntimeLink(Protocol):
    """A session's tie to the shared store (server/redis_owner.py, redis_mirror.py)."""

    mirror: bool
    # Set once the session's end is recorded in the store (after a bye, a client
    # hears 1000 only then: its token is dead on every node).
    ended: anyio.Event

    def wake(self) -> None:
        """Something changed: new events, input or acks."""
        ...


@dataclass
class SessionRuntime:
    session: Session
    inputs: InputQueue
    cancel: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    waker: Waker | None = None
    # Called with a fatal error a pipeline reports: it ends the session.
    on_fatal: Callable[[SessionRuntime, ErrorEvent], None] | None = None
    # With a shared store: the replicator of an owned session or the follower of a
    # mirrored one; the running pipeline (for snapshots) and the state it resumes.
    link: RuntimeLink | None = None
    pipeline: object | None = None
    restored: dict[str, Any] | None = None

    def emit(self, event: ServerEvent) -> None:
        """The pipeline's EventSink: never blocks (the core applies the policy)."""
        if isinstance(event, ErrorEvent) and event.fatal and self.on_fatal is not None:
            self.on_fatal(self, event)
            return
        self.session.emit(event)
        if self.waker is not None:
            self.waker.wake()
        if self.link is not None:
            self.link.wake()


def load_provider(spec: str, options: dict[str, Any]) -> PipelineProvider:
    module_name, _, attr = spec.partition(":")
    factory: Callable[[dict[str, Any]], PipelineProvider] = getattr(
        importlib.import_module(module_name), attr
    )
    return factory(options)


class Hub:
    def __init__(self, settings: Settings, *, version: str) -> None:
        self.settings = settings
        self.limits = settings.limits.build()
        signer = TokenSigner(settings.secret_bytes())
        self.auth = Authenticator(
            settings.api_keys(),
            signer,
            open_access=settings.open_policy(),
            client_token_ttl_s=settings.server.client_token_ttl_s,
        )
        self.manager = SessionManager(
            self.limits,
            signer,
            self.auth,
            node=settings.server.node,
            version=version,
            max_sessions=settings.server.max_sessions,
        )
        self.manager.starting = True
        self.runtimes: dict[str, SessionRuntime] = {}
        self.providers: dict[str, PipelineProvider] = {}
        self.ready = False
        self.draining = False
        self.connections: set[Any] = set()  # server.stream.ConnectionShell
        self.connections_changed = Waker()
        self._tg: TaskGroup | None = None
        self._expiry = Waker()
        self.cluster: Cluster | None = None
        if settings.cluster.url():
            from server.redis_cluster import Cluster

            self.cluster = Cluster(self, settings)
        metrics.install_collector(self.snapshot)

    @property
    def admitting(self) -> bool:
        """Ready, not draining, and the shared store (if any) reachable."""
        healthy = self.cluster is None or self.cluster.healthy
        return self.ready and not self.draining and healthy

    # -- life cycle -------------------------------------------------------------

    async def run(
        self, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._expire_loop)
            if self.cluster is not None:
                await tg.start(self.cluster.run)
            await self._start_providers()
            self.manager.modes = frozenset(self.providers)
            self.manager.starting = False
            self.ready = True
            log.info("ready", extra={"modes": sorted(self.providers)})
            task_status.started()
            await anyio.sleep_forever()

    async def _start_providers(self) -> None:
        for mode, spec in self.settings.pipelines.items():
            options = self.settings.pipeline_options.get(mode, {})
            try:
                provider = load_provider(spec, options)
            except ImportError as exc:
                log.warning("mode unavailable", extra={"mode": mode, "why": str(exc)})
                continue
            started = time.perf_counter()
            await provider.start()
            self.providers[mode] = provider
            log.info(
                "pipeline loaded",
                extra={"mode": mode, "seconds": round(time.perf_counter() - started, 2)},
            )

    async def aclose(self) -> None:
        for runtime in list(self.runtimes.values()):
            runtime.cancel.cancel()
        for provider in self.providers.values():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await provider.aclose()
        if self.cluster is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.cluster.aclose()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- sessions ---------------------------------------------------------------

    def start_session(
        self, session: Session, *, restored: dict[str, Any] | None = None
    ) -> SessionRuntime:
        runtime = SessionRuntime(
            session,
            InputQueue(self.limits.max_audio_queue_s),
            on_fatal=self._pipeline_fatal,
            restored=restored,
        )
        self.runtimes[session.session_id] = runtime
        if restored is None and not session.resumes:
            metrics.SESSIONS_CREATED.inc()
        if self.cluster is not None:
            self.cluster.own(runtime)
        self.spawn(self._run_pipeline, runtime)
        return runtime

    def spawn(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` in the hub's task group (it outlives connections)."""
        assert self._tg is not None
        self._tg.start_soon(func, *args)

    async def _run_pipeline(self, runtime: SessionRuntime) -> None:
        session = runtime.session
        provider = self.providers[session.config.mode]
        context = PipelineContext(
            session.session_id, session.tenant, session.config, restored=runtime.restored
        )
        with runtime.cancel:
            for attempt in range(PIPELINE_RESTARTS + 1):
                try:
                    pipeline = runtime.pipeline = provider.create(context)
                    await pipeline.run(aiter(runtime.inputs), runtime)
                    break
                except Exception as exc:
                    log.error(
                        "pipeline failed",
                        extra={
                            "session_id": session.session_id,
                            "attempt": attempt,
                            **exception_fields(exc),
                        },
                    )
                    runtime.emit(
                        ErrorEvent(ErrorCode.INTERNAL, "the pipeline failed", session_state=True)
                    )
        if session.state is not SessionState.CLOSED and not runtime.cancel.cancel_called:
            # The pipeline gave up: the session cannot do its job any more.
            self.end_session(session, "pipeline_failed")

    def _pipeline_fatal(self, runtime: SessionRuntime, event: ErrorEvent) -> None:
        try:
            code = ErrorCode(event.code)
        except ValueError:
            code = ErrorCode.INTERNAL
        self.end_session(
            runtime.session, code.value, ProtocolError(code, event.message, fatal=True)
        )

    def end_session(
        self, session: Session, reason: str, error: ProtocolError | None = None
    ) -> None:
        runtime = self.runtimes.pop(session.session_id, None)
        if error is None and reason == "pipeline_failed":
            error = ProtocolError(ErrorCode.INTERNAL, "the session's pipeline failed", fatal=True)
        if error is not None and isinstance(session.outlet, Connection):
            # Tell the attached client why its session is gone, with the error's close code.
            session.outlet.fail(error)
            if runtime is not None and runtime.waker is not None:
                runtime.waker.wake()
        mirrored = (
            self.cluster is not None
            and runtime is not None
            and self.cluster.ending(runtime, reason, error)
        )
        self.manager.end(session)
        if runtime is not None:
            runtime.inputs.close()
            if mirrored:
                return  # the owner ends the session; its node counts it
            runtime.cancel.cancel()
            metrics.SESSIONS_ENDED.labels(reason).inc()
            log.info("session ended", extra={"session_id": session.session_id, "reason": reason})

    def session_detached(self, runtime: SessionRuntime | None = None) -> None:
        self._expiry.wake()
        if self.cluster is not None and runtime is not None:
            self.cluster.detached(runtime)

    async def _expire_loop(self) -> None:
        while True:
            deadline = self.manager.next_deadline()
            delay = 3600.0 if deadline is None else max(0.0, deadline - time.monotonic())
            with anyio.move_on_after(delay):
                await self._expiry.wait()
            for session in self.manager.expired(time.monotonic()):
                self.end_session(session, "resume_ttl")

    # -- drain ------------------------------------------------------------------

    async def drain(self) -> None:
        """Stop admitting sessions, tell every client to go, wait for them (bounded)."""
        if self.draining:
            return
        self.draining = True
        self.manager.draining = True
        log.info("draining", extra={"connections": len(self.connections)})
        started = time.monotonic()
        if self.cluster is not None:
            # Forwarded input waits in the store for the next owner from now on.
            self.cluster.stop_taking_inputs()
        for shell in list(self.connections):
            shell.go_away("shutdown", self.settings.server.reconnect_after_ms)
        with anyio.move_on_after(self.settings.server.drain_timeout_s):
            while self.connections:
                await self.connections_changed.wait()
        if self.cluster is not None:
            left = self.settings.server.drain_timeout_s - (time.monotonic() - started)
            await self.cluster.hand_over(max(0.5, left))
        log.info("drained", extra={"connections_left": len(self.connections)})

    # -- metrics ----------------------------------------------------------------

    def snapshot(self) -> dict[str, float]:
        attached = sum(
            1 for s in self.manager.sessions.values() if s.state is SessionState.ATTACHED
        )
        pending = [shell.conn.pending_events() for shell in self.connections]
        return {
            "sessions_attached": attached,
            "sessions_detached": len(self.manager.sessions) - attached,
            "outbound_events": sum(pending),
            "outbound_max": max(pending, default=0),
            "audio_queued_s": sum(r.inputs.audio_s for r in self.runtimes.values()),
            "replay_events": sum(len(s.replay) for s in self.manager.sessions.values()),
            "ready": 1.0 if self.admitting else 0.0,
        }
