"""Monte-Carlo sweeps: the same scenario over many seeds, with a bad and a healthy candidate.

For each judge it reports how often the analysis catches the bad candidate (detection
rate), how often it rolls back the healthy one (false-rollback rate), time to detect, and
the spread of failed requests and rollout duration. Runs go in parallel across cores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from deploysim.analysis.judges import get_judge
from deploysim.record import CAUGHT
from deploysim.scenario import Scenario
from deploysim.sim import rehearse

ROLLED_BACK = CAUGHT


def _one(job: tuple[dict[str, Any], int, str, str]) -> dict[str, Any]:
    data, seed, variant, judge = job
    scenario = Scenario.model_validate(data)
    scenario = scenario.with_seed(seed)
    if variant == "healthy":
        scenario = scenario.with_healthy_candidate()
    scenario = scenario.model_copy(update={"analysis": scenario.analysis.model_copy(update={"judge": judge})})
    s = rehearse(scenario).summary
    return {
        "seed": seed,
        "candidate": variant,
        "judge": judge,
        "outcome": s["outcome"],
        "rolled_back": s["outcome"] in ROLLED_BACK,
        "time_to_detect_seconds": s["time_to_detect_seconds"],
        "failed_requests": s["failed_requests"],
        "rollout_attributable_failures": s["rollout_attributable_failures"],
        "rollout_seconds": s["rollout_seconds"],
        "time_paused_seconds": s["time_paused_seconds"],
        "time_in_analysis_seconds": s["time_in_analysis_seconds"],
        "wall_seconds": s["wall_seconds"],
    }


def run_sweep(
    scenario: Scenario,
    runs: int,
    judges: Sequence[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
    variants: Sequence[str] = ("bad", "healthy"),
) -> pd.DataFrame:
    """One row per run: seeds ``scenario.seed .. scenario.seed + runs - 1`` per variant and judge."""
    judges = list(judges or [scenario.analysis.judge])
    for judge in judges:
        get_judge(judge)  # an unknown name is a ScenarioError here, before any run starts
    data = scenario.to_data()
    jobs = [(data, scenario.seed + i, v, j) for j in judges for v in variants for i in range(runs)]
    workers = workers or min(os.cpu_count() or 1, len(jobs))
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(jobs), desc="sweep", unit="run", disable=not progress)
    if workers <= 1:
        for job in jobs:
            rows.append(_one(job))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for row in pool.map(_one, jobs, chunksize=max(1, len(jobs) // (workers * 8))):
                rows.append(row)
                bar.update()
    bar.close()
    return pd.DataFrame(rows)


def _q(series: pd.Series, q: float) -> float | None:
    s = series.dropna()
    return None if s.empty else round(float(np.quantile(s, q)), 3)


def summarize_sweep(df: pd.DataFrame) -> dict[str, Any]:
    """Per judge: detection rate, false-rollback rate, time to detect and the spreads."""
    out: dict[str, Any] = {}
    for judge, g in df.groupby("judge", sort=False):
        bad = g[g["candidate"] == "bad"]
        good = g[g["candidate"] == "healthy"]
        entry: dict[str, Any] = {"runs": int(len(bad) or len(good))}
        if len(bad):
            entry["detection_rate"] = round(float(bad["rolled_back"].mean()), 4)
            entry["time_to_detect_seconds"] = {"p50": _q(bad["time_to_detect_seconds"], 0.5),
                                               "p90": _q(bad["time_to_detect_seconds"], 0.9)}
            entry["failed_requests_bad"] = {"mean": round(float(bad["failed_requests"].mean()), 1),
                                            "p50": _q(bad["failed_requests"], 0.5),
                                            "p90": _q(bad["failed_requests"], 0.9)}
        if len(good):
            entry["false_rollback_rate"] = round(float(good["rolled_back"].mean()), 4)
            entry["rollout_seconds_healthy"] = {"mean": _q(good["rollout_seconds"], 0.5) and round(float(good["rollout_seconds"].dropna().mean()), 1),
                                                "p10": _q(good["rollout_seconds"], 0.1),
                                                "p50": _q(good["rollout_seconds"], 0.5),
                                                "p90": _q(good["rollout_seconds"], 0.9)}
            entry["failed_requests_healthy"] = {"mean": round(float(good["failed_requests"].mean()), 1),
                                                "p90": _q(good["failed_requests"], 0.9)}
        out[str(judge)] = entry
    return out


def write_sweep(df: pd.DataFrame, out: str | Path) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "sweep.csv", index=False)
    summary = summarize_sweep(df)
    (out / "sweep_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
