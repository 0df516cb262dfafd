"""The shared session store in Redis: every command the cluster sends is here.

Per session (``{sid}`` is a hash tag, so one session's keys share a cluster slot):

- ``<p>:{sid}:meta``  hash: the ``SessionRecord`` (sessions/store.py)
- ``<p>:{sid}:log``   stream: durable events, entry id ``<seq>-0``, field ``e``
- ``<p>:{sid}:in``    stream: client input forwarded to the owner (sessions/relay.py)
- ``<p>:{sid}:lease`` string: the owning node, ``SET NX PX``, renewed by the owner
- ``<p>:{sid}:state`` string: the pipeline's snapshot (JSON), if it makes one

Per node, the pub/sub channel ``<p>:node:<node>`` carries notices (4009 takeovers,
ended sessions, moved owners); ``PUBLISH`` answering 0 means the node is gone.
Writes of an owner are fenced by its lease: they happen only while it holds it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from server.redis_metrics import REDIS_ERRORS, REDIS_OPS
from sessions.errors import ErrorCode, ProtocolError
from sessions.events import StoredEvent
from sessions.store import SessionRecord, decode_entry, entry_id, parse_record

# Owner fields are written on every flush; claim fields (token generation, who is
# attached) belong to the atomic claim and are written by a flush only to recreate a
# record that Redis lost (a restart without persistence).
_FLUSH = """
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
local existed = redis.call('EXISTS', KEYS[1])
local last = 0
if existed == 1 then last = tonumber(redis.call('HGET', KEYS[1], 'last_seq')) or 0 end
local i = 6
local n = tonumber(ARGV[5])
for j = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for j = 1, n do
  if existed == 0 then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  i = i + 2
end
if ARGV[i] ~= '' then redis.call('SET', KEYS[4], string.sub(ARGV[i], 2)) end
i = i + 1
while i <= #ARGV do
  if tonumber(ARGV[i]) > last then
    redis.call('XADD', KEYS[2], ARGV[i] .. '-0', 'e', ARGV[i + 1])
  end
  i = i + 2
end
if tonumber(ARGV[4]) > 1 then redis.call('XTRIM', KEYS[2], 'MINID', ARGV[4] .. '-0') end
for _, k in ipairs({KEYS[1], KEYS[2], KEYS[4], KEYS[5]}) do redis.call('PEXPIRE', k, ARGV[3]) end
return 1
"""

_CLAIM = """
local m = redis.call('HMGET', KEYS[1], 'state', 'tenant', 'gen', 'attached')
if not m[1] then return {'missing', ''} end
if m[1] ~= 'open' then return {'closed', ''} end
if m[2] ~= ARGV[2] then return {'tenant', ''} end
if m[3] ~= ARGV[1] then return {'used', ''} end
redis.call('HSET', KEYS[1], 'gen', tostring(tonumber(ARGV[1]) + 1), 'attached', ARGV[3])
return {'ok', m[4] or ''}
"""

_TAKE = """
local cur = redis.call('GET', KEYS[1])
if (not cur and ARGV[3] == '') or cur == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]); return 1 end
return 0
"""

_CLOSE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'closed')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 1
"""

# A bye at a node that only mirrors the session: spend the token now, so no resume
# anywhere succeeds while the owner is still ending the session.
_REVOKE = """
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then return 0 end
redis.call('HSET', KEYS[1], 'gen', tostring(tonumber(gen) + 1))
return 1
"""

_CLAIM_REFUSALS = {
    "missing": "unknown or expired session",
    "closed": "the session has ended",
    "tenant": "resume token of another tenant",
    "used": "resume token already used",
}


class RedisUnavailable(Exception):
    """Redis cannot be reached, failed, or is slower than the configured timeout."""


