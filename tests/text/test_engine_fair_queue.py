"""FairQueue: round-robin by session, bounded, withdrawable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.text.fair_queue import FairQueue, QueueFull


def test_sessions_take_turns_in_order_of_arrival() -> None:
    queue: FairQueue[str, str] = FairQueue(10)
    for item in ("a1", "a2", "a3"):
        queue.push("a", item)
    queue.push("b", "b1")
    queue.push("c", "c1")
    queue.push("b", "b2")

    served = [queue.pop() for _ in range(6)]

    assert served == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert queue.pop() is None
    assert len(queue) == 0


def test_a_full_queue_refuses_and_keeps_what_it_has() -> None:
    queue: FairQueue[str, int] = FairQueue(2)
    queue.push("a", 1)
    queue.push("b", 2)

    with pytest.raises(QueueFull):
        queue.push("c", 3)

    assert list(queue) == [1, 2]


def test_a_zero_capacity_queue_refuses_everything() -> None:
    queue: FairQueue[str, int] = FairQueue(0)
    with pytest.raises(QueueFull):
        queue.push("a", 1)
    with pytest.raises(ValueError):
        FairQueue(-1)


def test_withdrawing_a_waiting_item_frees_its_place() -> None:
    queue: FairQueue[str, object] = FairQueue(2)
    first, second = object(), object()
    queue.push("a", first)
    queue.push("a", second)

    assert queue.remove("a", first) is True
    assert queue.remove("a", first) is False  # already gone
    assert queue.remove("nobody", second) is False
    queue.push("b", object())  # room again
    assert queue.pop() is second


def test_drain_empties_the_queue_in_service_order() -> None:
    queue: FairQueue[str, str] = FairQueue(5)
    for key, item in (("a", "a1"), ("a", "a2"), ("b", "b1")):
        queue.push(key, item)
    assert queue.drain() == ["a1", "b1", "a2"]
    assert len(queue) == 0 and queue.pop() is None


operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from("abcd")),
        st.tuples(st.just("pop"), st.just("")),
        st.tuples(st.just("remove"), st.sampled_from("abcd")),
    ),
    max_size=60,
)


@given(operations)
def test_iteration_order_is_the_order_pop_serves(ops: list[tuple[str, str]]) -> None:
    queue: FairQueue[str, tuple[str, int]] = FairQueue(12)
    counter = 0
    for op, key in ops:
        if op == "push":
            counter += 1
            try:
                queue.push(key, (key, counter))
            except QueueFull:
                assert len(queue) == 12
        elif op == "pop":
            queue.pop()
        else:
            waiting = [item for item in queue if item[0] == key]
            if waiting:
                assert queue.remove(key, waiting[-1])
        assert len(queue) == len(list(queue)) <= 12

    predicted = list(queue)
    served = [queue.pop() for _ in range(len(predicted))]
    assert served == predicted
    # Within one session, items leave in the order they came.
    for key in "abcd":
        numbers = [n for k, n in predicted if k == key]
        assert numbers == sorted(numbers)
