"""One duration parser and one formatter for the whole project (deploysim/durations.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploysim import durations, scenario
from deploysim.durations import format_duration, parse_duration

# (text, seconds): Go's time.ParseDuration syntax, then the forms beyond Go
GO_CASES = [
    ("300ms", 0.3),
    ("1.5h", 5400.0),
    ("1h2m3.5s", 3723.5),
    ("1h30m", 5400.0),
    ("10s", 10.0),
    ("10m", 600.0),
    ("10h", 36000.0),
    ("250ms", 0.25),
    (".5s", 0.5),  # Go: digits after the point are enough
    ("5.s", 5.0),  # ... and so are digits before it
    ("1500us", 0.0015),
    ("1500µs", 0.0015),  # U+00B5 micro sign
    ("1500μs", 0.0015),  # U+03BC Greek mu
    ("2000000ns", 0.002),
    ("+5s", 5.0),
    ("0", 0.0),  # the one bare number Go reads
    (" 30s ", 30.0),
]
BEYOND_GO = [
    ("10", 10.0),  # a bare number is seconds
    (45, 45.0),
    (2.5, 2.5),
    ("2.5", 2.5),
    ("2d", 172800.0),  # a day is 24 hours
    ("1d12h", 129600.0),
]


@pytest.mark.parametrize(("text", "seconds"), GO_CASES + BEYOND_GO)
def test_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(("text", "seconds"), GO_CASES)
def test_go_syntax_alone(text: str, seconds: float) -> None:
    assert parse_duration(text, numbers=False, days=False) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("5 minutes", {}, "a duration like 30s, 5m, 1h or 1h30m (a bare number is seconds; d is a day)"),
        ("1h 30m", {}, "a duration like 30s, 5m, 1h or 1h30m"),
        ("5m3", {}, "a duration like 30s"),
        ("m", {}, "a duration like 30s"),
        ("", {}, "a duration like 30s"),
        (".s", {}, "a duration like 30s"),
        ("5x", {}, "unit x is not one of ns, us, ms, s, m, h, d"),
        ("10d", {"days": False}, "unit d is not one of ns, us, ms, s, m, h"),
        ("-5s", {}, "a duration cannot be negative"),
        (-3, {}, "a duration cannot be negative"),
        (True, {}, "a duration like 30s"),
        (None, {}, "a duration like 30s"),
        ("60", {"numbers": False, "days": False}, "a duration like 30s, 5m, 1h or 1h30m; 60 needs a unit here, e.g. 60s"),
        (60, {"numbers": False, "days": False}, "a number needs a unit here"),
    ],
)
def test_rejected_values_say_what_is_allowed(value: object, kwargs: dict[str, bool], message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value, **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "until approved"), (0, "0s"), (0.25, "0.25s"), (45, "45s"), (59.5, "59.5s"), (60, "1m"),
     (90, "1m30s"), (206.251, "3m26s"), (600, "10m"), (3600, "1h"), (3723.5, "1h2m3s"), (5400, "1h30m"),
     (86400, "24h")],
)
def test_format(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_names_what_no_duration_means_to_the_caller() -> None:
    assert format_duration(None, none="-") == "-"


@given(st.integers(min_value=0, max_value=10**7))
def test_format_then_parse_gives_whole_seconds_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=0, max_value=59), st.sampled_from([0.0, 0.25, 0.5]))
def test_format_then_parse_keeps_fractions_under_a_minute(whole: int, fraction: float) -> None:
    assert parse_duration(format_duration(whole + fraction)) == whole + fraction


def test_scenario_reads_durations_with_the_one_parser() -> None:
    assert scenario.parse_duration is durations.parse_duration
    assert scenario.format_duration is durations.format_duration
