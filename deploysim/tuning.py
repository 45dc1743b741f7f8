"""Tune the analysis: sweep the error-rate threshold and the judge, then pick a setting.

Each setting runs :func:`deploysim.sweep.run_sweep` (a bad and a healthy candidate over the
same seeds), so a setting's detection rate and false-rollback rate come from the same worlds.
What ``notebooks/tune_analysis.ipynb`` shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from deploysim.scenario import Check, Scenario
from deploysim.sweep import run_sweep, summarize_sweep


def available_judges(judges: Sequence[str]) -> list[str]:
    """The judges among ``judges`` this version has; the others are named and skipped."""
    from deploysim.analysis.judges import get_judge

    usable = []
    for name in judges:
        try:
            get_judge(name)
        except ValueError:
            print(f"judge {name!r} is not available in this version: skipped")
            continue
        usable.append(name)
    return usable


def with_threshold(scenario: Scenario, max_error_rate: float) -> Scenario:
    """The scenario with its error-rate check at ``max_error_rate`` (added if it had none)."""
    checks = [c for c in scenario.analysis.checks if c.metric != "error_rate"]
    checks.insert(0, Check(metric="error_rate", max=max_error_rate))
    return scenario.model_copy(update={"analysis": scenario.analysis.model_copy(update={"checks": checks})})


def threshold_sweep(scenario: Scenario, thresholds: Sequence[float], judges: Sequence[str],
                    runs: int = 10, workers: int | None = 1) -> pd.DataFrame:
    """One row per (threshold, judge): detection rate, false-rollback rate, time to detect,
    failed requests with the bad candidate, rollout time with the healthy one."""
    rows: list[dict[str, Any]] = []
    for threshold in thresholds:
        df = run_sweep(with_threshold(scenario, float(threshold)), runs, judges=list(judges), workers=workers,
                       progress=False)
        for judge, entry in summarize_sweep(df).items():
            rows.append({
                "threshold": float(threshold),
                "judge": judge,
                "detection_rate": entry.get("detection_rate"),
                "false_rollback_rate": entry.get("false_rollback_rate"),
                "time_to_detect_p50_s": (entry.get("time_to_detect_seconds") or {}).get("p50"),
                "failed_requests_bad_mean": (entry.get("failed_requests_bad") or {}).get("mean"),
                "rollout_seconds_healthy_p50": (entry.get("rollout_seconds_healthy") or {}).get("p50"),
                "runs": entry.get("runs"),
            })
    return pd.DataFrame(rows)


def pick_setting(table: pd.DataFrame, max_false_rollback: float = 0.05) -> dict[str, Any] | None:
    """Among settings with a false-rollback rate at most ``max_false_rollback``: the highest
    detection rate, then the fewest failed requests, then the fastest detection."""
    ok = table[table["false_rollback_rate"] <= max_false_rollback + 1e-12]
    if ok.empty:
        return None
    ranked = ok.assign(_ttd=ok["time_to_detect_p50_s"].fillna(float("inf"))).sort_values(
        ["detection_rate", "failed_requests_bad_mean", "_ttd", "threshold"],
        ascending=[False, True, True, False])
    return ranked.drop(columns="_ttd").iloc[0].to_dict()


def describe_choice(choice: dict[str, Any] | None, max_false_rollback: float) -> str:
    if choice is None:
        return (f"No setting keeps false rollbacks at or below {max_false_rollback:.0%}: raise the threshold, "
                "lengthen the analysis (count, interval) or raise failure_limit.")
    ttd = choice["time_to_detect_p50_s"]
    detect = f" (median {ttd:.0f} s to detect)" if ttd is not None else ""
    return (
        f"Use judge {choice['judge']} with error_rate max {choice['threshold']:g}: it caught the bad candidate "
        f"in {choice['detection_rate']:.0%} of runs{detect} and rolled back the healthy one in "
        f"{choice['false_rollback_rate']:.0%}.\n"
        f"In the scenario:\n  analysis:\n    judge: {choice['judge']}\n    checks:\n"
        f"      - metric: error_rate\n        max: {choice['threshold']:g}"
    )


def sanity(table: pd.DataFrame, scenario: Scenario) -> str:
    """What must hold of a threshold sweep whatever the simulator's version (threshold judge):
    a threshold well below the bad candidate's error rate catches it, and a higher threshold
    never rolls back a healthy candidate that a lower one let through (same seeds)."""
    rows = table[table["judge"] == "threshold"].sort_values("threshold")
    if rows.empty:
        return "no threshold judge in the sweep"
    below = rows[rows["threshold"] <= scenario.candidate.error_rate / 2]
    caught = bool((below["detection_rate"] >= 0.9).all()) if not below.empty else None
    falling = bool((rows["false_rollback_rate"].diff().dropna() <= 1e-12).all())
    return (f"{len(table)} settings: {table['threshold'].nunique()} thresholds x {table['judge'].nunique()} judges\n"
            f"thresholds at most half the bad candidate's error rate ({scenario.candidate.error_rate:g}) "
            f"catch it in 90% of runs or more: {caught}\n"
            f"false rollbacks never rise with the threshold: {falling}")


def show_tradeoff(table: pd.DataFrame) -> None:
    """Detection rate against false-rollback rate, one line per judge, points labelled by threshold."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for judge, g in table.groupby("judge", sort=False):
        g = g.sort_values("threshold")
        ax1.plot(g["false_rollback_rate"], g["detection_rate"], marker="o", label=judge)
        for _, row in g.iterrows():
            ax1.annotate(f"{row['threshold']:g}", (row["false_rollback_rate"], row["detection_rate"]),
                         textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax2.plot(g["threshold"], g["detection_rate"], marker="o", label=f"{judge}: detection")
        ax2.plot(g["threshold"], g["false_rollback_rate"], marker="x", linestyle="--",
                 label=f"{judge}: false rollback")
    ax1.set_xlabel("false-rollback rate (healthy candidate)")
    ax1.set_ylabel("detection rate (bad candidate)")
    ax1.set_xlim(-0.05, 1.05)
    ax1.set_ylim(-0.05, 1.05)
    ax2.set_xlabel("error_rate threshold")
    ax2.set_ylabel("rate")
    ax2.set_xscale("log")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    display(Image(data=buf.getvalue()))
