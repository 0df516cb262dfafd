"""current_time: the time at a fixed instant, in IANA zones, DST included."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tools.clock import UnknownTimezone, current_time, current_time_tool, zone
from tools.execute import ToolInvocation, execute
from tools.outcome import ToolErrorCode, ToolOutcome
from tools.registry import ToolRegistry

# 2024-07-01T12:00:00Z and 2024-01-15T12:00:00Z
SUMMER = 1_719_835_200
WINTER = 1_705_320_000


def test_utc_at_a_known_instant() -> None:
    assert current_time("UTC", SUMMER) == {
        "timezone": "UTC",
        "iso": "2024-07-01T12:00:00+00:00",
        "weekday": "Monday",
        "utc_offset": "+0000",
        "unix": SUMMER,
    }


@pytest.mark.parametrize(
    ("name", "now", "iso"),
    [
        ("Europe/Paris", SUMMER, "2024-07-01T14:00:00+02:00"),
        ("Europe/Paris", WINTER, "2024-01-15T13:00:00+01:00"),
        ("America/New_York", SUMMER, "2024-07-01T08:00:00-04:00"),
        ("Asia/Kolkata", WINTER, "2024-01-15T17:30:00+05:30"),
        ("Pacific/Kiritimati", WINTER, "2024-01-16T02:00:00+14:00"),
    ],
)
def test_local_time_follows_the_zone_and_its_daylight_saving(name: str, now: int, iso: str) -> None:
    assert current_time(name, now)["iso"] == iso


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe",
        "zone.tab",
        "UTC\x00",
        "",
        "Europe/Paris/..",
    ],
)
def test_names_that_are_not_zones_are_refused(name: str) -> None:
    with pytest.raises(UnknownTimezone, match="unknown time zone"):
        zone(name)


async def ask(arguments: Any) -> ToolOutcome:
    registry = ToolRegistry([current_time_tool(clock=lambda: SUMMER + 0.75)])
    call = ToolInvocation("c1", "current_time", arguments)
    return await execute(registry, call, frozenset({"current_time"}), audit=None)


@pytest.mark.anyio
async def test_the_tool_defaults_to_utc() -> None:
    outcome = await ask({})
    assert outcome.ok
    assert outcome.result["iso"] == "2024-07-01T12:00:00+00:00"
    assert outcome.result["unix"] == SUMMER


@pytest.mark.anyio
async def test_the_tool_answers_in_the_asked_zone() -> None:
    outcome = await ask({"timezone": "Asia/Tokyo"})
    assert outcome.result["iso"] == "2024-07-01T21:00:00+09:00"


@pytest.mark.anyio
async def test_the_tool_reports_an_unknown_zone_to_the_model() -> None:
    outcome = await ask({"timezone": "Atlantis/Capital"})
    assert outcome.error_code is ToolErrorCode.TOOL_FAILED
    assert outcome.error_message == "UnknownTimezone: unknown time zone 'Atlantis/Capital'"


@pytest.mark.anyio
@pytest.mark.parametrize("arguments", [{"timezone": 5}, {"timezone": "x" * 65}, {"tz": "UTC"}])
async def test_the_tool_refuses_arguments_outside_its_schema(arguments: Any) -> None:
    assert (await ask(arguments)).error_code is ToolErrorCode.BAD_ARGUMENTS


@pytest.mark.anyio
async def test_the_tool_reads_the_real_clock_by_default() -> None:
    registry = ToolRegistry([current_time_tool()])
    before = time.time()
    call = ToolInvocation("c1", "current_time", {})
    outcome = await execute(registry, call, frozenset({"current_time"}), audit=None)
    assert int(before) <= outcome.result["unix"] <= time.time()
