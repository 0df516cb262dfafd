"""The streaming caption policy: speech segments + decodes → partials and finals.

Pure and synchronous; the async shell (``caption_pipeline.py``) feeds it audio and
speech boundaries, asks it for the next decode job, runs the job on the shared ASR
worker and hands back the result.

- Each decode covers one speech segment from its buffer start to now: buffers stay
  short (trimmed at a committed word once past ``trim_s``, at a sentence end where
  one is near) and never span a VAD pause.
- Words two consecutive decodes agree on (LocalAgreement-2, compared as normalized
  text, never by timestamp, tolerant of a word or two that flips between decodes:
  ``agreed_prefix``) become final; the rest is the partial.
- When speech stops, the segment's end is decoded at once and everything in it is
  final.
- A buffer past ``max_buffer_s`` (speech with no pause, or a worker falling behind
  and skipping partials) commits its older words without waiting for agreement.
- A final never changes: a decode hears the buffer's committed words again, and
  they are matched by text (``strip_committed``) and left out; only where no text
  matches do timestamps decide.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from pipelines.audio.asr import AsrResult
from pipelines.audio.guards import GuardParams, accepted_words, normalize
from pipelines.audio.ingest import TARGET_RATE, Samples
from pipelines.audio.matching import agreed_prefix, repeated_run, strip_committed
from sessions.events import CaptionFinal, CaptionPartial, ServerEvent, Word


@dataclass(frozen=True, slots=True)
class PolicyParams:
    partial_interval_s: float = 0.4  # new audio before another decode of an open segment
    min_decode_s: float = 0.3
    trim_s: float = 5.0  # buffers longer than this are trimmed at a committed word
    keep_s: float = 1.5  # audio a trim leaves before the newest committed words
    max_buffer_s: float = 8.0  # past this, older words commit without agreement
    force_margin_s: float = 1.0
    degraded_interval_s: float = 2.5  # decode cadence when the worker allows no partials
    # Words with at least this many words after them in one decode, heard with a
    # probability of at least early_p, commit without waiting for a second decode
    # (Whisper revises mostly the last words of a window). 0 turns it off.
    early_lead: int = 2
    early_p: float = 0.8
    preroll_s: float = 1.0
    prompt_words: int = 24
    max_pending_s: float = 30.0  # audio held for decoding before the shell pushes back
    guards: GuardParams = field(default_factory=GuardParams)


@dataclass(frozen=True, slots=True)
class DecodeJob:
    serial: int
    segment: int
    audio: Samples
    offset: float  # session time of audio[0]
    prompt: str
    final: bool
    eager: bool = False  # no second decode soon: commit all but the last force_margin_s

    @property
    def end(self) -> float:
        return self.offset + len(self.audio) / TARGET_RATE


@dataclass(slots=True)
class _Segment:
    id: int
    start: float  # session time of the buffer's first sample
    stop: float | None = None
    last_job_end: float = 0.0
    in_buffer: list[Word] = field(default_factory=list)  # committed, inside the buffer
    hypothesis: list[Word] = field(default_factory=list)  # the last decode's uncommitted words
    empty_decodes: int = 0  # decodes in a row that yielded no new word

    @property
    def committed_to(self) -> float:
        return self.in_buffer[-1].end if self.in_buffer else self.start


class CaptionPolicy:
    def __init__(self, params: PolicyParams | None = None) -> None:
        self.params = params or PolicyParams()
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_start = 0.0  # session time of _audio[0]
        self.now = 0.0  # session time of the end of the audio fed so far
        self._open: _Segment | None = None
        self._closed: deque[_Segment] = deque()
        self._committed: deque[Word] = deque(maxlen=64)
        self._segment_ids = 0
        self._serial = 0
        self._caption = 0  # id of the next caption segment
        self._partial_shown = False
        self._outbox: list[ServerEvent] = []

    def take_events(self) -> list[ServerEvent]:
        """Events produced outside ``job_done`` (a retracted partial)."""
        out, self._outbox = self._outbox, []
        return out

    # --- input -------------------------------------------------------------

    def feed_audio(self, samples: Samples) -> None:
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
        self.now += len(samples) / TARGET_RATE
        self._trim_store()

    def speech_started(self, at: float) -> None:
        if self._open is not None:
            return
        self._segment_ids += 1
        start = min(max(at, self._audio_start), self.now)
        self._open = _Segment(self._segment_ids, start, last_job_end=start)

    def speech_stopped(self, at: float) -> None:
        seg, self._open = self._open, None
        if seg is not None:
            seg.stop = min(max(at, seg.start), self.now)
            self._closed.append(seg)

    def _segments(self) -> list[_Segment]:
        return [*self._closed, *([self._open] if self._open else [])]

    @property
    def pending_audio_s(self) -> float:
        """Speech audio fed but not yet covered by a final: what the worker owes."""
        return sum(
            (s.stop if s.stop is not None else self.now) - s.committed_to for s in self._segments()
        )

    @property
    def undecoded_s(self) -> float:
        """Speech audio no decode has looked at yet: how far behind real time."""
        late = sum((s.stop or s.start) - max(s.start, s.last_job_end) for s in self._closed)
        if self._open is not None:
            late += self.now - max(self._open.start, self._open.last_job_end)
        return max(0.0, late)

    @property
    def idle(self) -> bool:
        return self._open is None and not self._closed

    # --- decoding ----------------------------------------------------------

    def next_job(self, partial_interval_s: float | None) -> DecodeJob | None:
        """The decode to run now, if any. A ``partial_interval_s`` longer than the
        configured one (the worker is behind), or None (no partials at all), makes
        decodes eager: with no second decode coming soon, each commits everything
        but its last ``force_margin_s`` without waiting for agreement."""
        p = self.params
        while self._closed:
            closed = self._closed[0]
            assert closed.stop is not None
            if closed.stop - closed.committed_to >= 0.1:
                return self._job(closed, closed.stop, final=True)
            self._closed.popleft()
            self._outbox.extend(self._retract_events())  # nothing left to say for it
        seg = self._open
        if seg is None:
            return None
        length, fresh = self.now - seg.committed_to, self.now - seg.last_job_end
        interval = p.degraded_interval_s if partial_interval_s is None else partial_interval_s
        eager = interval > p.partial_interval_s + 1e-9
        forced = self.now - seg.start >= p.max_buffer_s and fresh >= p.force_margin_s
        if length >= p.min_decode_s and (fresh >= interval - 1e-6 or forced):
            return self._job(seg, self.now, final=False, eager=eager)
        return None

    def _job(self, seg: _Segment, end: float, *, final: bool, eager: bool = False) -> DecodeJob:
        i0 = max(0, round((seg.start - self._audio_start) * TARGET_RATE))
        i1 = max(i0, round((end - self._audio_start) * TARGET_RATE))
        self._serial += 1
        seg.last_job_end = end
        # The prompt is what was said before the buffer: the buffer's own committed
        # words are in its audio, and prompting them too invites the model to repeat.
        before = [w for w in self._committed if w.end <= seg.start + 1e-6]
        prompt = " ".join(w.w for w in before[-self.params.prompt_words :])
        if seg.empty_decodes >= 2:
            prompt = ""  # the prompt may be what sends the model into a loop: drop it
        audio = self._audio[i0:i1].copy()
        return DecodeJob(self._serial, seg.id, audio, seg.start, prompt, final, eager)

    def job_done(self, job: DecodeJob, result: AsrResult) -> list[ServerEvent]:
        seg = next((s for s in self._segments() if s.id == job.segment), None)
        if seg is None or abs(seg.start - job.offset) > 1e-6:
            return []  # the segment moved on since the job was cut: a stale result
        words = strip_committed(seg.in_buffer, self._placed(job, result))
        seg.empty_decodes = 0 if words else seg.empty_decodes + 1
        if job.final:
            self._closed.remove(seg)
            self._trim_store()
            return self._commit(seg, words) + (self._retract_events() if not words else [])
        agreed = agreed_prefix(
            [normalize(w.w) for w in seg.hypothesis], [normalize(w.w) for w in words]
        )
        p = self.params
        if p.early_lead:
            while agreed < len(words) - p.early_lead and words[agreed].p >= p.early_p:
                agreed += 1
        if job.eager or job.end - seg.start >= self.params.max_buffer_s:
            horizon = job.end - self.params.force_margin_s
            while agreed < len(words) and words[agreed].end <= horizon:
                agreed += 1
        done, rest = words[:agreed], words[agreed:]
        seg.hypothesis = rest
        events = self._commit(seg, done)
        self._trim_buffer(seg, job.end)
        if rest:
            text = " ".join(w.w for w in rest)
            events.append(CaptionPartial(self._caption, text, rest[0].start, rest[-1].end))
            self._partial_shown = True
        return events

    # --- helpers -----------------------------------------------------------

    def _trim_buffer(self, seg: _Segment, end: float) -> None:
        p = self.params
        if end - seg.start <= p.trim_s:
            return
        # Cut after a committed word, keep_s before the newest ones; after the last
        # sentence end before that point if there is one (a natural pause).
        limit = end - p.keep_s
        candidates = [i for i, w in enumerate(seg.in_buffer) if w.end <= limit]
        if candidates:
            ends = [i for i in candidates if seg.in_buffer[i].w[-1:] in ".?!"]
            i = (ends or candidates)[-1]
            seg.start = seg.in_buffer[i].end
            seg.in_buffer = seg.in_buffer[i + 1 :]
        elif end - seg.start > 2 * p.max_buffer_s:
            # Nothing usable comes out of this buffer (noise the VAD took for speech,
            # a model stuck in a loop): let its oldest audio go rather than fall ever
            # further behind.
            seg.start = end - p.max_buffer_s
            seg.in_buffer = [w for w in seg.in_buffer if w.start >= seg.start]
            seg.hypothesis = []
        self._trim_store()

    def _placed(self, job: DecodeJob, result: AsrResult) -> list[Word]:
        """Accepted words on the session timeline, inside the decoded window."""
        out: list[Word] = []
        for w in accepted_words(result, self.params.guards):
            start = min(max(job.offset + w.start, job.offset), job.end)
            end = min(max(job.offset + w.end, start), job.end)
            out.append(Word(w.text, start, end, w.p))
        return out

    def _commit(self, seg: _Segment, words: list[Word]) -> list[ServerEvent]:
        words = words[repeated_run(list(self._committed), words) :]
        if not words:
            return []
        floor = self._committed[-1].end if self._committed else 0.0
        placed = []
        for w in words:  # monotonic on the session timeline
            start = max(w.start, floor)
            placed.append(Word(w.w, start, max(w.end, start), w.p))
            floor = start
        self._committed.extend(placed)
        seg.in_buffer.extend(placed)
        text = " ".join(w.w for w in placed)
        event = CaptionFinal(
            self._caption, text, placed[0].start, placed[-1].end, None, tuple(placed)
        )
        self._caption += 1
        self._partial_shown = False
        return [event]

    def _retract_events(self) -> list[ServerEvent]:
        """An empty partial clears one shown for a segment that ended with no final."""
        if not self._partial_shown:
            return []
        self._partial_shown = False
        return [CaptionPartial(self._caption, "", self.now, self.now)]

    def _trim_store(self) -> None:
        keep = self.now - self.params.preroll_s
        for seg in self._segments():
            keep = min(keep, seg.start)
        drop = round((keep - self._audio_start) * TARGET_RATE)
        if drop > 0:
            self._audio = self._audio[drop:]
            self._audio_start += drop / TARGET_RATE
