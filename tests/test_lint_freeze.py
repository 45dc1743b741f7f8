"""The change-freeze calendar, linted as of a given time (``--at``) so every case is fixed:
Friday after noon and weekends by default, other windows and time zones when configured."""

from __future__ import annotations

import pytest

from deploysim.cli import main
from deploysim.errors import EXIT_BAD_INPUT, EXIT_NOT_PROMOTED, EXIT_OK, ScenarioError
from deploysim.lint import (
    FreezeCalendar,
    calendar_from,
    freeze_findings,
    parse_instant,
    parse_window,
)


@pytest.fixture(autouse=True)
def _no_calendar_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("DEPLOYSIM_FREEZE", raising=False)
    monkeypatch.delenv("DEPLOYSIM_TIMEZONE", raising=False)


# 2026-12-04 is a Friday
@pytest.mark.parametrize(("at", "frozen"), [
    ("2026-12-04T11:59", False),
    ("2026-12-04T12:00", True),
    ("2026-12-04T23:30", True),
    ("2026-12-05T10:00", True),   # Saturday
    ("2026-12-06T23:59", True),   # Sunday night
    ("2026-12-07T00:00", False),  # Monday: the window's end is not in it
    ("2026-12-01T15:00", False),  # Tuesday
])
def test_the_default_calendar(at: str, frozen: bool) -> None:
    cal = FreezeCalendar.default()
    assert (cal.window_at(parse_instant(at, cal.zone)) is not None) is frozen


def test_a_time_zone_moves_the_window() -> None:
    berlin = FreezeCalendar.from_settings(["Fri 12:00-Mon 00:00"], "Europe/Berlin")
    utc = FreezeCalendar.default()
    moment = parse_instant("2026-12-04T11:30Z", berlin.zone)  # 12:30 in Berlin, 11:30 in UTC
    assert berlin.window_at(moment) == "Fri 12:00-Mon 00:00"
    assert utc.window_at(moment) is None
    # Sunday 23:30 UTC is already Monday in Berlin
    late = parse_instant("2026-12-06T23:30+00:00", berlin.zone)
    assert utc.window_at(late) is not None and berlin.window_at(late) is None


def test_dated_and_weekly_windows() -> None:
    holidays = parse_window("2026-12-23..2027-01-04")
    assert holidays.start.isoformat() == "2026-12-23T00:00:00"
    assert holidays.end.isoformat() == "2027-01-05T00:00:00"  # a date alone as the end: the whole day
    cal = FreezeCalendar.from_settings(["2026-12-23..2027-01-04", "Wed 09:00-Wed 11:00"], "UTC")
    at = lambda t: parse_instant(t, cal.zone)  # noqa: E731
    assert cal.window_at(at("2027-01-04T23:59")) == "2026-12-23..2027-01-04"
    assert cal.window_at(at("2027-01-05T00:00")) is None
    assert cal.window_at(at("2026-12-02T10:15")) == "Wed 09:00-Wed 11:00"
    assert cal.window_at(at("2026-12-04T15:00")) is None  # the default window was replaced
    timed = parse_window("2026-12-24T18:00..2026-12-27T09:00")
    assert (timed.start.hour, timed.end.isoformat()) == (18, "2026-12-27T09:00:00")
    assert parse_window("Saturday 00:00..Monday 00:00").start == 5 * 1440


@pytest.mark.parametrize(("text", "message"), [
    ("Fri 12:00", "expected a weekly window"),
    ("Fry 12:00-Mon 00:00", "'Fry' is not a day"),
    ("Fri 12:75-Mon 00:00", "12:75 is not a time of day"),
    ("Fri 12:00-Fri 12:00", "the window starts where it ends"),
    ("2027-01-04..2026-12-23", "the window ends before it starts"),
    ("2026-13-01..2026-12-24", "'2026-13-01' is not a date"),
])
def test_bad_windows_name_the_value_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as info:
        parse_window(text)
    assert str(info.value).startswith(f"--freeze: got {text!r}")


def test_the_environment_decides_how_binding_a_freeze_is() -> None:
    cal = FreezeCalendar.default()
    friday = parse_instant("2026-12-04T15:00", cal.zone)
    assert [f.severity for f in freeze_findings(cal, friday, "production")] == ["error"]
    assert [f.severity for f in freeze_findings(cal, friday, "prod")] == ["error"]
    assert [f.severity for f in freeze_findings(cal, friday, None)] == ["warning"]
    assert freeze_findings(cal, friday, "staging") == []
    assert freeze_findings(None, friday, "production") == []


def test_calendar_from_flags_and_environment(monkeypatch) -> None:
    assert calendar_from(None, None).describe() == "Fri 12:00-Mon 00:00 (UTC)"
    assert calendar_from(["Sat 00:00-Mon 00:00"], "Asia/Tokyo").describe() == "Sat 00:00-Mon 00:00 (Asia/Tokyo)"
    assert calendar_from(None, None, off=True) is None
    monkeypatch.setenv("DEPLOYSIM_FREEZE", "Thu 18:00-Fri 09:00")
    monkeypatch.setenv("DEPLOYSIM_TIMEZONE", "America/New_York")
    assert calendar_from(None, None).describe() == "Thu 18:00-Fri 09:00 (America/New_York)"
    assert calendar_from(["Sat 00:00-Mon 00:00"], None).describe() == "Sat 00:00-Mon 00:00 (America/New_York)"
    monkeypatch.setenv("DEPLOYSIM_FREEZE", "off")
    assert calendar_from(None, None) is None
    with pytest.raises(ScenarioError, match="an IANA time zone"):
        calendar_from(None, "Mars/Olympus")


def test_lint_at_a_time(capsys) -> None:
    lint = ["lint", "--no-cost"]
    assert main([*lint, "--at", "2026-12-04T15:00", "--environment", "production"]) == EXIT_NOT_PROMOTED
    out = capsys.readouterr().out
    assert "error    change-freeze  deploy  --at" in out
    assert "a deploy at Fri 2026-12-04 15:00 UTC is inside the change freeze 'Fri 12:00-Mon 00:00'" in out
    assert main([*lint, "--at", "2026-12-04T15:00"]) == EXIT_OK  # environment not said: a warning
    assert "warning  change-freeze" in capsys.readouterr().out
    assert main([*lint, "--at", "2026-12-04T15:00", "--environment", "staging"]) == EXIT_OK
    assert "change-freeze" not in capsys.readouterr().out
    assert main([*lint, "--at", "2026-12-03T15:00", "--environment", "production"]) == EXIT_OK
    assert main([*lint, "--at", "2026-12-04T15:00", "--environment", "production", "--no-freeze"]) == EXIT_OK
    # Wednesday 10:00 in Berlin is 09:00 UTC
    assert main([*lint, "--at", "2026-12-02T09:00Z", "--environment", "production", "--timezone", "Europe/Berlin",
                 "--freeze", "Wed 09:30-Wed 11:00"]) == EXIT_NOT_PROMOTED
    assert "Wed 2026-12-02 10:00 Europe/Berlin" in capsys.readouterr().out
    assert main([*lint, "--at", "next friday"]) == EXIT_BAD_INPUT
    assert "--at: got 'next friday'; an ISO 8601 date and time" in capsys.readouterr().err
    assert main([*lint, "--freeze", "weekends"]) == EXIT_BAD_INPUT
    assert main([*lint, "--timezone", "Nowhere/City"]) == EXIT_BAD_INPUT
