"""End of turn and barge-in decisions, as transcripts: events in, actions out."""

from __future__ import annotations

import pytest

from pipelines.voice.turn_taking import (
    BargeIn,
    Listening,
    StartTurn,
    TurnTaker,
    TurnTakingSettings,
)
from sessions.errors import IllegalTransition


def taker(**settings: float | bool) -> TurnTaker:
    return TurnTaker(TurnTakingSettings(**settings))  # type: ignore[arg-type]


def test_a_turn_starts_after_the_silence_once_the_final_is_in() -> None:
    t = taker(end_of_turn_s=0.5)
    assert t.speech_started(now=10.0) == []
    assert t.speech_stopped(at_audio=2.0, now=11.0) == []
    assert t.next_deadline() == 11.0 + 3.0  # final still out: wait for it
    assert t.caption_final("what time", end_audio=1.9, now=11.2) == []
    assert t.next_deadline() == 11.5
    assert t.timer(11.49) == []
    assert t.timer(11.5) == [StartTurn("what time", 11.0)]
    assert t.state is Listening.SILENT and t.next_deadline() is None


def test_a_late_final_starts_the_turn_once_it_settles() -> None:
    t = taker(end_of_turn_s=0.3, final_settle_s=0.03)
    t.speech_started(1.0)
    t.speech_stopped(2.0, now=2.0)
    assert t.timer(2.4) == []  # silence is long enough, but the final is not in
    assert t.caption_final("hello there", 1.95, now=2.6) == []
    assert t.next_deadline() == pytest.approx(2.63)  # its partial may follow at once
    assert t.timer(2.63) == [StartTurn("hello there", 2.0)]


def test_a_partial_after_the_final_means_more_is_coming() -> None:
    t = taker(end_of_turn_s=0.3, final_wait_s=3.0, final_settle_s=0.03)
    t.speech_started(0.0)
    t.speech_stopped(2.0, now=2.0)
    # A decode cut before speech stopped commits some words, the rest stay partial.
    assert t.caption_final("tell me a joke", 1.6, now=2.4) == []
    assert t.caption_partial("about cats", now=2.4) == []
    assert t.timer(2.5) == []
    assert t.next_deadline() == 5.0  # waiting for the segment's last final
    t.caption_final("about cats.", 2.0, now=2.8)
    assert t.timer(2.83) == [StartTurn("tell me a joke about cats.", 2.0)]


def test_an_empty_partial_says_the_segment_ended_without_more_words() -> None:
    t = taker(end_of_turn_s=0.3, final_wait_s=3.0)
    t.speech_started(0.0)
    t.speech_stopped(2.0, now=2.0)
    t.caption_final("yes", 0.5, now=2.1)  # too early to be the last one
    assert t.next_deadline() == 5.0
    assert t.caption_partial("", now=2.2) == []
    assert t.timer(2.3) == [StartTurn("yes", 2.0)]


def test_partials_while_speaking_change_nothing() -> None:
    t = taker(end_of_turn_s=0.3)
    assert t.caption_partial("hm", now=0.0) == []
    t.speech_started(0.0)
    assert t.caption_partial("hello", now=0.5) == []
    assert t.state is Listening.SPEAKING and t.next_deadline() is None


def test_finals_of_several_segments_make_one_utterance() -> None:
    t = taker(end_of_turn_s=0.5)
    t.speech_started(0.0)
    t.speech_stopped(1.0, now=1.0)
    t.caption_final("I need", 1.0, now=1.1)
    assert t.speech_started(1.3) == []  # a short pause: same turn
    t.speech_stopped(2.0, now=2.0)
    t.caption_final("a refund", 2.0, now=2.1)
    assert t.timer(2.5) == [StartTurn("I need a refund", 2.0)]


