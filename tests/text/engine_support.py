"""Helpers of the engine tests: requests, and reading a stream to its end."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pipelines.text.engine import ChatMessage, GenerationChunk, GenerationRequest

STORY = "Write a very long story about a dragon who learns to sing."
# A tool choice as the agent asks for it: an enum of names and a bounded argument.
TOOL_CHOICE = {
    "type": "object",
    "properties": {
        "tool": {"enum": ["get_time", "get_weather"]},
        "city": {"type": "string", "maxLength": 12},
    },
    "required": ["tool", "city"],
    "additionalProperties": False,
}


def ask(
    text: str = STORY,
    *,
    request_id: str = "r",
    session_id: str = "s",
    max_tokens: int = 8,
    **kw: Any,
) -> GenerationRequest:
    """A one-turn request."""
    return GenerationRequest(
        request_id=request_id,
        messages=(ChatMessage("user", text),),
        max_tokens=max_tokens,
        session_id=session_id,
        **kw,
    )


def long_prompt(words: int = 600) -> GenerationRequest:
    """A request whose prefill takes seconds on this machine (about 1.3 tokens a word)."""
    text = " ".join(f"item{i % 97} is number {i}." for i in range(words // 4))
    return ask("Summarise this list: " + text, request_id="long", max_tokens=4)


@dataclass
class Transcript:
    chunks: list[GenerationChunk] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks)

    @property
    def last(self) -> GenerationChunk:
        return self.chunks[-1]


async def read_all(chunks: AsyncIterator[GenerationChunk]) -> Transcript:
    seen = Transcript()
    async for chunk in chunks:
        seen.chunks.append(chunk)
        seen.arrivals.append(time.perf_counter())
    return seen
