"""Guards against text the speech did not contain. Pure functions over ``AsrResult``.

Whisper invents text on silence and noise ("thank you for watching"), loops on a
phrase, and writes punctuation-only "words" for leading silence that, fed back as
the prompt, make later decodes collapse. The VAD gate keeps most silence away;
these filters catch the rest:

1. segment quality: a likely no-speech segment (high ``no_speech_prob`` with a low
   ``avg_logprob``) or a very low ``avg_logprob`` drops the whole segment; a high
   compression ratio (a loop) keeps only the words before the loop;
2. words without a letter or a digit are dropped;
3. a hypothesis that is only a known hallucination phrase is dropped; the
   ambiguous ones ("thank you", "bye") only when the decoder was unsure;
4. a phrase repeated back to back is cut after its second occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.audio.asr import AsrResult, AsrWord

_ALNUM = re.compile(r"[^\W_]", re.UNICODE)
_NOT_WORD = re.compile(r"[^\w']+", re.UNICODE)

# Phrases Whisper writes on silence or noise that real speech almost never is
# in its entirety. Matched against the whole normalized hypothesis.
BLOCKLIST: frozenset[str] = frozenset(
    {
        "thank you for watching",
        "thanks for watching",
        "thank you for watching and see you next time",
        "thank you so much for watching",
        "please subscribe",
        "please subscribe to my channel",
        "like and subscribe",
        "subtitles by the amara org community",
        "subtitles by the amaraorg community",
        "transcription by castingwords",
        "see you in the next video",
        "i'll see you in the next video",
        "thank you for listening",
    }
)
# Real in conversation, but also what Whisper says to noise: dropped only when the
# decoder itself was unsure.
SOFT_BLOCKLIST: frozenset[str] = frozenset({"thank you", "thanks", "you", "bye", "okay", "so"})


@dataclass(frozen=True, slots=True)
class GuardParams:
    no_speech_prob: float = 0.6
    no_speech_logprob: float = -0.8  # with no_speech_prob above: no speech
    min_avg_logprob: float = -1.3
    max_compression_ratio: float = 2.4
    soft_min_logprob: float = -0.6
    soft_max_no_speech: float = 0.25


def normalize(word: str) -> str:
    """Lower case, punctuation removed: the form words are compared in."""
    return _NOT_WORD.sub("", word.lower()).strip("'")


def has_alnum(word: str) -> bool:
    return _ALNUM.search(word) is not None


def cut_repetitions(words: list[AsrWord], max_n: int = 6) -> list[AsrWord]:
    """Cut a back-to-back repeated n-gram after its second occurrence (a single word
    after its third: "no no no" is speech, "no no no no no" a loop)."""
    norm = [normalize(w.text) for w in words]
    for i in range(len(words)):
        for n in range(1, max_n + 1):
            limit = 3 if n == 1 else 2
            reps = 1
            while (
                i + (reps + 1) * n <= len(norm)
                and norm[i + reps * n : i + (reps + 1) * n] == norm[i : i + n]
            ):
                reps += 1
            if reps > limit:
                return words[: i + limit * n]
    return words


def accepted_words(result: AsrResult, params: GuardParams | None = None) -> list[AsrWord]:
    """The words of ``result`` that survive every guard, in order."""
    p = params or GuardParams()
    kept: list[AsrWord] = []
    unsure = False
    for seg in result.segments:
        if seg.no_speech_prob > p.no_speech_prob and seg.avg_logprob < p.no_speech_logprob:
            continue
        if seg.avg_logprob < p.min_avg_logprob:
            continue
        if seg.avg_logprob < p.soft_min_logprob or seg.no_speech_prob > p.soft_max_no_speech:
            unsure = True
        words = [w for w in seg.words if has_alnum(w.text)]
        if seg.compression_ratio > p.max_compression_ratio:
            # A loop: keep what came before it. Dropping the whole segment would drop
            # real speech too, and a buffer that keeps looping would never commit.
            cut = cut_repetitions(words)
            words = cut if len(cut) < len(words) else []
        kept.extend(words)
    phrase = " ".join(normalize(w.text) for w in kept)
    if phrase in BLOCKLIST or (unsure and phrase in SOFT_BLOCKLIST):
        return []
    return cut_repetitions(kept)
