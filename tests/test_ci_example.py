"""examples/ci/release-pipeline.yml: the jobs' order, the digest handed from build to staging to
production, the artifacts, and every command in it as this project's parsers read it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import papermill.cli
import pytest
import yaml

from deploysim.cli import build_parser
from deploysim.release import ReleaseRefused
from deploysim.runbooks import collect_parameters, validate_parameters
from deploysim.scenario import default_scenario_path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "ci" / "release-pipeline.yml"
DIGEST = "sha256:" + "c" * 64
IMAGE = f"ghcr.io/acme/checkout:0123abc@{DIGEST}"
# what GitHub would put in the expressions the commands use
EXPRESSIONS = {
    "steps.push.outputs.digest": DIGEST, "needs.build.outputs.image": IMAGE,
    "needs.staging.outputs.image": IMAGE, "github.repository": "acme/checkout", "github.sha": "0123abc",
    "github.workflow": "release", "github.run_number": "7", "github.actor": "ana", "github.run_id": "99",
    "vars.STAGING_PROMETHEUS_URL": "http://prometheus.staging:9090",
    "vars.PRODUCTION_PROMETHEUS_URL": "http://prometheus.production:9090",
    "inputs.staging_override": "", "steps.name.outputs.image": "ghcr.io/acme/checkout",
}
SEPARATORS = {"||", "&&", ";", "|", ">", ">>"}


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _expressions(text: str) -> str:
    def value(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr.startswith("secrets."):
            return "not-a-secret"
        return EXPRESSIONS[expr]  # an expression the test does not know is a failure

    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", value, text)


def _expand(text: str, env: dict[str, str]) -> str:
    """Shell variables and GitHub expressions replaced by sample values (unknown ones fail);
    ``${NAME,,}`` lower-cased, an array ``"${NAME[@]}"`` as the words it holds (env: quoted)."""
    text = _expressions(text)
    text = re.sub(r'"\$\{([A-Za-z_][A-Za-z0-9_]*)\[@\]\}"', lambda m: env[m.group(1)], text)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(,,)?\}?",
                  lambda m: env[m.group(1)].lower() if m.group(2) else env[m.group(1)], text)


def _override_words(script: str, reason: str) -> str:
    """What the production step's ``override`` array holds for the workflow input ``reason``,
    as bash builds it from the script's own lines (shell-quoted)."""
    lines = [line for line in script.splitlines() if "override" in line and not line.lstrip().startswith("papermill")
             and "${override[@]}" not in line]
    shown = subprocess.run(["bash", "-c", "\n".join([*lines, '[ ${#override[@]} -eq 0 ] || printf "%q " "${override[@]}"'])],
                           env={"STAGING_OVERRIDE": reason, "PATH": os.environ["PATH"]},
                           capture_output=True, text=True, check=True).stdout
    return shown.strip()


