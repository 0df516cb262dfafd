"""The owner's side of a shared session: replicate its events, take forwarded input.

The owner keeps the session's ReplayBuffer in memory and serves its own clients from
it. ``OwnerLink.replicate`` flushes new durable events to the Redis log in batches
(one fenced script call: entries, record, snapshot, lease renewal); flushed events
count as handed out, so token deltas never merge into what the log already holds.
While Redis is down the events wait in the ring and the flush is retried with
backoff. ``OwnerLink.take_inputs`` feeds the pipeline what other nodes forward.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio
from redis.exceptions import ResponseError

from server.hub import SessionRuntime, Waker
from server.redis_metrics import FLUSHED_EVENTS, LEASE_LOST, LEASE_RENEWALS
from server.redis_store import RedisUnavailable
from sessions.events import ServerEvent
from sessions.inputs import AudioChunk, ConfigUpdated
from sessions.pipeline import Snapshotting
from sessions.relay import (
    RemoteAck,
    RemoteAttach,
    RemoteBye,
    RemoteDetach,
    decode_relay,
)
from sessions.states import SessionState
from sessions.store import SessionRecord, encode_entry, open_turn

if TYPE_CHECKING:
    from server.redis_cluster import Cluster

log = logging.getLogger("parley.cluster")

MAX_BATCH = 256
MAX_SNAPSHOT_BYTES = 1 << 20
BACKOFF_MAX_S = 2.0


class RemoteOutlet:
    """The owner's stand-in for a client attached on another node: events reach it
    through the log, so nothing is pushed here."""

    def __init__(self, attach_id: str) -> None:
        self.attach_id = attach_id
        self.missed_pings = 0

    @property
    def node(self) -> str:
        return self.attach_id.partition(" ")[0]

    def durable_added(self, last_seq: int) -> None:
        return None

    def transient_added(self, event: ServerEvent) -> None:
        return None  # partials and pongs stay on the node that made them

    def superseded(self) -> None:
        return None  # the node that claimed the session tells that node itself


class OwnerLink:
    mirror = False

    def __init__(self, cluster: Cluster, runtime: SessionRuntime, *, written: int = 0) -> None:
        self.cluster = cluster
        self.runtime = runtime
        self.store = cluster.store
        self.written = written  # the newest seq known to be in the log
        self.turn = ""
        self.attached = ""
        self.snapshot_due = False
        self.cancel = anyio.CancelScope()
        self.ended = anyio.Event()
        self._wake = Waker()
        self.taking_inputs = True
        self.lost = False

    def wake(self) -> None:
        self._wake.wake()

    @property
    def lag(self) -> int:
        return self.runtime.session.replay.last_seq - self.written

    async def run(self) -> None:
        with self.cancel:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.replicate)
                tg.start_soon(self.take_inputs)

    # -- replication ------------------------------------------------------------

    async def replicate(self) -> None:
        backoff = 0.05
        while True:
            with anyio.move_on_after(self.cluster.renew_every_s):
                await self._wake.wait()
            while True:
                try:
                    await self.flush()
                    backoff = 0.05
                    break
                except RedisUnavailable:
                    self.cluster.store_failed()
                except ResponseError as exc:
                    log.error(
                        "flush refused",
                        extra={
                            "session_id": self.runtime.session.session_id,
                            "why": str(exc)[:200],
                        },
                    )
                await anyio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
            if self.lost:
                return
            await self._check_remote_client()

    async def flush(self) -> None:
        """One batch: new events, record, snapshot, lease; ``lost`` when fenced out."""
        session = self.runtime.session
        replay = session.replay
        # What goes now is handed out: later deltas must not merge into it.
        session.flushed_seq = replay.last_seq
        batch = list(replay.after(self.written))[:MAX_BATCH]
        upto = batch[-1].seq if batch else self.written
        turn = open_turn(self.turn, [e.event for e in batch])
        # A turn's start and end are where a pipeline's state moves (a turn counter,
        # a conversation): snapshot with the batch that carries them.
        if any(e.event.wire_type() in ("turn.started", "turn.done") for e in batch):
            self.snapshot_due = True
        state = self._snapshot() if self.snapshot_due else None
        record = replace(
            SessionRecord.of(session, attached=self.attached),
            last_seq=max(upto, self.written),
            turn=turn,
        )
        capacity = replay.capacity
        trim_below = max(session.acked_seq + 1, upto - capacity + 1)
        held = await self.store.flush(
            record,
            [(e.seq, encode_entry(e.event)) for e in batch],
            trim_below=trim_below,
            state=state,
            key_ttl_ms=self.cluster.key_ttl_ms(session),
        )
        if not held:
            self.lost = True
            LEASE_LOST.inc()
            self.cluster.lease_lost(self.runtime)
            return
        LEASE_RENEWALS.inc()
        FLUSHED_EVENTS.inc(len(batch))
        self.written = max(self.written, upto)
        self.turn = turn
        if state is not None:
            self.snapshot_due = False
        self.cluster.store_ok()
        if self.written < replay.last_seq:
            self.wake()  # more than one batch waits

    def _snapshot(self) -> str | None:
        pipeline = self.runtime.pipeline
        if not isinstance(pipeline, Snapshotting):
            return None
        try:
            state = pipeline.snapshot()
            text = json.dumps(state, separators=(",", ":")) if state is not None else None
        except (TypeError, ValueError):
            log.warning("snapshot not JSON", extra={"session_id": self.runtime.session.session_id})
            return None
        if text is None or len(text) > MAX_SNAPSHOT_BYTES:
            return None
        return text

    async def _check_remote_client(self) -> None:
        """A client attached on a node that is gone is detached (the resume TTL runs)."""
        outlet = self.runtime.session.outlet
        if not isinstance(outlet, RemoteOutlet):
            return
        try:
            heard = await self.store.publish(outlet.node, {"k": "ping"})
        except RedisUnavailable:
            return
        outlet.missed_pings = 0 if heard else outlet.missed_pings + 1
        if outlet.missed_pings >= 2:
            self.runtime.session.detach(outlet, time.monotonic())
            self.cluster.hub.session_detached()

    # -- forwarded input --------------------------------------------------------

    async def take_inputs(self) -> None:
        session = self.runtime.session
        after = "0-0"
        backoff = 0.05
        while session.state is not SessionState.CLOSED:
            inputs = self.runtime.inputs
            if not inputs.has_audio_room():
                await inputs.wait_audio_room()
            if not self.taking_inputs:
                await anyio.sleep_forever()
            try:
                rows = await self.store.take_inputs(session.session_id, after, 64)
                backoff = 0.05
            except (RedisUnavailable, ResponseError):
                await anyio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            for row_id, data in rows:
                after = row_id
                try:
                    item = decode_relay(data, time.monotonic())
                except ValueError as exc:
                    log.warning(
                        "bad forwarded input",
                        extra={"session_id": session.session_id, "why": str(exc)},
                    )
                    continue
                self._apply(item)
            if rows:
                self.wake()
                if self.runtime.waker is not None:
                    self.runtime.waker.wake()

    def _apply(self, item: object) -> None:
        runtime = self.runtime
        session = runtime.session
        if session.state is SessionState.CLOSED:
            return
        match item:
            case AudioChunk(data=data, chunk=chunk):
                # The owner's verdict is the one that counts (and reports gaps).
                if session.audio_verdict(chunk).accept:
                    runtime.inputs.put(item, len(data) / session.config.audio.bytes_per_second())
            case ConfigUpdated(config=config):
                if config.mode == session.config.mode:
                    session.config = config
                    runtime.inputs.put(item)
            case RemoteAttach(attach_id=attach_id, last_seq=last_seq):
                replay = session.replay
                seen = min(max(last_seq, replay.first_seq - 1), replay.last_seq)
                session.attach(RemoteOutlet(attach_id), seen, time.monotonic())
                self.attached = attach_id
            case RemoteDetach(attach_id=attach_id):
                outlet = session.outlet
                if isinstance(outlet, RemoteOutlet) and outlet.attach_id == attach_id:
                    session.detach(outlet, time.monotonic())
                    self.cluster.hub.session_detached()
            case RemoteAck(seq=seq):
                session.ack(min(seq, session.replay.last_seq))
            case RemoteBye():
                self.cluster.hub.end_session(session, "bye")
            case _:  # AudioEnd, UserText, CancelRequest: straight to the pipeline
                runtime.inputs.put(item)  # type: ignore[arg-type]
