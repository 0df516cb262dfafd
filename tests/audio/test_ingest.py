"""Ingest: pcm_s16le bytes in, float32 16 kHz mono out, whatever the framing."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from pipelines.audio.ingest import ArrivalClock, PcmDecoder, StreamingResampler

RNG = np.random.default_rng(7)


def pcm(values: list[int]) -> bytes:
    return np.array(values, dtype="<i2").tobytes()


def test_16k_mono_decodes_to_scaled_floats() -> None:
    out = PcmDecoder().feed(pcm([0, 16384, -32768, 32767]), 0)
    assert out.dtype == np.float32
    assert out.tolist() == [0.0, 0.5, -1.0, 32767 / 32768]


def test_odd_byte_counts_carry_over_to_the_next_chunk() -> None:
    dec = PcmDecoder()
    data = pcm([1000, -2000, 3000])
    first = dec.feed(data[:3], 0)  # one sample and a half
    second = dec.feed(data[3:], 1)
    assert len(first) == 1 and len(second) == 2
    assert np.concatenate([first, second]).tolist() == PcmDecoder().feed(data).tolist()


def test_a_trailing_half_sample_is_dropped_at_flush() -> None:
    dec = PcmDecoder()
    assert len(dec.feed(b"\x01", 0)) == 0
    assert len(dec.flush()) == 0
    assert len(dec.feed(pcm([5]), 1)) == 1  # the stray byte did not shift later audio


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=4000), cuts=st.lists(st.integers(0, 4000)))
def test_any_split_of_the_bytes_decodes_like_the_whole(data: bytes, cuts: list[int]) -> None:
    whole = PcmDecoder(48000, 2)
    expected = np.concatenate([whole.feed(data), whole.flush()])
    dec = PcmDecoder(48000, 2)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [dec.feed(data[a:b], k) for k, (a, b) in enumerate(pairwise(bounds))]
    got = np.concatenate([*pieces, dec.flush()])
    assert np.allclose(got, expected, atol=1e-6)


def test_byte_by_byte_equals_whole() -> None:
    data = RNG.integers(-30000, 30000, 2000).astype("<i2").tobytes()
    dec = PcmDecoder(22050)
    got = np.concatenate([*(dec.feed(data[i : i + 1], i) for i in range(len(data))), dec.flush()])
    ref = PcmDecoder(22050)
    assert np.allclose(got, np.concatenate([ref.feed(data), ref.flush()]), atol=1e-6)


def test_stereo_is_downmixed_to_the_mean() -> None:
    out = PcmDecoder(16000, 2).feed(pcm([1000, 3000, -4000, 0]))
    assert np.allclose(out, [2000 / 32768, -2000 / 32768])


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 24000, 32000, 44100, 48000])
def test_streaming_resampler_matches_whole_file_resample_poly(rate: int) -> None:
    x = (RNG.standard_normal(rate) * 0.1).astype(np.float32)
    res = StreamingResampler(rate)
    out, i = [], 0
    while i < len(x):
        n = int(RNG.integers(1, 4000))
        out.append(res.feed(x[i : i + n]))
        i += n
    out.append(res.flush())
    y = np.concatenate(out)
    g = np.gcd(rate, 16000)
    ref = resample_poly(x.astype(np.float64), 16000 // g, rate // g)
    assert len(y) == len(ref) == 16000
    assert np.max(np.abs(y - ref)) < 1e-5


def test_resampling_removes_what_16k_cannot_hold() -> None:
    t = np.arange(48000) / 48000
    tone = (0.5 * np.sin(2 * np.pi * 12000 * t)).astype(np.float32)  # above 8 kHz
    out = StreamingResampler(48000).feed(tone)
    assert np.sqrt(np.mean(out[200:] ** 2)) < 0.005  # no alias folded back in


def test_duplicate_and_late_chunks_are_dropped() -> None:
    dec = PcmDecoder()
    assert len(dec.feed(pcm([1, 2]), 0)) == 2
    assert len(dec.feed(pcm([3, 4]), 1)) == 2
    assert len(dec.feed(pcm([1, 2]), 0)) == 0  # duplicate
    assert len(dec.feed(pcm([9]), 5)) == 1  # a gap is accepted
    assert len(dec.feed(pcm([8]), 3)) == 0  # late: would go back in time
    assert dec.stats.dropped_chunks == 2
    assert len(dec.feed(pcm([7]), None)) == 1  # no index: in order


def test_garbage_decodes_to_bounded_samples() -> None:
    garbage = RNG.integers(0, 256, 10_001, dtype=np.uint8).tobytes()
    out = PcmDecoder(44100, 2).feed(garbage)
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.5


def test_a_huge_chunk_is_resampled_in_bounded_steps() -> None:
    minute = np.zeros(48000 * 60, dtype="<i2").tobytes()
    dec = PcmDecoder(48000)
    assert len(dec.feed(minute)) + len(dec.flush()) == 16000 * 60


def test_unsupported_channel_count_is_refused() -> None:
    with pytest.raises(ValueError):
        PcmDecoder(16000, 3)


def test_reformat_keeps_the_chunk_numbering() -> None:
    dec = PcmDecoder()
    dec.feed(pcm([1]), 0)
    dec.feed(pcm([1]), 1)
    tail, dec = dec.reformat(8000, 1)
    assert len(tail) == 0
    assert len(dec.feed(pcm([1] * 80), 1)) == 0  # still a duplicate
    assert len(dec.feed(pcm([1] * 800), 2)) > 0


def test_arrival_clock_maps_audio_time_to_arrival() -> None:
    clock = ArrivalClock(keep_s=10)
    assert clock.arrival_of(0.5) is None
    clock.mark(1.0, 100.0)
    clock.mark(2.0, 101.5)
    assert clock.arrival_of(0.3) == 100.0
    assert clock.arrival_of(1.5) == 101.5
    assert clock.arrival_of(9.0) == 101.5  # past the end: the newest known
    clock.mark(30.0, 130.0)
    assert clock.arrival_of(0.3) == 130.0  # older marks forgotten
