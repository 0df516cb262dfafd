"""``caption`` mode (docs/captions.md): PCM audio in; ``speech.started``/``stopped``,
``caption.partial`` and ``caption.final`` out.

Three stages joined by bounded queues, all in the session's task group:

    inputs → ingest (PcmDecoder) → [audio] → vad (gate, Silero, Endpointer)
           → [audio + speech marks] → asr (CaptionPolicy ⇄ shared AsrWorker) → sink
                                         └→ [captions] → speakers (diarization) → sink

The speaker stage runs only for sessions with ``diarization: true`` on a server that
loaded the speaker encoder (``caption_speakers.py``).

A full queue stops the stage before it, up to the session's input queue: a session
far ahead of its decodes stops being read (TCP backpressure) instead of buffering
without bound. The decision logic lives in pure modules; this one only moves data.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import numpy as np
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectSendStream

from pipelines.audio import metrics
from pipelines.audio.agreement import CaptionPolicy, DecodeJob
from pipelines.audio.caption_speakers import CaptionItem, final_audio, speaker_stage
from pipelines.audio.diarization_stage import DiarizationRuntime, SessionDiarizer
from pipelines.audio.endpointing import Endpointer
from pipelines.audio.ingest import TARGET_RATE, ArrivalClock, PcmDecoder, Samples
from pipelines.audio.runtime import CaptionRuntime, shared_runtime
from pipelines.audio.vad import WebRtcGate
from sessions.errors import ErrorCode
from sessions.events import (
    CaptionFinal,
    CaptionPartial,
    ErrorEvent,
    ServerEvent,
    SpeechStarted,
    SpeechStopped,
)
from sessions.inputs import AudioChunk, AudioEnd, ConfigUpdated, PipelineInput
from sessions.pipeline import EventSink, PipelineContext

_PIECE = TARGET_RATE // 5  # audio travels between stages in pieces of <= 0.2 s
_GATE_LOOKBACK = 3  # frames before the gate's first voiced one that Silero also sees


@dataclass(frozen=True, slots=True)
class _Flush:
    """``audio.end`` or the end of input: close what is open."""


Item = Samples | SpeechStarted | SpeechStopped | _Flush
Captions = MemoryObjectSendStream[CaptionItem] | None  # None: captions go straight out


class CaptionPipeline:
    def __init__(
        self,
        context: PipelineContext,
        runtime: CaptionRuntime,
        *,
        diarization: DiarizationRuntime | None = None,
    ) -> None:
        """``diarization``: the process's speaker encoder, when the server loaded one;
        used only if the session asked for ``diarization`` when it started."""
        self.context = context
        self.runtime = runtime
        self.diarization = diarization
        s = runtime.settings
        self.policy = CaptionPolicy(s.policy)
        self.endpointer = Endpointer(s.endpoint)
        self.arrivals = ArrivalClock()
        self.sink: EventSink | None = None

    async def run(self, inputs: AsyncIterator[PipelineInput], sink: EventSink) -> None:
        self.sink = sink
        audio = self.context.config.audio
        if not self.runtime.worker.admits_new_sessions():
            metrics.SESSIONS_REFUSED.inc()
            sink.emit(
                ErrorEvent(
                    ErrorCode.OVERLOADED.value,
                    "captioning is at capacity",
                    fatal=True,
                    session_state=True,
                )
            )
            return
        try:
            decoder = PcmDecoder(audio.sample_rate, audio.channels)
        except ValueError as exc:
            sink.emit(ErrorEvent(ErrorCode.UNSUPPORTED.value, str(exc), fatal=True))
            return
        speakers = self._speakers()
        n = self.runtime.settings.queue_items
        to_vad, from_ingest = anyio.create_memory_object_stream[Item](n)
        to_asr, from_vad = anyio.create_memory_object_stream[Item](n)
        self.runtime.sessions += 1
        metrics.CAPTION_SESSIONS.inc()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._ingest_stage, inputs, decoder, to_vad)
                tg.start_soon(self._vad_stage, from_ingest, to_asr)
                if speakers is None:
                    tg.start_soon(self._asr_stage, from_vad, None)
                else:
                    to_speakers, from_asr = anyio.create_memory_object_stream[CaptionItem](n)
                    tg.start_soon(self._asr_stage, from_vad, to_speakers)
                    tg.start_soon(speaker_stage, speakers, from_asr, self._deliver)
        finally:
            self.runtime.sessions -= 1
            metrics.CAPTION_SESSIONS.dec()
            self.runtime.mark_behind(self.context.session_id, False)

    def _emit(self, event: ServerEvent) -> None:
        assert self.sink is not None
        self.sink.emit(event)

    def _speakers(self) -> SessionDiarizer | None:
        """The session's diarizer, when it asked for speaker labels and can have them.
        Decided once, at the start: an ``update`` of ``diarization`` has no effect."""
        if not self.context.config.diarization:
            return None
        if self.diarization is None:
            self._emit(
                ErrorEvent(
                    ErrorCode.UNSUPPORTED.value,
                    "speaker labels are not enabled on this server; captions carry none",
                )
            )
            return None
        return self.diarization.session(self.context.session_id)

    # --- ingest --------------------------------------------------------------

    async def _ingest_stage(
        self,
        inputs: AsyncIterator[PipelineInput],
        decoder: PcmDecoder,
        out: ObjectSendStream[Item],
    ) -> None:
        async with out:
            t = 0.0
            async for item in inputs:
                if isinstance(item, AudioChunk):
                    samples = decoder.feed(item.data, item.chunk)
                elif isinstance(item, ConfigUpdated):
                    fmt = item.config.audio
                    if (fmt.sample_rate, fmt.channels) == (decoder.sample_rate, decoder.channels):
                        continue
                    try:
                        samples, decoder = decoder.reformat(fmt.sample_rate, fmt.channels)
                    except ValueError as exc:
                        self._emit(ErrorEvent(ErrorCode.UNSUPPORTED.value, str(exc)))
                        continue
                elif isinstance(item, AudioEnd):
                    await out.send(_Flush())
                    continue
                else:
                    continue  # text, cancel: not for this mode
                if len(samples) == 0:
                    continue
                t += len(samples) / TARGET_RATE
                if isinstance(item, AudioChunk):
                    self.arrivals.mark(t, item.received_at)
                for i in range(0, len(samples), _PIECE):
                    await out.send(samples[i : i + _PIECE])
            await out.send(_Flush())

    # --- vad -----------------------------------------------------------------

    async def _vad_stage(self, inp: ObjectReceiveStream[Item], out: ObjectSendStream[Item]) -> None:
        s = self.runtime.settings
        batcher = self.runtime.vad
        size = batcher.frame_samples
        stream = batcher.backend.open_stream()
        gate = WebRtcGate(s.gate_mode) if s.webrtc_gate else None
        rest = np.zeros(0, dtype=np.float32)
        t = 0.0  # session time of rest[0]
        try:
            async with inp, out:
                async for item in inp:
                    if isinstance(item, _Flush):
                        await self._speech_events(self.endpointer.flush(), out)
                        await out.send(item)
                        continue
                    if not isinstance(item, np.ndarray):
                        continue
                    await out.send(item)
                    buf = np.concatenate([rest, item])
                    n = len(buf) // size
                    frames = buf[: n * size].reshape(n, size)
                    rest = buf[n * size :]
                    open_ = np.ones(n, dtype=bool)
                    if gate is not None and n:
                        heard = np.array([gate.open_for(f) for f in frames], dtype=bool)
                        # Look back a few frames: Silero needs the onset itself, and a
                        # moment of context before it, to rise in time.
                        open_ = heard.copy()
                        for k in range(1, _GATE_LOOKBACK + 1):
                            open_[:-k] |= heard[k:]
                    probs = np.zeros(n, dtype=np.float32)
                    if open_.any():
                        probs[open_] = await batcher.speech_probs(stream, frames[open_])
                    for i in range(n):
                        start = t + i * size / TARGET_RATE
                        end = start + size / TARGET_RATE
                        await self._speech_events(
                            self.endpointer.feed(float(probs[i]), start, end), out
                        )
                    t += n * size / TARGET_RATE
        finally:
            batcher.backend.close_stream(stream)

    async def _speech_events(self, events: list[ServerEvent], out: ObjectSendStream[Item]) -> None:
        for ev in events:
            if isinstance(ev, SpeechStarted | SpeechStopped):
                self._emit(ev)
                await out.send(ev)

    # --- asr -----------------------------------------------------------------

    async def _asr_stage(self, inp: ObjectReceiveStream[Item], out: Captions) -> None:
        try:
            await self._decode_loop(inp, out)
        finally:
            if out is not None:
                out.close()  # the speaker stage drains what is queued, then ends

    async def _decode_loop(self, inp: ObjectReceiveStream[Item], out: Captions) -> None:
        policy = self.policy
        wake = anyio.Event()
        progress = anyio.Event()
        done = False
        idle = False  # the decode loop has nothing due: waiting on it would never end

        async def receive() -> None:
            nonlocal wake, done
            async with inp:
                async for item in inp:
                    while policy.pending_audio_s > policy.params.max_pending_s and not idle:
                        await progress.wait()  # backpressure: let decodes catch up
                    if isinstance(item, np.ndarray):
                        policy.feed_audio(item)
                    elif isinstance(item, SpeechStarted):
                        policy.speech_started(item.at)
                    elif isinstance(item, SpeechStopped):
                        policy.speech_stopped(item.at)
                    wake.set()
                    wake = anyio.Event()
            done = True
            wake.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            while True:
                interval = self.runtime.worker.partial_interval(policy.params.partial_interval_s)
                if policy.undecoded_s > self.runtime.settings.behind_s:
                    # Behind real time (audio arriving faster than it is spoken): a
                    # partial would be stale on arrival; catch up with eager decodes.
                    interval = None
                job = policy.next_job(interval)
                for ev in policy.take_events():
                    await self._caption(ev, None, out)
                self._track_lag()
                if job is None:
                    if done:
                        break
                    idle = True
                    progress.set()
                    progress = anyio.Event()
                    await wake.wait()
                    idle = False
                    continue
                result = await self.runtime.worker.transcribe(self.context.session_id, job)
                for ev in policy.job_done(job, result):
                    await self._caption(ev, job, out)
                progress.set()
                progress = anyio.Event()

    async def _caption(self, event: ServerEvent, job: DecodeJob | None, out: Captions) -> None:
        job_end = None if job is None else job.end
        if out is None:
            self._deliver(event, job_end)
            return
        audio = None
        if isinstance(event, CaptionFinal) and job is not None:
            audio = final_audio(event, job)
        await out.send(CaptionItem(event, job_end, audio))

    def _deliver(self, event: ServerEvent, job_end: float | None) -> None:
        now = time.monotonic()
        if isinstance(event, CaptionFinal):
            arrived = self.arrivals.arrival_of(event.end)
            if arrived is not None:
                metrics.CAPTION_FINAL_LATENCY.observe(max(0.0, now - arrived))
            metrics.CAPTIONS_EMITTED.labels("final").inc()
        elif isinstance(event, CaptionPartial) and job_end is not None:
            arrived = self.arrivals.arrival_of(job_end)
            if arrived is not None:
                metrics.CAPTION_PARTIAL_LATENCY.observe(max(0.0, now - arrived))
            metrics.CAPTIONS_EMITTED.labels("partial").inc()
        self._emit(event)

    def _track_lag(self) -> None:
        behind = self.policy.undecoded_s > self.runtime.settings.behind_s
        self.runtime.mark_behind(self.context.session_id, behind)


def caption_pipeline_factory(context: PipelineContext) -> CaptionPipeline:
    """The ``PipelineFactory`` for ``caption`` sessions, on the process's shared models."""
    return CaptionPipeline(context, shared_runtime())
