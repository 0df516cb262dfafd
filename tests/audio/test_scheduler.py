"""Fair queueing of decodes and the load governor's degradation steps."""

from __future__ import annotations

from pipelines.audio.scheduler import FairQueue, Load, LoadGovernor


def drain(q: FairQueue[str]) -> list[str]:
    out = []
    while (picked := q.pop()) is not None:
        out.append(picked[1])
    return out


def test_sessions_are_served_in_turn_however_much_one_sends() -> None:
    q: FairQueue[str] = FairQueue()
    for i in range(4):
        q.push("loud", f"loud{i}", final=False)
    q.push("quiet", "quiet0", final=False)
    q.push("other", "other0", final=False)
    assert drain(q) == ["loud0", "quiet0", "other0", "loud1", "loud2", "loud3"]
    assert len(q) == 0


def test_finals_go_before_partials_without_starving_anyone() -> None:
    q: FairQueue[str] = FairQueue()
    q.push("a", "a-partial", final=False)
    q.push("b", "b-final", final=True)
    q.push("c", "c-partial", final=False)
    q.push("a", "a-final", final=True)
    # b's final first; then a (next in turn, its head is a partial), c, a's final
    assert drain(q) == ["b-final", "a-partial", "a-final", "c-partial"]


def test_removed_items_are_never_served() -> None:
    q: FairQueue[str] = FairQueue()
    item = "x"
    q.push("a", item, final=False)
    assert q.remove("a", item)
    assert not q.remove("a", item)
    assert not q.remove("nobody", item)
    assert q.pop() is None


def test_governor_degrades_step_by_step_and_recovers_with_hysteresis() -> None:
    g = LoadGovernor(alpha=1.0, hold_s=2.0)  # alpha 1: the average is the last turnaround
    assert g.partial_interval(0.4) == 0.4 and g.admits_new_sessions
    assert g.observe(0.9, now=0.0) is Load.NORMAL
    assert g.observe(1.3, now=0.5) is Load.REDUCED
    assert g.partial_interval(0.4) == 0.8
    assert g.observe(2.5, now=1.0) is Load.SPARSE
    assert g.partial_interval(0.4) is None and g.admits_new_sessions
    assert g.observe(4.0, now=2.0) is Load.SATURATED
    assert not g.admits_new_sessions
    assert g.observe(9.0, now=3.0) is Load.SATURATED  # nothing worse
    # calm waits must last hold_s before each step back
    assert g.observe(0.1, now=10.0) is Load.SATURATED
    assert g.observe(0.1, now=11.0) is Load.SATURATED
    assert g.observe(0.1, now=12.0) is Load.SPARSE
    assert g.observe(0.1, now=12.5) is Load.SPARSE
    assert g.observe(1.5, now=13.0) is Load.SPARSE  # not calm: the clock restarts
    assert g.observe(0.1, now=14.0) is Load.SPARSE
    assert g.observe(0.1, now=16.0) is Load.REDUCED
    assert g.observe(0.0, now=17.0) is Load.REDUCED
    assert g.observe(0.0, now=19.0) is Load.NORMAL
