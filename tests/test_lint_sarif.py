"""``deploysim lint --format sarif`` is a valid SARIF 2.1.0 log: validated against the OASIS
schema vendored in tests/sarif/ (its source and licence in tests/sarif/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from deploysim.cli import main
from deploysim.lint import RULES, lint, to_sarif

HERE = Path(__file__).parent
SCHEMA = json.loads((HERE / "sarif" / "sarif-schema-2.1.0.json").read_text())
SET = sorted(str(p) for p in (HERE / "lint_manifests").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert SCHEMA["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    return jsonschema.Draft4Validator(SCHEMA)


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("sarif") / "lint.sarif"
    code = main(["lint", *SET, "--format", "sarif", "-o", str(out), "--at", "2026-12-05T10:00",
                 "--environment", "production"])
    assert code == 1
    return json.loads(out.read_text())


def test_the_log_is_valid_sarif_2_1_0(validator, log) -> None:
    errors = sorted(validator.iter_errors(log), key=str)
    assert errors == []
    assert log["version"] == "2.1.0"


def test_the_validator_refuses_what_sarif_does_not_allow(validator, log) -> None:
    broken = copy.deepcopy(log)
    broken["runs"][0]["results"][0]["level"] = "critical"
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(log)
    del broken["runs"][0]["tool"]["driver"]["name"]
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(log)
    broken["runs"][0]["results"][0]["message"] = "a bare string"
    assert not validator.is_valid(broken)


def test_rules_results_levels_and_places(log) -> None:
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    results = run["results"]
    assert {r["ruleId"] for r in results} == set(RULES)  # the set, and the freeze of --at
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["level"] in ("error", "warning", "note")
    levels = {r["ruleId"]: r["level"] for r in results}
    assert levels["image-not-pinned-by-digest"] == "note"
    assert levels["change-freeze"] == "error" and levels["big-bang-recreate"] == "error"  # production
    freeze = next(r for r in results if r["ruleId"] == "change-freeze")
    assert "physicalLocation" not in freeze["locations"][0]  # the clock is no file
    single = next(r for r in results if r["ruleId"] == "single-replica")
    physical = single["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"].endswith("lint_manifests/cart-rollout.yaml")
    text = (HERE / "lint_manifests" / "cart-rollout.yaml").read_text().splitlines()
    assert text[physical["region"]["startLine"] - 1].strip() == "replicas: 1"
    probe = next(r for r in results if r["ruleId"] == "no-readiness-probe")
    line = probe["locations"][0]["physicalLocation"]["region"]["startLine"]
    search = (HERE / "lint_manifests" / "search-rollout.yaml").read_text().splitlines()
    assert search[line - 1].strip() == "- name: search"  # no probe: its container
    assert single["properties"]["cost"]["difference"]["failed_requests"] > 0


def test_notes_are_tool_notifications(tmp_path: Path, validator) -> None:
    canary = (HERE / "lint_manifests" / "podinfo-canary.yaml").read_text().split("\n---\n")[-1]
    (tmp_path / "canary.yaml").write_text(canary)
    log = to_sarif(lint([tmp_path / "canary.yaml"], calendar=None, cost=False))
    assert validator.is_valid(log)
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert "its target Deployment 'podinfo' is not among the files" in notes[0]["message"]["text"]
