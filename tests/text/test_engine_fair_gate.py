"""FairGate: bounded in-flight requests, waiters served round-robin by session."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import TaskStatus

from pipelines.text.engine import EngineOverloaded
from pipelines.text.fair_gate import FairGate

pytestmark = pytest.mark.anyio


async def test_waiters_get_slots_round_robin_by_session() -> None:
    gate = FairGate(slots=1, max_queue=10)
    order: list[str] = []
    release = anyio.Event()

    async def use(name: str, key: str, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        async with gate.slot(key):
            order.append(name)
            if name == "first":
                await release.wait()

    async with anyio.create_task_group() as tg:
        await tg.start(use, "first", "x")
        for name, key in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")):
            await tg.start(use, name, key)
            await anyio.lowlevel.checkpoint()  # let it reach the queue
        assert gate.statistics()["queued"] == 4
        assert gate.estimated_wait_ms() > 0
        release.set()

    assert order == ["first", "a1", "b1", "c1", "a2"]
    assert gate.statistics()["running"] == 0
    assert gate.estimated_wait_ms() == 0.0


async def test_a_full_queue_refuses_at_once() -> None:
    gate = FairGate(slots=1, max_queue=1)
    async with anyio.create_task_group() as tg:

        async def hold(*, task_status: TaskStatus[None]) -> None:
            task_status.started()
            async with gate.slot("s"):
                await anyio.sleep_forever()

        await tg.start(hold)
        await anyio.lowlevel.checkpoint()
        await tg.start(hold)  # waits in the queue
        await anyio.lowlevel.checkpoint()
        with pytest.raises(EngineOverloaded):
            async with gate.slot("s"):
                pass
        tg.cancel_scope.cancel()
    assert gate.statistics() == {
        "queued": 0,
        "queue_capacity": 1,
        "running": 0,
        "slots": 1,
        "hold_ms": pytest.approx(gate.statistics()["hold_ms"]),
    }


async def test_a_waiter_cancelled_as_it_is_granted_never_loses_the_slot() -> None:
    gate = FairGate(slots=1, max_queue=5)
    entered: list[str] = []
    scopes: list[anyio.CancelScope] = []

    async def doomed() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            async with gate.slot("a"):
                entered.append("doomed")

    async def patient() -> None:
        async with gate.slot("b"):
            entered.append("patient")

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            async with gate.slot("x"):
                tg.start_soon(doomed)
                await anyio.sleep(0.01)
                tg.start_soon(patient)
                await anyio.sleep(0.01)
            # Leaving the slot grants it to the doomed waiter, cancelled in the same
            # step: whether it runs its body or not, the slot must reach the next.
            scopes[0].cancel()

    assert entered[-1] == "patient"
    assert gate.statistics()["running"] == 0
    assert gate.statistics()["queued"] == 0


async def test_a_waiter_cancelled_in_the_queue_leaves_it() -> None:
    gate = FairGate(slots=1, max_queue=5)
    async with gate.slot("x"):
        with anyio.move_on_after(0.01) as scope:
            async with gate.slot("a"):
                pass
        assert scope.cancelled_caught
        assert gate.statistics()["queued"] == 0
    assert gate.statistics()["running"] == 0


def test_a_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError):
        FairGate(slots=0, max_queue=1)
