"""A session served on a node that does not own it.

The client's connection attaches to a mirror ``Session`` here: ``follow`` copies the
owner's durable events from the Redis log into the mirror's ring (replay first, then
live, with ``XREAD BLOCK``) and the connection sends them as usual; ``forward`` hands
the client's input, acks, attach and detach to the owner through the session's input
stream. When the owner is gone (its lease moved, or its node no longer answers) the
client is told to go away and resume: the node it resumes on takes the session over.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio

from server.hub import SessionRuntime, Waker
from server.redis_metrics import FORWARDED, MIRRORED
from server.redis_store import RedisUnavailable
from sessions.connection import Connection
from sessions.errors import ErrorCode, ProtocolError
from sessions.relay import Relayed, RemoteAck, RemoteAttach, RemoteBye, RemoteDetach, encode_relay

if TYPE_CHECKING:
    from server.redis_cluster import Cluster

log = logging.getLogger("parley.cluster")

# Forwarded items waiting for the owner beyond which the forwarder holds back (the
# local input queue then fills and the socket stops being read: TCP backpressure).
MAX_WAITING_INPUTS = 512
CHECK_OWNER_EVERY_S = 1.0
FINAL_FORWARD_S = 5.0


class MirrorLink:
    mirror = True

    def __init__(
        self, cluster: Cluster, runtime: SessionRuntime, owner: str, attach_id: str, seen: int
    ) -> None:
        self.cluster = cluster
        self.runtime = runtime
        self.store = cluster.store
        self.owner = owner
        self.attach_id = attach_id
        self.pending: list[Relayed] = [RemoteAttach(attach_id, seen)]
        self.acked = seen
        self.finishing = False
        self.pending_tail: Relayed = RemoteDetach(attach_id)
        self.cancel = anyio.CancelScope()
        self.ended = anyio.Event()
        self._wake = Waker()

    def wake(self) -> None:
        self._wake.wake()

    def finish(self, *, bye: bool) -> None:
        """The client left (or said bye): forward what is left, then stop."""
        if not self.finishing:
            self.finishing = True
            self.pending_tail = RemoteBye() if bye else RemoteDetach(self.attach_id)
        self.wake()

    async def run(self) -> None:
        try:
            with self.cancel:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.follow, tg.cancel_scope)
                    await self.forward()
                    tg.cancel_scope.cancel()
        finally:
            self.ended.set()

    # -- client → owner ---------------------------------------------------------

    async def _collect(self) -> None:
        inputs = self.runtime.inputs
        while len(inputs):
            item = await inputs.get()  # returns at once: items are waiting
            if item is not None:
                self.pending.append(item)
        acked = self.runtime.session.acked_seq
        if acked > self.acked:
            self.acked = acked
            self.pending.append(RemoteAck(acked))

    async def forward(self) -> None:
        backoff = 0.05
        deadline: float | None = None
        while True:
            await self._collect()
            done = self.finishing
            if done:
                deadline = time.monotonic() + FINAL_FORWARD_S
                if isinstance(self.pending_tail, RemoteBye):
                    await self._revoke(deadline)
                self.pending.append(self.pending_tail)
            while self.pending:
                batch = self.pending[:64]
                try:
                    waiting = await self.store.forward(
                        self.runtime.session.session_id, [encode_relay(i) for i in batch]
                    )
                except RedisUnavailable:
                    if deadline is not None and time.monotonic() > deadline:
                        log.warning("forward abandoned", extra={"items": len(self.pending)})
                        return
                    await anyio.sleep(backoff)
                    backoff = min(2.0, backoff * 2)
                    continue
                backoff = 0.05
                del self.pending[: len(batch)]
                FORWARDED.inc(len(batch))
                if waiting > MAX_WAITING_INPUTS and not done:
                    await anyio.sleep(0.05)
                    if not self.pending:
                        self.wake()  # look at the owner's backlog again soon
            if done:
                return
            with anyio.move_on_after(1.0):
                await self._wake.wait()

    async def _revoke(self, deadline: float) -> None:
        """Spend the token before the owner hears the bye: no resume races the end."""
        backoff = 0.05
        while True:
            try:
                await self.store.revoke(self.runtime.session.session_id)
                break
            except RedisUnavailable:
                if time.monotonic() > deadline:
                    log.warning(
                        "bye not recorded", extra={"session_id": self.runtime.session.session_id}
                    )
                    break
                await anyio.sleep(backoff)
                backoff = min(2.0, backoff * 2)
        self.ended.set()

    # -- owner → client ---------------------------------------------------------

    async def follow(self, scope: anyio.CancelScope) -> None:
        session = self.runtime.session
        checked = time.monotonic()
        missed = 0
        backoff = 0.05
        while True:
            try:
                rows = await self.store.follow_log(session.session_id, session.replay.last_seq, 256)
                backoff = 0.05
            except RedisUnavailable:
                await anyio.sleep(backoff)
                backoff = min(2.0, backoff * 2)
                continue
            except ProtocolError as error:
                self._fail(error)
                return
            for seq, event in rows:
                if seq <= session.replay.last_seq:
                    continue
                if not session.mirror_event(seq, event):
                    self._fail(
                        ProtocolError(
                            ErrorCode.REPLAY_GAP, "events were lost from the log", fatal=True
                        )
                    )
                    return
                MIRRORED.inc()
            if rows and self.runtime.waker is not None:
                self.runtime.waker.wake()
            if time.monotonic() - checked < CHECK_OWNER_EVERY_S:
                continue
            checked = time.monotonic()
            try:
                holder = await self.store.lease_holder(session.session_id)
                heard = await self.store.publish(self.owner, {"k": "ping"}) if holder else 0
            except RedisUnavailable:
                continue
            missed = 0 if heard else missed + 1
            if holder != self.owner or missed >= 2:
                why = "owner_lost" if holder == self.owner or not holder else "owner_moved"
                self.go_away(why)
                return

    def go_away(self, why: str) -> None:
        """Send the client to resume (the node it resumes on will own the session)."""
        outlet = self.runtime.session.outlet
        if isinstance(outlet, Connection):
            log.info(
                "owner gone", extra={"session_id": self.runtime.session.session_id, "why": why}
            )
            outlet.go_away(why, 0)
        if self.runtime.waker is not None:
            self.runtime.waker.wake()

    def _fail(self, error: ProtocolError) -> None:
        outlet = self.runtime.session.outlet
        if isinstance(outlet, Connection):
            outlet.fail(error)
        if self.runtime.waker is not None:
            self.runtime.waker.wake()
