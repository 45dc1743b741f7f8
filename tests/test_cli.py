"""The commands a user types, and the exit code each gives: 0 promoted or done, 1 not
promoted, 2 bad input, 3 the cluster (or a metrics source) cannot be reached."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from deploysim.cli import main
from deploysim.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_NOT_PROMOTED, EXIT_OK

SHORT = ["--set", "duration=30m", "--set", "traffic.shape=constant"]
HEALTHY = ["--set", "candidate.error_rate=0.001"]


def test_rehearse_writes_timeline_summary_and_plots(tmp_path, capsys):
    # the default candidate has a 2% error regression: rolled back, so not promoted
    assert main(["rehearse", *SHORT, "--out", str(tmp_path)]) == EXIT_NOT_PROMOTED
    out = capsys.readouterr().out
    assert "rolled_back" in out and str(tmp_path) in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("strategy", "outcome", "simulated_seconds", "wall_seconds", "rollout_seconds",
                "time_to_detect_seconds", "time_to_recover_seconds", "requests", "failed_requests",
                "rollout_attributable_failures", "max_pods", "min_available", "extra_pod_seconds",
                "error_budget_consumed", "seed"):
        assert key in summary
    assert summary["outcome"] == "rolled_back"
    timeline = pd.read_csv(tmp_path / "timeline.csv")
    assert {"time", "weight", "pods_stable", "ready_candidate", "requests_candidate",
            "failed_candidate", "latency_p99_candidate", "decision"} <= set(timeline.columns)
    assert timeline["requests_stable"].sum() + timeline["requests_candidate"].sum() == summary["requests"]
    assert timeline["decision"].fillna("").str.contains("abort").any()
    for png in ("traffic.png", "pods.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_rehearse_strategy_flag_overrides_the_file(tmp_path):
    # a rolling update instead of the file's canary; a healthy candidate is promoted
    assert main(["rehearse", *SHORT, *HEALTHY, "--strategy", "rolling", "--out", str(tmp_path)]) == EXIT_OK
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["strategy"], summary["outcome"]) == ("rolling", "promoted")
    assert summary["measurements_taken"] >= 1  # the background analysis measured the finished update


def test_compare_writes_one_row_per_strategy_and_fails_the_gate(tmp_path, capsys):
    assert main(["compare", *SHORT, "--out", str(tmp_path)]) == EXIT_NOT_PROMOTED
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table["strategy"]) == ["rolling", "canary", "blue-green", "recreate"]
    assert (tmp_path / "comparison.png").exists()
    printed = capsys.readouterr().out
    assert all(k in printed for k in ("rolling", "canary", "blue-green", "recreate"))
    by = table.set_index("strategy")
    # recreate takes everything down at once; the others never do
    assert by.loc["recreate", "min_available"] == 0
    assert (by.drop(index="recreate")["min_available"] > 0).all()
    # the gate names every strategy that did not promote
    stopped = [s for s, o in by["outcome"].items() if o != "promoted"]
    assert stopped and printed.splitlines()[-1] == "not promoted: " + ", ".join(
        f"{s} ({by.loc[s, 'outcome']})" for s in stopped)


def test_compare_of_a_healthy_candidate_passes_the_gate(tmp_path, capsys):
    # recreate at 300 rps: the first candidate pods up take all the traffic and shed, which the
    # background analysis (measuring the finished update) sees; the other strategies promote
    assert main(["compare", *SHORT, *HEALTHY, "--out", str(tmp_path / "a")]) == EXIT_NOT_PROMOTED
    table = pd.read_csv(tmp_path / "a" / "comparison.csv").set_index("strategy")
    assert table.loc["recreate", "outcome"] == "rolled_back"
    assert set(table.drop(index="recreate")["outcome"]) == {"promoted"}
    # pods that can each take the whole load: nothing is shed, every strategy passes the gate
    capsys.readouterr()
    assert main(["compare", *SHORT, *HEALTHY, "--set", "pod.capacity_rps=1000", "--out", str(tmp_path / "b")]) == EXIT_OK
    assert set(pd.read_csv(tmp_path / "b" / "comparison.csv")["outcome"]) == {"promoted"}
    assert "not promoted" not in capsys.readouterr().out


def test_sweep_writes_csv_and_summary(tmp_path):
    assert main(["sweep", *SHORT, "--runs", "3", "--workers", "1", "--quiet", "--out", str(tmp_path)]) == EXIT_OK
    df = pd.read_csv(tmp_path / "sweep.csv")
    assert len(df) == 6 and set(df["candidate"]) == {"bad", "healthy"}
    summary = json.loads((tmp_path / "sweep_summary.json").read_text())
    bad = df[(df["candidate"] == "bad") & (df["judge"] == "threshold")]
    assert summary["threshold"]["detection_rate"] == pytest.approx(bad["rolled_back"].mean())


def test_plan_prints_steps_and_expected_duration(capsys):
    assert main(["plan"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "set weight to 5%" in out and "expected duration" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["rehearse", "--set", "replicas=0"], "replicas: got 0"),
    (["compare", "--set", "traffic.rps=-1"], "traffic.rps: got -1"),
    (["sweep", "--set", "duration=soon", "--runs", "1"], "duration: got 'soon'"),
    (["plan", "--set", "strategy.steps.0.set_weight=150"], "strategy.steps.0.set_weight: got 150"),
    (["plan", "--scenario", "/no/such/scenario.yaml"], "/no/such/scenario.yaml"),
    (["runs", "show", "nope", "--dir", "/no/such/runs"], "nope"),
])
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    assert main([*argv, *(["--out", str(tmp_path)] if argv[0] in ("rehearse", "compare", "sweep") else [])]) \
        == EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("deploysim: error: ")
    assert message in err


@pytest.mark.parametrize("argv", [["rehearse", "--strategy", "blue_green"], ["sweep", "--runs", "many"],
                                  ["plan", "--no-such-flag"], ["nope"]])
def test_bad_flags_exit_2_through_argparse(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == EXIT_BAD_INPUT
    assert "usage: deploysim" in capsys.readouterr().err


def test_cluster_status_of_a_missing_cluster_exits_3(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEPLOYSIM_KWOK_WORKDIR", str(tmp_path))
    assert main(["cluster", "status", "--name", "nowhere"]) == EXIT_ENVIRONMENT
    assert capsys.readouterr().out == "cluster 'nowhere': not running\n"
    assert main(["cluster", "status", "--name", "nowhere", "--json"]) == EXIT_ENVIRONMENT
    assert json.loads(capsys.readouterr().out)["running"] is False
    # env of it is a ClusterError: one line, the same code
    assert main(["cluster", "env", "--name", "nowhere"]) == EXIT_ENVIRONMENT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nowhere' is not running" in err


def test_runs_list_of_an_empty_folder_exits_0(tmp_path, capsys):
    assert main(["runs", "list", str(tmp_path)]) == EXIT_OK
    assert capsys.readouterr().out == f"no runs in {tmp_path}/\n"


# --- deploysim run: the runbook's outcome is the exit code ----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "code", "says"), [
    (["-p", "duration", "20m", "-y", "{candidate: {error_rate: 0.001}}"], EXIT_OK, "promoted: "),
    (["-p", "duration", "20m", "-y", "{candidate: {error_rate: 0.05}}"], EXIT_NOT_PROMOTED, "rolled back: "),
    (["-y", "{candidate: {error_rate: 2}}"], EXIT_BAD_INPUT, "parameter 'candidate' (candidate.error_rate)"),
    (["-p", "duration", "20m", "-r", "target", "kubernetes", "-r", "kubeconfig", "/no/such/kubeconfig",
      "-r", "prometheus_url", "http://127.0.0.1:9"],
     EXIT_ENVIRONMENT, "ClusterError: cannot read kubeconfig /no/such/kubeconfig"),
])
def test_run_exit_code_follows_the_outcome(argv, code, says, tmp_path, capsys):
    assert main(["run", "rolling", *argv, "--record-dir", str(tmp_path)]) == code
    out, err = capsys.readouterr()
    assert says in (out if code in (EXIT_OK, EXIT_NOT_PROMOTED) else out + err)
    if code != EXIT_BAD_INPUT:  # the bad value stops before the run folder exists
        (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        assert json.loads((folder / "record.json").read_text())["run"]["exit_code"] == code


# --- the command line stays light -----------------------------------------------------------


def test_help_imports_no_heavy_library() -> None:
    code = ("import sys\nfrom deploysim.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'kubernetes', 'papermill') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"
    assert "exit codes: 0 promoted or done" in proc.stdout


def test_python_dash_m_deploysim_is_the_command() -> None:
    for module in ("deploysim", "deploysim.cli"):
        proc = subprocess.run([sys.executable, "-m", module, "plan", "--set", "replicas=0"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == EXIT_BAD_INPUT and "replicas: got 0" in proc.stderr, module


def test_an_unknown_judge_is_bad_input_before_any_run(capsys) -> None:  # noqa: ANN001
    from deploysim.cli import main

    assert main(["sweep", "--runs", "1", "--judges", "threshold,thresold"]) == 2
    out = capsys.readouterr()
    assert "analysis.judge: got 'thresold'; one of mann_whitney, sequential, threshold" in out.out + out.err
    assert "Traceback" not in out.out + out.err


def test_an_unknown_strategy_to_compare_is_a_scenario_error(scenario_of) -> None:  # noqa: ANN001
    from deploysim.compare import compare_strategies
    from deploysim.errors import ScenarioError, exit_code

    with pytest.raises(ScenarioError) as raised:
        compare_strategies(scenario_of(), ["rolling", "bluegreen"])
    assert str(raised.value).startswith("strategy.kind: got 'bluegreen'; one of rolling")
    assert exit_code(raised.value) == 2
