"""``VoiceAgentPipeline``: the ``voice_agent`` mode (docs/voice.md).

Captions as in ``caption`` mode, and an agent that answers each finished utterance:

    inputs ─┬─ audio, audio.end, update ─► [bounded] ─► captions ─┐
            └─ text, cancel ───────────────────────► agent turns ─┤
                                                                   ▼
              TurnTaker ◄── speech.*, caption.*, turn.* ── watcher ─► sink

The watcher is the sink both halves emit into: it forwards every event unchanged
and shows the ones that matter for turn-taking to the pure ``TurnTaker``; the
actions it returns (start a speech turn, barge in) go to the agent at once, and a
timer task wakes the taker at its ``next_deadline``.

Latency is measured from the end of speech: ``speech.stopped`` carries the audio
time speech ended, and ``_Arrivals`` turns that into the server's clock when that
audio arrived, so a speech turn's ``ttft_ms`` covers end-of-turn detection, the
last caption's decode and the engine (PROTOCOL.md, ``latency_budget_ms``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from pipelines.text.agent import AgentPipeline, TurnRequest
from pipelines.text.agent_turns import AgentTurns
from pipelines.voice.turn_taking import Action, BargeIn, StartTurn, TurnTaker, TurnTakingSettings
from sessions.config import AudioFormat
from sessions.events import (
    CaptionFinal,
    CaptionPartial,
    ServerEvent,
    SpeechStarted,
    SpeechStopped,
    TurnDone,
    TurnStarted,
)
from sessions.inputs import (
    AudioChunk,
    AudioEnd,
    CancelRequest,
    ConfigUpdated,
    PipelineInput,
    UserText,
)
from sessions.pipeline import EventSink, Pipeline, PipelineContext

# Inputs waiting for the caption stages: a full queue stops the session's input loop
# and, through it, the socket read (the caption stages' own queues push back here).
CAPTION_QUEUE = 32


class _Arrivals:
    """Session audio time → the server's clock when that audio arrived.

    The timeline is counted the way the caption ingest counts it: bytes of the
    declared format, duplicate chunk indices skipped.
    """

    def __init__(self, audio: AudioFormat, keep: int = 2048) -> None:
        self._rate = max(1, audio.bytes_per_second())
        self._next_chunk = 0
        self._t = 0.0
        self._marks: deque[tuple[float, float]] = deque(maxlen=keep)  # (audio end, arrival)

    def reformat(self, audio: AudioFormat) -> None:
        self._rate = max(1, audio.bytes_per_second())

    def mark(self, chunk: AudioChunk) -> None:
        if chunk.chunk >= 0:
            if chunk.chunk < self._next_chunk:
                return  # a duplicate: the caption ingest drops it too
            self._next_chunk = chunk.chunk + 1
        self._t += len(chunk.data) / self._rate
        self._marks.append((self._t, chunk.received_at))

    def arrival_of(self, audio_s: float) -> float | None:
        for end, at in self._marks:
            if end >= audio_s:
                return at
        return self._marks[-1][1] if self._marks else None


class _Watcher:
    """The sink of both halves: forwards everything, and tells the turn-taker."""

    def __init__(self, voice: VoiceAgentPipeline, sink: EventSink) -> None:
        self._voice = voice
        self._sink = sink

    def emit(self, event: ServerEvent) -> None:
        self._sink.emit(event)  # first: a caption.final precedes the turn it starts
        self._voice.observe(event)


class VoiceAgentPipeline:
    def __init__(
        self,
        context: PipelineContext,
        captions: Pipeline,
        agent: AgentPipeline,
        settings: TurnTakingSettings | None = None,
        *,
        speech_pad_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``speech_pad_s``: what the VAD adds after the last voiced frame in
        ``speech.stopped.at`` (``EndpointParams.pad_s``); the end of speech is before it."""
        self.context = context
        self.captions = captions
        self.agent = agent
        self.taker = TurnTaker(settings or TurnTakingSettings())
        self.clock = clock
        self.speech_pad_s = speech_pad_s
        self.arrivals = _Arrivals(context.config.audio)
        self.turns: AgentTurns | None = None
        self._wake = anyio.Event()

    async def run(self, inputs: AsyncIterator[PipelineInput], sink: EventSink) -> None:
        watcher = _Watcher(self, sink)
        to_captions, caption_inputs = anyio.create_memory_object_stream[PipelineInput](
            CAPTION_QUEUE
        )
        async with self.agent.serve(watcher) as turns, anyio.create_task_group() as tg:
            self.turns = turns
            tg.start_soon(self._timer)
            async with anyio.create_task_group() as audio:
                audio.start_soon(self._captions, caption_inputs, watcher)
                async with to_captions:
                    await self._route(inputs, to_captions)
                # The input ended (the session closed): the caption stages finish what
                # they hold; their last events still reach the sink.
            tg.cancel_scope.cancel()
        self.turns = None

    async def _route(
        self,
        inputs: AsyncIterator[PipelineInput],
        to_captions: ObjectSendStream[PipelineInput],
    ) -> None:
        captions_open = True
        async for item in inputs:
            if isinstance(item, AudioChunk | AudioEnd | ConfigUpdated):
                if isinstance(item, AudioChunk):
                    self.arrivals.mark(item)
                elif isinstance(item, ConfigUpdated):
                    self.agent.config = item.config
                    self.arrivals.reformat(item.config.audio)
                if captions_open:
                    try:
                        await to_captions.send(item)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        # The caption stages stopped (a fatal error, already sent):
                        # the agent still serves text.
                        captions_open = False
            elif isinstance(item, UserText):
                assert self.turns is not None
                self.turns.submit(TurnRequest(item.text, item.received_at, "text", item.id))
            elif isinstance(item, CancelRequest):
                assert self.turns is not None
                self.turns.cancel(item.turn_id)

    async def _captions(self, inputs: ObjectReceiveStream[PipelineInput], sink: EventSink) -> None:
        async with inputs:
            await self.captions.run(inputs, sink)

    # -- turn-taking ------------------------------------------------------------

    def observe(self, event: ServerEvent) -> None:
        """What the watcher saw, told to the turn-taker; its actions are taken now."""
        taker, now = self.taker, self.clock()
        if isinstance(event, SpeechStarted):
            actions = taker.speech_started(now)
        elif isinstance(event, SpeechStopped):
            # Silence is counted from the moment the end of speech arrived, not from
            # when the VAD was sure of it (min_silence_s later).
            ended = self.arrivals.arrival_of(max(0.0, event.at - self.speech_pad_s))
            actions = taker.speech_stopped(event.at, now if ended is None else min(now, ended))
        elif isinstance(event, CaptionFinal):
            actions = taker.caption_final(event.text, event.end, now)
        elif isinstance(event, CaptionPartial):
            actions = taker.caption_partial(event.text, now)
        elif isinstance(event, TurnStarted):
            taker.turn_started(event.turn_id)
            return
        elif isinstance(event, TurnDone):
            taker.turn_done(event.turn_id)
            return
        else:
            return
        self._act(actions)
        self._wake.set()  # the deadline may have moved

    def _act(self, actions: list[Action]) -> None:
        turns = self.turns
        if turns is None:
            return  # the session is closing: nothing new starts
        for action in actions:
            if isinstance(action, StartTurn):
                turns.submit(TurnRequest(action.text, action.speech_ended_at, "speech"))
            elif isinstance(action, BargeIn):
                turns.cancel(action.turn_id, reason="barge_in")

    async def _timer(self) -> None:
        while True:
            self._wake = anyio.Event()
            deadline = self.taker.next_deadline()
            if deadline is None:
                await self._wake.wait()
            else:
                with anyio.move_on_after(deadline - self.clock()):
                    await self._wake.wait()
            self._act(self.taker.timer(self.clock()))
