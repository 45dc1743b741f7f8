"""Plots and tables from records: what a person looks at after a rehearsal or a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from deploysim.record import Record  # noqa: E402

COLORS = {"stable": "#1f77b4", "candidate": "#d62728", "preview": "#ff7f0e"}
MARKERS = {"abort": ("#d62728", "abort"), "promote": ("#2ca02c", "promote"),
           "pause": ("#7f7f7f", "pause"), "start": ("#000000", "start")}


def _decision_lines(ax: plt.Axes, record: Record) -> None:
    seen = set()
    for d in record.decisions:
        if d["kind"] not in MARKERS:
            continue
        color, label = MARKERS[d["kind"]]
        ax.axvline(d["at"] / 60, color=color, linestyle="--", linewidth=1,
                   label=label if label not in seen else None)
        seen.add(label)


def plot_traffic(record: Record, path: str | Path) -> Path:
    """Requests and failed requests per second, per version, with decision markers."""
    t = record.timeline
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    minutes = t["time"] / 60
    for v in ("stable", "candidate"):
        ax1.plot(minutes, t[f"requests_{v}"] / t["seconds"], color=COLORS[v], label=f"{v} rps")
        ax2.plot(minutes, t[f"failed_{v}"] / t["seconds"], color=COLORS[v], label=f"{v} failed/s")
    ax1.set_ylabel("requests / s")
    ax2.set_ylabel("failed requests / s")
    ax2.set_xlabel("minutes")
    for ax in (ax1, ax2):
        _decision_lines(ax, record)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    s = record.summary
    ax1.set_title(f"{s['strategy']}: {s['outcome']} — {s['failed_requests']} failed of {s['requests']} requests")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_pods(record: Record, path: str | Path) -> Path:
    """Pods and ready pods per version, and the candidate's weight."""
    t = record.timeline
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    minutes = t["time"] / 60
    for v in ("stable", "candidate"):
        ax1.step(minutes, t[f"pods_{v}"], where="post", color=COLORS[v], alpha=0.4, label=f"{v} pods")
        ax1.step(minutes, t[f"ready_{v}"], where="post", color=COLORS[v], label=f"{v} ready")
    ax2.plot(minutes, t["weight"], color=COLORS["candidate"], label="candidate weight %")
    ax1.set_ylabel("pods")
    ax2.set_ylabel("weight %")
    ax2.set_ylim(-5, 105)
    ax2.set_xlabel("minutes")
    for ax in (ax1, ax2):
        _decision_lines(ax, record)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_report(record: Record, out: str | Path) -> list[Path]:
    """The record's files and its plots in ``out``."""
    out = Path(out)
    record.save(out)
    return [plot_traffic(record, out / "traffic.png"), plot_pods(record, out / "pods.png")]


COMPARE_COLUMNS = ["strategy", "outcome", "rollout_seconds", "failed_requests",
                   "rollout_attributable_failures", "time_to_detect_seconds",
                   "time_to_recover_seconds", "min_available", "max_pods", "extra_pod_seconds"]


def comparison_table(records: Sequence[Record]) -> pd.DataFrame:
    return pd.DataFrame([r.summary for r in records])


def plot_comparison(records: Sequence[Record], path: str | Path) -> Path:
    """Side by side: failed requests per second and the candidate's weight for each strategy."""
    fig, axes = plt.subplots(2, len(records), figsize=(4 * len(records), 6), sharey="row", squeeze=False)
    for i, rec in enumerate(records):
        t = rec.timeline
        minutes = t["time"] / 60
        failed = (t["failed_stable"] + t["failed_candidate"]) / t["seconds"]
        axes[0][i].plot(minutes, failed, color="#d62728")
        axes[0][i].set_title(f"{rec.summary['strategy']}: {rec.summary['outcome']}")
        axes[1][i].plot(minutes, t["weight"], color="#9467bd")
        for ax in (axes[0][i], axes[1][i]):
            _decision_lines(ax, rec)
            ax.grid(alpha=0.3)
        axes[1][i].set_xlabel("minutes")
    axes[0][0].set_ylabel("failed requests / s")
    axes[1][0].set_ylabel("candidate weight %")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def format_table(df: pd.DataFrame, columns: Sequence[str] = COMPARE_COLUMNS) -> str:
    cols = [c for c in columns if c in df.columns]
    return df[cols].to_string(index=False, na_rep="-", float_format=lambda x: f"{x:.1f}")
