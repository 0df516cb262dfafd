"""Who is calling: API keys mapped to tenants, and ephemeral client tokens."""

from __future__ import annotations

import hmac

from sessions.errors import ErrorCode, ProtocolError
from sessions.tenants import TenantPolicy
from sessions.tokens import TokenSigner

# The tenant of every caller when no API key is configured (loopback only).
OPEN_TENANT = "local"


class Authenticator:
    def __init__(
        self,
        api_keys: dict[str, TenantPolicy],
        signer: TokenSigner,
        *,
        open_access: TenantPolicy | None = None,
        client_token_ttl_s: float = 300.0,
    ) -> None:
        self._keys = dict(api_keys)
        self._tenants = {policy.tenant_id: policy for policy in api_keys.values()}
        if open_access is not None:
            self._tenants[open_access.tenant_id] = open_access
        self._signer = signer
        self._open = open_access
        self.client_token_ttl_s = client_token_ttl_s

    @property
    def open_access(self) -> bool:
        return self._open is not None

    def tenant(self, tenant_id: str) -> TenantPolicy | None:
        return self._tenants.get(tenant_id)

    def api_key_tenant(self, key: str) -> TenantPolicy | None:
        """The tenant of an API key (constant-time compare), or the open tenant."""
        for known, policy in self._keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                return policy
        return self._open

    def authenticate(self, token: str, now: float) -> TenantPolicy:
        """The tenant of ``hello.token``: an API key or an ephemeral client token."""
        tenant_id = self._signer.open_client_token(token, now)
        if tenant_id is not None:
            policy = self._tenants.get(tenant_id)
            if policy is not None:
                return policy
        policy = self.api_key_tenant(token)
        if policy is None:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "invalid or expired token", fatal=True)
        return policy

    def issue_client_token(self, tenant: TenantPolicy, now: float) -> tuple[str, float]:
        expires_at = now + self.client_token_ttl_s
        return self._signer.client_token(tenant.tenant_id, expires_at), expires_at
