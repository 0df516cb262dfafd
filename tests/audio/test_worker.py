"""The shared ASR worker: every session gets its turn; cancellation and errors stay
with their owner. Real decodes of short windows."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import numpy as np
import numpy.typing as npt
import pytest

from pipelines.audio.agreement import DecodeJob
from pipelines.audio.asr import FasterWhisperBackend
from pipelines.audio.worker import AsrWorker

pytestmark = pytest.mark.anyio
Audio = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def hello(say: Callable[..., Audio]) -> Audio:
    return say("Hello there, how are you today?")


def job(audio: Audio, serial: int, *, final: bool = False) -> DecodeJob:
    return DecodeJob(serial, serial, audio, 0.0, "", final)


async def test_a_quiet_session_is_not_starved_by_a_loud_one(
    asr_backend: FasterWhisperBackend, hello: Audio
) -> None:
    worker = AsrWorker(asr_backend, slots=1)
    done: list[str] = []

    async def submit(session: str, serial: int) -> None:
        result = await worker.transcribe(session, job(hello, serial))
        assert any("hello" in w.text.lower() for s in result.segments for w in s.words)
        done.append(f"{session}{serial}")

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(submit, "loud", i)
        await anyio.sleep(0.01)  # loud's four are queued (one is running) first
        tg.start_soon(submit, "quiet", 0)
    assert len(done) == 5
    assert done.index("quiet0") <= 2  # served right after the running one and one more
    assert worker.decodes == 5


async def test_a_cancelled_waiter_leaves_the_queue(
    asr_backend: FasterWhisperBackend, hello: Audio
) -> None:
    worker = AsrWorker(asr_backend, slots=1)
    results: list[str] = []

    async def keep(session: str) -> None:
        await worker.transcribe(session, job(hello, 1))
        results.append(session)

    async with anyio.create_task_group() as tg:
        tg.start_soon(keep, "a")
        await anyio.sleep(0.01)
        with anyio.move_on_after(0.05):
            await worker.transcribe("b", job(hello, 2))  # still waiting when cancelled
        tg.start_soon(keep, "c")
    assert results == ["a", "c"]
    assert worker.decodes == 2  # b's job never ran
    assert worker.admits_new_sessions()


async def test_a_backend_error_reaches_its_owner_only(
    asr_backend: FasterWhisperBackend, hello: Audio
) -> None:
    worker = AsrWorker(asr_backend, slots=2)
    broken = np.zeros((3, 3, 3), dtype=np.float32)  # not a mono signal: the model refuses
    ok: list[bool] = []

    async def fine() -> None:
        await worker.transcribe("fine", job(hello, 1))
        ok.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(fine)
        with pytest.raises(Exception):  # noqa: B017 - whatever the model raises
            await worker.transcribe("broken", job(broken, 2))
    assert ok == [True]
