"""The pictures a person reads after a rehearsal or a run.

- :func:`plot_traffic` / :func:`traffic_figure`: error rate and p99 latency per version
  against the checks' bounds, the analysis measurements as pass/fail markers with their
  values, the requests each version served (a blue-green preview's test traffic too);
- :func:`plot_pods` / :func:`pods_figure`: ready pods per version and the candidate's weight;
- :func:`plot_comparison` / :func:`comparison_figure`: strategies as small multiples, each
  with its own scales, its verdict and its cost.

Each is drawn over :func:`rollout_window` (the rollout and a few minutes either side;
``full=True`` for the whole run), with pauses and gates shaded, faults marked and the colours
of :mod:`deploysim.plots.palette`. The ``*_figure`` functions return the figure unsaved; the
``plot_*`` functions write a PNG and return its path. Built on matplotlib's object API
(``Figure``), never ``pyplot``: no global state, no backend to choose, safe in a kernel.
"""

from deploysim.plots.comparison import comparison_figure, plot_comparison
from deploysim.plots.pods import plot_pods, pods_figure
from deploysim.plots.traffic import plot_traffic, traffic_figure
from deploysim.plots.window import CONTEXT_SECONDS, rollout_window

__all__ = [
    "CONTEXT_SECONDS", "comparison_figure", "plot_comparison", "plot_pods", "plot_traffic", "pods_figure",
    "rollout_window", "traffic_figure",
]
