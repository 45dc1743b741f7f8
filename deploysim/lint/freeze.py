"""The change-freeze calendar: when a team does not release.

By default Friday from noon to Monday 00:00 (Friday afternoon and the weekend), in UTC. A
window is weekly (``Fri 12:00-Mon 00:00``: a start and an end of the week, the end not
included, wrapping over Sunday night when it comes first) or dated
(``2026-12-23..2027-01-04``, or with times, ``2026-12-24T18:00..2026-12-27T09:00``: a date
alone as an end means to the end of that day). Times are read in the calendar's time zone (an
IANA name such as ``Europe/Berlin``); an instant given with its offset (``...Z``,
``+01:00``) is converted to it.

``--freeze WINDOW`` (repeatable) replaces the default windows, ``--timezone`` sets the zone,
``--no-freeze`` turns the calendar off; ``DEPLOYSIM_FREEZE`` (windows separated by ``;``, or
``off``) and ``DEPLOYSIM_TIMEZONE`` give the same for every run, a runbook's too.

>>> cal = FreezeCalendar.default()
>>> cal.window_at(parse_instant("2026-12-04T15:00", cal.zone))   # a Friday afternoon
'Fri 12:00-Mon 00:00'
>>> cal.window_at(parse_instant("2026-12-01T15:00", cal.zone)) is None   # a Tuesday
True
>>> berlin = FreezeCalendar.from_settings(["Fri 12:00-Mon 00:00"], "Europe/Berlin")
>>> berlin.window_at(parse_instant("2026-12-04T11:30Z", berlin.zone))  # 12:30 in Berlin
'Fri 12:00-Mon 00:00'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deploysim.errors import ScenarioError

DEFAULT_WINDOWS = ("Fri 12:00-Mon 00:00",)
DEFAULT_TIMEZONE = "UTC"
ENV_FREEZE = "DEPLOYSIM_FREEZE"
ENV_TIMEZONE = "DEPLOYSIM_TIMEZONE"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEK_MINUTES = 7 * 24 * 60
WINDOW_HELP = ("a weekly window like 'Fri 12:00-Mon 00:00' or a dated one like '2026-12-23..2027-01-04' "
               "(times allowed: 2026-12-24T18:00..2026-12-27T09:00)")

_WEEKLY = re.compile(r"^\s*([A-Za-z]+)\s+(\d{1,2}):(\d{2})\s*(?:-|\.\.)\s*([A-Za-z]+)\s+(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Weekly:
    """Every week from ``start`` to ``end`` minutes after Monday 00:00 (``end`` not included)."""

    text: str
    start: int
    end: int

    def contains(self, at: datetime) -> bool:
        minute = at.weekday() * 1440 + at.hour * 60 + at.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # wraps over Sunday night


@dataclass(frozen=True)
class Dated:
    """Once, from ``start`` to ``end`` (not included), wall-clock times in the calendar's zone."""

    text: str
    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        local = at.replace(tzinfo=None)
        return self.start <= local < self.end


Window = Weekly | Dated


def _day(word: str, text: str) -> int:
    key = word.strip().lower()
    for i, day in enumerate(DAYS):
        if key == day[:3] or key == day:
            return i
    raise ScenarioError("--freeze", text, f"{word!r} is not a day (Mon..Sun); expected {WINDOW_HELP}")


def _minute(day: int, hh: str, mm: str, text: str) -> int:
    h, m = int(hh), int(mm)
    if h > 24 or m > 59 or (h == 24 and m):
        raise ScenarioError("--freeze", text, f"{hh}:{mm} is not a time of day; expected {WINDOW_HELP}")
    return (day * 1440 + h * 60 + m) % WEEK_MINUTES


def _moment(word: str, text: str, end: bool) -> datetime:
    try:
        if "T" in word or " " in word.strip():
            return datetime.fromisoformat(word.strip()).replace(tzinfo=None)
        day = date.fromisoformat(word.strip())
    except ValueError:
        raise ScenarioError("--freeze", text, f"{word!r} is not a date; expected {WINDOW_HELP}") from None
    moment = datetime.combine(day, time())
    return moment + timedelta(days=1) if end else moment


