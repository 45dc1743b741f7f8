"""Strategies side by side as small multiples: one column per rehearsal, each over its own
rollout window and with its own y scales (a recreate's outage at 100% does not flatten a
canary's 2% beside it), its verdict and its cost in the column's title."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from deploysim.durations import format_duration
from deploysim.plots import palette
from deploysim.plots.draw import Legend, time_axis
from deploysim.plots.marks import measurements
from deploysim.plots.series import in_window
from deploysim.plots.traffic import DPI, draw_error_rate, marks
from deploysim.plots.window import CONTEXT_SECONDS, rollout_window
from deploysim.plots.words import OUTCOME_WORDS

if TYPE_CHECKING:
    from deploysim.record import Record


def panel_title(summary: dict[str, Any]) -> str:
    """A column's title: the strategy and its verdict, then its cost.

    >>> print(panel_title({"strategy": "recreate", "outcome": "rolled_back", "failed_requests": 44484,
    ...                    "rollout_attributable_failures": 40186.0, "rollout_seconds": 99.9}))
    recreate: ROLLED BACK
    44,484 failed (40,186 by the rollout), rollout 1m40s
    """
    s = summary
    verdict = OUTCOME_WORDS.get(s.get("outcome") or "", str(s.get("outcome")).upper())
    failed = "requests not counted" if s.get("failed_requests") is None else f"{s['failed_requests']:,} failed"
    if s.get("rollout_attributable_failures") is not None:
        failed += f" ({s['rollout_attributable_failures']:,.0f} by the rollout)"
    took = "did not complete" if s.get("rollout_seconds") is None else format_duration(round(s["rollout_seconds"]))
    return f"{s.get('strategy')}: {verdict}\n{failed}, rollout {took}"


def comparison_figure(records: Sequence[Record], *, full: bool = False, context: float = CONTEXT_SECONDS) -> Figure:
    """The figure (not yet saved): per strategy its error rate with the bounds and
    measurements, its ready pods stacked per version, the candidate's weight."""
    n = max(len(records), 1)
    fig = Figure(figsize=(4.4 * n, 8.4), layout="constrained")
    axes = fig.subplots(3, n, squeeze=False, sharex="col")
    legend: Legend = {}
    for i, rec in enumerate(records):
        window = rollout_window(rec, context, full=full)
        err, pods, weight = axes[0][i], axes[1][i], axes[2][i]
        for row, ax in enumerate((err, pods, weight)):
            time_axis(ax, window, label=row == 2, ticks=5)
            ax.set_xlabel("t+mm:ss" if row == 2 else "")
            marks(ax, rec, window, legend if row == 0 else None)
        draw_error_rate(err, rec, window, legend, measurements(rec))
        for line in err.get_lines():  # versions and bounds go in the figure's legend, once
            if line.get_label() and not line.get_label().startswith("_"):
                legend.setdefault(_role(line.get_label()), line)
        err.get_legend().remove()
        err.set_title(panel_title(rec.summary), fontsize=10, loc="left")
        t = in_window(rec.timeline, window)
        x, stable, candidate = t["time"], t["ready_stable"], t["ready_candidate"]
        pods.fill_between(x, 0, stable, step="pre", color=palette.STABLE, alpha=0.75, linewidth=0, gid="ready:stable")
        pods.fill_between(x, stable, stable + candidate, step="pre", color=palette.CANDIDATE, alpha=0.75, linewidth=0,
                          gid="ready:candidate")
        pods.set_ylim(0, max(float((stable + candidate).max()) if len(t) else 1.0, 1.0) * 1.15)
        weight.plot(x, t["weight"], color=palette.CANDIDATE, linewidth=1.5, gid="weight")
        weight.set_ylim(-5, 105)
        err.set_ylabel("")
        if i == 0:
            err.set_ylabel("error rate (failed / requests)")
            pods.set_ylabel("ready pods (stacked)")
            weight.set_ylabel("candidate weight %")
    if records:
        first = records[0]
        sc = first.scenario or {}
        fig.suptitle(f"{sc.get('service', 'service')}: {(sc.get('stable') or {}).get('image', 'stable')} → "
                     f"{(sc.get('candidate') or {}).get('image', 'candidate')}, one scenario and seed "
                     f"({first.summary.get('seed')}) per strategy; each panel its own scale", fontsize=11)
    if legend:
        fig.legend(list(legend.values()), list(legend.keys()), loc="outside lower center",
                   ncol=min(len(legend), 6), fontsize=8, frameon=False)
    return fig


def _role(label: str) -> str:
    """A line's name across strategies: a version by its role alone (the images are in the
    title), a bound without the analyses that hold it.

    >>> _role("candidate checkout:1.42.0"), _role("max 1% (3 analyses)")
    ('candidate', 'max 1%')
    """
    word = label.split(" ", 1)[0]
    return word if word in palette.VERSIONS else label.split(" (", 1)[0]


def plot_comparison(records: Sequence[Record], path: str | Path, *, full: bool = False,
                    context: float = CONTEXT_SECONDS) -> Path:
    """Write :func:`comparison_figure` as a PNG at ``path``."""
    fig = comparison_figure(records, full=full, context=context)
    fig.savefig(path, dpi=DPI)
    return Path(path)
