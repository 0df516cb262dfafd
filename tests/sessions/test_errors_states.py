"""The one mapping from error codes to close codes, and the state tables
(docs/protocol.md, "Errors and close codes")."""

from __future__ import annotations

import pytest

from sessions.errors import (
    CLOSE_CODES,
    ErrorCode,
    IllegalTransition,
    ParleyError,
    ProtocolError,
    close_code_for,
)
from sessions.events import GoAway
from sessions.states import (
    CONNECTION_TRANSITIONS,
    SESSION_TRANSITIONS,
    ConnectionState,
    SessionState,
    connection_next,
    session_next,
)
from tests.sessions.transcript import SPEC_CLOSE_CODES, SPEC_ERROR_CODES, Server

EXPECTED_CLOSE = {
    "bad_message": 4003,
    "too_large": 1009,
    "unauthorized": 4001,
    "forbidden": 4003,
    "resume_failed": 4004,
    "replay_gap": 4004,
    "audio_gap": 4003,
    "rate_limited": 4029,
    "quota_exceeded": 4029,
    "overloaded": 4029,
    "unsupported": 4003,
    "tool_rejected": 4003,
    "internal": 1011,
    "slow_consumer": 4008,
    "superseded": 4009,
}


def test_every_error_code_has_its_close_code() -> None:
    assert {code.value for code in ErrorCode} == SPEC_ERROR_CODES
    assert {code.value: close for code, close in CLOSE_CODES.items()} == EXPECTED_CLOSE
    assert set(CLOSE_CODES.values()) <= SPEC_CLOSE_CODES


@pytest.mark.parametrize("code", list(ErrorCode))
def test_a_fatal_error_closes_with_its_close_code(code: ErrorCode) -> None:
    client = Server().connect("json")
    client.hello()
    client.conn.fail(ProtocolError(code, "why", fatal=True))
    client.conn.fail(ProtocolError(ErrorCode.INTERNAL, "ignored once closing", fatal=True))
    assert client.receive() == [
        {"type": "error", "code": code.value, "message": "why", "fatal": True}
    ]
    assert client.closed_with == close_code_for(code) == EXPECTED_CLOSE[code.value]
    assert client.conn.close_reason == code.value


def test_a_non_fatal_error_leaves_the_connection_open() -> None:
    client = Server().connect()
    client.hello()
    client.conn.fail(ProtocolError(ErrorCode.TOOL_REJECTED, "no such tool"))
    assert client.receive() == [
        {"type": "error", "code": "tool_rejected", "message": "no such tool", "fatal": False}
    ]
    assert client.conn.is_open and client.conn.close_code is None


def test_the_exception_tree() -> None:
    error = ProtocolError(ErrorCode.REPLAY_GAP, "lost", fatal=True)
    assert isinstance(error, ParleyError) and str(error) == "lost"
    assert error.close_code == 4004
    illegal = IllegalTransition("session", SessionState.CLOSED, "attach")
    assert isinstance(illegal, ParleyError)
    assert str(illegal).startswith("session: 'attach' is not allowed in state ")
    assert "closed" in str(illegal)
    assert (illegal.machine, illegal.state, illegal.action) == ("session", "closed", "attach")


SESSION_ACTIONS = ["attach", "detach", "close"]
CONNECTION_ACTIONS = ["accept", "fail", "close", "lost"]


@pytest.mark.parametrize("state", list(SessionState))
@pytest.mark.parametrize("action", SESSION_ACTIONS)
def test_session_table(state: SessionState, action: str) -> None:
    if (state, action) in SESSION_TRANSITIONS:
        assert session_next(state, action) is SESSION_TRANSITIONS[(state, action)]
    else:
        with pytest.raises(IllegalTransition) as caught:
            session_next(state, action)
        assert (caught.value.machine, caught.value.state, caught.value.action) == (
            "session",
            state,
            action,
        )


@pytest.mark.parametrize("state", list(ConnectionState))
@pytest.mark.parametrize("action", CONNECTION_ACTIONS)
def test_connection_table(state: ConnectionState, action: str) -> None:
    if (state, action) in CONNECTION_TRANSITIONS:
        assert connection_next(state, action) is CONNECTION_TRANSITIONS[(state, action)]
    else:
        with pytest.raises(IllegalTransition, match=f"connection: '{action}'"):
            connection_next(state, action)


def test_tables_hold_exactly_the_documented_transitions() -> None:
    assert {(s.value, a, t.value) for (s, a), t in SESSION_TRANSITIONS.items()} == {
        ("detached", "attach", "attached"),
        ("attached", "attach", "attached"),
        ("attached", "detach", "detached"),
        ("attached", "close", "closed"),
        ("detached", "close", "closed"),
    }
    assert {(s.value, a, t.value) for (s, a), t in CONNECTION_TRANSITIONS.items()} == {
        ("awaiting_hello", "accept", "open"),
        ("awaiting_hello", "fail", "closing"),
        ("open", "close", "closing"),
        ("awaiting_hello", "lost", "closed"),
        ("open", "lost", "closed"),
        ("closing", "lost", "closed"),
    }


def test_an_illegal_transition_changes_nothing() -> None:
    server = Server()
    client = server.connect()
    client.hello()
    with pytest.raises(IllegalTransition):
        client.conn.accept(client.session, GoAway("x", 1), 0)
    assert client.conn.state is ConnectionState.OPEN
    session = client.session
    session.close()
    session.close()  # closing twice is allowed: nothing happens
    with pytest.raises(ProtocolError, match="the session has ended"):
        session.attach(client.conn, 0, server.now)
    assert session.state is SessionState.CLOSED
