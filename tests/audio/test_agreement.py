"""The caption policy as transcripts: audio and speech marks in, jobs out; decode
results in, partials and finals out. Results are written by hand: the policy is
pure, and these are the shapes the real model returns."""

from __future__ import annotations

import numpy as np

from pipelines.audio.agreement import CaptionPolicy, DecodeJob, PolicyParams
from pipelines.audio.asr import AsrResult, AsrSegment, AsrWord
from pipelines.audio.matching import agreed_prefix, repeated_run, strip_committed
from sessions.events import CaptionFinal, CaptionPartial, ServerEvent, Word


def feed(policy: CaptionPolicy, seconds: float) -> None:
    policy.feed_audio(np.zeros(round(seconds * 16000), dtype=np.float32))


def heard(*timed: tuple[str, float, float]) -> AsrResult:
    """Words with times relative to the decoded window."""
    ws = tuple(AsrWord(w, s, e, 0.9) for w, s, e in timed)
    return AsrResult((AsrSegment(ws, 0.02, -0.2, 1.3),), 5.0)


def show(events: list[ServerEvent]) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, CaptionFinal):
            out.append(f"final#{e.segment} {e.text!r} {e.start:.2f}-{e.end:.2f}")
        elif isinstance(e, CaptionPartial):
            out.append(f"partial#{e.segment} {e.text!r}")
    return out


def job(policy: CaptionPolicy, interval: float | None = 0.4) -> DecodeJob:
    j = policy.next_job(interval)
    assert j is not None
    return j


def test_nothing_is_decoded_without_speech() -> None:
    policy = CaptionPolicy()
    feed(policy, 5.0)
    assert policy.next_job(0.4) is None
    assert policy.idle


def test_agreement_over_two_decodes_makes_words_final() -> None:
    policy = CaptionPolicy(PolicyParams(early_lead=0))
    feed(policy, 2.0)
    policy.speech_started(1.5)
    feed(policy, 0.5)  # now 2.5
    j1 = job(policy)
    assert (j1.offset, j1.end, j1.final) == (1.5, 2.5, False)
    assert show(policy.job_done(j1, heard(("Hello", 0.1, 0.5), ("wor", 0.6, 0.9)))) == [
        "partial#0 'Hello wor'"
    ]
    assert policy.next_job(0.4) is None  # not enough new audio yet
    feed(policy, 0.5)
    j2 = job(policy)
    events = policy.job_done(
        j2, heard(("Hello", 0.1, 0.5), ("world,", 0.6, 0.95), ("how", 1.0, 1.2))
    )
    assert show(events) == ["final#0 'Hello' 1.60-2.00", "partial#1 'world, how'"]
    final = events[0]
    assert isinstance(final, CaptionFinal) and final.words is not None
    assert [(w.w, w.start, w.end) for w in final.words] == [("Hello", 1.6, 2.0)]


def test_committed_words_heard_again_are_matched_by_text() -> None:
    policy = CaptionPolicy(PolicyParams(early_lead=0))
    policy.speech_started(0.0)
    feed(policy, 1.0)
    policy.job_done(job(policy), heard(("One", 0.1, 0.4), ("two", 0.5, 0.8)))
    feed(policy, 0.5)
    policy.job_done(job(policy), heard(("One", 0.1, 0.4), ("two", 0.5, 0.8), ("three", 1.0, 1.3)))
    feed(policy, 0.5)
    j3 = job(policy)
    assert (j3.offset, j3.prompt) == (0.0, "")  # the buffer still holds "One two"
    # "two" is heard as "to" this time, with another time: still the committed word
    events = policy.job_done(
        j3, heard(("One", 0.1, 0.4), ("to", 0.3, 0.6), ("three", 1.0, 1.3), ("four", 1.5, 1.8))
    )
    assert show(events) == ["final#1 'three' 1.00-1.30", "partial#2 'four'"]


def test_strip_committed_falls_back_to_time_when_no_text_matches() -> None:
    committed = [Word("alpha", 0.0, 0.4, 0.9), Word("beta", 0.5, 0.9, 0.9)]
    words = [Word("al", 0.0, 0.3, 0.5), Word("fa", 0.3, 0.5, 0.5), Word("gamma", 1.0, 1.4, 0.9)]
    assert [w.w for w in strip_committed(committed, words)] == ["gamma"]
    assert strip_committed([], words) == words
    same = [Word("alpha", 0.0, 0.4, 0.9), Word("beta", 0.5, 0.9, 0.9)]
    assert strip_committed(committed, same) == []


