"""When the user has finished speaking, and when they talk over the agent.

Pure and synchronous: the voice pipeline feeds it what the caption stages emit
(``speech.started``, ``speech.stopped``, ``caption.final``) and what the agent does
(turn started, turn done), with ``now`` on the server's monotonic clock, and acts on
the actions it returns.

End of turn: the user's utterance (the finals since the last turn) is handed to the
agent once speech has stopped for ``end_of_turn_s`` *and* the final of the last
speech segment is in. A shorter silence answers sooner but cuts users off who pause
mid-sentence; a longer one feels sluggish (docs/voice.md).

Whether the last final is in is read from the captions: a final that reaches the end
of the speech says yes, a non-empty ``caption.partial`` after it says no (words of
the segment are still being decoded), an empty one says the segment ended. A final
and the partial that follows it are emitted together, so the turn is taken on the
timer, ``final_settle_s`` after the last final, never inside ``caption_final``.

Decodes can be quicker than the VAD: when every word of the speech is final before
``speech.stopped`` (the newest final ends within ``EARLY_FINAL_S`` of the end of
speech, and no partial with words came after it), no final follows and the turn is
taken after the silence alone.

Barge-in: speech that starts while an agent turn runs cancels that turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sessions.errors import IllegalTransition


@dataclass(frozen=True, slots=True)
class TurnTakingSettings:
    end_of_turn_s: float = 0.5
    # How long to wait for the final of a segment after speech stopped: a segment
    # the ASR found nothing in (noise, a cough) has no final.
    final_wait_s: float = 3.0
    barge_in: bool = True
    max_utterance_chars: int = 4000
    # A final may be followed at once by the partial of the words after it.
    final_settle_s: float = 0.03

    def __post_init__(self) -> None:
        if not 0 <= self.end_of_turn_s <= 10:
            raise ValueError("end_of_turn_s must be within 0..10 s")
        if self.final_wait_s <= 0:
            raise ValueError("final_wait_s must be positive")
        if not 0 <= self.final_settle_s <= 1:
            raise ValueError("final_settle_s must be within 0..1 s")


@dataclass(frozen=True, slots=True)
class StartTurn:
    """Hand ``text`` to the agent; ``speech_ended_at`` starts the latency clock."""

    text: str
    speech_ended_at: float


@dataclass(frozen=True, slots=True)
class BargeIn:
    turn_id: str


Action = StartTurn | BargeIn


EARLY_FINAL_S = 0.4  # end of speech (with the VAD's padding) to the end of its last word


class Listening(StrEnum):
    SILENT = "silent"  # nothing said since the last turn
    SPEAKING = "speaking"
    PAUSED = "paused"  # speech stopped; waiting for the final and the silence


TRANSITIONS: dict[tuple[Listening, str], Listening] = {
    (Listening.SILENT, "speech_started"): Listening.SPEAKING,
    (Listening.PAUSED, "speech_started"): Listening.SPEAKING,
    (Listening.SPEAKING, "speech_stopped"): Listening.PAUSED,
    (Listening.PAUSED, "turn_taken"): Listening.SILENT,
    (Listening.PAUSED, "nothing_said"): Listening.SILENT,
}


@dataclass
class TurnTaker:
    settings: TurnTakingSettings = field(default_factory=TurnTakingSettings)
    state: Listening = Listening.SILENT
    agent_turn: str | None = None
    _words: list[str] = field(default_factory=list)
    _stopped_at: float | None = None  # monotonic time speech stopped
    _stopped_audio: float = 0.0  # session audio time speech stopped
    _final_in: bool = True  # the final of the last segment has arrived
    _final_end: float = -1.0  # audio time the newest final reaches
    _partial_open: bool = False  # a partial with words came after the newest final
    _settle_until: float = 0.0  # monotonic time: a partial may still follow a final

    def _move(self, action: str) -> None:
        try:
            self.state = TRANSITIONS[(self.state, action)]
        except KeyError:
            raise IllegalTransition("turn_taker", self.state, action) from None

    # -- what the caption stages say -------------------------------------------

    def speech_started(self, now: float) -> list[Action]:
        if self.state is Listening.SPEAKING:
            return []
        self._move("speech_started")
        self._stopped_at = None
        self._final_in = False
        if self.settings.barge_in and self.agent_turn is not None:
            return [BargeIn(self.agent_turn)]
        return []

    def speech_stopped(self, at_audio: float, now: float) -> list[Action]:
        if self.state is not Listening.SPEAKING:
            return []
        self._move("speech_stopped")
        self._stopped_at = now
        self._stopped_audio = at_audio
        # Decodes may have made every word final before the VAD was sure speech had
        # stopped: then no final follows, and there is nothing to wait for.
        self._final_in = not self._partial_open and self._final_end >= at_audio - EARLY_FINAL_S
        return self.timer(now)

    def caption_final(self, text: str, end_audio: float, now: float) -> list[Action]:
        text = text.strip()
        if text:
            self._words.append(text)
        self._final_end = max(self._final_end, end_audio)
        self._partial_open = False
        if self.state is Listening.PAUSED and end_audio >= self._stopped_audio - 0.5:
            self._final_in = True
        self._settle_until = now + self.settings.final_settle_s
        return self.timer(now)

    def caption_partial(self, text: str, now: float) -> list[Action]:
        """After speech stopped, a partial with words means more finals are coming;
        an empty one that the segment ended without them."""
        self._partial_open = bool(text.strip())
        if self.state is Listening.PAUSED:
            self._final_in = not self._partial_open
        return self.timer(now)

    # -- what the agent says -----------------------------------------------------

    def turn_started(self, turn_id: str) -> None:
        self.agent_turn = turn_id

    def turn_done(self, turn_id: str) -> None:
        if self.agent_turn == turn_id:
            self.agent_turn = None

    # -- time ---------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        if self.state is not Listening.PAUSED or self._stopped_at is None:
            return None
        if self._final_in:
            return max(self._stopped_at + self.settings.end_of_turn_s, self._settle_until)
        return self._stopped_at + max(self.settings.end_of_turn_s, self.settings.final_wait_s)

    def timer(self, now: float) -> list[Action]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        assert self._stopped_at is not None
        ended = self._stopped_at
        text = " ".join(self._words)[: self.settings.max_utterance_chars]
        self._words.clear()
        if not text:
            self._move("nothing_said")
            return []
        self._move("turn_taken")
        return [StartTurn(text, ended)]
