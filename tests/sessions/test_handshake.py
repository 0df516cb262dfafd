"""Transcripts of the handshake: hello in, welcome or error and close out
(docs/protocol.md, "Session lifecycle" 1-2, "Errors and close codes")."""

from __future__ import annotations

import base64

import pytest

from sessions.codec import Kind
from sessions.connection import HelloReceived
from sessions.inputs import AudioChunk
from sessions.messages import Hello
from sessions.states import ConnectionState, SessionState
from sessions.tenants import TenantPolicy
from tests.sessions.transcript import ACME, ACME_KEY, GLOBEX_KEY, Server, error

LIMITS_WIRE = {
    "max_frame_bytes": 1 << 20,
    "max_text_chars": 8000,
    "replay_events": 4096,
    "max_audio_queue_s": 10.0,
}


@pytest.mark.parametrize("kind", ["msgpack", "json"])
def test_hello_gets_a_welcome_with_a_signed_single_session_token(kind: Kind) -> None:
    server = Server(now=50.0)
    client = server.connect(kind)
    [event] = client.send({"type": "hello", "v": 1, "token": ACME_KEY, "extra": "ignored"})
    assert event == HelloReceived(Hello(1, ACME_KEY, None, None))
    [welcome] = client.receive()
    session = client.session
    assert welcome == {
        "type": "welcome",
        "session_id": session.session_id,
        "resume_token": welcome["resume_token"],
        "resumed": False,
        "last_seq": 0,
        "audio_next": 0,
        "heartbeat_s": 15.0,
        "resume_ttl_s": 120.0,
        "limits": LIMITS_WIRE,
        "server": {"version": "9.9", "node": "node-t"},
        "mode": "agent",
    }
    claim = server.signer.open_resume_token(welcome["resume_token"], 50.0)
    assert (claim.session_id, claim.tenant_id, claim.generation) == (
        session.session_id,
        "acme",
        1,
    )
    assert claim.expires_at == 50.0 + 24 * 3600
    assert session.state is SessionState.ATTACHED
    assert client.conn.state is ConnectionState.OPEN
    assert server.manager.sessions == {session.session_id: session}
    assert client.accepted is not None and client.accepted.created
    assert not client.accepted.resumed


def test_msgpack_audio_travels_as_bin_bytes() -> None:
    server = Server()
    client = server.connect("msgpack")
    client.hello(session={"mode": "caption"})
    frame = client.codec.encode({"type": "audio", "data": b"\x01\x02" * 8, "chunk": 0})
    assert isinstance(frame, bytes) and b"\xc4\x10" + b"\x01\x02" * 8 in frame  # bin 8
    client.send_frame(frame, at=1001.0)
    assert client.inputs == [AudioChunk(b"\x01\x02" * 8, 0, 1001.0)]
    assert client.audio_seconds == [16 / 32000]
    client.send({"type": "audio", "data": "AAAA", "chunk": 1})
    assert client.receive() == [error("bad_message", "audio.data must be bytes", fatal=False)]


def test_json_audio_is_base64_text_or_a_binary_frame() -> None:
    server = Server()
    client = server.connect("json")
    client.hello(session={"mode": "caption", "audio": {"sample_rate": 48000, "channels": 2}})
    pcm = bytes(range(16))
    client.send({"type": "audio", "data": pcm, "chunk": 0})  # the codec writes base64
    client.send_frame('{"type":"audio","data":"' + base64.b64encode(pcm).decode() + '"}')
    client.send_frame(pcm)  # a binary frame is audio without a chunk index
    assert [i.chunk for i in client.inputs if isinstance(i, AudioChunk)] == [0, 1, 2]
    assert {i.data for i in client.inputs if isinstance(i, AudioChunk)} == {pcm}
    assert client.audio_seconds == [16 / 192000] * 3
    client.send_frame('{"type":"audio","data":"not base64!"}')
    assert client.receive() == [error("bad_message", "audio.data is not valid base64", fatal=False)]


def test_no_hello_in_time_closes_with_4003() -> None:
    server = Server(now=0.0)
    client = server.connect()
    assert client.conn.next_deadline() == 10.0
    client.tick(at=9.99)
    assert client.receive() == [] and client.conn.close_code is None
    client.tick(at=10.0)
    assert client.receive() == [error("bad_message", "no hello in time", fatal=True)]
    assert client.closed_with == 4003
    assert client.conn.next_deadline() is None
    client.drop()
    assert client.conn.state is ConnectionState.CLOSED
    assert server.manager.sessions == {}


def test_first_message_other_than_hello_closes_with_4003() -> None:
    client = Server().connect("json")
    client.send({"type": "ping", "id": 1})
    assert client.receive() == [error("bad_message", "the first message must be hello", fatal=True)]
    assert client.closed_with == 4003
    # Nothing more is read from a closing connection.
    assert client.send({"type": "hello", "v": 1, "token": ACME_KEY}) == []
    assert client.receive() == []


def test_garbage_first_frame_closes_with_4003() -> None:
    client = Server().connect("msgpack")
    client.send_frame(b"\xc1")
    assert client.receive() == [
        error("bad_message", "undecodable msgpack frame (FormatError)", fatal=True)
    ]
    assert client.closed_with == 4003


def test_bad_token_closes_with_4001() -> None:
    client = Server().connect()
    client.send({"type": "hello", "v": 1, "token": "key-nobody"})
    assert client.receive() == [error("unauthorized", "invalid or expired token", fatal=True)]
    assert client.closed_with == 4001


