"""Nothing silently assumed: an analysis resting only on metrics the rehearsal does not
simulate is inconclusive until ``--assume NAME=pass|fail`` chooses, and an inconclusive
analysis waits for a person, whatever ``approve`` says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploysim.cli import main
from deploysim.errors import EXIT_BAD_INPUT, EXIT_NOT_PROMOTED, EXIT_OK
from deploysim.manifests import plan_from_manifests, scenario_from_manifests
from deploysim.scenario import load_scenario
from deploysim.sim.engine import rehearse

DATADOG_ONLY = Path(__file__).parent / "manifests" / "argo-datadog-only.yaml"
FAST = ["--set", "duration=20m", "--set", "candidate.error_rate=0.001"]


def _rehearse(tmp_path: Path, *extra: str) -> tuple[int, dict, list[dict]]:
    code = main(["rehearse", "-m", str(DATADOG_ONLY), *FAST, "--out", str(tmp_path), *extra])
    record = json.loads((tmp_path / "record.json").read_text())
    return code, record["summary"], record["decisions"]


def test_an_analysis_of_unsimulated_metrics_alone_is_inconclusive_and_says_how_to_choose(tmp_path: Path) -> None:
    code, summary, decisions = _rehearse(tmp_path)
    assert code == EXIT_NOT_PROMOTED and summary["outcome"] == "inconclusive"
    measure = next(d for d in decisions if d["kind"] == "measure")
    assert "checkout-conversion" in measure["reason"] and "--assume checkout-conversion=pass|fail" in measure["reason"]
    assert not any(d["kind"] in ("promote", "abort", "resume") for d in decisions)  # approve auto did not open it


@pytest.mark.parametrize(("verdict", "code", "outcome"), [("pass", EXIT_OK, "promoted"),
                                                          ("fail", EXIT_NOT_PROMOTED, "rolled_back")])
def test_assume_makes_the_choice_explicit_and_recorded(tmp_path: Path, verdict: str, code: int, outcome: str) -> None:
    got, summary, decisions = _rehearse(tmp_path, "--assume", f"checkout-conversion={verdict}")
    assert (got, summary["outcome"]) == (code, outcome)
    measures = [d["reason"] for d in decisions if d["kind"] == "measure"]
    assert measures and all(f"checkout-conversion assumed to {verdict}" in r for r in measures)
    assert summary["measurements_taken"] == len(measures)


def test_the_plan_names_what_is_not_simulated_and_what_was_assumed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-m", str(DATADOG_ONLY)]) == EXIT_OK
    assert "on no checks (not simulated: checkout-conversion)" in capsys.readouterr().out
    assert main(["plan", "-m", str(DATADOG_ONLY), "--assume", "checkout-conversion=fail"]) == EXIT_OK
    assert "(not simulated: checkout-conversion assumed to fail)" in capsys.readouterr().out


@pytest.mark.parametrize(("given", "says"), [
    ("nope=pass", "analysis.assume.nope: got 'pass'; names an unsimulated metric (checkout-conversion)"),
    ("checkout-conversion=maybe", "--assume: got 'checkout-conversion=maybe'; NAME=pass or NAME=fail"),
    ("checkout-conversion", "--assume: got 'checkout-conversion'"),
])
def test_a_bad_assumption_is_refused_with_the_name_and_what_is_allowed(given: str, says: str,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-m", str(DATADOG_ONLY), "--assume", given]) == EXIT_BAD_INPUT
    assert says in capsys.readouterr().err


def test_a_simulated_check_beside_an_unsimulated_metric_judges_the_run() -> None:
    """The blue-green example's pre-promotion analysis has error_rate beside a Datadog metric:
    the simulated check decides, and the plan says what it does not cover."""
    examples = Path(__file__).parents[1] / "data" / "manifests"
    files = [examples / "argo-bluegreen.yaml", examples / "argo-templates.yaml"]
    scenario = scenario_from_manifests(files, overrides=["candidate.error_rate=0.001"])
    plan = plan_from_manifests(files, scenario)
    pre = plan.steps[1].analysis
    assert pre.unsimulated == ("checkout-conversion",) and pre.checks
    assert "(not simulated: checkout-conversion)" in pre.describe()
    assert rehearse(scenario, plan).summary["outcome"] == "promoted"


def test_an_inconclusive_analysis_waits_for_a_person_even_with_approve_auto() -> None:
    """``approve: auto`` opens manual gates; an analysis with too few requests to judge is
    Inconclusive, and the rollout stays paused to the end: outcome inconclusive, not promoted."""
    scenario = load_scenario(overrides=["duration=20m", "candidate.error_rate=0.001", "approve=auto",
                                        "analysis.min_requests=100000000"])
    rec = rehearse(scenario)
    assert rec.summary["outcome"] == "inconclusive"
    assert rec.status["phase"] == "Paused" and "inconclusive" in rec.status["paused_reason"]
    assert not any(d["kind"] in ("resume", "promote") for d in rec.decisions)
    assert rec.summary["rollout_seconds"] is None
