"""The ``current_time`` tool: the time now in an IANA time zone, as ISO 8601."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.spec import ToolSpec

MAX_ZONE_CHARS = 64


class UnknownTimezone(ValueError):
    """The name is not an IANA time zone."""


def zone(name: str) -> ZoneInfo:
    """The zone called ``name``, or UnknownTimezone. zoneinfo reads the name as a
    path below the tz database, so anything path-like is refused by zoneinfo itself
    (ValueError) before any file is opened."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownTimezone(f"unknown time zone {name[:MAX_ZONE_CHARS]!r}") from None


def current_time(name: str, now: float) -> dict[str, Any]:
    """What the tool answers at Unix time ``now`` for zone ``name``."""
    local = datetime.fromtimestamp(now, tz=zone(name))
    return {
        "timezone": name,
        "iso": local.isoformat(timespec="seconds"),
        "weekday": local.strftime("%A"),
        "utc_offset": local.strftime("%z"),
        "unix": int(now),
    }


def current_time_tool(clock: Callable[[], float] = time.time) -> ToolSpec:
    """The tool, reading ``clock`` (a test passes a fixed one)."""

    async def handle(arguments: dict[str, Any]) -> dict[str, Any]:
        return current_time(arguments.get("timezone", "UTC"), clock())

    return ToolSpec(
        name="current_time",
        description="The current date and time in an IANA time zone (default UTC).",
        parameters={
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_ZONE_CHARS,
                    "description": "IANA time zone name, for example Europe/Paris",
                }
            },
            "additionalProperties": False,
        },
        handler=handle,
        timeout_s=2.0,
        cancel_on_barge_in=True,
        max_result_bytes=1024,
    )
