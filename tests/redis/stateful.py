"""The numbered test pipeline with a state that moves between nodes: its turn counter
(``sessions.pipeline.Snapshotting``), so turn ids never repeat after a takeover."""

from __future__ import annotations

from typing import Any

from sessions.pipeline import Pipeline, PipelineContext
from tests.support.numbered import NumberedPipeline, NumberedProvider


class StatefulPipeline(NumberedPipeline):
    def snapshot(self) -> dict[str, Any] | None:
        return {"turns": self.turns}


class StatefulProvider(NumberedProvider):
    def create(self, context: PipelineContext) -> Pipeline:
        pipeline = StatefulPipeline(self.chunk_delay_s)
        turns = (context.restored or {}).get("turns")
        if isinstance(turns, int):
            pipeline.turns = turns
        return pipeline


def create_provider(options: dict[str, Any]) -> StatefulProvider:
    return StatefulProvider(options)
