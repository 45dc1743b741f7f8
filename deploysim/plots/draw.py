"""Drawing on one axes: the time axis, pauses and faults, decisions, bounds and measurements.

Each artist carries a ``gid`` naming what it shows (``threshold:error_rate``,
``measurements:latency_p99``, ``pause``, ``fault:node_failure``, ``version:preview``...), so a
test, or a person with the figure in hand, finds it without reading colours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MultipleLocator

from deploysim.plots import palette
from deploysim.plots.marks import NOT_JUDGED, Measured, Moment, Span, bounds, shown, verdict_on
from deploysim.plots.window import clock, tick_step, view

if TYPE_CHECKING:
    from deploysim.record import Record

Legend = dict[str, Any]  # label -> the first artist drawn with it
SPAN_STYLE = {
    "pause": {"color": palette.PAUSE, "alpha": 0.18},
    "gate": {"color": palette.GATE, "alpha": 0.25},
    "waiting": {"color": palette.GATE, "alpha": 0.25, "hatch": ".."},
}
SPAN_LABEL = {"pause": "pause", "gate": "manual gate", "waiting": "waiting for a person"}
TIME_LABEL = "time on the run's clock (t+mm:ss, as the decision log prints it)"
MAX_LABELS = 40  # measurement values written beside their markers, at most
PHASE_WORDS = {"Successful": "passed", "Failed": "failed", "Error": "without a value", "Inconclusive": "inconclusive",
               NOT_JUDGED: "not judged on this metric"}


def _ink(phase: str) -> str:
    """A value's colour beside its marker: its verdict's, ink where that is hollow or unknown."""
    return palette.INK if phase == NOT_JUDGED else palette.VERDICTS.get(phase, palette.INK)


def _keep(legend: Legend | None, label: str, artist: Any) -> None:
    if legend is not None and label not in legend:
        legend[label] = artist


def time_axis(ax: Axes, window: tuple[float, float], label: bool = True, ticks: int = 10) -> None:
    """``window`` on the x axis, at most ``ticks`` ticks on the decision log's clock."""
    a, b = view(window)
    ax.set_xlim(a, b)
    ax.xaxis.set_major_locator(MultipleLocator(tick_step(b - a, ticks)))
    ax.xaxis.set_major_formatter(FuncFormatter(clock))
    ax.grid(alpha=0.3)
    if label:
        ax.set_xlabel(TIME_LABEL)


def spans(ax: Axes, window: tuple[float, float], pauses: list[Span], faults: list[Span], moments: list[Moment],
          legend: Legend | None) -> None:
    """Pauses and gates shaded, fault windows hatched, fault moments as black lines: those
    the axis over ``window`` shows, so the legend names only what is drawn."""
    seen = view(window)
    pauses, faults, moments = shown(pauses, seen), shown(faults, seen), shown(moments, seen)
    for s in pauses:
        style = SPAN_STYLE.get(s.kind, SPAN_STYLE["pause"])
        artist = ax.axvspan(s.start, s.end, linewidth=0, zorder=0, gid=s.kind, **style)
        _keep(legend, SPAN_LABEL.get(s.kind, s.kind), artist)
    for s in faults:
        artist = ax.axvspan(s.start, s.end, facecolor="none", edgecolor=palette.FAULT, hatch="///", alpha=0.35,
                            linewidth=0, zorder=0, gid=f"fault:{s.kind}")
        _keep(legend, s.label, artist)
    for m in moments:
        artist = ax.axvline(m.at, color=palette.FAULT, linewidth=2.4, linestyle=(0, (6, 2, 1, 2)), alpha=0.85,
                            gid=f"fault:{m.kind}")
        _keep(legend, m.label, artist)


def decisions(ax: Axes, record: Record, window: tuple[float, float], legend: Legend | None) -> None:
    """The rollout's start, promotion, abort and completed rollback as vertical lines, those
    inside ``window``."""
    a, b = view(window)
    for d in record.decisions:
        if d["kind"] not in palette.DECISIONS or not a <= float(d["at"]) <= b:
            continue
        color, style = palette.DECISIONS[d["kind"]]
        artist = ax.axvline(d["at"], color=color, linestyle=style, linewidth=1.2, gid=f"decision:{d['kind']}")
        _keep(legend, {"complete": "rolled back (done)"}.get(d["kind"], d["kind"]), artist)


def thresholds(ax: Axes, record: Record, metric: str, fmt: Callable[[float], str]) -> float | None:
    """Each bound the plan's analyses put on ``metric`` as a horizontal line; the highest bound."""
    top = None
    for (lo, hi), names in bounds(record, metric).items():
        which = names[0] if len(names) == 1 else f"{len(names)} analyses"
        for value, word in ((hi, "max"), (lo, "min")):
            if value is None:
                continue
            ax.axhline(value, color=palette.THRESHOLD, linestyle=(0, (4, 2)), linewidth=1.3,
                       gid=f"threshold:{metric}", label=f"{word} {fmt(value)} ({which})")
            top = value if top is None else max(top, value)
    return top


def measured(ax: Axes, record: Record, window: tuple[float, float], points: list[Measured], metric: str,
             fmt: Callable[[float], str], legend: Legend | None, *, missing: bool = False) -> None:
    """A marker per measurement inside ``window`` with ``metric``'s value, coloured by its
    verdict on that metric (:func:`~deploysim.plots.marks.verdict_on`), its value written
    beside it; with ``missing``, the measurements without the value as crosses along the
    axis' foot: coloured by their phase when their analysis judged ``metric`` (the provider
    erred, no data), hollow when it judged other metrics only."""
    points = shown(points, view(window))
    have = [m for m in points if metric in m.values]
    if have:
        colors = [palette.VERDICTS.get(verdict_on(record, m, metric), palette.NO_VALUE) for m in have]
        ax.scatter([m.at for m in have], [m.values[metric] for m in have], c=colors, s=46, marker="o",
                   edgecolors=palette.INK, linewidths=0.8, zorder=5, gid=f"measurements:{metric}")
        for i, m in enumerate(have[:MAX_LABELS]):  # above and below in turn: neighbours a minute apart stay legible
            ax.annotate(fmt(m.values[metric]), (m.at, m.values[metric]), xytext=(0, 8 if i % 2 == 0 else -14),
                        textcoords="offset points", ha="center", fontsize=7, zorder=6,
                        color=_ink(verdict_on(record, m, metric)),
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        for phase in sorted({verdict_on(record, m, metric) for m in have}):
            _keep(legend, f"measurement {PHASE_WORDS.get(phase, phase.lower())}",
                  ax.scatter([], [], c=palette.VERDICTS.get(phase, palette.NO_VALUE), marker="o",
                             edgecolors=palette.INK, s=46))
    lacking = [m for m in points if metric not in m.values] if missing else []
    for judged, gid, why in ((True, "no-value", "error, no data"), (False, "not-judged", "not judged")):
        group = [m for m in lacking if (verdict_on(record, m, metric) != NOT_JUDGED) == judged]
        if not group:
            continue
        colors = [palette.VERDICTS.get(verdict_on(record, m, metric), palette.NO_VALUE) for m in group]
        artist = ax.scatter([m.at for m in group], [0.0] * len(group), c=colors, marker="X", s=52,
                            edgecolors=palette.INK, linewidths=0.6, zorder=5, clip_on=False,
                            gid=f"measurements:{gid}")
        _keep(legend, f"measurement without {metric} ({why})", artist)
