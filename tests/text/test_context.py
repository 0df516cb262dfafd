"""The context builder: a budget in tokens, the system prompt always kept, the oldest
history dropped first, tool results and then the user message cut to fit.

The counter here is a fixed rule (a token per 4 characters, rounded up), so budgets
are exact; the agent's end-to-end tests use the real tokenizer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.text.context import (
    CUT_MARK,
    MIN_CONTENT_TOKENS,
    ContextTooSmall,
    Conversation,
    build_context,
    check_budget,
    exchange_of,
    message_tokens,
    truncate_to_tokens,
)
from pipelines.text.engine import ChatMessage

SYSTEM = "You are terse."


def count(text: str) -> int:
    return (len(text) + 3) // 4


def _exchange(i: int, size: int = 40) -> list[ChatMessage]:
    return [
        ChatMessage("user", f"question {i} " + "q" * size),
        ChatMessage("assistant", f"answer {i} " + "a" * size),
    ]


def test_everything_fits_in_a_large_budget() -> None:
    history = [exchange_of(_exchange(i), count) for i in range(3)]
    current = [ChatMessage("user", "and now?")]
    built = build_context(SYSTEM, history, current, 10_000, count)
    assert built.messages[0] == ChatMessage("system", SYSTEM)
    assert built.messages[1:] == (*(m for e in history for m in e.messages), *current)
    assert built.exchanges_kept == 3
    assert built.exchanges_dropped == 0
    assert not built.cut
    assert built.prompt_tokens <= 10_000


def test_the_oldest_exchanges_go_first_and_whole() -> None:
    history = [exchange_of(_exchange(i), count) for i in range(10)]
    current = [ChatMessage("user", "latest")]
    budget = 120
    built = build_context(SYSTEM, history, current, budget, count)
    assert built.prompt_tokens <= budget
    assert 0 < built.exchanges_kept < 10
    assert built.exchanges_kept + built.exchanges_dropped == 10
    kept = built.messages[1:-1]
    # The newest exchanges survive, in order, never half an exchange.
    assert kept == tuple(m for e in history[-built.exchanges_kept :] for m in e.messages)
    assert built.messages[-1] == current[0]


def test_a_gap_is_never_made_in_history() -> None:
    # A small old exchange that would fit is not kept once a newer one did not fit:
    # the model never sees a conversation with a hole in it.
    history = [
        exchange_of(_exchange(0, size=2), count),
        exchange_of(_exchange(1, size=400), count),
        exchange_of(_exchange(2, size=2), count),
    ]
    built = build_context(SYSTEM, history, [ChatMessage("user", "hi")], 80, count)
    assert built.exchanges_kept == 1
    assert built.messages[1:3] == history[2].messages


def test_the_system_prompt_is_never_dropped_even_when_history_is() -> None:
    system = "rules " * 30
    history = [exchange_of(_exchange(i, size=200), count) for i in range(5)]
    built = build_context(system, history, [ChatMessage("user", "x")], 100, count)
    assert built.messages[0] == ChatMessage("system", system)
    assert built.exchanges_kept == 0


def test_a_budget_below_the_system_prompt_is_a_configuration_error() -> None:
    with pytest.raises(ContextTooSmall):
        check_budget("word " * 100, 50, count)
    with pytest.raises(ContextTooSmall):
        build_context("word " * 100, [], [ChatMessage("user", "hi")], 50, count)


def test_a_long_tool_result_is_cut_before_the_user_message() -> None:
    current = [
        ChatMessage("user", "what does the document say? " * 3),
        ChatMessage("assistant", '{"action": "tool", "name": "read", "arguments": {}}'),
        ChatMessage("tool", "data " * 500, "read"),
    ]
    built = build_context(SYSTEM, [], current, 200, count)
    assert built.cut
    assert built.prompt_tokens <= 200
    user, decision, tool = built.messages[1:]
    assert user == current[0]
    assert decision == current[1]
    assert tool.role == "tool"
    assert tool.name == "read"
    assert tool.content.endswith(CUT_MARK)
    assert current[2].content.startswith(tool.content.removesuffix(CUT_MARK))


def test_the_user_message_is_cut_last_and_keeps_its_head() -> None:
    text = "start " + "middle " * 400 + "end"
    built = build_context(SYSTEM, [], [ChatMessage("user", text)], 100, count)
    assert built.cut
    assert built.prompt_tokens <= 100
    (user,) = built.messages[1:]
    assert user.content.startswith("start middle")
    assert user.content.endswith(CUT_MARK)


def test_the_largest_tool_result_is_cut_first() -> None:
    small = ChatMessage("tool", "s" * 80, "a")
    large = ChatMessage("tool", "L" * 2000, "b")
    current = [ChatMessage("user", "hi"), small, large]
    built = build_context(SYSTEM, [], current, 160, count)
    assert built.messages[2] == small
    assert built.messages[3].content.endswith(CUT_MARK)


def test_when_nothing_more_can_be_cut_every_message_keeps_a_minimum() -> None:
    current = [ChatMessage("user", "u" * 400)] + [
        ChatMessage("tool", "t" * 400, f"tool{i}") for i in range(6)
    ]
    built = build_context(SYSTEM, [], current, 60, count)
    assert len(built.messages) == 1 + len(current)
    for message in built.messages[1:]:
        assert count(message.content) <= MIN_CONTENT_TOKENS
    # Honest accounting: over budget, and it says so.
    assert built.prompt_tokens > 60


def test_tool_messages_cost_their_label() -> None:
    plain = message_tokens(ChatMessage("user", "abcd"), count)
    tool = message_tokens(ChatMessage("tool", "abcd", "lookup"), count)
    assert tool > plain


def test_truncate_to_tokens() -> None:
    assert truncate_to_tokens("short", 10, count) == "short"
    cut = truncate_to_tokens("x" * 100, 10, count)
    assert count(cut) <= 10
    assert cut.endswith(CUT_MARK)
    # The longest prefix that fits: one more character would not.
    prefix = cut.removesuffix(CUT_MARK)
    assert count("x" * (len(prefix) + 1) + CUT_MARK) > 10


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300), max_size=30),
    user=st.integers(min_value=0, max_value=2000),
    budget=st.integers(min_value=40, max_value=800),
)
def test_any_history_fits_the_budget(sizes: list[int], user: int, budget: int) -> None:
    history = [exchange_of(_exchange(i, size), count) for i, size in enumerate(sizes)]
    built = build_context("sys", history, [ChatMessage("user", "u" * user)], budget, count)
    assert built.prompt_tokens <= budget
    assert built.messages[0].role == "system"
    assert built.messages[-1].role == "user"
    assert built.exchanges_kept + built.exchanges_dropped == len(history)
    recount = sum(message_tokens(m, count) for m in built.messages)
    assert recount <= built.prompt_tokens  # the tail marker is reserved on top


def test_conversation_keeps_a_bounded_number_of_exchanges() -> None:
    conversation = Conversation(max_exchanges=3)
    for i in range(5):
        conversation.record(_exchange(i), count)
    assert len(conversation) == 3
    assert conversation.exchanges[0].messages == tuple(_exchange(2))
    assert conversation.exchanges[-1].tokens == sum(message_tokens(m, count) for m in _exchange(4))