def test_long_buffers_are_trimmed_after_a_sentence_and_the_prompt_takes_over() -> None:
    policy = CaptionPolicy(PolicyParams(trim_s=3.0, keep_s=1.0, early_lead=0))
    policy.speech_started(0.0)
    feed(policy, 2.0)
    said = (("It", 0.1, 0.3), ("rained.", 0.4, 0.9), ("Then", 1.2, 1.5), ("sun", 1.6, 1.9))
    policy.job_done(job(policy), heard(*said))
    feed(policy, 1.5)
    events = policy.job_done(job(policy), heard(*said, ("came", 2.2, 2.6), ("out", 2.8, 3.2)))
    assert show(events) == ["final#0 'It rained. Then sun' 0.10-1.90", "partial#1 'came out'"]
    feed(policy, 0.5)
    j = job(policy)
    # 4 s of buffer > trim_s: cut after "rained." (a sentence end before now - keep_s)
    assert (j.offset, j.prompt) == (0.9, "It rained.")
    events = policy.job_done(
        j, heard(("Then", 0.3, 0.6), ("sun", 0.7, 1.0), ("came", 1.3, 1.7), ("out.", 1.9, 2.3))
    )
    assert show(events) == ["final#1 'came out.' 2.20-3.20"]


def test_words_well_inside_one_decode_commit_early() -> None:
    policy = CaptionPolicy(PolicyParams(early_lead=2, early_p=0.8))
    policy.speech_started(0.0)
    feed(policy, 2.0)
    events = policy.job_done(
        job(policy), heard(("a", 0.1, 0.3), ("b", 0.4, 0.6), ("c", 0.7, 0.9), ("d", 1.0, 1.2))
    )
    assert show(events) == ["final#0 'a b' 0.10-0.60", "partial#1 'c d'"]


def test_speech_end_decodes_at_once_and_commits_everything() -> None:
    policy = CaptionPolicy(PolicyParams(early_lead=0))
    feed(policy, 0.4)
    policy.speech_started(0.2)  # back-dated: the audio is already there
    feed(policy, 0.6)
    policy.job_done(job(policy), heard(("Good", 0.1, 0.4)))
    feed(policy, 0.6)
    policy.speech_stopped(1.4)
    final_job = job(policy, None)  # finals are due even with partials off
    assert final_job.final and (final_job.offset, final_job.end) == (0.2, 1.4)
    events = policy.job_done(final_job, heard(("Good", 0.1, 0.4), ("morning.", 0.5, 1.0)))
    assert show(events) == ["final#0 'Good morning.' 0.30-1.20"]
    assert policy.next_job(0.4) is None and policy.idle


def test_a_segment_that_ends_with_nothing_retracts_its_partial() -> None:
    policy = CaptionPolicy()
    policy.speech_started(0.0)
    feed(policy, 1.0)
    assert show(policy.job_done(job(policy), heard(("Uh", 0.2, 0.4)))) == ["partial#0 'Uh'"]
    policy.speech_stopped(1.0)
    assert show(policy.job_done(job(policy), heard())) == ["partial#0 ''"]


def test_long_speech_without_agreement_is_committed_by_force() -> None:
    policy = CaptionPolicy(PolicyParams(max_buffer_s=3.0, force_margin_s=1.0))
    policy.speech_started(0.0)
    feed(policy, 3.5)
    j = job(policy, None)  # forced even with partials off
    flip = heard(("a", 0.2, 0.5), ("b", 1.0, 1.4), ("c", 2.0, 2.4), ("d", 3.0, 3.3))
    assert show(policy.job_done(j, flip)) == ["final#0 'a b c' 0.20-2.40", "partial#1 'd'"]


def test_a_worker_behind_gets_fewer_eager_decodes() -> None:
    policy = CaptionPolicy(PolicyParams(early_lead=0, degraded_interval_s=2.5))
    policy.speech_started(0.0)
    feed(policy, 2.0)
    assert policy.next_job(None) is None  # sparse: not before 2.5 s of new audio
    feed(policy, 0.5)
    j = job(policy, None)
    assert j.eager
    events = policy.job_done(j, heard(("a", 0.1, 0.4), ("b", 0.8, 1.2), ("c", 1.7, 2.0)))
    # no second decode is coming soon: all but the last second is final at once
    assert show(events) == ["final#0 'a b' 0.10-1.20", "partial#1 'c'"]
    feed(policy, 0.8)
    assert job(policy, 0.8).eager  # reduced: a longer interval than configured
    feed(policy, 0.4)
    assert not job(policy, 0.4).eager


def test_stale_results_are_ignored() -> None:
    policy = CaptionPolicy()
    policy.speech_started(0.0)
    feed(policy, 1.0)
    j = job(policy)
    policy.speech_stopped(1.0)
    final = job(policy)
    policy.job_done(final, heard(("Hi", 0.1, 0.3)))
    assert policy.job_done(j, heard(("Hi", 0.1, 0.3))) == []  # its segment is gone


