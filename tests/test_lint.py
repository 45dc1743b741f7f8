"""``deploysim lint`` over manifests in the shapes Kubernetes', Argo Rollouts' and Flagger's docs
write them (tests/lint_manifests/): each finding reported once, with its place, and the
costed ones with their rehearsed difference, the fixed variant better (issue 13, scope 4).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploysim.cli import main
from deploysim.errors import EXIT_BAD_INPUT, EXIT_NOT_PROMOTED, EXIT_OK
from deploysim.lint import RULES, lint
from deploysim.lint.costing import COSTED, NOT_COSTED, can_rehearse

HERE = Path(__file__).parent / "lint_manifests"
SET = sorted(str(p) for p in HERE.glob("*.yaml"))
CLEAN = sorted(str(p) for p in (HERE / "clean").glob("*.yaml"))

#: where each finding of the set is: (rule, file, document, path)
EXPECTED = {
    ("image-tag-mutable", "checkout-rollout.yaml", 1, "spec.template.spec.containers[0].image"),
    ("image-tag-missing", "podinfo-canary.yaml", 1, "spec.template.spec.containers[0].image"),
    ("image-not-pinned-by-digest", "cart-rollout.yaml", 1, "spec.template.spec.containers[0].image"),
    ("no-readiness-probe", "search-rollout.yaml", 1, "spec.template.spec.containers[0].readinessProbe"),
    ("liveness-equals-readiness", "ledger-deployment.yaml", 1, "spec.template.spec.containers[0].livenessProbe"),
    ("no-rollback-path", "ledger-deployment.yaml", 1, "spec.strategy"),
    ("big-bang-max-unavailable", "podinfo-canary.yaml", 1, "spec.strategy.rollingUpdate.maxUnavailable"),
    ("big-bang-first-step", "checkout-rollout.yaml", 1, "spec.strategy.canary.steps[0].setWeight"),
    ("big-bang-recreate", "ledger-deployment.yaml", 1, "spec.strategy.type"),
    ("single-replica", "cart-rollout.yaml", 1, "spec.replicas"),
    ("no-pod-disruption-budget", "podinfo-canary.yaml", 4, "metadata.name"),
    ("prestop-shorter-than-endpoint-lag", "ratings-rollout.yaml", 1, "spec.template.spec.containers[0].lifecycle"),
}


@pytest.fixture(scope="module")
def report():
    """The set, linted once with its costs (every rehearsal of the module)."""
    return lint(SET, calendar=None)


def test_each_finding_of_the_set_is_reported_once_where_it_is(report) -> None:
    found = [(f.id, Path(f.location.file).name, f.location.document, f.location.path) for f in report.findings]
    assert sorted(found) == sorted(EXPECTED)
    assert len({f.id for f in report.findings}) == len(found)  # once each
    # every rule but the calendar's is in the set (the calendar: tests/test_lint_freeze.py)
    assert {f.id for f in report.findings} == set(RULES) - {"change-freeze"}


def test_findings_carry_their_severity_message_hint_and_the_same_check_elsewhere(report) -> None:
    by_id = {f.id: f for f in report.findings}
    assert {i for i, f in by_id.items() if f.severity == "error"} == {
        "image-tag-mutable", "image-tag-missing", "big-bang-max-unavailable", "big-bang-first-step"}
    assert by_id["image-not-pinned-by-digest"].severity == "info"
    assert by_id["big-bang-recreate"].severity == "warning"  # no environment said: not binding
    assert "'registry.example.com/shop/checkout:main' is a mutable tag" in by_id["image-tag-mutable"].message
    assert "app: podinfo-primary" in by_id["no-pod-disruption-budget"].message  # Flagger's primary pods
    assert "preStop waits 2 s, shorter than the 5 s endpoint lag" in by_id["prestop-shorter-than-endpoint-lag"].message
    assert by_id["prestop-shorter-than-endpoint-lag"].facts == {"pre_stop": 2.0, "grace": 30.0}
    assert all(f.hint for f in report.findings)
    assert "kube-score pod-probes" in RULES["liveness-equals-readiness"].also
    assert "Polaris readinessProbeMissing" in RULES["no-readiness-probe"].also


def test_costed_findings_carry_a_rehearsed_difference_and_the_fix_is_better(report) -> None:
    costed = {f.id: f.cost for f in report.findings if f.cost is not None}
    expected = {rule for rule in COSTED if can_rehearse(rule)}
    assert set(costed) == expected
    assert {"no-rollback-path", "big-bang-first-step", "big-bang-max-unavailable", "big-bang-recreate",
            "single-replica"} <= expected
    for rule, cost in costed.items():
        assert cost.as_is["failed_requests"] > cost.fixed["failed_requests"], rule
        assert cost.difference["failed_requests"] == cost.as_is["failed_requests"] - cost.fixed["failed_requests"]
        assert cost.as_is["error_budget_consumed"] >= cost.fixed["error_budget_consumed"], rule
        assert cost.as_is["outcome"] and cost.fixed["outcome"]
    # a bad release with no rollback path is promoted; with the scenario's analysis it is rolled back
    rollback = costed["no-rollback-path"]
    assert (rollback.as_is["outcome"], rollback.fixed["outcome"]) == ("promoted", "rolled_back")
    assert rollback.candidate == "the scenario's candidate"
    assert costed["single-replica"].fault.startswith("node 0")
    assert costed["big-bang-recreate"].candidate == "a candidate as healthy as the stable version"


def test_what_is_not_rehearsed_says_why(report) -> None:
    for f in report.findings:
        assert (f.cost is None) == (f.not_costed is not None), f.id
        if f.cost is None:
            assert f.not_costed == NOT_COSTED[f.id]


def test_a_set_in_the_usual_shapes_with_everything_right_lints_clean() -> None:
    clean = lint(CLEAN, calendar=None, cost=False)
    assert clean.findings == [] and clean.exit_code("info") == 0


def test_a_pdb_in_another_file_of_the_set_counts(tmp_path: Path) -> None:
    rollout = (HERE / "clean" / "web-rollout.yaml").read_text().split("\n---\n")
    without_pdb = [d for d in rollout if "kind: PodDisruptionBudget" not in d]
    pdb = [d for d in rollout if "kind: PodDisruptionBudget" in d]
    (tmp_path / "web.yaml").write_text("\n---\n".join(without_pdb))
    (tmp_path / "pdb.yaml").write_text("\n---\n".join(pdb))
    alone = lint([tmp_path / "web.yaml"], calendar=None, cost=False)
    together = lint([tmp_path / "web.yaml", tmp_path / "pdb.yaml"], calendar=None, cost=False)
    assert [f.id for f in alone.findings] == ["no-pod-disruption-budget"]
    assert together.findings == []


def test_the_built_in_scenario_lints_clean_of_errors() -> None:
    report = lint(calendar=None, cost=False)
    assert report.exit_code("error") == 0
    assert {f.id for f in report.findings} == {"image-not-pinned-by-digest"}  # tags, not digests: info only


def test_a_scenario_is_linted_by_its_keys() -> None:
    report = lint(overrides=["strategy.kind=rolling", "strategy.background_analysis=false", "replicas=1",
                             "strategy.max_unavailable=100%", "candidate.image=checkout:dev"],
                  calendar=None, cost=False, environment="production")
    found = {(f.id, f.location.path, f.severity) for f in report.findings}
    assert {("no-rollback-path", "strategy.background_analysis", "warning"),
            ("big-bang-max-unavailable", "strategy.max_unavailable", "error"),
            ("single-replica", "replicas", "warning"),
            ("image-tag-mutable", "candidate.image", "error")} <= found
    recreate = lint(overrides=["strategy.kind=recreate"], calendar=None, cost=False, environment="production")
    assert [(f.id, f.severity) for f in recreate.findings if f.id == "big-bang-recreate"] == [
        ("big-bang-recreate", "error")]


# --- the command -----------------------------------------------------------------------------


def test_exit_1_on_errors_0_when_fail_on_is_above_them_2_on_bad_input(tmp_path: Path, capsys) -> None:
    args = ["lint", *SET, "--no-cost", "--no-freeze"]
    assert main(args) == EXIT_NOT_PROMOTED
    out = capsys.readouterr().out
    assert "fail: 4 finding(s) at or above error" in out
    assert main([*args, "--fail-on", "none"]) == EXIT_OK
    assert main(["lint", *CLEAN, "--no-cost", "--no-freeze", "--fail-on", "info"]) == EXIT_OK
    assert main(["lint", str(HERE / "cart-rollout.yaml"), "--no-cost", "--no-freeze"]) == EXIT_OK  # a warning
    assert main(["lint", str(HERE / "cart-rollout.yaml"), "--no-cost", "--no-freeze", "--fail-on", "warning"]) == 1
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
                   "spec: {strategy: {type: Rolling}}\n")
    assert main(["lint", str(bad), "--no-freeze"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"deploysim: error: {bad} (document 1): spec.strategy.type: got 'Rolling'; "
                   "allowed: RollingUpdate, Recreate"]
    assert main(["lint", "--ignore", "no-such-rule"]) == EXIT_BAD_INPUT
    assert "--ignore: got 'no-such-rule'; a rule id" in capsys.readouterr().err
    assert main(["lint", str(tmp_path / "missing.yaml")]) == EXIT_BAD_INPUT


def test_json_report_and_ignore(capsys) -> None:
    assert main(["lint", *SET, "--no-cost", "--no-freeze", "--format", "json", "--ignore", "image-tag-mutable",
                 "--ignore", "image-tag-missing", "--ignore", "big-bang-first-step",
                 "--ignore", "big-bang-max-unavailable"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == 0 and data["counts"] == {"error": 0, "warning": 7, "info": 1}
    one = next(f for f in data["findings"] if f["id"] == "single-replica")
    assert one["location"] == {"file": str(HERE / "cart-rollout.yaml"), "document": 1, "path": "spec.replicas"}
    assert one["severity"] == "warning" and one["subject"] == "Rollout cart"
    assert one["also"] == list(RULES["single-replica"].also)


def test_text_report_shows_the_cost(capsys) -> None:
    assert main(["lint", str(HERE / "ledger-deployment.yaml"), "--no-freeze"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "cost, rehearsed with a candidate as healthy as the stable version:" in out
    assert "fixed (a rolling update with maxSurge 25% and maxUnavailable 25%)" in out
    assert "the fix saves" in out


def test_output_file(tmp_path: Path, capsys) -> None:
    target = tmp_path / "lint.json"
    assert main(["lint", "--no-freeze", "--no-cost", "--format", "json", "-o", str(target)]) == EXIT_OK
    assert json.loads(target.read_text())["inputs"] == ["built-in scenario"]
    assert capsys.readouterr().out == ""
