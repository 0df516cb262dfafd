"""Endpointing transcripts: probabilities per 100 ms frame in, speech events out."""

from __future__ import annotations

import pytest

from pipelines.audio.endpointing import Endpointer, EndpointParams, VadState
from sessions.errors import IllegalTransition
from sessions.events import ServerEvent, SpeechStarted, SpeechStopped

FRAME = 0.1
PARAMS = EndpointParams(
    threshold_on=0.5, threshold_off=0.3, min_speech_s=0.2, min_silence_s=0.3, pad_s=0.1
)


def run(probs: list[float], params: EndpointParams = PARAMS) -> tuple[Endpointer, list[str]]:
    ep = Endpointer(params)
    out: list[ServerEvent] = []
    for i, p in enumerate(probs):
        out += ep.feed(p, i * FRAME, (i + 1) * FRAME)
    return ep, [describe(e) for e in out]


def describe(event: ServerEvent) -> str:
    assert isinstance(event, SpeechStarted | SpeechStopped)
    return f"{event.type} {event.at:.1f}"


def test_speech_between_silences_is_one_segment_with_padding() -> None:
    _, events = run([0, 0, 0.9, 0.9, 0.9, 0.9, 0, 0, 0, 0])
    # onset at 0.2 s (padded to 0.1), last voiced frame ends 0.6 s (padded to 0.7)
    assert events == ["speech.started 0.1", "speech.stopped 0.7"]


def test_a_blip_shorter_than_min_speech_opens_nothing() -> None:
    ep, events = run([0, 0.9, 0, 0, 0.9, 0, 0])
    assert events == []
    assert ep.state is VadState.SILENCE


def test_a_pause_shorter_than_min_silence_is_bridged() -> None:
    _, events = run([0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0, 0, 0, 0])
    assert events == ["speech.started 0.0", "speech.stopped 0.8"]


def test_hysteresis_keeps_speech_above_the_lower_threshold() -> None:
    # 0.4 cannot start speech (below 0.5) but keeps it going (above 0.3).
    _, idle = run([0.4] * 10)
    assert idle == []
    _, events = run([0.9, 0.9, 0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2])
    assert events == ["speech.started 0.0", "speech.stopped 0.7"]


def test_flush_closes_open_speech_at_the_end_of_audio() -> None:
    ep, events = run([0, 0.9, 0.9, 0.9])
    assert events == ["speech.started 0.0"]
    assert [describe(e) for e in ep.flush()] == ["speech.stopped 0.4"]
    assert ep.flush() == []


def test_flush_during_hangover_uses_the_padded_offset() -> None:
    ep, _ = run([0.9, 0.9, 0.9, 0, 0])
    assert [describe(e) for e in ep.flush()] == ["speech.stopped 0.4"]


def test_a_restart_is_never_dated_before_the_previous_stop() -> None:
    params = EndpointParams(min_speech_s=0.1, min_silence_s=0.2, pad_s=0.2)
    _, events = run([0.9, 0.9, 0, 0, 0.9, 0.9, 0, 0, 0], params)
    assert events == [
        "speech.started 0.0",
        "speech.stopped 0.4",
        "speech.started 0.4",
        "speech.stopped 0.8",
    ]


def test_frames_going_back_in_time_are_refused() -> None:
    ep, _ = run([0.9, 0.9, 0.9])
    with pytest.raises(IllegalTransition):
        ep.feed(0.9, 0.1, 0.2)
    assert ep.state is VadState.SPEECH  # unchanged


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold_on": 0.3, "threshold_off": 0.5},
        {"min_silence_s": -1.0},
        {"pad_s": 0.5, "min_silence_s": 0.3},
    ],
)
def test_inconsistent_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EndpointParams(**kwargs)