def test_speech_during_an_agent_turn_barges_in() -> None:
    t = taker()
    t.turn_started("t1")
    assert t.speech_started(5.0) == [BargeIn("t1")]
    assert t.speech_started(5.1) == []  # already speaking: once
    t.turn_done("t1")
    t.speech_stopped(6.0, now=6.0)
    t.caption_final("stop", 6.0, now=6.0)
    assert t.timer(6.5) == [StartTurn("stop", 6.0)]


def test_no_barge_in_when_disabled_or_when_no_turn_runs() -> None:
    off = taker(barge_in=False)
    off.turn_started("t1")
    assert off.speech_started(1.0) == []
    idle = taker()
    idle.turn_started("t1")
    idle.turn_done("t1")
    idle.turn_done("t0")  # a stale id changes nothing
    assert idle.speech_started(1.0) == []


def test_a_segment_with_no_final_and_no_words_starts_nothing() -> None:
    t = taker(end_of_turn_s=0.5, final_wait_s=2.0)
    t.speech_started(0.0)
    t.speech_stopped(1.0, now=1.0)
    assert t.timer(2.9) == []
    assert t.timer(3.0) == []
    assert t.state is Listening.SILENT


def test_finals_of_earlier_segments_are_not_the_last_one() -> None:
    t = taker(end_of_turn_s=0.2, final_wait_s=1.0)
    t.speech_started(0.0)
    t.speech_stopped(at_audio=5.0, now=5.0)
    t.caption_final("old", end_audio=2.0, now=5.1)  # an earlier segment's final
    assert t.timer(5.3) == []
    assert t.timer(6.0) == [StartTurn("old", 5.0)]  # gave up waiting: take what is there


def test_stray_events_change_nothing() -> None:
    t = taker()
    assert t.speech_stopped(1.0, now=1.0) == []  # not speaking
    assert t.caption_final("  ", 1.0, now=1.0) == []
    assert t.timer(100.0) == []
    assert t.state is Listening.SILENT


def test_long_utterances_are_bounded() -> None:
    t = taker(end_of_turn_s=0.0, max_utterance_chars=10)
    t.speech_started(0.0)
    t.speech_stopped(1.0, now=1.0)
    assert t.caption_final("x" * 50, 1.0, now=1.0) == []
    (action,) = t.timer(1.1)
    assert isinstance(action, StartTurn) and action.text == "x" * 10


def test_settings_are_checked_and_illegal_transitions_raise() -> None:
    with pytest.raises(ValueError):
        TurnTakingSettings(end_of_turn_s=-1)
    with pytest.raises(ValueError):
        TurnTakingSettings(final_wait_s=0)
    with pytest.raises(ValueError):
        TurnTakingSettings(final_settle_s=-0.1)
    t = taker()
    with pytest.raises(IllegalTransition):
        t._move("turn_taken")
    assert t.state is Listening.SILENT


def test_words_all_final_before_speech_stopped_need_no_further_final() -> None:
    t = taker(end_of_turn_s=0.5)
    t.speech_started(now=10.0)
    t.caption_partial("what time is", now=10.8)
    t.caption_final("what time is it", end_audio=1.8, now=11.0)
    assert t.speech_stopped(at_audio=2.0, now=11.1) == []
    assert t.next_deadline() == pytest.approx(11.6)  # the silence alone, not final_wait_s
    assert t.timer(11.6) == [StartTurn("what time is it", 11.1)]
    # A partial with words after the last final: its words are still to come.
    t.speech_started(now=20.0)
    t.caption_final("I need", end_audio=10.5, now=20.5)
    t.caption_partial("a refund", now=20.7)
    t.speech_stopped(at_audio=11.5, now=21.0)
    assert t.next_deadline() == 21.0 + 3.0
    # A final that ends well before the end of speech: the rest is being decoded.
    t2 = taker(end_of_turn_s=0.5)
    t2.speech_started(now=1.0)
    t2.caption_final("hello", end_audio=0.5, now=1.6)
    t2.speech_stopped(at_audio=2.0, now=2.2)
    assert t2.next_deadline() == 2.2 + 3.0