def _commands(script: str, env: dict[str, str]) -> list[list[str]]:
    """The simple commands of a step's script, each as argv."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(_expand(line, env), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in SEPARATORS:
                if command and command[0] == "do":
                    command = command[1:]
                if command:
                    found.append(command)
                command = []
            else:
                command.append(token)
    return found


def _all_commands(workflow: dict[str, Any], tmp_path: Path, reason: str = "") -> list[tuple[str, list[str]]]:
    base = {**{k: _expressions(str(v)) for k, v in workflow["env"].items()},
            "SCENARIO": str(default_scenario_path()), "MANIFEST": str(ROOT / "tests" / "manifests"),
            "RUNNER_TEMP": str(tmp_path), "GITHUB_SHA": "0123abc", "GITHUB_OUTPUT": str(tmp_path / "out"),
            "GITHUB_REPOSITORY": "Acme/Checkout", "run": "runs/production/x/"}
    out = []
    for name, job in workflow["jobs"].items():
        job_env = {**base, **{k: _expressions(str(v)) for k, v in (job.get("env") or {}).items()}}
        for step in job["steps"]:
            env = {**job_env, **{k: _expressions(str(v)) for k, v in (step.get("env") or {}).items()}}
            if "run" in step and "override=()" in step["run"]:
                env["override"] = _override_words(step["run"], reason)
            if "run" in step:
                out += [(name, argv) for argv in _commands(step["run"], env)]
    return out


def test_the_jobs_run_in_order_and_production_needs_everything_before_it(workflow) -> None:
    jobs = workflow["jobs"]

    def needs(name: str) -> set[str]:
        direct = jobs[name].get("needs", [])
        direct = [direct] if isinstance(direct, str) else direct
        return set(direct).union(*(needs(d) for d in direct)) if direct else set()

    assert set(jobs) == {"lint", "test", "build", "rehearse", "staging", "production"}
    assert needs("build") == {"lint", "test"}
    assert "build" in needs("rehearse") and "rehearse" in needs("staging")
    assert needs("production") == {"lint", "test", "build", "rehearse", "staging"}
    # the manual gate: production is a protected GitHub environment, staging its own
    assert jobs["production"]["environment"]["name"] == "production"
    assert jobs["staging"]["environment"] == "staging"


def test_production_deploys_the_digest_staging_deployed(workflow) -> None:
    jobs = workflow["jobs"]
    push = next(s for s in jobs["build"]["steps"] if s.get("id") == "push")
    assert push["uses"].startswith("docker/build-push-action@")
    assert jobs["build"]["outputs"]["digest"] == "${{ steps.push.outputs.digest }}"
    ref = next(s for s in jobs["build"]["steps"] if s.get("id") == "ref")
    assert ref["env"]["DIGEST"] == "${{ steps.push.outputs.digest }}" and "@$DIGEST" in ref["run"]
    assert jobs["build"]["outputs"]["image"] == "${{ steps.ref.outputs.image }}"
    assert jobs["staging"]["env"]["IMAGE"] == "${{ needs.build.outputs.image }}"
    assert jobs["staging"]["outputs"]["image"] == "${{ steps.deployed.outputs.image }}"
    assert jobs["production"]["env"]["IMAGE"].startswith("${{ needs.build.outputs.image }}")
    assert set(jobs["production"]["needs"]) >= {"build", "staging"}
    # production runs after a passing staging job, or by hand with an override reason whatever
    # staging did (a skipped job's outputs are empty, so its image comes from the build)
    condition = " ".join(jobs["production"]["if"].split())
    assert "always()" in condition and "needs.build.result == 'success'" in condition
    assert "needs.staging.result == 'success' || inputs.staging_override != ''" in condition
    # the staging job's record folder is production's evidence
    upload = next(s for s in jobs["staging"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    download = next(s for s in jobs["production"]["steps"]
                    if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"]["name"] == upload["with"]["name"] == "staging-records"
    staging_run = next(s["run"] for s in jobs["staging"]["steps"] if "runbooks/" in s.get("run", ""))
    production_run = next(s["run"] for s in jobs["production"]["steps"] if "runbooks/" in s.get("run", ""))
    assert "-r record_dir runs/staging" in staging_run and upload["with"]["path"] == "runs/staging/"
    assert f"-r staging_records {download['with']['path']}" in production_run


def test_every_job_keeps_its_reports_whatever_the_outcome(workflow) -> None:
    for name, job in workflow["jobs"].items():
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert uploads and all(s.get("if") == "always()" for s in uploads), name
        runbook = [s for s in job["steps"] if "papermill runbooks/" in s.get("run", "")]
        assert all("if" not in s for s in runbook), name  # a runbook's exit code fails its job
    lint = workflow["jobs"]["lint"]
    sarif = next(s for s in lint["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert sarif["if"] == "always()" and lint["permissions"]["security-events"] == "write"
    assert f"--output {sarif['with']['sarif_file']}" in next(s["run"] for s in lint["steps"]
                                                             if "--format sarif" in s.get("run", ""))
    for name, job in workflow["jobs"].items():
        for key, value in (job.get("env") or {}).items():
            if "TOKEN" in key or "KUBECONFIG" in key:
                assert str(value).startswith("${{ secrets."), (name, key)


def test_every_deploysim_command_parses_with_the_real_cli(workflow, tmp_path: Path) -> None:
    commands = [argv for _, argv in _all_commands(workflow, tmp_path) if argv[0] == "deploysim"]
    assert {argv[1] for argv in commands} == {"lint", "runs"}
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv[1:])  # SystemExit (exit 2) on anything it does not take
        assert callable(args.func)


def _runbook(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """A papermill command line as papermill's own CLI reads it: the runbook and its parameters."""
    ctx = papermill.cli.papermill.make_context("papermill", argv[1:])
    p = ctx.params
    values = collect_parameters(p["parameters_file"], p["parameters_yaml"], p["parameters"], p["parameters_raw"])
    return Path(p["notebook_path"]).stem, values


