"""Signed resume and client tokens, and who a caller is (docs/protocol.md, "Resume",
"HTTP beside the socket")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.auth import Authenticator
from sessions.errors import ErrorCode, ProtocolError
from sessions.tenants import TenantPolicy
from sessions.tokens import ResumeClaim, TokenSigner
from tests.sessions.transcript import SECRET, Server, error

SIGNER = TokenSigner(SECRET)


def signed(payload: object, secret: bytes = SECRET) -> str:
    """A token as any holder of ``secret`` could make it."""
    body = json.dumps(payload).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()
    return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in (body, mac))


def test_the_secret_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        TokenSigner(b"short")


def test_a_resume_token_round_trips_until_it_expires() -> None:
    token = SIGNER.resume_token("s_1", "acme", 3, 100.0)
    assert "=" not in token and token.count(".") == 1
    assert SIGNER.open_resume_token(token, 99.9) == ResumeClaim("s_1", "acme", 3, 100.0)
    with pytest.raises(ProtocolError, match="resume token expired") as caught:
        SIGNER.open_resume_token(token, 100.0)
    assert caught.value.code is ErrorCode.RESUME_FAILED and caught.value.fatal


def test_tokens_of_another_secret_or_tampered_are_invalid() -> None:
    other = TokenSigner(b"another-secret-0123456789")
    token = other.resume_token("s_1", "acme", 1, 1e12)
    with pytest.raises(ProtocolError, match="invalid resume token"):
        SIGNER.open_resume_token(token, 0.0)
    body, mac = SIGNER.resume_token("s_1", "acme", 1, 1e12).split(".")
    forged = signed({"k": "resume", "sid": "s_2", "ten": "acme", "gen": 1, "exp": 1e12}, b"x" * 16)
    for bad in [f"{body}.{mac[:-2]}", f"{body[:-1]}.{mac}", forged, f"{body}{mac}", ""]:
        with pytest.raises(ProtocolError, match="invalid resume token"):
            SIGNER.open_resume_token(bad, 0.0)


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"k": "client", "ten": "acme", "exp": 1e12},
        {"k": "resume", "sid": "s", "ten": "acme", "gen": "1", "exp": 1e12},
        {"k": "resume", "sid": "s", "ten": "acme", "gen": 1, "exp": "never"},
        {"k": "resume", "sid": "s", "ten": None, "gen": 1, "exp": 1e12},
    ],
)
def test_well_signed_payloads_of_the_wrong_shape_are_invalid(payload: object) -> None:
    with pytest.raises(ProtocolError, match="invalid resume token"):
        SIGNER.open_resume_token(signed(payload), 0.0)


def test_a_well_signed_body_that_is_not_json_is_invalid() -> None:
    mac = hmac.new(SECRET, b"\xff not json", hashlib.sha256).digest()
    token = ".".join(base64.urlsafe_b64encode(p).decode() for p in (b"\xff not json", mac))
    with pytest.raises(ProtocolError, match="invalid resume token"):
        SIGNER.open_resume_token(token, 0.0)
    assert SIGNER.open_client_token(token, 0.0) is None


def test_client_tokens_name_a_tenant_until_they_expire() -> None:
    token = SIGNER.client_token("acme", 50.0)
    assert SIGNER.open_client_token(token, 49.0) == "acme"
    assert SIGNER.open_client_token(token, 50.0) is None
    assert SIGNER.client_token("acme", 50.0) != token  # a nonce in each
    assert SIGNER.open_client_token(SIGNER.resume_token("s", "acme", 1, 50.0), 0.0) is None
    assert SIGNER.open_client_token(signed({"k": "client", "ten": 1, "exp": 60}), 0.0) is None
    assert SIGNER.open_client_token(signed({"k": "client", "ten": "a", "exp": "x"}), 0.0) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_a_resume_token_or_resume_failed(token: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        SIGNER.open_resume_token(token, 0.0)
    assert caught.value.code is ErrorCode.RESUME_FAILED
    assert SIGNER.open_client_token(token, 0.0) is None


def test_authenticate_api_keys_and_client_tokens() -> None:
    acme = TenantPolicy("acme")
    auth = Authenticator({"key-1": acme}, SIGNER, client_token_ttl_s=30.0)
    assert not auth.open_access
    assert auth.authenticate("key-1", 0.0) is acme
    token, expires_at = auth.issue_client_token(acme, 10.0)
    assert expires_at == 40.0
    assert auth.authenticate(token, 39.0) is acme
    with pytest.raises(ProtocolError) as caught:
        auth.authenticate(token, 40.0)
    assert (caught.value.code, caught.value.close_code) == (ErrorCode.UNAUTHORIZED, 4001)
    # A valid client token of a tenant this node does not know is refused.
    with pytest.raises(ProtocolError, match="invalid or expired token"):
        auth.authenticate(SIGNER.client_token("ghost", 1e12), 0.0)
    for wrong in ["key-2", "key-1 ", "", "KEY-1"]:
        with pytest.raises(ProtocolError, match="invalid or expired token"):
            auth.authenticate(wrong, 0.0)


def test_a_token_with_a_lone_surrogate_is_refused_not_raised() -> None:
    """JSON can carry ``"\\ud800"``; the connection must answer, never raise."""
    client = Server().connect("json")
    client.send_frame('{"type":"hello","v":1,"token":"\\ud800"}')
    frames = client.receive()
    assert len(frames) == 1 and frames[0]["fatal"] is True
    assert frames[0]["code"] in ("unauthorized", "bad_message")
    assert client.closed_with in (4001, 4003)


def test_unknown_caller_without_open_access_is_unauthorized() -> None:
    client = Server(tenants={}).connect()
    client.send({"type": "hello", "v": 1, "token": "anything"})
    assert client.receive() == [error("unauthorized", "invalid or expired token", fatal=True)]
