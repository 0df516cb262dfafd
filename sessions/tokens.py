"""Signed tokens: resume tokens and ephemeral client tokens.

A token is ``base64url(payload) "." base64url(HMAC-SHA256(secret, payload))``.
Resume tokens name the session, its tenant and a generation: a successful resume
bumps the session's generation, so the old token stops working (single use).
Ephemeral tokens (``POST /v1/tokens``) name a tenant and expire quickly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sessions.errors import ErrorCode, ProtocolError


@dataclass(frozen=True, slots=True)
class ResumeClaim:
    session_id: str
    tenant_id: str
    generation: int
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: dict[str, object]) -> str:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).digest()
        return f"{_b64(body)}.{_b64(mac)}"

    def _open(self, token: str, kind: str) -> dict[str, object] | None:
        body_text, dot, mac_text = token.partition(".")
        if not dot:
            return None
        try:
            body = _unb64(body_text)
            mac = _unb64(mac_text)
        except ValueError:
            return None
        expected = hmac.new(self._secret, body, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict) or payload.get("k") != kind:
            return None
        return payload

    def resume_token(
        self, session_id: str, tenant_id: str, generation: int, expires_at: float
    ) -> str:
        return self._sign(
            {
                "k": "resume",
                "sid": session_id,
                "ten": tenant_id,
                "gen": generation,
                "exp": expires_at,
            }
        )

    def open_resume_token(self, token: str, now: float) -> ResumeClaim:
        """The claim of a valid, unexpired resume token, else ``resume_failed``."""
        payload = self._open(token, "resume")
        if payload is None:
            raise ProtocolError(ErrorCode.RESUME_FAILED, "invalid resume token", fatal=True)
        sid, ten, gen, exp = (
            payload.get("sid"),
            payload.get("ten"),
            payload.get("gen"),
            payload.get("exp"),
        )
        if not (
            isinstance(sid, str)
            and isinstance(ten, str)
            and isinstance(gen, int)
            and isinstance(exp, int | float)
        ):
            raise ProtocolError(ErrorCode.RESUME_FAILED, "invalid resume token", fatal=True)
        if now >= exp:
            raise ProtocolError(ErrorCode.RESUME_FAILED, "resume token expired", fatal=True)
        return ResumeClaim(sid, ten, gen, float(exp))

    def client_token(self, tenant_id: str, expires_at: float) -> str:
        return self._sign(
            {"k": "client", "ten": tenant_id, "exp": expires_at, "n": secrets.token_hex(8)}
        )

    def open_client_token(self, token: str, now: float) -> str | None:
        """The tenant of a valid, unexpired ephemeral token, else ``None``."""
        payload = self._open(token, "client")
        if payload is None:
            return None
        ten, exp = payload.get("ten"), payload.get("exp")
        if not isinstance(ten, str) or not isinstance(exp, int | float) or now >= exp:
            return None
        return ten
