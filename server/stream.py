"""``/v1/stream``: the async shell around one ``sessions.Connection``.

One task group per connection: a reader, a writer and a timer. The reader stops
reading while the session's audio queue is full; the writer is the only task that
sends; the timer enforces the hello and heartbeat deadlines.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import anyio
from starlette.types import Receive, Scope, Send

from server import metrics
from server.hub import Hub, SessionRuntime, Waker
from server.inputs import InputQueueFull
from server.settings import is_loopback
from sessions.codec import Codec, select_subprotocol
from sessions.connection import ByeReceived, Connection, HelloReceived, InputReceived
from sessions.errors import CloseCode, ErrorCode, ProtocolError
from sessions.inputs import ConfigUpdated
from sessions.messages import Hello
from sessions.session import Session
from sessions.states import ConnectionState

log = logging.getLogger("parley.stream")

# How long a closing connection may take to flush its last frames.
CLOSE_GRACE_S = 5.0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class ConnectionShell:
    def __init__(self, hub: Hub, scope: Scope, receive: Receive, send: Send) -> None:
        self.hub = hub
        self.scope = scope
        self.receive = receive
        self.send = send
        offered = [
            p.strip()
            for p in (_header(scope, b"sec-websocket-protocol") or "").split(",")
            if p.strip()
        ]
        self.subprotocol = select_subprotocol(offered)
        limits = hub.limits
        self.conn = Connection(
            Codec.for_subprotocol(self.subprotocol, limits.max_frame_bytes),
            limits,
            time.monotonic(),
            wall_offset=time.time() - time.monotonic(),
        )
        self.waker = Waker()
        # Names this connection to other nodes (a takeover's 4009 notice).
        self.conn_id = secrets.token_hex(8)
        self.runtime: SessionRuntime | None = None
        self.closing_since: float | None = None
        # After a bye in a cluster: the close waits until the end is in the store.
        self.close_hold: anyio.Event | None = None

    # -- entry ------------------------------------------------------------------

    async def serve(self) -> None:
        message = await self.receive()
        if message["type"] != "websocket.connect":
            return
        origin = _header(self.scope, b"origin")
        if origin is not None and not self._origin_allowed(origin.rstrip("/")):
            log.warning("origin refused", extra={"origin": origin[:200]})
            await self.send({"type": "websocket.close", "code": 1008})
            return
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if self.subprotocol is not None:
            accept["subprotocol"] = self.subprotocol
        await self.send(accept)
        metrics.CONNECTIONS.inc()
        self.hub.connections.add(self)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read_loop, tg.cancel_scope)
                tg.start_soon(self._write_loop, tg.cancel_scope)
                tg.start_soon(self._timer_loop, tg.cancel_scope)
        finally:
            self.hub.connections.discard(self)
            self.hub.connections_changed.wake()
            self.conn.connection_lost(time.monotonic())
            if self.runtime is not None:
                self.runtime.waker = (
                    None if self.runtime.waker is self.waker else self.runtime.waker
                )
                self.hub.session_detached(self.runtime)
            if self.conn.close_code is not None:
                metrics.CLOSES.labels(str(self.conn.close_code)).inc()

    def _origin_allowed(self, origin: str) -> bool:
        """Configured origins, or else the page's own origin: the Host it asked for
        (with ``--port 0`` the configured port is not the one bound)."""
        configured = self.hub.settings.server.allowed_origins
        if configured:
            return origin in self.hub.settings.origins()
        host = _header(self.scope, b"host")
        if origin in self.hub.settings.origins() or host is None:
            return origin in self.hub.settings.origins()
        # Only loopback names: a rebound DNS name must not pass as "our own" origin.
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name.strip("[]")) and origin in (f"http://{host}", f"https://{host}")

    def go_away(self, reason: str, reconnect_after_ms: int) -> None:
        if self.conn.session is None:
            self.conn.fail(
                ProtocolError(ErrorCode.OVERLOADED, "the server is draining", fatal=True)
            )
        else:
            self.conn.go_away(reason, reconnect_after_ms)
        self.waker.wake()

    # -- reader -----------------------------------------------------------------

    async def _read_loop(self, scope: anyio.CancelScope) -> None:
        while self.conn.state in (ConnectionState.AWAITING_HELLO, ConnectionState.OPEN):
            if self.runtime is not None and not self.runtime.inputs.has_audio_room():
                await self.runtime.inputs.wait_audio_room()
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                scope.cancel()
                return
            frame = message.get("bytes")
            if frame is None:
                frame = message.get("text", "")
            metrics.FRAMES.labels("in").inc()
            metrics.BYTES.labels("in").inc(len(frame))
            self.conn.receive_frame(frame, time.monotonic())
            for event in self.conn.events_received():
                if isinstance(event, HelloReceived) and self.hub.cluster is not None:
                    await self._cluster_hello(event.hello)
                else:
                    self._on_event(event)
            self.waker.wake()
            if self.runtime is not None and self.runtime.link is not None:
                # Input, acks or an audio_gap for the replicator or the forwarder.
                self.runtime.link.wake()

    async def _cluster_hello(self, hello: Hello) -> None:
        assert self.hub.cluster is not None
        runtime = await self.hub.cluster.hello(self, hello)
        if hello.resume is not None:
            metrics.RESUMES.labels("ok" if runtime else "failed").inc()
        if runtime is not None:
            self._attached(runtime, runtime.session, resumed=hello.resume is not None)

    def _on_event(self, event: HelloReceived | InputReceived | ByeReceived) -> None:
        hub = self.hub
        match event:
            case HelloReceived(hello):
                accepted = hub.manager.handle_hello(self.conn, hello, time.monotonic())
                if hello.resume is not None:
                    metrics.RESUMES.labels("ok" if accepted else "failed").inc()
                if accepted is None:
                    return
                session = accepted.session
                if accepted.created:
                    self.runtime = hub.start_session(session)
                else:
                    self.runtime = hub.runtimes[session.session_id]
                    metrics.REPLAYED.inc(session.replay.last_seq - self.conn.sent_seq)
                    if hello.session is not None:
                        # Settings changed with the resume: the pipeline must know.
                        self.runtime.inputs.put(ConfigUpdated(session.config))
                self._attached(self.runtime, session, accepted.resumed)
            case InputReceived(item, audio_s):
                assert self.runtime is not None
                try:
                    self.runtime.inputs.put(item, audio_s)
                except InputQueueFull as exc:
                    self.conn.fail(ProtocolError(ErrorCode.OVERLOADED, str(exc)))
            case ByeReceived(session):
                link = self.runtime.link if self.runtime is not None else None
                hub.end_session(session, "bye")
                if link is not None:
                    self.close_hold = link.ended

    def _attached(self, runtime: SessionRuntime, session: Session, resumed: bool) -> None:
        self.runtime = runtime
        if runtime.waker is not None:
            # A superseded connection has its 4009 queued: let its writer go.
            runtime.waker.wake()
        runtime.waker = self.waker
        log.info(
            "session attached",
            extra={
                "session_id": session.session_id,
                "tenant": session.tenant.tenant_id,
                "mode": session.config.mode,
                "resumed": resumed,
                "subprotocol": self.subprotocol or "json",
            },
        )

    # -- writer -----------------------------------------------------------------

    async def _write_loop(self, scope: anyio.CancelScope) -> None:
        conn = self.conn
        while True:
            frame = conn.next_frame()
            if frame is None:
                if conn.finished():
                    break
                await self.waker.wait()
                continue
            started = time.perf_counter()
            if isinstance(frame, bytes):
                await self.send({"type": "websocket.send", "bytes": frame})
            else:
                await self.send({"type": "websocket.send", "text": frame})
            metrics.SEND_SECONDS.observe(time.perf_counter() - started)
            metrics.FRAMES.labels("out").inc()
            metrics.BYTES.labels("out").inc(len(frame))
        code = conn.close_code or CloseCode.NORMAL
        if self.close_hold is not None:
            with anyio.move_on_after(CLOSE_GRACE_S / 2):
                await self.close_hold.wait()
        with anyio.move_on_after(CLOSE_GRACE_S):
            await self.send({"type": "websocket.close", "code": code, "reason": conn.close_reason})
        scope.cancel()

    # -- timers -----------------------------------------------------------------

    async def _timer_loop(self, scope: anyio.CancelScope) -> None:
        while True:
            now = time.monotonic()
            self.conn.timer(now)
            if self.conn.state is ConnectionState.CLOSING:
                self.waker.wake()
                if self.closing_since is None:
                    self.closing_since = now
                elif now - self.closing_since > CLOSE_GRACE_S:
                    # The client does not even take the close: give up on it.
                    scope.cancel()
                    return
                await anyio.sleep(0.5)
                continue
            deadline = self.conn.next_deadline()
            delay = 1.0 if deadline is None else min(1.0, max(0.01, deadline - now))
            await anyio.sleep(delay)
