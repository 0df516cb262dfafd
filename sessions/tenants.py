"""What a tenant may do: the limits an API key maps to (server config file)."""

from __future__ import annotations

from dataclasses import dataclass

from sessions.config import MODES, Mode, SessionConfig
from sessions.errors import ErrorCode, ProtocolError


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    tenant_id: str
    max_sessions: int = 100
    allowed_modes: tuple[Mode, ...] = MODES
    allowed_tools: tuple[str, ...] = ()
    latency_budget_ms: int = 2000

    def check(self, config: SessionConfig) -> None:
        """Raise ``forbidden`` when ``config`` asks for more than this tenant allows."""
        if config.mode not in self.allowed_modes:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"mode {config.mode!r} is not allowed for this tenant"
            )
        extra = sorted(set(config.tools or ()) - set(self.allowed_tools))
        if extra:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"tools not allowed for this tenant: {', '.join(extra)}"
            )

    def session_tools(self, config: SessionConfig) -> tuple[str, ...]:
        """The tools a session may use: its own list, else everything the tenant allows."""
        if config.tools is None:
            return self.allowed_tools
        return tuple(t for t in config.tools if t in self.allowed_tools)

    def latency_budget(self, config: SessionConfig) -> int:
        return config.latency_budget_ms or self.latency_budget_ms
