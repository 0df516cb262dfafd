"""The Gemma turn format, written out by hand.

The packaged GGUF has no chat template: llama-cpp-python would fall back to a
llama-2 format, and its built-in ``gemma`` format drops system messages. Gemma knows
two roles, ``user`` and ``model``, so:

- the system prompt is folded into the first user turn;
- a tool result is shown to the model as a user turn that names the tool;
- consecutive turns of one side are merged (Gemma expects the sides to alternate);
- the prompt ends with an open ``model`` turn, which is where generation starts.

The prompt is a list of pieces: turn markers, tokenized with special tokens
recognised, and content, tokenized as plain text, so text that looks like a marker
(``<end_of_turn>``, ``<eos>``) can never forge a turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipelines.text.engine import ChatMessage

START = "<start_of_turn>"
END = "<end_of_turn>"
STOP_STRINGS = (END, START)


@dataclass(frozen=True, slots=True)
class PromptPiece:
    text: str
    control: bool  # a turn marker: special tokens are parsed in it


def gemma_pieces(messages: Iterable[ChatMessage]) -> list[PromptPiece]:
    system: list[str] = []
    turns: list[tuple[str, list[str]]] = []
    for message in messages:
        if message.role == "system":
            system.append(message.content)
            continue
        side = "model" if message.role == "assistant" else "user"
        text = message.content
        if message.role == "tool":
            text = f"[result of tool {message.name or 'unknown'}]\n{text}"
        if turns and turns[-1][0] == side:
            turns[-1][1].append(text)
        else:
            turns.append((side, [text]))
    if system:
        if turns and turns[0][0] == "user":
            turns[0][1][:0] = system
        else:
            turns.insert(0, ("user", system))
    pieces: list[PromptPiece] = []
    for side, parts in turns:
        pieces.append(PromptPiece(f"{START}{side}\n", control=True))
        pieces.append(PromptPiece("\n\n".join(parts), control=False))
        pieces.append(PromptPiece(f"{END}\n", control=True))
    pieces.append(PromptPiece(f"{START}model\n", control=True))
    return pieces


def gemma_prompt(messages: Iterable[ChatMessage]) -> str:
    """The prompt as one string (for display and logs of sizes; not for tokenizing)."""
    return "".join(piece.text for piece in gemma_pieces(messages))


def tokenize_pieces(
    pieces: Iterable[PromptPiece], tokenize: Callable[[bytes, bool], list[int]]
) -> list[int]:
    """Token ids of ``pieces``: ``tokenize(utf8, special)`` is the model's tokenizer."""
    tokens: list[int] = []
    for piece in pieces:
        if piece.text:
            tokens.extend(tokenize(piece.text.encode("utf-8"), piece.control))
    return tokens
