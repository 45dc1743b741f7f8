"""Durations, read once and written once for the whole project.

Every duration a user gives (a scenario key, a ``--set`` override, a runbook parameter, an
Argo Rollouts or Flagger manifest field, a PromQL range) is read by :func:`parse_duration`,
and every duration shown back is written by :func:`format_duration`, its inverse.

The syntax is Go's ``time.ParseDuration`` (``src/time/format.go``): one or more decimal
numbers, each with a unit (``ns``, ``us``, ``µs``, ``ms``, ``s``, ``m``, ``h``), such as
``300ms``, ``1.5h`` or ``1h2m3.5s``; ``"0"`` needs no unit. Two forms go beyond Go, each where
a caller allows it: a bare number is seconds (``numbers``; Argo Rollouts' pause durations
do the same in ``RolloutPause.DurationSeconds``, Flagger does not), and ``d`` is a day of
24 hours (``days``; scenarios and PromQL ranges use it, Go does not). A duration is never
negative.

>>> parse_duration("1h2m3.5s"), parse_duration("300ms"), parse_duration(90), parse_duration("2d")
(3723.5, 0.3, 90.0, 172800.0)
>>> format_duration(3723), format_duration(0.3), format_duration(None)
('1h2m3s', '0.3s', 'until approved')
>>> parse_duration("5 minutes")
Traceback (most recent call last):
...
ValueError: a duration like 30s, 5m, 1h or 1h30m (a bare number is seconds; d is a day)
"""

from __future__ import annotations

import re

__all__ = ["DURATION_HELP", "format_duration", "parse_duration"]

# seconds per unit; µ is U+00B5 (micro sign), μ U+03BC (Greek mu): Go accepts both
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DAY = 86400.0
# one number and its unit; Go wants a digit before or after the point ("5.s" and ".5s", not ".s")
_PART = re.compile(r"(\d+\.?\d*|\.\d+)([a-zµμ]+)")
_BARE = re.compile(r"\d+\.?\d*|\.\d+")

DURATION_HELP = "a duration like 30s, 5m, 1h or 1h30m"
# largest unit first, for the formatter
_SHOWN = (("h", 3600.0), ("m", 60.0), ("s", 1.0))


def _help(numbers: bool, days: bool) -> str:
    notes = [n for n, on in (("a bare number is seconds", numbers), ("d is a day", days)) if on]
    return DURATION_HELP + (f" ({'; '.join(notes)})" if notes else "")


def parse_duration(value: object, *, numbers: bool = True, days: bool = True) -> float:
    """Seconds from a duration: Go's syntax, a bare number of seconds if ``numbers``, and
    ``d`` for days if ``days``. Raises ValueError saying what is allowed.

    >>> parse_duration("1.5h"), parse_duration("1h30m"), parse_duration("10"), parse_duration(".5s")
    (5400.0, 5400.0, 10.0, 0.5)
    >>> parse_duration("60", numbers=False)
    Traceback (most recent call last):
    ...
    ValueError: a duration like 30s, 5m, 1h or 1h30m (d is a day); 60 needs a unit here, e.g. 60s
    >>> parse_duration("1d", days=False)
    Traceback (most recent call last):
    ...
    ValueError: a duration like 30s, 5m, 1h or 1h30m (a bare number is seconds); unit d is not one of ns, us, ms, s, m, h
    """
    allowed = _help(numbers, days)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(allowed)
    if isinstance(value, int | float):
        if not numbers:
            raise ValueError(f"{allowed}; a number needs a unit here")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    text = value.strip()
    if text.startswith("-"):
        raise ValueError("a duration cannot be negative")
    text = text.removeprefix("+")
    if _BARE.fullmatch(text):
        if not numbers and text != "0":  # Go reads "0" and no other bare number
            raise ValueError(f"{allowed}; {text} needs a unit here, e.g. {text}s")
        return float(text)
    units = {**_GO_UNITS, "d": _DAY} if days else _GO_UNITS
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        unit = match.group(2)
        if unit not in units:
            shown = ", ".join(u for u in units if u[0] not in "µμ")
            raise ValueError(f"{allowed}; unit {unit} is not one of {shown}")
        total += float(match.group(1)) * units[unit]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(allowed)
    return total


def format_duration(seconds: float | None, none: str = "until approved") -> str:
    """The inverse of :func:`parse_duration` for plain-words output: under a minute as given,
    from a minute on in whole seconds (a fraction of a second is noise beside minutes);
    ``none`` stands for no duration (a pause that waits for a person).

    >>> [format_duration(s) for s in (0, 0.25, 45, 60, 90, 206.25, 3600, 5400, 86400)]
    ['0s', '0.25s', '45s', '1m', '1m30s', '3m26s', '1h', '1h30m', '24h']
    """
    if seconds is None:
        return none
    rest = float(seconds)
    if rest < 60:
        return f"{rest:g}s"
    parts = []
    for unit, size in _SHOWN:
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{int(n)}{unit}")
    return "".join(parts)
