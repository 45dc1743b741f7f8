"""Runbooks run the same lint first and stop on its errors, before the audit folder or the
cluster are touched; warnings let them run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploysim import runbooks
from deploysim.cli import main
from deploysim.errors import (
    EXIT_BAD_INPUT,
    EXIT_NOT_PROMOTED,
    ParameterError,
    exit_code,
    exit_code_named,
)
from deploysim.lint import FreezeCalendar, LintError, check_runbook, parse_instant, runbook_findings

ROOT = Path(__file__).resolve().parents[1]
DEPLOYSIM = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "deploysim"
MANIFESTS = ROOT / "tests" / "lint_manifests"


@pytest.mark.parametrize("runbook", ["rolling", "canary", "blue_green", "rollback"])
def test_every_runbook_with_its_defaults_lints_clean_of_errors(runbook: str) -> None:
    run = runbooks.validate_parameters(runbook, {"duration": "20m"})
    found = runbook_findings(run.params, run.scenario, run.plan)
    assert [f for f in found if f.severity == "error"] == []


def test_a_mutable_image_stops_the_runbook_as_a_parameter_error() -> None:
    with pytest.raises(LintError) as info:
        runbooks.validate_parameters("rolling", {"image": "checkout:main", "duration": "20m"})
    err = info.value
    assert isinstance(err, ParameterError) and exit_code(err) == EXIT_BAD_INPUT
    assert exit_code_named("LintError") == EXIT_BAD_INPUT  # as papermill reports it
    assert [f.id for f in err.findings] == ["image-tag-mutable"]
    assert str(err).startswith("lint found 1 error(s) before the run: image-tag-mutable at candidate.image: "
                               "'checkout:main' is a mutable tag")


def test_a_big_bang_plan_stops_the_runbook() -> None:
    with pytest.raises(LintError, match="big-bang-max-unavailable at strategy.max_unavailable"):
        runbooks.validate_parameters("rolling", {"max_unavailable": "100%", "duration": "20m"})


def test_the_manifest_a_runbook_runs_is_linted(tmp_path: Path) -> None:
    with pytest.raises(LintError) as info:
        runbooks.validate_parameters("blue_green", {"manifest": str(MANIFESTS / "podinfo-canary.yaml")})
    assert sorted(f.id for f in info.value.findings) == ["big-bang-max-unavailable", "image-tag-missing"]
    # warnings only (a single replica): the run goes ahead
    run = runbooks.validate_parameters("blue_green", {"manifest": str(MANIFESTS / "cart-rollout.yaml")})
    assert "single-replica" in [f.id for f in runbook_findings(run.params, run.scenario, run.plan)]


def test_the_freeze_binds_a_production_deploy_on_a_cluster_not_a_rehearsal() -> None:
    run = runbooks.validate_parameters("canary", {"duration": "20m"})
    cal = FreezeCalendar.default()
    friday = parse_instant("2026-12-04T15:00", cal.zone)

    def params(**kw: object) -> SimpleNamespace:
        return SimpleNamespace(runbook="canary", manifest=None, manifest_name=None, scenario=None, **kw)

    # a rehearsal deploys nothing
    assert check_runbook(params(target="sim", environment="production"), run.scenario, run.plan, friday, cal)
    # a cluster run whose environment is not said: a warning
    found = check_runbook(params(target="kubernetes"), run.scenario, run.plan, friday, cal)
    assert [(f.id, f.severity) for f in found if f.id == "change-freeze"] == [("change-freeze", "warning")]
    with pytest.raises(LintError, match="change-freeze at now: a deploy at Fri 2026-12-04 15:00 UTC"):
        check_runbook(params(target="kubernetes", environment="production"), run.scenario, run.plan, friday, cal)
    tuesday = parse_instant("2026-12-01T15:00", cal.zone)
    check_runbook(params(target="kubernetes", environment="production"), run.scenario, run.plan, tuesday, cal)


def test_lint_reads_a_runbooks_parameters_as_deploysim_run_does(capsys) -> None:
    assert main(["lint", "--runbook", "rolling", "-p", "image", "checkout:main", "-p", "duration", "20m",
                 "--no-cost"]) == EXIT_NOT_PROMOTED
    assert "error    image-tag-mutable  runbook rolling  candidate.image" in capsys.readouterr().out
    assert main(["lint", "--runbook", "canary", "-y", "{duration: 20m}", "--no-cost"]) == 0
    assert main(["lint", "-p", "image", "x:1"]) == EXIT_BAD_INPUT
    assert "give --runbook NAME too" in capsys.readouterr().err


def test_deploysim_run_stops_on_a_lint_error_with_exit_2_and_no_audit_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (runbooks.ENV_RUN_DIR, runbooks.ENV_NOTEBOOK)}
    proc = subprocess.run([str(DEPLOYSIM), "run", "rolling", "-p", "image", "checkout:main", "-p", "duration", "20m",
                           "--record-dir", str(tmp_path / "runs")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr[-2000:]
    assert "image-tag-mutable at candidate.image" in proc.stderr
    assert not list((tmp_path / "runs").glob("*/record.json"))
