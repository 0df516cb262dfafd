"""Session configuration (``hello.session``, ``update.session``), validated at the edge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sessions.errors import ErrorCode, ProtocolError

Mode = Literal["caption", "agent", "voice_agent"]
MODES: tuple[Mode, ...] = ("caption", "agent", "voice_agent")

# Sample rates the ingest stage can resample from (docs/protocol.md, "Session config").
SUPPORTED_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


class AudioFormat(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    encoding: str = "pcm_s16le"
    sample_rate: int = 16000
    channels: int = 1

    def bytes_per_second(self) -> int:
        return self.sample_rate * self.channels * 2

    def check_supported(self) -> None:
        if self.encoding != "pcm_s16le":
            raise ProtocolError(ErrorCode.UNSUPPORTED, f"audio encoding {self.encoding!r}")
        if self.sample_rate not in SUPPORTED_SAMPLE_RATES:
            raise ProtocolError(ErrorCode.UNSUPPORTED, f"sample rate {self.sample_rate}")
        if self.channels not in (1, 2):
            raise ProtocolError(ErrorCode.UNSUPPORTED, f"{self.channels} audio channels")


class ClientInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(default="", max_length=100)
    version: str = Field(default="", max_length=50)


class SessionConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    mode: Mode = "agent"
    audio: AudioFormat = AudioFormat()
    language: str = Field(default="en", max_length=16)
    diarization: bool = False
    tools: tuple[str, ...] | None = None
    latency_budget_ms: int | None = Field(default=None, ge=50, le=120_000)
    client: ClientInfo = ClientInfo()

    def merged(self, update: dict[str, Any]) -> SessionConfig:
        """This config with the fields of ``update.session`` applied."""
        data = self.model_dump()
        for key, value in update.items():
            if key == "audio" and isinstance(value, dict):
                data["audio"] = {**data["audio"], **value}
            else:
                data[key] = value
        return parse_config(data)


def parse_config(raw: object) -> SessionConfig:
    """``raw`` as a SessionConfig, or a ``bad_message``/``unsupported`` ProtocolError."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "session must be a map")
    try:
        config = SessionConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"session.{where}: {first['msg']}") from None
    config.audio.check_supported()
    return config
