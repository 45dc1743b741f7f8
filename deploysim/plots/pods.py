"""The pods picture of one run: pods and ready pods per version, and the candidate's share
of users' requests, over the same window and with the same marks as the traffic picture."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from deploysim.plots import palette
from deploysim.plots.draw import Legend, time_axis
from deploysim.plots.series import has_preview, in_window
from deploysim.plots.traffic import DPI, finish, marks
from deploysim.plots.window import CONTEXT_SECONDS, rollout_window
from deploysim.plots.words import version_label

if TYPE_CHECKING:
    from deploysim.record import Record


def pods_figure(record: Record, *, full: bool = False, context: float = CONTEXT_SECONDS,
                runbook: str | None = None) -> Figure:
    """The figure (not yet saved): ready pods per version stacked, all pods as a line, and
    the candidate's weight; a blue-green candidate before its switch is the preview colour,
    serving test traffic only."""
    window = rollout_window(record, context, full=full)
    t = in_window(record.timeline, window)
    fig = Figure(figsize=(11, 6.6), layout="constrained")
    pods_ax, weight_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    legend: Legend = {}
    for i, ax in enumerate((pods_ax, weight_ax)):
        time_axis(ax, window, label=i == 1)
        marks(ax, record, window, legend if i == 0 else None)
    # a bin's pods are the state it ended in, drawn up to the bin's end; ready pods stacked
    # (stable under candidate), so two colours at full size are both seen, and their sum
    x = t["time"]
    stable, candidate = t["ready_stable"], t["ready_candidate"]
    pods_ax.fill_between(x, 0, stable, step="pre", color=palette.STABLE, alpha=0.75, linewidth=0,
                         gid="ready:stable", label=f"{version_label(record, 'stable')} ready")
    pods_ax.fill_between(x, stable, stable + candidate, step="pre", color=palette.CANDIDATE, alpha=0.75,
                         linewidth=0, gid="ready:candidate", label=f"{version_label(record, 'candidate')} ready")
    total = t["pods_stable"] + t["pods_candidate"]
    pods_ax.step(x, total, where="pre", color=palette.INK, linewidth=1.2, gid="pods",
                 label="pods of both versions (ready or not)")
    pods_ax.set_ylim(0, max(float(total.max()) if len(total) else 1.0, 1.0) * 1.3)
    pods_ax.set_ylabel("pods")
    pods_ax.legend(loc="upper left", fontsize=8)
    weight_ax.plot(t["time"], t["weight"], color=palette.CANDIDATE, linewidth=1.5, gid="weight",
                   label="candidate's share of users' requests")
    if has_preview(record.timeline):
        serving = t["requests_preview"] > 0
        weight_ax.fill_between(t["time"], 0, 100, where=serving, step="pre", color=palette.PREVIEW, alpha=0.2,
                               linewidth=0, gid="version:preview", label="preview gets test traffic")
    weight_ax.set_ylim(-5, 105)
    weight_ax.set_ylabel("weight %")
    weight_ax.legend(loc="upper left", fontsize=8)
    finish(fig, pods_ax, record, runbook, legend)
    return fig


def plot_pods(record: Record, path: str | Path, *, full: bool = False, context: float = CONTEXT_SECONDS,
              runbook: str | None = None) -> Path:
    """Write :func:`pods_figure` as a PNG at ``path``."""
    fig = pods_figure(record, full=full, context=context, runbook=runbook)
    fig.savefig(path, dpi=DPI)
    return Path(path)