def test_every_runbook_command_passes_the_parameter_validation(workflow, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYSIM_FREEZE", "off")  # whatever the day the suite runs
    monkeypatch.chdir(tmp_path)
    runbooks = {job: _runbook(argv) for job, argv in _all_commands(workflow, tmp_path) if argv[0] == "papermill"}
    assert set(runbooks) == {"rehearse", "staging", "production"}
    for job, (name, values) in runbooks.items():
        assert name == "canary" and values["image"] == IMAGE, job
    env = {job: values["environment"] for job, (_, values) in runbooks.items()}
    assert env == {"rehearse": "production", "staging": "staging", "production": "production"}

    rehearsal = validate_parameters(*runbooks["rehearse"])
    assert rehearsal.params.target == "sim" and rehearsal.release["digest"] == DIGEST
    assert rehearsal.release["gate"]["checked"] is False  # a rehearsal deploys nothing: not gated
    staging = validate_parameters(*runbooks["staging"])
    assert staging.params.target == "kubernetes" and staging.params.namespace == "checkout-staging"
    assert staging.release["digest"] == DIGEST and staging.release["gate"]["checked"] is False
    # production: every parameter valid, and the gate reads the staging artifact's folder
    name, values = runbooks["production"]
    with pytest.raises(ReleaseRefused) as info:
        validate_parameters(name, values)
    assert f"needs a passing staging run of {DIGEST}" in str(info.value)
    assert "looked in record folder staging-records/ (0 runs)" in str(info.value)
    overridden = validate_parameters(name, {**values, "staging_override": "INC-1: staging down"})
    assert overridden.release["gate"]["overridden"] and overridden.params.namespace == "checkout"


def test_the_image_name_is_lower_cased_for_an_owner_with_capitals(workflow, tmp_path: Path) -> None:
    step = next(s for s in workflow["jobs"]["build"]["steps"] if s.get("id") == "name")
    assert _all_commands({"env": workflow["env"], "jobs": {"build": {"steps": [step]}}}, tmp_path)[0][1][:2] == [
        "echo", "image=ghcr.io/acme/checkout"]
    push = next(s for s in workflow["jobs"]["build"]["steps"] if s.get("id") == "push")
    assert push["with"]["tags"].startswith("${{ steps.name.outputs.image }}")


def test_overlapping_runs_wait_and_reruns_overwrite_their_artifacts(workflow) -> None:
    jobs = workflow["jobs"]
    for name in ("staging", "production"):
        assert jobs[name]["concurrency"] == {"group": f"deploy-{name}", "cancel-in-progress": False}
    for name, job in jobs.items():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/upload-artifact@"):
                assert step["with"]["overwrite"] is True, name
    assert workflow["jobs"]["lint"]["permissions"]["actions"] == "read"  # upload-sarif, private repositories


def test_the_emergency_override_is_a_workflow_input_that_reaches_the_production_runbook(
        workflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYSIM_FREEZE", "off")
    monkeypatch.chdir(tmp_path)
    on = workflow.get("on") or workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "staging_override" in on["workflow_dispatch"]["inputs"]
    assert workflow["jobs"]["production"]["env"]["STAGING_OVERRIDE"] == "${{ inputs.staging_override }}"
    for reason, overridden in (("", False), ("INC-9: staging rebuilt, it's down", True)):
        argv = next(a for j, a in _all_commands(workflow, tmp_path, reason) if j == "production" and a[0] == "papermill")
        name, values = _runbook(argv)
        assert values.get("staging_override") == (reason or None)
        if overridden:
            assert validate_parameters(name, values).release["gate"]["override"]["reason"] == reason
        else:
            with pytest.raises(ReleaseRefused):
                validate_parameters(name, values)


def test_the_production_runbook_is_linted_as_it_runs(workflow, tmp_path: Path) -> None:
    commands = _all_commands(workflow, tmp_path)
    lint = next(a for j, a in commands if j == "production" and a[:2] == ["deploysim", "lint"])
    run = next(a for j, a in commands if j == "production" and a[0] == "papermill")
    _, values = _runbook(run)
    given = {lint[i + 1]: lint[i + 2] for i, word in enumerate(lint) if word == "-p"}
    assert given == {"scenario": values["scenario"], "image": values["image"]}
    assert lint[lint.index("--runbook") + 1] == "canary" and "production" in lint
