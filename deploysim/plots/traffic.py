"""The traffic picture of one run: error rate and p99 latency per version against the
checks' bounds, with the analysis measurements, and the requests each version served.

Over the rollout window by default (:func:`~deploysim.plots.window.rollout_window`), the
whole run with ``full=True``. Pauses and gates are shaded, faults hatched or drawn as black
lines, and the decisions that started and ended the rollout are vertical lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from deploysim.plots import palette
from deploysim.plots.draw import Legend, decisions, measured, spans, thresholds, time_axis
from deploysim.plots.marks import fault_marks, measurements, pause_spans, shown, version_faults
from deploysim.plots.series import (
    bin_steps,
    error_rate,
    error_scale,
    has_latency,
    has_preview,
    in_window,
    merge_slivers,
    peak,
    per_second,
)
from deploysim.plots.window import CONTEXT_SECONDS, rollout_window, view
from deploysim.plots.words import cost_line, title, version_label

if TYPE_CHECKING:
    from deploysim.record import Record

DPI = 100


def percent(x: float) -> str:
    """``2.37%``, ``0.1%``: an error rate as a person reads it.

    >>> percent(0.023658), percent(0.001), percent(0.5)
    ('2.37%', '0.1%', '50%')
    """
    return f"{x * 100:.3g}%"


def ms(x: float) -> str:
    """``188 ms``.

    >>> ms(187.97)
    '188 ms'
    """
    return f"{x:.0f} ms"


def _versions(t: Any) -> list[str]:
    return ["stable", "candidate"] + (["preview"] if has_preview(t) else [])


def draw_error_rate(ax: Axes, record: Record, window: tuple[float, float], legend: Legend | None,
                    points: list[Any] | None = None) -> None:
    """Failed over requests per bin and version, the bounds, the measurements; the y axis
    fits what the window shows (its bins, its measurements, the bound)."""
    t = merge_slivers(in_window(record.timeline, window))
    drawn = []
    for v in _versions(record.timeline):
        y = error_rate(t, v)
        drawn.append(y)
        # the preview's test traffic is thin and often short: drawn thicker
        ax.plot(*bin_steps(t, y), color=palette.VERSIONS[v], linewidth=2.6 if v == "preview" else 1.3,
                gid=f"version:{v}", label=version_label(record, v) + (" (test traffic)" if v == "preview" else ""))
    bound = thresholds(ax, record, "error_rate", percent)
    points = shown(measurements(record) if points is None else points, view(window))
    drawn.append([m.values["error_rate"] for m in points if "error_rate" in m.values])
    measured(ax, record, window, points, "error_rate", percent, legend, missing=True)
    top = max(peak(drawn), bound or 0.0)
    if error_scale(top, bound) == "symlog":
        ax.set_yscale("symlog", linthresh=bound or 0.01, linscale=1.0)
        ax.set_ylim(0, min(1.0, top) * 1.5)
    else:
        ax.set_ylim(0, (top or 0.01) * 1.15)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("error rate (failed / requests)")
    ax.legend(loc="upper left", fontsize=8)


def draw_latency(ax: Axes, record: Record, window: tuple[float, float], legend: Legend | None,
                 points: list[Any]) -> None:
    """p99 latency per bin and version, the bound, the measurements; the y axis fits what the
    window shows."""
    t = merge_slivers(in_window(record.timeline, window))
    for v in ("stable", "candidate"):
        ax.plot(*bin_steps(t, t[f"latency_p99_{v}"]), color=palette.VERSIONS[v], linewidth=1.3, gid=f"latency:{v}",
                label=version_label(record, v))
    bound = thresholds(ax, record, "latency_p99", ms)
    points = shown(points, view(window))
    measured(ax, record, window, points, "latency_p99", ms, legend)
    drawn = [t[f"latency_p99_{v}"] for v in ("stable", "candidate")]
    drawn.append([m.values["latency_p99"] for m in points if "latency_p99" in m.values])
    ax.set_ylim(0, (max(peak(drawn), bound or 0.0) or 1.0) * 1.15)
    ax.set_ylabel("p99 latency (ms)")
    ax.legend(loc="upper left", fontsize=8)


def draw_requests(ax: Axes, record: Record, window: tuple[float, float]) -> None:
    t = merge_slivers(in_window(record.timeline, window))
    for v in _versions(record.timeline):
        ax.plot(*bin_steps(t, per_second(t, f"requests_{v}")), color=palette.VERSIONS[v], linewidth=1.3, gid=f"requests:{v}",
                label=version_label(record, v) + (" (test traffic)" if v == "preview" else ""))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("requests / s")
    ax.legend(loc="upper left", fontsize=8)


def marks(ax: Axes, record: Record, window: tuple[float, float], legend: Legend | None) -> None:
    """Pauses, gates, faults and decisions on ``ax``."""
    end = window[1]
    faults, moments = fault_marks(record, end)
    spans(ax, window, pause_spans(record, end), faults, moments, legend)
    decisions(ax, record, window, legend)


def finish(fig: Figure, top: Axes, record: Record, runbook: str | None, legend: Legend) -> None:
    """Title, the run's cost and the versions' own faults over the top axes, the legend of
    marks under the figure."""
    fig.suptitle(title(record, runbook), fontsize=11, x=0.01, ha="left")
    top.set_title(cost_line(record), loc="left", fontsize=9)
    notes = version_faults(record)
    if notes:
        top.set_title("; ".join(notes), loc="right", fontsize=9, color=palette.FAIL)
    if legend:
        fig.legend(list(legend.values()), list(legend.keys()), loc="outside lower center",
                   ncol=min(len(legend), 6), fontsize=8, frameon=False)


def traffic_figure(record: Record, *, full: bool = False, context: float = CONTEXT_SECONDS,
                   runbook: str | None = None) -> Figure:
    """The figure (not yet saved): error rate, p99 latency when the record has it, requests."""
    window = rollout_window(record, context, full=full)
    latency = has_latency(in_window(record.timeline, window))
    rows = 3 if latency else 2
    fig = Figure(figsize=(11, 2.9 * rows + 1.6), layout="constrained")
    axes = list(fig.subplots(rows, 1, sharex=True, height_ratios=[3, 2, 1.6] if latency else [3, 1.6]))
    legend: Legend = {}
    points = measurements(record)
    for i, ax in enumerate(axes):
        time_axis(ax, window, label=i == rows - 1)
        marks(ax, record, window, legend if i == 0 else None)
    draw_error_rate(axes[0], record, window, legend, points)
    if latency:
        draw_latency(axes[1], record, window, legend, points)
    draw_requests(axes[-1], record, window)
    finish(fig, axes[0], record, runbook, legend)
    return fig


def plot_traffic(record: Record, path: str | Path, *, full: bool = False, context: float = CONTEXT_SECONDS,
                 runbook: str | None = None) -> Path:
    """Write :func:`traffic_figure` as a PNG at ``path``."""
    fig = traffic_figure(record, full=full, context=context, runbook=runbook)
    fig.savefig(path, dpi=DPI)
    return Path(path)
