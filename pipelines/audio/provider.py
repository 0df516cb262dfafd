"""The ``caption`` mode's ``PipelineProvider``: loads the VAD, ASR and speaker models
once per process (in ``start``, off the event loop) and makes one ``CaptionPipeline``
per session.

Its options are the server's ``[pipeline_options.caption]`` table::

    [pipeline_options.caption]
    model_path = "/srv/models/whisper-small-ct2"   # default: bundled tiny.en int8
    device = "auto"                                # "cpu", "cuda"
    workers = 2                                    # decodes at once
    vad = "silero"                                 # or "webrtc"
    partial_interval_s = 0.4
    min_silence_s = 0.3
    diarization = true     # speaker labels available to sessions that ask for them

The speaker encoder's own settings come from ``PARLEY_DIARIZATION_*``
(``diarization_stage.settings_from_env``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from pipelines.audio.agreement import PolicyParams
from pipelines.audio.asr import AsrSettings
from pipelines.audio.caption_pipeline import CaptionPipeline
from pipelines.audio.diarization_stage import DiarizationRuntime
from pipelines.audio.endpointing import EndpointParams
from pipelines.audio.runtime import CaptionRuntime, CaptionSettings, runtime_for
from pipelines.options import parse_options
from sessions.pipeline import PipelineContext

log = logging.getLogger("parley.captions")


class CaptionOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: str | None = None
    model_size: str | None = None  # only from the local cache: nothing is downloaded
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "default"
    workers: int = Field(default=2, ge=1, le=16)
    cpu_threads: int = Field(default=1, ge=1, le=64)
    encoder_window_s: float = Field(default=10.0, ge=5.0, le=30.0)
    vad: Literal["silero", "webrtc"] = "silero"
    webrtc_gate: bool = True
    partial_interval_s: float = Field(default=0.4, ge=0.1, le=5.0)
    min_silence_s: float = Field(default=0.3, ge=0.15, le=3.0)
    # Whether sessions may ask for speaker labels (``diarization: true``); the
    # encoder is loaded at start only when they may.
    diarization: bool = True

    def settings(self) -> CaptionSettings:
        return CaptionSettings(
            asr=AsrSettings(
                model_path=self.model_path,
                model_size=self.model_size,
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                workers=self.workers,
                encoder_window_s=self.encoder_window_s,
            ),
            vad=self.vad,
            webrtc_gate=self.webrtc_gate,
            endpoint=EndpointParams(min_silence_s=self.min_silence_s),
            policy=PolicyParams(partial_interval_s=self.partial_interval_s),
        )


class CaptionProvider:
    def __init__(self, options: CaptionOptions) -> None:
        self.options = options
        self.runtime: CaptionRuntime | None = None
        self.diarization: DiarizationRuntime | None = None

    async def start(self) -> None:
        settings = self.options.settings()
        self.runtime = await anyio.to_thread.run_sync(runtime_for, settings)
        if self.options.diarization:
            self.diarization = await anyio.to_thread.run_sync(_load_diarization)

    def create(self, context: PipelineContext) -> CaptionPipeline:
        if self.runtime is None:
            raise RuntimeError("the caption provider was not started")
        return CaptionPipeline(context, self.runtime, diarization=self.diarization)

    async def aclose(self) -> None:
        # models are freed with the last session holding them
        self.runtime = self.diarization = None


def _load_diarization() -> DiarizationRuntime | None:
    """The speaker encoder, or None when the ``diarization`` extra is not installed
    (captions then work without labels, and sessions asking for them are told so)."""
    from pipelines.audio.diarization_stage import settings_from_env

    try:
        return DiarizationRuntime(settings_from_env())
    except ImportError as exc:
        log.warning("speaker labels unavailable", extra={"why": str(exc)})
        return None


def create_provider(options: dict[str, Any]) -> CaptionProvider:
    """The provider for ``[pipeline_options.caption]``; ValueError names a bad option."""
    return CaptionProvider(parse_options(CaptionOptions, options, "caption"))
