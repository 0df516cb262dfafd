"""A node of a cluster that shares sessions through Redis (docs/deployment.md).

Every session has one owner, the node holding its lease, which runs its pipeline
(server/redis_owner.py). A client may attach to any node: on the owner it is served
from memory, elsewhere from a mirror of the Redis log (server/redis_mirror.py). A
resume on a node whose owner is gone (lease expired, node silent) takes the session
over: its record, log and pipeline snapshot come from Redis, and a turn that was
running ends with ``turn.done`` ``failed``/``node_lost``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING

import anyio
from redis.exceptions import RedisError

from server.hub import Hub, SessionRuntime
from server.redis_hello import ClusterHello
from server.redis_metrics import REDIS_UP, bind_lag
from server.redis_mirror import MirrorLink
from server.redis_owner import OwnerLink, RemoteOutlet
from server.redis_store import RedisStore, RedisUnavailable
from server.settings import Settings
from sessions.connection import Connection
from sessions.errors import ErrorCode, ProtocolError
from sessions.messages import Hello
from sessions.session import Session
from sessions.states import SessionState

if TYPE_CHECKING:
    from server.stream import ConnectionShell

log = logging.getLogger("parley.cluster")

CLOSED_KEEP_MS = 60_000  # an ended session's record stays this long: late resumes hear so


class Cluster:
    def __init__(self, hub: Hub, settings: Settings) -> None:
        self.hub = hub
        self.node = settings.server.node
        cluster = settings.cluster
        self.store = RedisStore(
            cluster.url(),
            prefix=cluster.key_prefix,
            node=self.node,
            lease_ms=cluster.lease_ms,
            timeout_s=cluster.redis_timeout_s,
        )
        self.timeout_s = cluster.redis_timeout_s
        self.renew_every_s = cluster.lease_ms / 3000
        self.healthy = False
        self.taking_inputs = True
        # Sessions ended here whose end is not yet in Redis: never adopted again.
        self.ending_ids: set[str] = set()
        bind_lag(self.lag)

    # -- life cycle -------------------------------------------------------------

    async def run(
        self, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._health)
            tg.start_soon(self._listen)
            task_status.started()

    async def aclose(self) -> None:
        await self.store.aclose()

    def key_ttl_ms(self, session: Session) -> int:
        return int(session.limits.resume_ttl_s * 1000 + 3 * self.store.lease_ms)

    def lag(self) -> tuple[float, float]:
        lags = [r.link.lag for r in self.hub.runtimes.values() if isinstance(r.link, OwnerLink)]
        return float(sum(lags)), float(max(lags, default=0))

    def store_failed(self) -> None:
        self.healthy = False
        REDIS_UP.set(0)

    def store_ok(self) -> None:
        return None  # health comes back with the next successful ping

    async def _health(self) -> None:
        while True:
            try:
                with anyio.fail_after(self.timeout_s):
                    await self.store.ping()
                if not self.healthy:
                    log.info("redis reachable")
                self.healthy = True
                REDIS_UP.set(1)
            except (RedisUnavailable, TimeoutError):
                if self.healthy:
                    log.warning("redis unreachable")
                self.store_failed()
            await anyio.sleep(1.0 if self.healthy else 0.25)

    async def _listen(self) -> None:
        """Notices from other nodes; reconnects after Redis comes back."""
        while True:
            pubsub = self.store.pubsub()
            try:
                await pubsub.subscribe(self.store.channel(self.node))
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._notice(message.get("data"))
            except (RedisError, OSError, TimeoutError):
                await anyio.sleep(0.25)
            finally:
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(1),
                    contextlib.suppress(RedisError, OSError),
                ):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _notice(self, data: object) -> None:
        try:
            notice = json.loads(data) if isinstance(data, bytes | str) else None
        except ValueError:
            notice = None
        if not isinstance(notice, dict):
            return
        kind, sid = notice.get("k"), notice.get("sid")
        if kind == "superseded":
            for shell in list(self.hub.connections):
                session = shell.conn.session
                if shell.conn_id == notice.get("conn") and session and session.session_id == sid:
                    shell.conn.superseded()
                    shell.waker.wake()
            return
        runtime = self.hub.runtimes.get(sid) if isinstance(sid, str) else None
        if runtime is None or not isinstance(runtime.link, MirrorLink):
            return
        if kind == "moved":
            runtime.link.go_away("owner_moved")
        elif kind == "ended":
            try:
                code = ErrorCode(str(notice.get("code")))
            except ValueError:
                code = ErrorCode.INTERNAL
            message = str(notice.get("message", ""))[:200]
            outlet = runtime.session.outlet
            if isinstance(outlet, Connection):
                outlet.fail(ProtocolError(code, message, fatal=True))
            if runtime.waker is not None:
                runtime.waker.wake()

    # -- hello ------------------------------------------------------------------

    async def hello(self, shell: ConnectionShell, hello: Hello) -> SessionRuntime | None:
        """Accept ``hello`` (new session, resume here, mirror or takeover) or fail the
        connection; the runtime the connection is attached to."""
        return await ClusterHello(self).hello(shell, hello)

    # -- sessions of this node --------------------------------------------------

    def own(self, runtime: SessionRuntime) -> None:
        link = OwnerLink(self, runtime, written=runtime.session.flushed_seq)
        link.taking_inputs = self.taking_inputs
        runtime.link = link
        self.hub.spawn(link.run)

    def ending(self, runtime: SessionRuntime, reason: str, error: ProtocolError | None) -> bool:
        """The session ends here; ``True`` when this node only mirrored it."""
        link = runtime.link
        if isinstance(link, MirrorLink):
            link.finish(bye=reason == "bye")
            return True
        if isinstance(link, OwnerLink):
            link.cancel.cancel()
            if link.lost:
                link.ended.set()
            else:
                outlet = runtime.session.outlet
                remote = outlet.node if isinstance(outlet, RemoteOutlet) else ""
                self.ending_ids.add(runtime.session.session_id)
                self.hub.spawn(self._close, runtime.session.session_id, remote, error, link.ended)
        return False

    async def _close(
        self, sid: str, remote: str, error: ProtocolError | None, ended: anyio.Event
    ) -> None:
        backoff = 0.1
        try:
            with anyio.move_on_after(30):
                while True:
                    try:
                        await self.store.close_session(sid, CLOSED_KEEP_MS)
                        ended.set()
                        if remote and error is not None:
                            notice = {"k": "ended", "sid": sid, "code": error.code.value}
                            await self.store.publish(remote, {**notice, "message": error.message})
                        return
                    except RedisUnavailable:
                        await anyio.sleep(backoff)
                        backoff = min(2.0, backoff * 2)
        finally:
            self.ending_ids.discard(sid)
            ended.set()

    def detached(self, runtime: SessionRuntime) -> None:
        """A mirror's client left: forward the detach and forget the mirror."""
        session = runtime.session
        link = runtime.link
        if not isinstance(link, MirrorLink) or session.state is not SessionState.DETACHED:
            return
        if self.hub.runtimes.get(session.session_id) is runtime:
            del self.hub.runtimes[session.session_id]
        if self.hub.manager.sessions.get(session.session_id) is session:
            self.hub.manager.sessions.remove(session.session_id)
        session.close()
        runtime.inputs.close()
        link.finish(bye=False)

    def lease_lost(self, runtime: SessionRuntime) -> None:
        """Another node took the session over: stop here, touch nothing in Redis."""
        session = runtime.session
        log.warning("lease lost", extra={"session_id": session.session_id})
        if isinstance(session.outlet, Connection):
            session.outlet.go_away("owner_moved", 0)
        if runtime.waker is not None:
            runtime.waker.wake()
        if self.hub.runtimes.get(session.session_id) is runtime:
            del self.hub.runtimes[session.session_id]
        if self.hub.manager.sessions.get(session.session_id) is session:
            self.hub.manager.end(session)
        runtime.inputs.close()
        runtime.cancel.cancel()

    # -- drain ------------------------------------------------------------------

    def stop_taking_inputs(self) -> None:
        self.taking_inputs = False
        for runtime in self.hub.runtimes.values():
            if isinstance(runtime.link, OwnerLink):
                runtime.link.taking_inputs = False

    async def hand_over(self, timeout_s: float) -> None:
        """Let running turns finish (bounded), stop the pipelines, flush, and give up
        the leases: the sessions continue on the node their clients resume on."""
        owned = [r for r in self.hub.runtimes.values() if isinstance(r.link, OwnerLink)]
        with anyio.move_on_after(timeout_s):
            # Turns end and flushes land through many paths: polling is simplest here.
            while any(r.link.turn or r.link.lag for r in owned if isinstance(r.link, OwnerLink)):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        for runtime in owned:
            runtime.cancel.cancel()
        released = 0
        with anyio.move_on_after(max(1.0, self.timeout_s * 2)):
            for runtime in owned:
                link = runtime.link
                assert isinstance(link, OwnerLink)
                link.cancel.cancel()
                try:
                    await link.flush()
                    if link.lost:
                        continue
                    await self.store.release(runtime.session.session_id)
                    released += 1
                    outlet = runtime.session.outlet
                    if isinstance(outlet, RemoteOutlet):
                        notice = {"k": "moved", "sid": runtime.session.session_id}
                        await self.store.publish(outlet.node, notice)
                except RedisUnavailable:
                    continue
        log.info("sessions handed over", extra={"released": released, "owned": len(owned)})
