"""The shared embedding worker: several sessions batched, served in turn, bounded."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from pipelines.audio.speaker_embedding import Ge2eEmbedder, shared_ge2e
from pipelines.audio.speaker_worker import EmbeddingWorker
from tests.audio.diarization_assets import ESPEAK_F3, ESPEAK_US, PIPER_JOE, speech

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def encoder() -> Ge2eEmbedder:
    return shared_ge2e()


def windows_of(voice: str, n: int) -> list[np.ndarray]:
    x = speech(voice, "We could rent a room in the library near the lake for the workshops.")
    return [x[i * 4000 : i * 4000 + 25600] for i in range(n)]


async def test_sessions_waiting_together_share_batches(encoder: Ge2eEmbedder) -> None:
    worker = EmbeddingWorker(encoder, max_batch=64)
    asks = {
        "a": windows_of(PIPER_JOE, 3),
        "b": windows_of(ESPEAK_US, 4),
        "c": windows_of(ESPEAK_F3, 2),
    }
    got: dict[str, np.ndarray] = {}

    async def ask(session: str) -> None:
        got[session] = await worker.embed(session, asks[session])

    async with anyio.create_task_group() as tg:
        for s in asks:
            tg.start_soon(ask, s)
    assert worker.windows_embedded == 9 and worker.batches < 3
    for s, w in asks.items():
        assert np.allclose(got[s], encoder.embed(w), atol=1e-4)  # same rows, right owner
    assert worker.pending_windows == 0


async def test_a_greedy_session_does_not_starve_another(encoder: Ge2eEmbedder) -> None:
    worker = EmbeddingWorker(encoder, max_batch=4, max_pending=64)
    order: list[str] = []

    async def ask(session: str, voice: str, times: int) -> None:
        for _ in range(times):
            await worker.embed(session, windows_of(voice, 4))
            order.append(session)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, "greedy", PIPER_JOE, 4)
        tg.start_soon(ask, "modest", ESPEAK_US, 1)
    assert order.index("modest") <= 1  # served in turn, not after the greedy backlog


async def test_the_queue_is_bounded(encoder: Ge2eEmbedder) -> None:
    worker = EmbeddingWorker(encoder, max_batch=4, max_pending=8)
    peak = 0

    async def ask(session: str) -> None:
        nonlocal peak
        await worker.embed(session, windows_of(PIPER_JOE, 4))
        peak = max(peak, worker.pending_windows)

    async with anyio.create_task_group() as tg:
        for k in range(6):
            tg.start_soon(ask, f"s{k}")
            peak = max(peak, worker.pending_windows)
    assert peak <= 8 and worker.windows_embedded == 24


async def test_embedder_errors_reach_the_caller_and_the_worker_goes_on(
    encoder: Ge2eEmbedder,
) -> None:
    worker = EmbeddingWorker(encoder)
    with pytest.raises(ValueError, match="at least"):
        await worker.embed("s", [np.zeros(10, np.float32)])
    assert (await worker.embed("s", windows_of(PIPER_JOE, 1))).shape == (1, 256)
    assert (await worker.embed("s", [])).shape == (0, 256)


async def test_a_cancelled_wait_leaves_nothing_behind(encoder: Ge2eEmbedder) -> None:
    worker = EmbeddingWorker(encoder, max_batch=4)
    with anyio.move_on_after(0):
        await worker.embed("s", windows_of(PIPER_JOE, 4))
    assert worker.pending_windows == 0
    assert (await worker.embed("t", windows_of(ESPEAK_US, 2))).shape == (2, 256)


def test_bad_bounds_are_refused(encoder: Ge2eEmbedder) -> None:
    with pytest.raises(ValueError):
        EmbeddingWorker(encoder, max_batch=8, max_pending=4)
