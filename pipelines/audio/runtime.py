"""What every caption session of a process shares: the models, loaded once, and
their workers. ``runtime_for(settings)`` builds one per distinct settings on first
use and keeps it for the process; a server's providers call it at startup (in a
thread: loading takes a second) so ``/readyz`` means models loaded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

from pipelines.audio.agreement import PolicyParams
from pipelines.audio.asr import (
    AsrBackend,
    AsrSettings,
    FasterWhisperBackend,
    default_settings_from_env,
)
from pipelines.audio.endpointing import EndpointParams
from pipelines.audio.metrics import SESSIONS_BEHIND
from pipelines.audio.threads import single_threaded_blas
from pipelines.audio.vad import SileroVad, VadBackend, WebRtcVad
from pipelines.audio.vad_batcher import VadBatcher
from pipelines.audio.worker import AsrWorker


@dataclass(frozen=True, slots=True)
class CaptionSettings:
    asr: AsrSettings = field(default_factory=AsrSettings)
    vad: Literal["silero", "webrtc"] = "silero"
    webrtc_gate: bool = True  # skip Silero while webrtcvad hears nothing voiced
    gate_mode: int = 2
    endpoint: EndpointParams = field(default_factory=EndpointParams)
    policy: PolicyParams = field(default_factory=PolicyParams)
    queue_items: int = 32  # bound of each stage's queue (items of <= 0.2 s audio)
    behind_s: float = 3.0  # speech not yet decoded past which a session is "behind"


class CaptionRuntime:
    def __init__(
        self,
        settings: CaptionSettings | None = None,
        *,
        asr: AsrBackend | None = None,
        vad: VadBackend | None = None,
    ) -> None:
        self.settings = s = settings or CaptionSettings()
        single_threaded_blas()
        if vad is None:
            vad = SileroVad() if s.vad == "silero" else WebRtcVad()
        self.vad = VadBatcher(vad)
        self.worker = AsrWorker(asr or FasterWhisperBackend(s.asr), slots=s.asr.workers)
        self._behind: set[str] = set()
        self.sessions = 0

    def mark_behind(self, session_id: str, behind: bool) -> None:
        if behind:
            self._behind.add(session_id)
        else:
            self._behind.discard(session_id)
        SESSIONS_BEHIND.set(len(self._behind))

    @property
    def sessions_behind(self) -> int:
        return len(self._behind)


_shared: dict[CaptionSettings, CaptionRuntime] = {}
_shared_lock = threading.Lock()


def runtime_for(settings: CaptionSettings) -> CaptionRuntime:
    """The process's runtime for ``settings``, built on first use: ``caption`` and
    ``voice_agent`` sessions with the same settings share one model, one fair decode
    queue and one load governor. Loads models: call it in a worker thread."""
    with _shared_lock:
        runtime = _shared.get(settings)
        if runtime is None:
            runtime = _shared[settings] = CaptionRuntime(settings)
        return runtime


def shared_runtime() -> CaptionRuntime:
    """The runtime of the default settings, with the ASR overrides of ``PARLEY_ASR_*``."""
    return runtime_for(CaptionSettings(asr=default_settings_from_env()))
