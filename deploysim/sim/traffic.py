"""Traffic shapes: the request rate over time, and requests expected over an interval."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from deploysim.errors import ScenarioError
from deploysim.scenario import Traffic


class TrafficShape:
    """rps(t) for a scenario's traffic block, and its integral over [a, b].

    >>> from deploysim.scenario import Traffic
    >>> TrafficShape(Traffic(rps=100)).requests(0, 10)
    1000.0
    """

    def __init__(self, traffic: Traffic) -> None:
        self.t = traffic
        self._trace: tuple[np.ndarray, np.ndarray] | None = None
        if traffic.shape == "trace":
            self._trace = read_trace(traffic.trace or "")

    def rps(self, t: float) -> float:
        tr = self.t
        if tr.shape == "constant":
            return tr.rps
        if tr.shape == "step":
            return tr.rps * (tr.step_factor if t >= tr.step_at else 1.0)
        if tr.shape == "diurnal":
            # mean rps, peak at peak_at with peak_factor x mean, cosine in between
            amplitude = tr.peak_factor - 1.0
            phase = 2 * math.pi * (t - tr.peak_at) / tr.period
            return max(tr.rps * (1.0 + amplitude * math.cos(phase)), 0.0)
        assert self._trace is not None
        times, rates = self._trace
        return float(np.interp(t, times, rates))

    def requests(self, a: float, b: float) -> float:
        """Expected requests in [a, b] (exact for constant and step, midpoint otherwise)."""
        if b <= a:
            return 0.0
        tr = self.t
        if tr.shape == "constant":
            return tr.rps * (b - a)
        if tr.shape == "step" and a < tr.step_at < b:
            return self.requests(a, tr.step_at) + self.requests(tr.step_at, b)
        return self.rps((a + b) / 2) * (b - a)


def read_trace(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A CSV of ``timestamp,rps`` (header optional); timestamps are seconds, made relative."""
    file = Path(path)
    try:
        rows = list(csv.reader(file.read_text().splitlines()))
    except OSError as exc:
        raise ScenarioError("traffic.trace", path, f"cannot read the file ({exc.strerror})") from None
    times, rates = [], []
    for n, row in enumerate(rows, start=1):
        if not row or row[0].startswith("#"):
            continue
        try:
            t, r = float(row[0]), float(row[1])
        except (ValueError, IndexError):
            if n == 1:
                continue  # header
            raise ScenarioError("traffic.trace", f"{path} line {n}: {','.join(row)}",
                                "each line must be timestamp,rps with numbers") from None
        if r < 0:
            raise ScenarioError("traffic.trace", f"{path} line {n}: rps {r}", "rps must be 0 or more")
        times.append(t)
        rates.append(r)
    if len(times) < 2:
        raise ScenarioError("traffic.trace", path, "needs at least two timestamp,rps lines")
    t_arr = np.asarray(times)
    if np.any(np.diff(t_arr) <= 0):
        raise ScenarioError("traffic.trace", path, "timestamps must increase")
    return t_arr - t_arr[0], np.asarray(rates)
