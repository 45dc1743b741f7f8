"""The commands a user types: rehearse, compare, sweep, plan."""

from __future__ import annotations

import json

import pandas as pd

from deploysim.cli import main

SHORT = ["--set", "duration=30m", "--set", "traffic.shape=constant"]


def test_rehearse_writes_timeline_summary_and_plots(tmp_path, capsys):
    assert main(["rehearse", *SHORT, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rolled_back" in out and str(tmp_path) in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("strategy", "outcome", "simulated_seconds", "wall_seconds", "rollout_seconds",
                "time_to_detect_seconds", "time_to_recover_seconds", "requests", "failed_requests",
                "rollout_attributable_failures", "max_pods", "min_available", "extra_pod_seconds",
                "error_budget_consumed", "seed"):
        assert key in summary
    assert summary["outcome"] == "rolled_back"  # the default candidate has a 2% error regression
    timeline = pd.read_csv(tmp_path / "timeline.csv")
    assert {"time", "weight", "pods_stable", "ready_candidate", "requests_candidate",
            "failed_candidate", "latency_p99_candidate", "decision"} <= set(timeline.columns)
    assert timeline["requests_stable"].sum() + timeline["requests_candidate"].sum() == summary["requests"]
    assert timeline["decision"].fillna("").str.contains("abort").any()
    for png in ("traffic.png", "pods.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_rehearse_strategy_flag_overrides_the_file(tmp_path):
    assert main(["rehearse", *SHORT, "--strategy", "recreate", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["strategy"] == "recreate"


def test_compare_writes_one_row_per_strategy(tmp_path, capsys):
    assert main(["compare", *SHORT, "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table["strategy"]) == ["rolling", "canary", "blue-green", "recreate"]
    assert (tmp_path / "comparison.png").exists()
    printed = capsys.readouterr().out
    assert all(k in printed for k in ("rolling", "canary", "blue-green", "recreate"))
    # recreate takes everything down at once; the others never do
    by = table.set_index("strategy")
    assert by.loc["recreate", "min_available"] == 0
    assert (by.drop(index="recreate")["min_available"] > 0).all()


def test_sweep_writes_csv_and_summary(tmp_path):
    assert main(["sweep", *SHORT, "--runs", "3", "--workers", "1", "--quiet", "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "sweep.csv")
    assert len(df) == 6 and set(df["candidate"]) == {"bad", "healthy"}
    summary = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert 0.0 <= summary["threshold"]["detection_rate"] <= 1.0


def test_plan_prints_steps_and_expected_duration(capsys):
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "set weight to 5%" in out and "expected duration" in out
