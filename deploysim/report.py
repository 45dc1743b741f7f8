"""Plots and tables from records: what a person looks at after a rehearsal or a run.

The pictures live in :mod:`deploysim.plots`; this module keeps the names callers use
(``plot_traffic``, ``plot_pods``, ``plot_comparison``, ``write_report``) and the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from deploysim.plots import plot_comparison, plot_pods, plot_traffic
from deploysim.plots.palette import DECISIONS, VERSIONS
from deploysim.record import Record

__all__ = ["COMPARE_COLUMNS", "comparison_table", "format_table", "plot_comparison", "plot_pods", "plot_traffic",
           "write_report"]

COLORS = dict(VERSIONS)
MARKERS = {kind: (color, kind) for kind, (color, _style) in DECISIONS.items()}


def write_report(record: Record, out: str | Path, *, full: bool = False, runbook: str | None = None) -> list[Path]:
    """The record's files and its plots in ``out`` (over the rollout window; ``full`` for the
    whole run; ``runbook`` names what ran in the titles)."""
    out = Path(out)
    record.save(out)
    # only what was asked for is passed on: a stand-in plot(record, path) keeps working
    how = {k: v for k, v in (("full", full), ("runbook", runbook)) if v}
    return [plot_traffic(record, out / "traffic.png", **how), plot_pods(record, out / "pods.png", **how)]


COMPARE_COLUMNS = ["strategy", "outcome", "rollout_seconds", "failed_requests",
                   "rollout_attributable_failures", "time_to_detect_seconds",
                   "time_to_recover_seconds", "min_available", "max_pods", "extra_pod_seconds"]


def comparison_table(records: Sequence[Record]) -> pd.DataFrame:
    return pd.DataFrame([r.summary for r in records])


def format_table(df: pd.DataFrame, columns: Sequence[str] = COMPARE_COLUMNS) -> str:
    cols = [c for c in columns if c in df.columns]
    return df[cols].to_string(index=False, na_rep="-", float_format=lambda x: f"{x:.1f}")