@pytest.mark.parametrize(("v", "shown"), [(2, "2"), (0, "0"), (True, "True"), ("1", "'1'")])
def test_hello_of_another_version_closes_with_4003_unsupported(v: object, shown: str) -> None:
    client = Server().connect()
    client.send({"type": "hello", "v": v, "token": ACME_KEY})
    assert client.receive() == [
        error("unsupported", f"protocol version {shown}; this server speaks 1", fatal=True)
    ]
    assert client.closed_with == 4003


def test_hello_without_a_token_closes_with_4003() -> None:
    client = Server().connect()
    client.send({"type": "hello", "v": 1})
    assert client.receive() == [error("bad_message", "hello.token must be a string", fatal=True)]
    assert client.closed_with == 4003


def test_forbidden_tools_close_with_4003_forbidden() -> None:
    client = Server().connect()
    client.send({"type": "hello", "v": 1, "token": ACME_KEY, "session": {"tools": ["shell"]}})
    assert client.receive() == [
        error("forbidden", "tools not allowed for this tenant: shell", fatal=True)
    ]
    assert client.closed_with == 4003


def test_forbidden_mode_closes_with_4003_forbidden() -> None:
    client = Server().connect()
    client.send({"type": "hello", "v": 1, "token": GLOBEX_KEY, "session": {"mode": "caption"}})
    assert client.receive() == [
        error("forbidden", "mode 'caption' is not allowed for this tenant", fatal=True)
    ]
    assert client.closed_with == 4003


def test_invalid_session_config_in_hello_closes_with_4003() -> None:
    client = Server().connect()
    client.send(
        {"type": "hello", "v": 1, "token": ACME_KEY, "session": {"audio": {"sample_rate": 9999}}}
    )
    assert client.receive() == [error("unsupported", "sample rate 9999", fatal=True)]
    assert client.closed_with == 4003


def test_allowed_tools_are_accepted() -> None:
    client = Server().connect()
    client.hello(session={"tools": ["search"], "latency_budget_ms": 900})
    assert client.session.config.tools == ("search",)
    assert client.session.tenant.session_tools(client.session.config) == ("search",)
    assert client.session.tenant.latency_budget(client.session.config) == 900


def test_mode_this_node_does_not_run_closes_with_4003_unsupported() -> None:
    server = Server()
    server.manager.modes = frozenset({"agent"})
    client = server.connect()
    client.send({"type": "hello", "v": 1, "token": ACME_KEY, "session": {"mode": "caption"}})
    assert client.receive() == [
        error("unsupported", "mode 'caption' is not available here", fatal=True)
    ]
    assert client.closed_with == 4003


def test_tenant_quota_closes_with_4029_and_counts_detached_sessions() -> None:
    server = Server()
    for _ in range(3):
        peer = server.connect()
        peer.hello()
        peer.drop()  # detached sessions still count
    client = server.connect()
    client.send({"type": "hello", "v": 1, "token": ACME_KEY})
    assert client.receive() == [
        error("quota_exceeded", "at most 3 sessions per tenant", fatal=True)
    ]
    assert client.closed_with == 4029
    # Another tenant is not affected.
    server.connect().hello(token=GLOBEX_KEY)
    assert server.manager.per_tenant() == {"acme": 3, "globex": 1}


def test_global_capacity_closes_with_4029_overloaded() -> None:
    server = Server(max_sessions=2)
    server.connect().hello()
    server.connect().hello(token=GLOBEX_KEY)
    client = server.connect()
    client.send({"type": "hello", "v": 1, "token": GLOBEX_KEY})
    assert client.receive() == [error("overloaded", "the server is at capacity", fatal=True)]
    assert client.closed_with == 4029


@pytest.mark.parametrize("state", ["draining", "starting"])
def test_draining_or_starting_node_closes_with_4029_overloaded(state: str) -> None:
    server = Server()
    setattr(server.manager, state, True)
    client = server.connect()
    client.send({"type": "hello", "v": 1, "token": ACME_KEY})
    assert client.receive() == [error("overloaded", f"this node is {state}", fatal=True)]
    assert client.closed_with == 4029


def test_ephemeral_client_token_authenticates_its_tenant() -> None:
    server = Server()
    token, expires_at = server.auth.issue_client_token(ACME, server.now)
    assert expires_at == server.now + 300.0
    client = server.connect()
    client.hello(token=token)
    assert client.session.tenant.tenant_id == "acme"
    # Expired, it is refused like any bad token.
    late = server.connect()
    late.send({"type": "hello", "v": 1, "token": token}, at=server.now + 300.0)
    assert late.receive() == [error("unauthorized", "invalid or expired token", fatal=True)]
    assert late.closed_with == 4001


def test_open_access_gives_unknown_callers_the_open_tenant() -> None:
    server = Server(tenants={}, open_access=TenantPolicy("local"))
    assert server.auth.open_access
    client = server.connect()
    client.hello(token="anything")
    assert client.session.tenant.tenant_id == "local"
    assert server.auth.tenant("local") is client.session.tenant
    assert server.auth.tenant("acme") is None


def test_times_the_client_sees_are_wall_clock_times() -> None:
    """``now`` is monotonic; pongs and token expiry use the wall clock, so that
    other nodes read a resume token the same way."""
    server = Server(now=100.0, wall_offset=1_700_000_000.0)
    client = server.connect("json")
    welcome = client.hello()
    claim = server.signer.open_resume_token(welcome["resume_token"], 1_700_000_100.0)
    assert claim.expires_at == 1_700_000_100.0 + 24 * 3600
    client.send({"type": "ping", "id": "w"}, at=101.5)
    assert client.receive() == [{"type": "pong", "id": "w", "server_time": 1_700_000_101.5}]
    # The token is checked against the wall clock too.
    client.drop()
    again = server.connect()
    again.resume(welcome, last_seq=0)
    assert again.receive()[0]["resumed"] is True