def test_pending_audio_counts_speech_not_yet_final() -> None:
    policy = CaptionPolicy()
    feed(policy, 1.0)
    assert policy.pending_audio_s == 0.0
    policy.speech_started(0.5)
    feed(policy, 1.0)
    assert abs(policy.pending_audio_s - 1.5) < 1e-6
    assert abs(policy.undecoded_s - 1.5) < 1e-6
    job(policy)
    assert policy.undecoded_s == 0.0


def test_agreed_prefix_is_local_agreement_tolerant_of_a_flipped_word() -> None:
    def agreed(a: str, b: str) -> int:
        return agreed_prefix(a.split(), b.split())

    assert agreed("hello wor", "hello world how") == 1
    assert agreed("", "hello") == 0
    assert agreed("a b c", "a b c d") == 3
    # the first word flips, the rest agrees: the newer reading is taken
    assert agreed("okay wait i thought you know", "hey i thought you know i heard") == 5
    # a single agreeing word after a difference is not enough
    assert agreed("x the y z", "w the q r") == 0
    # differences wider than two words stop agreement
    assert agreed("a b c d e f", "p q r d e f") == 0


def test_a_buffer_that_yields_nothing_drops_its_prompt_then_its_oldest_audio() -> None:
    policy = CaptionPolicy(PolicyParams(max_buffer_s=2.0, trim_s=1.0, keep_s=0.2, early_lead=0))
    policy.speech_started(0.0)
    feed(policy, 1.0)
    policy.job_done(job(policy), heard(("Yes", 0.1, 0.3), ("sir.", 0.4, 0.6)))
    feed(policy, 0.5)
    policy.job_done(job(policy), heard(("Yes", 0.1, 0.3), ("sir.", 0.4, 0.6), ("and", 0.9, 1.0)))
    assert job(policy, 0.0).prompt == "Yes sir."  # trimmed after "sir."
    for _ in range(2):
        feed(policy, 0.5)
        policy.job_done(job(policy, 0.0), heard())
    feed(policy, 0.5)
    j = job(policy, 0.0)
    assert j.prompt == ""  # two empty decodes in a row: no prompt
    policy.job_done(j, heard())
    feed(policy, 3.0)
    stuck = job(policy, 0.0)
    assert stuck.end - stuck.offset > 4.0
    policy.job_done(stuck, heard())
    assert abs(job(policy, 0.0).offset - (stuck.end - 2.0)) < 1e-6  # caught up


def test_words_decoded_twice_over_the_same_audio_are_not_final_twice() -> None:
    said = [Word("well", 22.1, 22.4, 0.9), Word("there", 22.7, 22.9, 0.9)]
    said += [Word("isn't", 22.9, 23.2, 0.9), Word("that", 23.2, 23.4, 0.9)]
    again = [Word("Well,", 22.2, 22.5, 0.9), Word("there", 22.6, 22.8, 0.9)]
    again += [Word("isn't", 22.8, 23.1, 0.9), Word("much", 23.5, 23.9, 0.9)]
    assert repeated_run(said, again) == 3
    # The prompt echoed at the start of the next window (3+ words, just after them).
    echo = [Word(w.w, w.start + 1.5, w.end + 1.5, w.p) for w in said]
    assert repeated_run(said, echo) == 4
    assert repeated_run(said, echo[2:]) == 0  # two words: perhaps said again
    # The same words said again later are speech, and so is a single repeated word.
    later = [Word(w.w, w.start + 4.5, w.end + 4.5, w.p) for w in said]
    assert repeated_run(said, later) == 0
    assert repeated_run(said, [Word("that", 23.2, 23.4, 0.9), Word("one", 23.5, 23.8, 0.9)]) == 0
    assert repeated_run([], again) == 0
    # Through the policy: a final decode that hears committed words of another
    # buffer again (its text no longer in the buffer) commits only what is new.
    policy = CaptionPolicy(PolicyParams(early_lead=0))
    policy.speech_started(0.0)
    feed(policy, 1.0)
    policy.job_done(job(policy), heard(("One", 0.1, 0.4), ("two", 0.5, 0.8), ("three", 0.8, 0.9)))
    policy.job_done(job(policy, 0.0), heard(("One", 0.1, 0.4), ("two", 0.5, 0.8), ("x", 0.9, 1.0)))
    policy.speech_stopped(1.0)
    seg = policy._closed[0]
    seg.in_buffer = []  # as if trimmed away
    events = policy.job_done(
        job(policy), heard(("One", 0.1, 0.4), ("two", 0.5, 0.8), ("four", 0.9, 1.0))
    )
    assert show(events) == ["final#1 'four' 0.90-1.00"]
