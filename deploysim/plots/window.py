"""Which stretch of a run a picture shows, and how its time axis reads.

A rollout of three minutes in a run of two hours is drawn over the rollout and a few minutes
around it; ``full=True`` draws the whole run. Times are seconds on the world's clock, the
clock the decision log prints (``t+07:26``), so a point on a picture and a line of the log
name the same moment.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploysim.record import Record

#: seconds shown before the rollout's start and after its end
CONTEXT_SECONDS = 180.0
#: tick spacings a person reads without arithmetic, in seconds
TICK_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
#: the decisions that end a rollout: every step passed, or the abort completed
ENDING = ("promote", "complete")


def run_span(record: Record) -> tuple[float, float]:
    """The first and last second the record covers: its timeline, else its decisions.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> run_span(Record({}, pd.DataFrame({"start": [0.0, 10.0], "time": [10.0, 20.0]}), [], [], {}))
    (0.0, 20.0)
    """
    t = record.timeline
    if t is not None and len(t) and {"start", "time"} <= set(t.columns):
        return float(t["start"].min()), float(t["time"].max())
    times = [float(d["at"]) for d in record.decisions]
    return (min(times), max(times)) if times else (0.0, 0.0)


def rollout_span(record: Record) -> tuple[float, float] | None:
    """From the rollout's start decision to the decision that ended it (promoted, or the
    abort completed); to the end of the run when nothing ended it; None when it never began."""
    starts = [float(d["at"]) for d in record.decisions if d["kind"] == "start"]
    if not starts:
        return None
    start = min(starts)
    ends = [float(d["at"]) for d in record.decisions if d["kind"] in ENDING and d["at"] >= start]
    return start, (min(ends) if ends else run_span(record)[1])


def rollout_window(record: Record, context: float = CONTEXT_SECONDS, *, full: bool = False) -> tuple[float, float]:
    """The seconds a picture shows: the rollout with ``context`` seconds either side, inside
    the run; the whole run when ``full`` or when the rollout never started.

    The built-in scenario: the rollout starts at 5m, is rolled back at 7m56s, the run lasts 2h.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> t = pd.DataFrame({"start": [0.0, 7190.0], "time": [10.0, 7200.0]})
    >>> d = [{"at": 300.0, "kind": "start"}, {"at": 446.25, "kind": "abort"}, {"at": 476.25, "kind": "complete"}]
    >>> rec = Record({}, t, d, [], {})
    >>> rollout_window(rec)
    (120.0, 656.25)
    >>> rollout_window(rec, context=600), rollout_window(rec, full=True)
    ((0.0, 1076.25), (0.0, 7200.0))
    """
    if context < 0 or not math.isfinite(context):
        raise ValueError(f"context: got {context!r}; allowed: seconds, 0 or more")
    first, last = run_span(record)
    span = None if full else rollout_span(record)
    if span is None:
        return first, last
    start, end = span
    return max(first, start - context), min(last, end + context)


#: the shortest stretch an axis shows: a run that saw nothing still gets a readable minute
SHORTEST_SECONDS = 60.0


def view(window: tuple[float, float]) -> tuple[float, float]:
    """The seconds an axis over ``window`` shows: the window, at least a minute long.

    >>> view((120.0, 656.25)), view((300.0, 300.0))
    ((120.0, 656.25), (300.0, 360.0))
    """
    a, b = window
    return a, (b if b > a else a + SHORTEST_SECONDS)


def tick_step(seconds: float, most: int = 10) -> float:
    """The smallest spacing of :data:`TICK_STEPS` that puts at most ``most`` ticks on an
    axis ``seconds`` long.

    >>> tick_step(536), tick_step(7200), tick_step(40)
    (60, 900, 5)
    """
    for step in TICK_STEPS:
        if seconds / step <= most:
            return step
    return TICK_STEPS[-1] * math.ceil(seconds / TICK_STEPS[-1] / most)


def clock(seconds: float, _pos: Any = None) -> str:
    """A tick label on the decision log's clock: ``07:26``, ``1:02:03``.

    >>> clock(446.25), clock(3723), clock(-30)
    ('07:26', '1:02:03', '-00:30')
    """
    sign = "-" if seconds < 0 else ""
    s = int(round(abs(seconds)))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m:02d}:{sec:02d}"
