"""Guards: what Whisper writes on silence, noise and loops does not become a caption."""

from __future__ import annotations

from pipelines.audio.asr import AsrResult, AsrSegment, AsrWord
from pipelines.audio.guards import accepted_words, cut_repetitions, has_alnum, normalize


def words(text: str, start: float = 0.0) -> tuple[AsrWord, ...]:
    return tuple(
        AsrWord(w, start + i * 0.3, start + i * 0.3 + 0.25, 0.9) for i, w in enumerate(text.split())
    )


def result(
    text: str, *, no_speech: float = 0.05, logprob: float = -0.2, ratio: float = 1.2
) -> AsrResult:
    return AsrResult((AsrSegment(words(text), no_speech, logprob, ratio),), 3.0)


def texts(ws: list[AsrWord]) -> str:
    return " ".join(w.text for w in ws)


def test_normalize_and_alnum() -> None:
    assert normalize("Hello,") == "hello"
    assert normalize("didn't.") == "didn't"
    assert normalize("...") == ""
    assert has_alnum("42") and has_alnum("é") and not has_alnum("--") and not has_alnum(".")


def test_clean_speech_passes_and_punctuation_only_words_go() -> None:
    assert texts(accepted_words(result("Hello , world ... again."))) == "Hello world again."


def test_likely_no_speech_segments_are_dropped() -> None:
    assert accepted_words(result("Hello there.", no_speech=0.9, logprob=-1.0)) == []
    assert (
        texts(accepted_words(result("Hello there.", no_speech=0.9, logprob=-0.1))) == "Hello there."
    )  # confident text despite the no-speech token: kept


def test_low_confidence_is_dropped_and_loops_keep_only_what_came_before() -> None:
    assert accepted_words(result("mumble jumble", logprob=-1.6)) == []
    looped = "I said yeah yeah yeah yeah yeah yeah yeah"
    assert texts(accepted_words(result(looped, ratio=3.1))) == "I said yeah yeah yeah"
    # a high ratio with no visible word loop: nothing to trust
    assert accepted_words(result("la di da", ratio=3.1)) == []


def test_known_hallucinations_are_dropped_whole() -> None:
    assert accepted_words(result("Thank you for watching!")) == []
    assert accepted_words(result("Please subscribe.")) == []
    # inside real speech the phrase is kept
    assert (
        texts(accepted_words(result("I said thanks for watching the kids")))
        == "I said thanks for watching the kids"
    )


def test_ambiguous_phrases_are_dropped_only_when_the_decoder_was_unsure() -> None:
    assert texts(accepted_words(result("Thank you."))) == "Thank you."
    assert accepted_words(result("Thank you.", logprob=-0.9)) == []
    assert accepted_words(result("you", no_speech=0.4)) == []


def test_repetition_loops_are_cut_after_the_second_occurrence() -> None:
    looped = list(words("I heard a beep I heard a beep I heard a beep I heard a beep"))
    assert texts(cut_repetitions(looped)) == "I heard a beep I heard a beep"
    single = list(words("no no no no no no"))
    assert texts(cut_repetitions(single)) == "no no no"
    speech = list(words("no no no I said very very good"))
    assert texts(cut_repetitions(speech)) == "no no no I said very very good"