def parse_window(text: str) -> Window:
    """One window, weekly or dated; an error names the value and what is allowed.

    >>> parse_window("Sat 00:00-Mon 00:00")
    Weekly(text='Sat 00:00-Mon 00:00', start=7200, end=0)
    >>> w = parse_window("2026-12-24..2026-12-26")
    >>> (w.start.isoformat(), w.end.isoformat())
    ('2026-12-24T00:00:00', '2026-12-27T00:00:00')
    """
    weekly = _WEEKLY.match(text)
    if weekly:
        d1, h1, m1, d2, h2, m2 = weekly.groups()
        start = _minute(_day(d1, text), h1, m1, text)
        end = _minute(_day(d2, text), h2, m2, text)
        if start == end:
            raise ScenarioError("--freeze", text, "the window starts where it ends; give a start and a later end")
        return Weekly(text.strip(), start, end)
    first, sep, last = text.partition("..")
    if not sep:
        raise ScenarioError("--freeze", text, f"expected {WINDOW_HELP}")
    start, end = _moment(first, text, end=False), _moment(last, text, end=True)
    if end <= start:
        raise ScenarioError("--freeze", text, "the window ends before it starts")
    return Dated(text.strip(), start, end)


def zone_named(name: str, key: str = "--timezone") -> ZoneInfo:
    """The IANA time zone ``name``; an error names it and what is allowed."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScenarioError(key, name, "an IANA time zone such as UTC, Europe/Berlin or America/New_York") from None


@dataclass(frozen=True)
class FreezeCalendar:
    """The freeze windows and the zone they are read in."""

    windows: tuple[Window, ...]
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return zone_named(self.timezone)

    @classmethod
    def default(cls) -> FreezeCalendar:
        return cls.from_settings(DEFAULT_WINDOWS, DEFAULT_TIMEZONE)

    @classmethod
    def from_settings(cls, windows: Iterable[str], tz: str) -> FreezeCalendar:
        zone_named(tz)
        return cls(tuple(parse_window(w) for w in windows), tz)

    def window_at(self, at: datetime) -> str | None:
        """The window ``at`` falls in (its text), or None."""
        local = at.astimezone(self.zone)
        for w in self.windows:
            if w.contains(local):
                return w.text
        return None

    def describe(self) -> str:
        return f"{'; '.join(w.text for w in self.windows) or 'no windows'} ({self.timezone})"


def calendar_from(windows: list[str] | None, tz: str | None, off: bool = False,
                  env: Mapping[str, str] | None = None) -> FreezeCalendar | None:
    """The calendar a command uses: the windows and zone given, else ``DEPLOYSIM_FREEZE`` /
    ``DEPLOYSIM_TIMEZONE``, else the default; None when turned off (``--no-freeze``, or
    ``DEPLOYSIM_FREEZE=off``).

    >>> calendar_from(None, None, env={"DEPLOYSIM_FREEZE": "off"}) is None
    True
    >>> calendar_from(None, None, env={"DEPLOYSIM_FREEZE": "Sat 00:00-Mon 00:00; 2026-12-24..2026-12-26"}).describe()
    'Sat 00:00-Mon 00:00; 2026-12-24..2026-12-26 (UTC)'
    """
    env = os.environ if env is None else env
    key = "--timezone" if tz else ENV_TIMEZONE
    tz = tz or env.get(ENV_TIMEZONE) or DEFAULT_TIMEZONE
    zone_named(tz, key)  # a zone that does not exist is refused, calendar on or off
    if off:
        return None
    if not windows:
        value = env.get(ENV_FREEZE, "").strip()
        if value.lower() in ("off", "none"):
            return None
        windows = [w for w in value.split(";") if w.strip()] or list(DEFAULT_WINDOWS)
    return FreezeCalendar.from_settings(windows, tz)


def parse_instant(text: str, zone: ZoneInfo) -> datetime:
    """``--at``: an ISO 8601 date and time, read in ``zone`` unless it carries an offset.

    >>> parse_instant("2026-12-04T15:00+01:00", ZoneInfo("UTC")).isoformat()
    '2026-12-04T14:00:00+00:00'
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00") if text.strip().endswith("Z")
                                        else text.strip())
    except ValueError:
        raise ScenarioError("--at", text, "an ISO 8601 date and time such as 2026-12-04T15:00 "
                            "(in the calendar's time zone) or 2026-12-04T14:00Z") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


def now() -> datetime:
    """The time of a deploy linted without ``--at``."""
    return datetime.now(UTC)
