"""The context builder: which messages one engine request of a turn sees, within an
explicit token budget (docs/agent.md, "Context budget").

Order of sacrifice: the oldest finished exchange goes first, whole (a user message
never loses its answer, nor a tool call its result); then this turn's tool results
are cut; then the current user message is cut. The system prompt is never dropped or
cut: a budget too small to hold it is a configuration error, raised up front.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pipelines.text.engine import ChatMessage

TokenCounter = Callable[[str], int]

# Role markers and separators around each message (Gemma: "<start_of_turn>user\n",
# "<end_of_turn>\n"); a small overestimate is safe, an underestimate is not.
MESSAGE_OVERHEAD_TOKENS = 6
TOOL_LABEL_TOKENS = 8
# The open model turn at the end of every prompt, where generation starts.
PROMPT_TAIL_TOKENS = 4
CUT_MARK = " […]"
# What is left of a message cut to fit: enough to show what it was about.
MIN_CONTENT_TOKENS = 16


@dataclass(frozen=True, slots=True)
class Exchange:
    """One finished turn as the model saw it: the user message, its tool rounds, the
    answer. ``tokens`` is counted once, when the exchange is recorded."""

    messages: tuple[ChatMessage, ...]
    tokens: int


@dataclass(frozen=True, slots=True)
class BuiltContext:
    messages: tuple[ChatMessage, ...]
    prompt_tokens: int  # estimate, as counted by the engine's tokenizer
    exchanges_kept: int
    exchanges_dropped: int
    cut: bool  # a tool result or the user message was shortened to fit


class ContextTooSmall(ValueError):
    """The budget cannot hold the system prompt and a minimal user message."""


def message_tokens(message: ChatMessage, count: TokenCounter) -> int:
    tokens = count(message.content) + MESSAGE_OVERHEAD_TOKENS
    if message.role == "tool":
        # Engines label a tool result with the tool's name ("[result of tool x]").
        tokens += count(message.name or "") + TOOL_LABEL_TOKENS
    return tokens


def exchange_of(messages: Iterable[ChatMessage], count: TokenCounter) -> Exchange:
    kept = tuple(messages)
    return Exchange(kept, sum(message_tokens(m, count) for m in kept))


def check_budget(system_prompt: str, budget: int, count: TokenCounter) -> None:
    """Raise ContextTooSmall unless ``budget`` leaves room beside the system prompt."""
    system = message_tokens(ChatMessage("system", system_prompt), count) + PROMPT_TAIL_TOKENS
    if system + MESSAGE_OVERHEAD_TOKENS + 16 > budget:
        raise ContextTooSmall(
            f"context budget of {budget} tokens cannot hold the {system}-token system prompt"
        )


def build_context(
    system_prompt: str,
    history: Sequence[Exchange],
    current: Sequence[ChatMessage],
    budget: int,
    count: TokenCounter,
) -> BuiltContext:
    """Messages for one request: system prompt, as much recent history as fits, then
    ``current`` (this turn: the user message first, then its tool rounds)."""
    check_budget(system_prompt, budget, count)
    system = ChatMessage("system", system_prompt)
    system_tokens = message_tokens(system, count) + PROMPT_TAIL_TOKENS
    room = budget - system_tokens
    fitted, cut = _fit_current(current, room, count)
    room -= sum(message_tokens(m, count) for m in fitted)
    kept: deque[Exchange] = deque()
    for exchange in reversed(history):  # newest first: the oldest is dropped first
        if exchange.tokens > room:
            break
        kept.appendleft(exchange)
        room -= exchange.tokens
    messages = (system, *(m for e in kept for m in e.messages), *fitted)
    return BuiltContext(
        messages=messages,
        prompt_tokens=budget - room,
        exchanges_kept=len(kept),
        exchanges_dropped=len(history) - len(kept),
        cut=cut,
    )


def _fit_current(
    current: Sequence[ChatMessage], room: int, count: TokenCounter
) -> tuple[list[ChatMessage], bool]:
    """``current`` within ``room``: cut the largest tool result first (the newest on a
    tie), then the user message, then this turn's decisions; every message is kept,
    with at least ``MIN_CONTENT_TOKENS`` of its content."""
    fitted = list(current)
    content = [count(m.content) for m in fitted]
    overhead = [message_tokens(m, count) - content[i] for i, m in enumerate(fitted)]
    cut = False
    for role in ("tool", "user", "assistant"):
        while sum(content) + sum(overhead) > room:
            candidates = [
                i
                for i, m in enumerate(fitted)
                if m.role == role and content[i] > MIN_CONTENT_TOKENS
            ]
            if not candidates:
                break
            index = max(candidates, key=lambda i: (content[i], i))
            over = sum(content) + sum(overhead) - room
            target = max(content[index] - over, MIN_CONTENT_TOKENS)
            message = fitted[index]
            shorter = truncate_to_tokens(message.content, target, count)
            fitted[index] = ChatMessage(message.role, shorter, message.name)
            content[index] = count(shorter)
            cut = True
    return fitted, cut


def truncate_to_tokens(text: str, limit: int, count: TokenCounter) -> str:
    """The longest prefix of ``text`` (plus a cut mark) that takes at most ``limit``
    tokens. Binary search over characters: O(log n) calls of ``count``."""
    if count(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if count(text[:middle] + CUT_MARK) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low] + CUT_MARK


class Conversation:
    """A session's finished exchanges, oldest first, bounded in number (the budget
    bounds what is sent; this bounds what is kept)."""

    def __init__(self, max_exchanges: int = 64) -> None:
        self._exchanges: deque[Exchange] = deque(maxlen=max_exchanges)

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        return tuple(self._exchanges)

    def record(self, messages: Iterable[ChatMessage], count: TokenCounter) -> Exchange:
        exchange = exchange_of(messages, count)
        self._exchanges.append(exchange)
        return exchange

    def __len__(self) -> int:
        return len(self._exchanges)
