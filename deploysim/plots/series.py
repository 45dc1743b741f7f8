"""The numbers a picture draws from a record's timeline: rates per version, per bin.

A bin's error rate is its failed requests over its requests (a bin without requests has
none, not zero); requests per second divide by the bin's own length, since bins end early at
a decision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deploysim.record import TIMELINE_COLUMNS

VERSIONS = ("stable", "candidate")
#: above this many times the bound, the error rate's axis is logarithmic past the bound
LOG_PAST = 10.0


def in_window(t: pd.DataFrame | None, window: tuple[float, float]) -> pd.DataFrame:
    """The bins that overlap ``window``; none (with the timeline's columns) for a run whose
    traffic was never counted.

    >>> t = pd.DataFrame({"start": [0.0, 10.0, 20.0], "time": [10.0, 20.0, 30.0]})
    >>> in_window(t, (12.0, 18.0))["start"].tolist(), len(in_window(pd.DataFrame(), (0.0, 60.0)).columns)
    ([10.0], 22)
    """
    if t is None or "time" not in t.columns:
        return pd.DataFrame(columns=list(TIMELINE_COLUMNS), dtype=float)
    a, b = window
    return numeric(t[(t["time"] >= a) & (t["start"] <= b)])


def numeric(t: pd.DataFrame) -> pd.DataFrame:
    """The timeline with every column but the decisions as floats (a missing value NaN): a
    world that counted no traffic gives a timeline of no rows whose columns hold objects, and
    one that could not read a figure gives None in its cells.

    >>> t = numeric(pd.DataFrame({"time": [10, None], "decision": ["abort", ""]}, dtype=object))
    >>> str(t["time"].dtype), t["time"].isna().tolist(), t["decision"].tolist()
    ('float64', [False, True], ['abort', ''])
    """
    out = t.copy()
    for column in out.columns:
        if column != "decision":
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out


#: a bin shorter than this share of the run's usual bin is drawn merged into its neighbour
SLIVER = 0.25
COUNTS = ("requests_stable", "requests_candidate", "requests_preview", "failed_stable", "failed_candidate",
          "failed_preview", "expected_stable_only_failed")


def merge_slivers(t: pd.DataFrame, fraction: float = SLIVER) -> pd.DataFrame:
    """The bins with each sliver (a bin cut short by a decision, shorter than ``fraction`` of
    the median bin) folded into the bin before it (the first into the one after): its
    requests and failures added, so a rate over a second's few requests does not spike.
    Latency is not additive: the merged bin keeps the p99 of the longer of the two.

    >>> t = pd.DataFrame({"start": [0.0, 10.0, 19.0, 20.0], "time": [10.0, 19.0, 20.0, 30.0],
    ...                   "seconds": [10.0, 9.0, 1.0, 10.0], "requests_candidate": [100, 90, 10, 100],
    ...                   "failed_candidate": [1, 1, 5, 1], "latency_p99_candidate": [200.0, 210.0, 900.0, 205.0]})
    >>> m = merge_slivers(t)
    >>> m[["start", "time", "requests_candidate", "failed_candidate", "latency_p99_candidate"]].values.tolist()
    [[0.0, 10.0, 100.0, 1.0, 200.0], [10.0, 20.0, 100.0, 6.0, 210.0], [20.0, 30.0, 100.0, 1.0, 205.0]]
    """
    if len(t) < 2:
        return t
    short = float(t["seconds"].median()) * fraction
    rows: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None  # a sliver at the very start, waiting for the next bin
    for row in t.to_dict("records"):
        sliver = row["seconds"] < short
        if pending is not None:
            row, pending = _fold(pending, row), None
        elif sliver and rows:
            rows[-1] = _fold(rows[-1], row)
            continue
        elif sliver:
            pending = row
            continue
        rows.append(row)
    if pending is not None:
        rows.append(pending)
    return pd.DataFrame(rows, columns=t.columns)


def _fold(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Bins ``a`` then ``b`` as one: counts added, latency of the longer, the state of the later."""
    longer = a if a["seconds"] >= b["seconds"] else b
    out = {**b, "start": a["start"], "seconds": a["seconds"] + b["seconds"]}
    for key in COUNTS:
        if key in a:
            out[key] = a[key] + b[key]
    for key in a:
        if key.startswith("latency_"):
            out[key] = longer[key]
    if "weight" in a and out["seconds"] > 0:
        out["weight"] = (a["weight"] * a["seconds"] + b["weight"] * b["seconds"]) / out["seconds"]
    return out


def bin_steps(t: pd.DataFrame, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A value per bin as a line that holds it over the bin ([start, end]): each bin a
    level segment, neighbours joined by a vertical step, a bin without a value a gap.

    >>> t = pd.DataFrame({"start": [0.0, 10.0, 20.0], "time": [10.0, 20.0, 25.0]})
    >>> xs, ys = bin_steps(t, pd.Series([0.5, float("nan"), 1.0]))
    >>> xs.tolist(), ys.tolist()
    ([0.0, 10.0, 10.0, 20.0, 20.0, 25.0], [0.5, 0.5, nan, nan, 1.0, 1.0])
    """
    xs = np.column_stack([t["start"].to_numpy(dtype=float), t["time"].to_numpy(dtype=float)]).ravel()
    v = np.asarray(values, dtype=float)
    return xs, np.column_stack([v, v]).ravel()


def error_rate(t: pd.DataFrame, version: str) -> pd.Series:
    """Failed over requests of ``version`` (stable, candidate, preview) per bin; NaN where
    it had no requests.

    >>> t = pd.DataFrame({"requests_candidate": [0, 200, 150], "failed_candidate": [0, 4, 0]})
    >>> error_rate(t, "candidate").tolist()
    [nan, 0.02, 0.0]
    """
    requests = t[f"requests_{version}"].astype(float)
    return t[f"failed_{version}"].astype(float) / requests.where(requests > 0)


def per_second(t: pd.DataFrame, column: str) -> pd.Series:
    """``column`` per second of each bin (a bin of no length has none).

    >>> per_second(pd.DataFrame({"requests_stable": [3000, 300], "seconds": [10.0, 0.0]}), "requests_stable").tolist()
    [300.0, nan]
    """
    seconds = t["seconds"].astype(float)
    return t[column].astype(float) / seconds.where(seconds > 0)


def has_preview(t: pd.DataFrame) -> bool:
    """Test traffic went to a blue-green preview somewhere in the run."""
    return "requests_preview" in t.columns and float(t["requests_preview"].fillna(0).sum()) > 0


def has_latency(t: pd.DataFrame) -> bool:
    """The timeline holds some p99 latency (a cluster run without a latency source has none)."""
    cols = [f"latency_p99_{v}" for v in VERSIONS if f"latency_p99_{v}" in t.columns]
    return bool(cols) and bool(np.isfinite(t[cols].to_numpy(dtype=float)).any())


def error_scale(peak: float, bound: float | None) -> str:
    """``linear``, or ``symlog`` (linear up to the bound, logarithmic above it) when the
    highest error rate is over :data:`LOG_PAST` times the bound (10% without one), so a
    recreate's outage at 100% does not flatten a 2% regression beside a 1% bound.

    >>> error_scale(0.03, 0.01), error_scale(1.0, 0.01), error_scale(0.5, None)
    ('linear', 'symlog', 'symlog')
    """
    limit = LOG_PAST * (bound if bound else 0.01)
    return "symlog" if peak > limit else "linear"


def peak(series: list[Any]) -> float:
    """The highest finite value of some series, 0 without any."""
    values = [float(np.nanmax(s)) for s in series if len(s) and np.isfinite(np.asarray(s, dtype=float)).any()]
    return max(values, default=0.0)
