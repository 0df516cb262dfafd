"""Server settings: a TOML file (``parley serve --config FILE``) over embedded defaults.

Example (docs/operations.md has every key)::

    [server]
    host = "127.0.0.1"
    port = 8765
    allowed_origins = ["https://app.example.com"]

    [limits]
    heartbeat_s = 15

    [[tenants]]
    id = "acme"
    api_keys = ["sk-acme-1"]
    max_sessions = 50
    allowed_modes = ["caption", "agent"]
    allowed_tools = ["current_time", "calculator"]
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sessions.config import MODES, Mode
from sessions.limits import Limits
from sessions.tenants import TenantPolicy


class SettingsError(Exception):
    """The configuration file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    node: str = Field(default_factory=lambda: os.uname().nodename)
    # Signs resume and client tokens. Give every node of a cluster the same one;
    # left empty, a random one is made at start (tokens die with the process).
    secret: str = ""
    allowed_origins: tuple[str, ...] = ()
    max_sessions: int = Field(default=1000, ge=1)
    drain_timeout_s: float = Field(default=10.0, gt=0)
    reconnect_after_ms: int = Field(default=500, ge=0)
    client_token_ttl_s: float = Field(default=300.0, gt=0)
    # permessage-deflate costs ~60 KiB of zlib state per connection and CPU per frame;
    # PCM audio barely compresses. Off unless the operator wants it.
    per_message_deflate: bool = False


_DEFAULT = Limits()


class LimitsSection(_Strict):
    max_frame_bytes: int = Field(default=_DEFAULT.max_frame_bytes, ge=1024)
    max_text_chars: int = Field(default=_DEFAULT.max_text_chars, ge=1)
    replay_events: int = Field(default=_DEFAULT.replay_events, ge=16)
    max_audio_queue_s: float = Field(default=_DEFAULT.max_audio_queue_s, gt=0)
    heartbeat_s: float = Field(default=_DEFAULT.heartbeat_s, gt=0)
    resume_ttl_s: float = Field(default=_DEFAULT.resume_ttl_s, gt=0)
    hello_timeout_s: float = Field(default=_DEFAULT.hello_timeout_s, gt=0)
    max_bad_frames: int = Field(default=_DEFAULT.max_bad_frames, ge=3)
    max_pending_events: int = Field(default=_DEFAULT.max_pending_events, ge=1)
    max_pending_control: int = Field(default=_DEFAULT.max_pending_control, ge=8)
    messages_per_s: float = Field(default=_DEFAULT.messages_per_s, gt=0)
    message_burst: float = Field(default=_DEFAULT.message_burst, ge=1)
    audio_rate_factor: float = Field(default=_DEFAULT.audio_rate_factor, gt=1)
    audio_burst_s: float = Field(default=_DEFAULT.audio_burst_s, gt=0)

    def build(self) -> Limits:
        return Limits(**self.model_dump())


class TenantSection(_Strict):
    id: str = Field(min_length=1, max_length=64)
    api_keys: tuple[str, ...] = Field(min_length=1)
    max_sessions: int = Field(default=100, ge=1)
    allowed_modes: tuple[Mode, ...] = MODES
    allowed_tools: tuple[str, ...] = ()
    latency_budget_ms: int = Field(default=2000, ge=50)

    def policy(self) -> TenantPolicy:
        return TenantPolicy(
            tenant_id=self.id,
            max_sessions=self.max_sessions,
            allowed_modes=self.allowed_modes,
            allowed_tools=self.allowed_tools,
            latency_budget_ms=self.latency_budget_ms,
        )


class OpenAccessSection(_Strict):
    """The tenant every caller gets when no API key is configured (loopback only)."""

    max_sessions: int = Field(default=100, ge=1)
    allowed_tools: tuple[str, ...] = ("current_time", "calculator", "search_documents")
    latency_budget_ms: int = Field(default=2000, ge=50)


class ClusterSection(_Strict):
    """Several nodes sharing sessions through Redis (docs/deployment.md). Without a
    URL (here, ``--redis-url`` or ``PARLEY_REDIS_URL``) sessions live in memory."""

    redis_url: str = ""
    key_prefix: str = Field(default="parley", min_length=1, max_length=64)
    # A session's owner renews its lease every lease_ms / 3; a node that stops
    # renewing loses its sessions to whichever node their clients resume on.
    lease_ms: int = Field(default=3000, ge=300, le=600_000)
    # Redis round trips slower than this count as Redis being unavailable.
    redis_timeout_s: float = Field(default=2.0, gt=0)

    def url(self) -> str:
        return self.redis_url or os.environ.get("PARLEY_REDIS_URL", "")


class Settings(_Strict):
    server: ServerSection = ServerSection()
    cluster: ClusterSection = ClusterSection()
    limits: LimitsSection = LimitsSection()
    tenants: tuple[TenantSection, ...] = ()
    open_access: OpenAccessSection = OpenAccessSection()
    # mode → "module:callable" returning a PipelineProvider; the callable gets the
    # ``[pipeline_options.<mode>]`` table.
    pipelines: dict[Mode, str] = {
        "agent": "pipelines.text.provider:create_provider",
        "caption": "pipelines.audio.provider:create_provider",
        "voice_agent": "pipelines.voice.provider:create_provider",
    }
    pipeline_options: dict[str, dict[str, Any]] = {}

    def api_keys(self) -> dict[str, TenantPolicy]:
        keys: dict[str, TenantPolicy] = {}
        for tenant in self.tenants:
            policy = tenant.policy()
            for key in tenant.api_keys:
                if key in keys:
                    raise SettingsError(f"API key of tenant {tenant.id!r} is used twice")
                keys[key] = policy
        return keys

    def open_policy(self) -> TenantPolicy | None:
        if self.tenants:
            return None
        return TenantPolicy(
            tenant_id="local",
            max_sessions=self.open_access.max_sessions,
            allowed_tools=self.open_access.allowed_tools,
            latency_budget_ms=self.open_access.latency_budget_ms,
        )

    def secret_bytes(self) -> bytes:
        secret = self.server.secret or os.environ.get("PARLEY_SECRET", "")
        return secret.encode() if secret else secrets.token_bytes(32)

    def origins(self) -> frozenset[str]:
        """The allowed browser origins: the configured ones, or the server's own."""
        if self.server.allowed_origins:
            return frozenset(o.rstrip("/") for o in self.server.allowed_origins)
        port = self.server.port
        hosts = {self.server.host, "localhost", "127.0.0.1", "[::1]"}
        return frozenset(f"http://{h}:{port}" for h in hosts)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(path: Path | None, *, redis_url: str | None = None, **overrides: Any) -> Settings:
    """Settings from ``path`` (TOML), with ``server`` keys overridden (CLI flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    server = dict(data.get("server", {}))
    server.update({k: v for k, v in overrides.items() if v is not None})
    data["server"] = server
    if redis_url is not None:
        data["cluster"] = {**data.get("cluster", {}), "redis_url": redis_url}
    try:
        settings = Settings.model_validate(data)
        settings.api_keys()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"{path or 'settings'}: {where}: {first['msg']}") from None
    return settings
