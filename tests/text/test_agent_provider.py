"""The agent mode's provider: options from the server config, one model load per
process, one conversation per session."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_support import TimedSink

from pipelines.text.provider import AgentProvider, create_provider
from sessions.config import SessionConfig
from sessions.events import TurnDone
from sessions.inputs import PipelineInput, UserText
from sessions.pipeline import PipelineContext
from sessions.tenants import TenantPolicy


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"agent": {"max_tokens": 0}}, "agent.agent"),
        ({"agent": {"surprise": 1}}, "agent.agent.surprise"),
        ({"engine": {"engine": "gpt"}}, "agent.engine.engine"),
        ({"documents": "/x"}, "agent.documents"),
    ],
)
def test_bad_options_name_the_setting(options: dict[str, object], where: str) -> None:
    with pytest.raises(ValueError, match=rf"pipeline_options\.{where}"):
        create_provider(options)


def test_create_before_start_is_a_bug() -> None:
    provider = create_provider({})
    context = PipelineContext("s", TenantPolicy("t"), SessionConfig())
    with pytest.raises(RuntimeError):
        provider.create(context)


@pytest.mark.anyio
async def test_the_provider_serves_sessions_from_one_engine(
    gguf_path: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("The meeting is on Tuesday.")
    provider = create_provider(
        {
            "engine": {"llama": {"model_path": str(gguf_path), "n_ctx": 1024, "n_threads": 1}},
            "documents_dir": str(tmp_path),
            "agent": {"max_tokens": 6},
        }
    )
    assert isinstance(provider, AgentProvider)
    await provider.start()
    try:
        tenant = TenantPolicy("t", allowed_tools=("search_documents",))
        first = provider.create(PipelineContext("s1", tenant, SessionConfig(tools=())))
        second = provider.create(PipelineContext("s2", tenant, SessionConfig()))
        assert first.engine is second.engine
        assert second.allowed_tools() == frozenset({"search_documents"})
        assert [spec.name for spec in first.registry.offered({"search_documents"})] == [
            "search_documents"
        ]

        sink = TimedSink()

        async def one_text() -> AsyncIterator[PipelineInput]:
            yield UserText("Hello there.", "m1", time.monotonic())
            await sink.wait_for(lambda e: isinstance(e, TurnDone))  # then the session ends

        await first.run(one_text(), sink)
        (done,) = [e for e in sink.events if isinstance(e, TurnDone)]
        assert done.status in ("completed", "length")
        assert len(first.conversation) == 1
        assert len(second.conversation) == 0
    finally:
        await provider.aclose()
