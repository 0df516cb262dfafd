"""The chat-completions wire format: request bodies and hostile stream chunks."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.text.engine import ChatMessage, EngineError, GenerationRequest
from pipelines.text.openai_chunks import ChunkDelta, read_chunk, request_body

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def request(**kw: object) -> GenerationRequest:
    return GenerationRequest(
        "r1",
        (
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Time?"),
            ChatMessage("tool", "12:00", name="clock"),
        ),
        max_tokens=7,
        stop=("END",),
        **kw,  # type: ignore[arg-type]
    )


def test_a_request_body_streams_with_usage() -> None:
    body = request_body(request(), "m")
    assert body["model"] == "m"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 7 and body["temperature"] == 0.0
    assert body["stop"] == ["END"]
    assert body["messages"][:2] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Time?"},
    ]
    assert body["messages"][2] == {"role": "user", "content": "[result of tool clock]\n12:00"}
    assert "response_format" not in body


def test_json_schema_in_vllm_form_and_in_llama_cpp_form() -> None:
    vllm = request_body(request(json_schema=SCHEMA), "m")
    assert vllm["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": True},
    }
    llama = request_body(request(json_schema=SCHEMA), "m", "json_object")
    assert llama["response_format"] == {"type": "json_object", "schema": SCHEMA}


def test_ordinary_chunks() -> None:
    assert read_chunk('{"choices":[{"delta":{"role":"assistant"}}]}') == ChunkDelta()
    assert read_chunk('{"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}') == (
        ChunkDelta("Hi")
    )
    assert read_chunk('{"choices":[{"delta":{},"finish_reason":"length"}]}') == ChunkDelta(
        finish_reason="length"
    )
    assert read_chunk(
        '{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}}'
    ) == ChunkDelta(prompt_tokens=12, completion_tokens=3)
    assert read_chunk(" [DONE]") is None


@pytest.mark.parametrize(
    "data",
    [
        "{not json",
        "[1, 2]",
        '"text"',
        '{"error": {"message": "model overloaded"}}',
        '{"choices": "x"}',
        '{"choices": [7]}',
        '{"choices": [{"delta": []}]}',
        '{"choices": [{"delta": {"content": 5}}]}',
        '{"choices": [{"delta": {"content": 0}}]}',
        '{"choices": [{"delta": {}, "finish_reason": "exploded"}]}',
        '{"choices": [{"delta": {}, "finish_reason": ["stop"]}]}',
        '{"choices": [], "usage": {"prompt_tokens": -1}}',
        '{"choices": [], "usage": {"completion_tokens": true}}',
        '{"choices": [], "usage": "lots"}',
    ],
)
def test_malformed_chunks_are_engine_errors(data: str) -> None:
    with pytest.raises(EngineError):
        read_chunk(data)


def test_an_error_chunk_quotes_the_server_briefly() -> None:
    with pytest.raises(EngineError, match="model overloaded"):
        read_chunk(json.dumps({"error": {"message": "model overloaded" + "!" * 1000}}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["choices", "delta", "content", "finish_reason", "usage", "error"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(json_values)
def test_any_json_gives_a_delta_or_an_engine_error(value: object) -> None:
    try:
        delta = read_chunk(json.dumps(value))
    except EngineError:
        return
    assert delta is None or isinstance(delta.text, str)


@given(st.text(max_size=50))
def test_any_text_gives_a_delta_or_an_engine_error(data: str) -> None:
    with contextlib.suppress(EngineError):
        read_chunk(data)
