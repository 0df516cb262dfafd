"""The OpenAI-compatible chat-completions wire format, without I/O.

``request_body`` turns a ``GenerationRequest`` into the JSON body of a streamed
``POST /v1/chat/completions``; ``read_chunk`` turns one SSE ``data`` payload into a
``ChunkDelta``. Anything that is not the documented shape (not JSON, wrong types,
an ``error`` object, an unknown finish reason) raises ``EngineError``: a peer that
misbehaves fails the request, never the process.

Structured output: vLLM takes OpenAI's ``{"type": "json_schema", "json_schema":
{...}}``; llama.cpp's server answers that with an error and wants
``{"type": "json_object", "schema": ...}`` (FINDINGS.md). ``JsonSchemaMode`` picks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pipelines.text.engine import EngineError, FinishReason, GenerationRequest

JsonSchemaMode = Literal["json_schema", "json_object"]
DONE = "[DONE]"
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "eos": "stop",
    "tool_calls": "stop",
    "function_call": "stop",
    "abort": "cancelled",
    "content_filter": "error",
    "error": "error",
}


@dataclass(frozen=True, slots=True)
class ChunkDelta:
    text: str = ""
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def request_body(
    request: GenerationRequest, model: str, json_schema_mode: JsonSchemaMode = "json_schema"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message(m.role, m.content, m.name) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.stop:
        body["stop"] = list(request.stop)
    if request.json_schema is not None:
        if json_schema_mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        else:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
            }
    return body


def _message(role: str, content: str, name: str | None) -> dict[str, Any]:
    if role == "tool":
        # Plain chat servers have no tool turn without a tool_call_id to answer;
        # show the result to the model as a user turn that names the tool.
        return {"role": "user", "content": f"[result of tool {name or 'unknown'}]\n{content}"}
    return {"role": role, "content": content}


def read_chunk(data: str) -> ChunkDelta | None:
    """One ``data`` payload as a ``ChunkDelta``; None for the ``[DONE]`` sentinel."""
    if data.strip() == DONE:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        raise EngineError("stream chunk is not JSON") from None
    if not isinstance(doc, dict):
        raise EngineError("stream chunk is not a JSON object")
    if "error" in doc:
        raise EngineError(f"server error in stream: {_error_message(doc['error'])}")
    prompt_tokens, completion_tokens = _usage(doc.get("usage"))
    choices = doc.get("choices")
    if choices is None:
        choices = []
    if not isinstance(choices, list):
        raise EngineError("stream chunk 'choices' is not a list")
    if not choices:
        return ChunkDelta(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    choice = choices[0]
    if not isinstance(choice, dict):
        raise EngineError("stream chunk choice is not an object")
    delta = choice.get("delta")
    if delta is None:
        delta = {}
    if not isinstance(delta, dict):
        raise EngineError("stream chunk 'delta' is not an object")
    text = delta.get("content")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise EngineError("stream chunk 'content' is not a string")
    raw_finish = choice.get("finish_reason")
    if raw_finish is not None and (not isinstance(raw_finish, str) or raw_finish not in _FINISH):
        raise EngineError("stream chunk has an unknown finish_reason")
    return ChunkDelta(
        text=text,
        finish_reason=_FINISH[raw_finish] if raw_finish is not None else None,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def _usage(raw: object) -> tuple[int | None, int | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise EngineError("stream chunk 'usage' is not an object")
    prompt = raw.get("prompt_tokens")
    completion = raw.get("completion_tokens")
    for value in (prompt, completion):
        if value is not None and (type(value) is not int or value < 0):
            raise EngineError("stream chunk 'usage' has a bad token count")
    return prompt, completion


def _error_message(raw: object) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("message"), str):
        return str(raw["message"])[:200]
    return str(raw)[:200]
