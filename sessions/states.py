"""State machines as data: an enum of states and a table of allowed transitions."""

from __future__ import annotations

from enum import StrEnum

from sessions.errors import IllegalTransition


class SessionState(StrEnum):
    DETACHED = "detached"
    ATTACHED = "attached"
    CLOSED = "closed"


class ConnectionState(StrEnum):
    AWAITING_HELLO = "awaiting_hello"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


SESSION_TRANSITIONS: dict[tuple[SessionState, str], SessionState] = {
    (SessionState.DETACHED, "attach"): SessionState.ATTACHED,
    (SessionState.ATTACHED, "attach"): SessionState.ATTACHED,  # takeover (4009)
    (SessionState.ATTACHED, "detach"): SessionState.DETACHED,
    (SessionState.ATTACHED, "close"): SessionState.CLOSED,
    (SessionState.DETACHED, "close"): SessionState.CLOSED,
}

CONNECTION_TRANSITIONS: dict[tuple[ConnectionState, str], ConnectionState] = {
    (ConnectionState.AWAITING_HELLO, "accept"): ConnectionState.OPEN,
    (ConnectionState.AWAITING_HELLO, "fail"): ConnectionState.CLOSING,
    (ConnectionState.OPEN, "close"): ConnectionState.CLOSING,
    (ConnectionState.AWAITING_HELLO, "lost"): ConnectionState.CLOSED,
    (ConnectionState.OPEN, "lost"): ConnectionState.CLOSED,
    (ConnectionState.CLOSING, "lost"): ConnectionState.CLOSED,
}


def session_next(state: SessionState, action: str) -> SessionState:
    try:
        return SESSION_TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition("session", state, action) from None


def connection_next(state: ConnectionState, action: str) -> ConnectionState:
    try:
        return CONNECTION_TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition("connection", state, action) from None
