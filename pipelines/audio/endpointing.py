"""Endpointing: per-frame speech probabilities → speech segments.

Pure and synchronous. A four-state machine with hysteresis (a higher threshold to
enter speech than to stay in it), a minimum speech duration before a segment opens,
a minimum silence before it closes, and padding on both sides. Times are seconds of
session audio; ``SpeechStarted.at`` is back-dated to the onset minus the padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sessions.errors import IllegalTransition
from sessions.events import ServerEvent, SpeechStarted, SpeechStopped


@dataclass(frozen=True, slots=True)
class EndpointParams:
    threshold_on: float = 0.5  # probability to enter speech
    threshold_off: float = 0.35  # probability below which speech may end
    min_speech_s: float = 0.12  # voiced run needed to open a segment
    min_silence_s: float = 0.3  # unvoiced run needed to close it
    pad_s: float = 0.15  # added before the onset and after the offset

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold_off <= self.threshold_on < 1.0:
            raise ValueError("need 0 < threshold_off <= threshold_on < 1")
        if min(self.min_speech_s, self.min_silence_s, self.pad_s) < 0:
            raise ValueError("durations must be >= 0")
        if self.pad_s > self.min_silence_s:
            raise ValueError("pad_s must not exceed min_silence_s (the audio is not there yet)")


class VadState(Enum):
    SILENCE = "silence"
    ONSET = "onset"  # voiced, but not for min_speech_s yet
    SPEECH = "speech"
    HANGOVER = "hangover"  # unvoiced inside speech, not for min_silence_s yet


# (state, frame voiced) → next state, before the duration checks promote ONSET to
# SPEECH or HANGOVER to SILENCE.
TRANSITIONS: dict[tuple[VadState, bool], VadState] = {
    (VadState.SILENCE, False): VadState.SILENCE,
    (VadState.SILENCE, True): VadState.ONSET,
    (VadState.ONSET, False): VadState.SILENCE,
    (VadState.ONSET, True): VadState.ONSET,
    (VadState.SPEECH, False): VadState.HANGOVER,
    (VadState.SPEECH, True): VadState.SPEECH,
    (VadState.HANGOVER, False): VadState.HANGOVER,
    (VadState.HANGOVER, True): VadState.SPEECH,
}

_IN_SPEECH = (VadState.SPEECH, VadState.HANGOVER)
_EPS = 1e-6  # frame times are sums of floats


class Endpointer:
    def __init__(self, params: EndpointParams | None = None) -> None:
        self.params = params or EndpointParams()
        self.state = VadState.SILENCE
        self._run_start = 0.0  # start of the current onset or hangover run
        self._last_stop = 0.0
        self.now = 0.0

    @property
    def in_speech(self) -> bool:
        return self.state in _IN_SPEECH

    def feed(self, prob: float, start: float, end: float) -> list[ServerEvent]:
        """One frame covering ``[start, end)`` of session audio."""
        if end < start or start < self.now - 1e-6:
            raise IllegalTransition("endpointer", self.state.value, f"frame at {start:.3f}")
        p = self.params
        threshold = p.threshold_off if self.state in _IN_SPEECH else p.threshold_on
        voiced = prob >= threshold
        nxt = TRANSITIONS[(self.state, voiced)]
        self.now = end
        events: list[ServerEvent] = []
        if nxt != self.state and nxt in (VadState.ONSET, VadState.HANGOVER):
            self._run_start = start
        if nxt is VadState.ONSET and end - self._run_start >= p.min_speech_s - _EPS:
            nxt = VadState.SPEECH
            at = max(self._run_start - p.pad_s, self._last_stop, 0.0)
            events.append(SpeechStarted(at=at))
        elif nxt is VadState.HANGOVER and end - self._run_start >= p.min_silence_s - _EPS:
            nxt = VadState.SILENCE
            self._last_stop = min(self._run_start + p.pad_s, end)
            events.append(SpeechStopped(at=self._last_stop))
        self.state = nxt
        return events

    def flush(self) -> list[ServerEvent]:
        """End of audio: close an open segment at the end of what was heard."""
        if self.state is VadState.SPEECH:
            stop = self.now
        elif self.state is VadState.HANGOVER:
            stop = min(self._run_start + self.params.pad_s, self.now)
        else:
            self.state = VadState.SILENCE
            return []
        self.state = VadState.SILENCE
        self._last_stop = stop
        return [SpeechStopped(at=stop)]
