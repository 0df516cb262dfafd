"""Parsing a provider's ``[pipeline_options.<mode>]`` table."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def parse_options(model: type[M], options: dict[str, Any], mode: str) -> M:
    """``options`` as ``model``; a ValueError names the first bad option."""
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"pipeline_options.{mode}.{where}: {first['msg']}") from None
