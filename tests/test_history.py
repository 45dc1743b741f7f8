"""deploysim runs list | show | diff, over audit trails this suite produces."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from trails import BAD, GOOD, make_run

from deploysim.cli import main
from deploysim.history import diff_runs, list_runs, resolve_run
from deploysim.runbooks import session
from deploysim.trail import read_record


@pytest.fixture(scope="module")
def trails(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    record_dir = tmp_path_factory.mktemp("history") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session, "notebook_output_path", lambda hint=None: None)
        folders = {
            "bad": make_run("canary", BAD, record_dir),
            "good": make_run("canary", {**GOOD, "step_pause": "30s"}, record_dir),
            "rolling": make_run("rolling", GOOD, record_dir),
        }
    return record_dir, folders


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_runs_list_shows_time_runbook_target_outcome_duration(trails) -> None:  # noqa: ANN001
    record_dir, folders = trails
    code, out = cli("runs", "list", str(record_dir))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "RUN", "RUNBOOK", "TARGET", "OUTCOME", "DURATION", "USER"]
    assert [line.split()[2] for line in lines[1:]] == [folders["bad"].name, folders["good"].name,
                                                     folders["rolling"].name]
    rows = list_runs(record_dir)
    assert [(r["runbook"], r["target"], r["outcome"]) for r in rows] == [
        ("canary", "sim", "rolled_back"), ("canary", "sim", "promoted"), ("rolling", "sim", "promoted")]
    assert rows[0]["duration"] == "2m56s"  # the bad canary's rollout, to the end of its rollback
    assert all(r["time"].endswith("Z") for r in rows)


def test_the_console_script_lists_the_same_runs(trails) -> None:  # noqa: ANN001
    record_dir, folders = trails
    proc = subprocess.run([str(Path(sys.executable).parent / "deploysim"), "runs", "list", str(record_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert all(f.name in proc.stdout for f in folders.values())
    assert proc.stdout.count("promoted") == 2 and proc.stdout.count("rolled_back") == 1


def test_runs_show_lists_the_decisions_and_why(trails) -> None:  # noqa: ANN001
    record_dir, folders = trails
    short_id = folders["bad"].name.rsplit("-", 1)[1]
    code, out = cli("runs", "show", short_id, "--dir", str(record_dir))
    assert code == 0
    assert f"run       {folders['bad'].name}" in out
    assert "outcome   rolled_back: rolled back: analysis step-3 Failed" in out
    assert "given     " in out and "candidate={'error_rate': 0.05}" in out
    measure = next(line for line in out.splitlines() if " measure " in line)
    said = re.search(r"step-3: Failed \(error_rate ([0-9.]+) > 0.01\)", measure)
    assert said is not None and float(said.group(1)) > 0.01  # the 5% candidate, as measured
    assert f"error_rate={said.group(1)}" in measure  # the value beside the reason is the same one
    assert any(line.split()[2:3] == ["abort"] for line in out.splitlines())


def test_runs_diff_shows_parameters_outcome_and_metrics_at_each_step(trails) -> None:  # noqa: ANN001
    record_dir, folders = trails
    code, out = cli("runs", "diff", str(folders["bad"]), str(folders["good"]))
    assert code == 0
    params = out.split("parameters (only those that differ):")[1].split("outcome:")[0]
    assert "candidate.error_rate  0.05" in params and "0.001" in params
    assert "step_pause" in params and "record_dir" not in params
    assert "*  outcome  rolled_back" in out
    diff = diff_runs(folders["bad"], folders["good"])
    steps = {name: (a, b) for name, a, b in diff["steps"]}
    assert steps["step 3 result"] == ("aborted", "done")
    assert steps["step 2 step"] == ("pause 2m", "pause 30s")
    a, b = steps["step 2 candidate_error_rate"]  # the pause the analysis looks back over
    assert a > 0.01 > b
    metrics = {name: (a, b) for name, a, b in diff["metrics"]}
    assert metrics["outcome"] == ("rolled_back", "promoted")
    assert metrics["time_to_detect_seconds"][0] == 120.0 and metrics["time_to_detect_seconds"][1] is None


def test_a_run_that_has_not_finished_is_listed_as_running(tmp_path: Path) -> None:
    run = session.validate_parameters("rolling", {"duration": "20m", "record_dir": str(tmp_path)})
    with redirect_stdout(io.StringIO()):
        folder = run.start()
    assert list_runs(tmp_path)[0]["outcome"] == "running"
    code, out = cli("runs", "show", str(folder))
    assert code == 0 and "outcome   running: running" in out
    assert read_record(folder)["summary"] is None


def test_unknown_and_ambiguous_runs_are_errors(trails, capsys) -> None:  # noqa: ANN001
    record_dir, _ = trails
    assert main(["runs", "show", "nope", "--dir", str(record_dir)]) == 2
    assert "run 'nope': no audit folder by that path or name" in capsys.readouterr().err
    with pytest.raises(Exception, match="ambiguous"):
        resolve_run("canary", record_dir)
    assert cli("runs", "list", str(record_dir / "empty")) == (0, f"no runs in {record_dir / 'empty'}/\n")


def test_runs_show_lists_each_team_metric_with_its_query_raw_answer_and_value(trails, tmp_path) -> None:  # noqa: ANN001
    import json
    import shutil

    _, folders = trails
    folder = tmp_path / folders["bad"].name
    shutil.copytree(folders["bad"], folder)
    data = json.loads((folder / "record.json").read_text())
    sent = 'sum(irate(istio_requests_total{destination_service=~"web-green.shop.svc.cluster.local"}[5m]))'
    data["decisions"].append({"at": 95.0, "step": 2, "kind": "measure", "reason": "step-3: Failed (...)",
                              "values": {"success-rate": 0.7, "metrics": [
                                  {"name": "success-rate", "phase": "Failed", "value": "[0.7]", "number": 0.7,
                                   "query": sent, "raw": '{"resultType":"vector","result":[]}',
                                   "message": "result [0.7] fails successCondition result[0] >= 0.95"}]}})
    (folder / "record.json").write_text(json.dumps(data))
    code, out = cli("runs", "show", str(folder))
    assert code == 0
    lines = out.splitlines()
    i = lines.index("measurements (each team metric: the query as sent, the raw answer, the value):")
    assert "step-3  success-rate: Failed value=[0.7]" in lines[i + 1] and "fails successCondition" in lines[i + 1]
    assert lines[i + 2].strip() == f"query: {sent}"
    assert lines[i + 3].strip().startswith('raw:   {"resultType":"vector"')
    # the list of metrics is not squeezed into the decision's values column
    measure = next(line for line in lines if "step-3: Failed (...)" in line)
    assert "metrics=" not in measure and "success-rate=0.7" in measure
