"""How a node of a cluster answers ``hello`` (server/redis_cluster.py).

A new session is written to Redis before its ``welcome``. A resume checks the token
against the record, then spends it atomically (``claim``), so a refused resume
changes nothing. A session this node does not hold is mirrored while its owner is
alive, and taken over when it is not: lease expired, or its node no longer hears
its notices (``PUBLISH`` answers 0).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from server import metrics
from server.hub import SessionRuntime
from server.inputs import InputQueue
from server.redis_metrics import LEASE_TAKEOVERS
from server.redis_mirror import MirrorLink
from server.redis_owner import OwnerLink
from server.redis_store import RedisUnavailable
from sessions.errors import ErrorCode, ProtocolError
from sessions.events import TurnDone
from sessions.inputs import ConfigUpdated
from sessions.messages import Hello
from sessions.relay import RemoteAttach
from sessions.session import Session
from sessions.store import SessionRecord
from sessions.tenants import TenantPolicy
from sessions.tokens import ResumeClaim

if TYPE_CHECKING:
    from server.redis_cluster import Cluster
    from server.stream import ConnectionShell

log = logging.getLogger("parley.cluster")

CATCH_UP_S = 2.0  # how long a mirror waits for the owner's newest events to reach Redis


def _overloaded(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.OVERLOADED, message, fatal=True)


def _resume_failed(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.RESUME_FAILED, message, fatal=True)


class ClusterHello:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def hello(self, shell: ConnectionShell, hello: Hello) -> SessionRuntime | None:
        """Accept ``hello`` (new session, resume here, mirror or takeover) or fail the
        connection; the runtime the connection is attached to."""
        conn = shell.conn
        manager = self.cluster.hub.manager
        attach = f"{self.cluster.node} {shell.conn_id}"
        try:
            tenant, claim = manager.admission(hello, time.monotonic() + conn.wall_offset)
            if not self.cluster.healthy:
                raise _overloaded("the session store is unavailable")
            if claim is None:
                return await self._new(shell, hello, tenant, attach)
            return await self._resume(shell, hello, tenant, claim, attach)
        except ProtocolError as error:
            manager.refuse(conn, hello, error)
        except RedisUnavailable:
            self.cluster.store_failed()
            manager.refuse(conn, hello, _overloaded("the session store is unavailable"))
        return None

    async def _new(
        self, shell: ConnectionShell, hello: Hello, tenant: TenantPolicy, attach: str
    ) -> SessionRuntime | None:
        manager = self.cluster.hub.manager
        config = manager.check_new(hello, tenant)
        sid = manager.new_session_id()
        record = SessionRecord(
            sid,
            tenant.tenant_id,
            config,
            generation=1,  # the token the welcome carries
            attached=attach,
            resume_ttl_s=manager.limits.resume_ttl_s,
        )
        await self.cluster.store.create(
            record, int(record.resume_ttl_s * 1000 + 3 * self.cluster.store.lease_ms)
        )
        accepted = manager.handle_hello(shell.conn, hello, time.monotonic(), session_id=sid)
        if accepted is None:
            return None
        return self.cluster.hub.start_session(accepted.session)

    async def _resume(
        self,
        shell: ConnectionShell,
        hello: Hello,
        tenant: TenantPolicy,
        claim: ResumeClaim,
        attach: str,
    ) -> SessionRuntime | None:
        assert hello.resume is not None
        manager = self.cluster.hub.manager
        sid = claim.session_id
        record, holder = await self.cluster.store.load(sid)
        if record is None or record.state == "closed" or sid in self.cluster.ending_ids:
            raise _resume_failed("unknown or expired session")
        local = manager.sessions.get(sid)
        runtime = self.cluster.hub.runtimes.get(sid)
        if local is not None and runtime is not None:
            if isinstance(runtime.link, OwnerLink) and runtime.link.lost:
                raise _overloaded("the session is moving to another node; resume again")
            # The token generation is the store's: a resume elsewhere may have spent one.
            local.token_generation = record.generation
            manager.check_resume(local, claim, tenant, hello)
            await self._claim(sid, claim, attach)
            accepted = manager.handle_hello(shell.conn, hello, time.monotonic())
            if accepted is None:
                return None
            if isinstance(runtime.link, MirrorLink):
                runtime.link.attach_id = attach
                runtime.link.pending.append(RemoteAttach(attach, hello.resume.last_seq))
                if hello.session is not None:
                    runtime.link.pending.append(ConfigUpdated(local.config))
                runtime.link.wake()
            else:
                if isinstance(runtime.link, OwnerLink):
                    runtime.link.attached = attach
                if hello.session is not None:
                    runtime.inputs.put(ConfigUpdated(local.config))
            metrics.REPLAYED.inc(local.replay.last_seq - shell.conn.sent_seq)
            return runtime
        return await self._adopt(
            shell, hello, tenant=tenant, claim=claim, attach=attach, record=record, holder=holder
        )

    async def _claim(self, sid: str, claim: ResumeClaim, attach: str) -> None:
        previous = await self.cluster.store.claim(sid, claim.generation, claim.tenant_id, attach)
        node, _, conn_id = previous.partition(" ")
        if node and node != self.cluster.node:
            # A connection on another node held the session: it gets 4009 there.
            await self.cluster.store.publish(node, {"k": "superseded", "sid": sid, "conn": conn_id})

    async def _adopt(
        self,
        shell: ConnectionShell,
        hello: Hello,
        *,
        tenant: TenantPolicy,
        claim: ResumeClaim,
        attach: str,
        record: SessionRecord,
        holder: str,
    ) -> SessionRuntime | None:
        """Serve a session this node does not hold: mirror it, or take it over."""
        assert hello.resume is not None
        manager = self.cluster.hub.manager
        limits = manager.limits
        sid = claim.session_id
        seen = hello.resume.last_seq
        policy = self.cluster.hub.auth.tenant(record.tenant_id)
        if policy is None:
            raise _resume_failed("the session's tenant is not configured here")
        take, why = holder in ("", self.cluster.node), "lease_expired"
        if not take and not await self.cluster.store.publish(holder, {"k": "ping"}):
            take, why = True, "node_lost"
        if not take:
            record = await self._catch_up(sid, record, seen)
        if take and seen > record.last_seq + limits.max_pending_events:
            raise _resume_failed(f"last_seq {seen} is ahead of the session")
        if not take and seen > record.last_seq:
            raise _resume_failed(f"last_seq {seen} is ahead of the session ({record.last_seq})")
        session = Session(sid, policy, record.config, limits, time.monotonic())
        session.token_generation = record.generation
        session.audio_next = record.audio_next
        session.replay.start_after(seen)
        for seq, event in await self.cluster.store.read_log(sid, seen, limits.replay_events + 1):
            if seq > seen and not session.replay.put(seq, event):
                break
        if session.replay.last_seq < record.last_seq:
            raise ProtocolError(
                ErrorCode.REPLAY_GAP, f"events after {seen} are no longer in the log", fatal=True
            )
        session.mirror = not take
        manager.check_resume(session, claim, tenant, hello)
        state: dict[str, Any] | None = None
        if take:
            if not await self.cluster.store.take_lease(sid, holder):
                raise _overloaded("another node is taking the session over; resume again")
            try:
                state = await self.cluster.store.load_state(sid)
                await self._claim(sid, claim, attach)
            except BaseException:
                with anyio.CancelScope(shield=True), anyio.move_on_after(self.cluster.timeout_s):
                    await self.cluster.store.release(sid)
                raise
        else:
            await self._claim(sid, claim, attach)
        manager.sessions.add(session)
        accepted = manager.handle_hello(shell.conn, hello, time.monotonic())
        if accepted is None:
            manager.sessions.remove(sid)
            return None
        metrics.REPLAYED.inc(session.replay.last_seq - shell.conn.sent_seq)
        if not take:
            return self._mirror(session, holder, attach, seen, hello)
        session.flushed_seq = session.replay.last_seq
        runtime = self.cluster.hub.start_session(session, restored=state)
        assert isinstance(runtime.link, OwnerLink)
        runtime.link.attached = attach
        LEASE_TAKEOVERS.labels(why).inc()
        log.info("session taken over", extra={"session_id": sid, "from": holder, "why": why})
        if record.turn:
            # The turn was running on a node that is gone: it ends here, never silently.
            runtime.emit(TurnDone(record.turn, "failed", reason="node_lost"))
        return runtime

    async def _catch_up(self, sid: str, record: SessionRecord, seen: int) -> SessionRecord:
        """A client of the owner may have seen events its replicator has not flushed
        yet: wait a little for them to reach Redis."""
        deadline = time.monotonic() + CATCH_UP_S
        while record.last_seq < seen and time.monotonic() < deadline:
            await anyio.sleep(0.02)
            fresh, _ = await self.cluster.store.load(sid)
            if fresh is None:
                raise _resume_failed("unknown or expired session")
            record = fresh
        return record

    def _mirror(
        self, session: Session, owner: str, attach: str, seen: int, hello: Hello
    ) -> SessionRuntime:
        runtime = SessionRuntime(session, InputQueue(self.cluster.hub.limits.max_audio_queue_s))
        link = MirrorLink(self.cluster, runtime, owner, attach, seen)
        if hello.session is not None:
            link.pending.append(ConfigUpdated(session.config))
        runtime.link = link
        self.cluster.hub.runtimes[session.session_id] = runtime
        self.cluster.hub.spawn(link.run)
        return runtime