def _s(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisStore:
    def __init__(self, url: str, *, prefix: str, node: str, lease_ms: int, timeout_s: float):
        self.node = node
        self.prefix = prefix
        self.lease_ms = lease_ms
        # Reads that block wait less than the socket timeout, so a blocked read is
        # never mistaken for a dead Redis.
        self.block_ms = max(50, min(1000, int(timeout_s * 500)))
        # No retries inside the client: callers back off and count their own tries.
        self.redis: Redis = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._flush = self.redis.register_script(_FLUSH)
        self._claim = self.redis.register_script(_CLAIM)
        self._take = self.redis.register_script(_TAKE)
        self._release = self.redis.register_script(_RELEASE)
        self._close = self.redis.register_script(_CLOSE)
        self._revoke = self.redis.register_script(_REVOKE)

    async def aclose(self) -> None:
        await self.redis.aclose()

    # -- keys -------------------------------------------------------------------

    def key(self, session_id: str, part: str) -> str:
        return f"{self.prefix}:{{{session_id}}}:{part}"

    def channel(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    def _keys(self, sid: str) -> list[str]:
        return [self.key(sid, p) for p in ("meta", "log", "lease", "state", "in")]

    async def _call(self, op: str, count: int, coro: Any) -> Any:
        REDIS_OPS.labels(op).inc(count)
        try:
            return await coro
        except ResponseError:
            REDIS_ERRORS.labels(op).inc()
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            REDIS_ERRORS.labels(op).inc()
            raise RedisUnavailable(f"{op}: {type(exc).__name__}") from None

    # -- node -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._call("ping", 1, self.redis.ping())

    def pubsub(self) -> PubSub:
        return self.redis.pubsub(ignore_subscribe_messages=True)

    async def publish(self, node: str, notice: Mapping[str, Any]) -> int:
        """Send a notice to ``node``; the number of nodes that heard it (0: gone)."""
        heard = await self._call(
            "publish", 1, self.redis.publish(self.channel(node), json.dumps(notice))
        )
        return int(heard)

    # -- records ----------------------------------------------------------------

    async def create(self, record: SessionRecord, key_ttl_ms: int) -> None:
        """A new session, owned by this node."""
        meta = self.key(record.session_id, "meta")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(meta, mapping=record.to_fields())
            pipe.pexpire(meta, key_ttl_ms)
            pipe.set(self.key(record.session_id, "lease"), self.node, px=self.lease_ms)
            await self._call("create", 3, pipe.execute())

    async def load(self, session_id: str) -> tuple[SessionRecord | None, str]:
        """The session's record (``None``: unknown) and its lease holder ("" if none);
        ``resume_failed`` when the stored record is garbage."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key(session_id, "meta"))
            pipe.get(self.key(session_id, "lease"))
            try:
                fields, holder = await self._call("load", 2, pipe.execute())
            except ResponseError:
                raise _garbage("record") from None
        if not fields:
            return None, ""
        return parse_record(session_id, fields), _s(holder) if holder else ""

    async def claim(self, session_id: str, generation: int, tenant: str, attach: str) -> str:
        """Spend resume token ``generation`` atomically; the connection attached
        before (``"<node> <conn>"`` or ""). ``resume_failed`` when it cannot."""
        try:
            status, previous = await self._call(
                "claim",
                1,
                self._claim(keys=[self.key(session_id, "meta")], args=[generation, tenant, attach]),
            )
        except ResponseError:
            raise _garbage("record") from None
        refusal = _CLAIM_REFUSALS.get(_s(status))
        if refusal is not None:
            raise ProtocolError(ErrorCode.RESUME_FAILED, refusal, fatal=True)
        return _s(previous)

    async def revoke(self, session_id: str) -> None:
        """Spend the session's current resume token (a bye ends the session)."""
        await self._call("revoke", 1, self._revoke(keys=[self.key(session_id, "meta")]))

    async def lease_holder(self, session_id: str) -> str:
        holder = await self._call("get", 1, self.redis.get(self.key(session_id, "lease")))
        return _s(holder) if holder else ""

    async def take_lease(self, session_id: str, expected: str) -> bool:
        """Own the session if its lease is held by ``expected`` ("" for nobody)."""
        key = self.key(session_id, "lease")
        return bool(
            await self._call(
                "take", 1, self._take(keys=[key], args=[self.node, self.lease_ms, expected])
            )
        )

    async def release(self, session_id: str) -> None:
        await self._call(
            "release", 1, self._release(keys=[self.key(session_id, "lease")], args=[self.node])
        )

    async def close_session(self, session_id: str, keep_ms: int) -> None:
        """Mark the session ended (kept ``keep_ms`` so late resumes hear so)."""
        keys = [self.key(session_id, p) for p in ("meta", "lease", "log", "in", "state")]
        await self._call("close", 1, self._close(keys=keys, args=[self.node, keep_ms]))

    async def flush(
        self,
        record: SessionRecord,
        entries: Sequence[tuple[int, bytes]],
        *,
        trim_below: int,
        state: str | None,
        key_ttl_ms: int,
    ) -> bool:
        """Write new log entries, the record and the snapshot, renew the lease; all
        or nothing, and only while this node holds the lease (``False`` once lost)."""
        fields = record.to_fields()
        claim = {k: fields.pop(k) for k in ("gen", "attached")}
        args: list[Any] = [self.node, self.lease_ms, key_ttl_ms, trim_below, len(fields)]
        for pair in fields.items():
            args += pair
        args.append(len(claim))
        for pair in claim.items():
            args += pair
        args.append("" if state is None else "=" + state)
        for seq, data in entries:
            args += [seq, data]
        held = await self._call(
            "flush", 1, self._flush(keys=self._keys(record.session_id), args=args)
        )
        return bool(held)

    async def load_state(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._call("get", 1, self.redis.get(self.key(session_id, "state")))
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    # -- the replay log ---------------------------------------------------------

    async def read_log(
        self, session_id: str, after: int, count: int
    ) -> list[tuple[int, StoredEvent]]:
        """Log entries after seq ``after``, oldest first; ``resume_failed`` on garbage."""
        key = self.key(session_id, "log")
        try:
            rows = await self._call(
                "xrange", 1, self.redis.xrange(key, min=entry_id(after + 1), count=count)
            )
        except ResponseError:
            raise _garbage("log") from None
        return [decode_entry(rid, fields.get(b"e")) for rid, fields in rows]

    async def follow_log(
        self, session_id: str, after: int, count: int
    ) -> list[tuple[int, StoredEvent]]:
        """Like ``read_log``, waiting up to ``block_ms`` for the next entry."""
        key = self.key(session_id, "log")
        try:
            reply = await self._call(
                "xread",
                1,
                self.redis.xread({key: entry_id(after)}, count=count, block=self.block_ms),
            )
        except ResponseError:
            raise _garbage("log") from None
        rows = reply[0][1] if reply else []
        return [decode_entry(rid, fields.get(b"e")) for rid, fields in rows]

    async def log_bounds(self, session_id: str) -> int | None:
        """The oldest seq in the log, ``None`` when it is empty."""
        key = self.key(session_id, "log")
        try:
            rows = await self._call("xrange", 1, self.redis.xrange(key, count=1))
        except ResponseError:
            raise _garbage("log") from None
        return decode_entry(rows[0][0], rows[0][1].get(b"e"))[0] if rows else None

    # -- forwarded input --------------------------------------------------------

    async def forward(self, session_id: str, items: Sequence[bytes]) -> int:
        """Append client input for the owner; how many items wait there now."""
        key = self.key(session_id, "in")
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd(key, {"m": item})
            pipe.xlen(key)
            replies = await self._call("forward", len(items) + 1, pipe.execute())
        return int(replies[-1])

    async def take_inputs(
        self, session_id: str, after: str, count: int
    ) -> list[tuple[str, object]]:
        """Forwarded input after entry ``after``, waiting up to ``block_ms``; taken
        items are deleted (a node lost with input in hand loses that input)."""
        key = self.key(session_id, "in")
        reply = await self._call(
            "xread", 1, self.redis.xread({key: after}, count=count, block=self.block_ms)
        )
        rows = reply[0][1] if reply else []
        if rows:
            await self._call("xdel", 1, self.redis.xdel(key, *[rid for rid, _ in rows]))
        return [(_s(rid), fields.get(b"m")) for rid, fields in rows]


def _garbage(what: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.RESUME_FAILED, f"the session's stored {what} is unreadable", fatal=True
    )
