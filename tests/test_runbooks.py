"""Runbooks: parameters checked before anything happens, one run -> one audit folder, exit codes.

The runbooks run through the real papermill command line (and ``deploysim run``), two at a
time, once per module; the tests below look at what each run left.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill
import pytest

from deploysim import runbooks
from deploysim.errors import ParameterError, RolloutNotPromoted, TargetUnavailable
from deploysim.redact import REDACTED
from deploysim.runbooks import session
from deploysim.trail import RECORD_MIMETYPE, find_runs, read_record

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAPERMILL = BIN / "papermill"
DEPLOYSIM = BIN / "deploysim"

# assembled at run time: no scanner should mistake this file for a leak
TOKEN = "ghp_" + "Zq7Lm2Xv" * 4 + "Pp9K"
JWT = ".".join(base64.urlsafe_b64encode(p).decode().rstrip("=") for p in (
    b'{"alg":"RS256","kid":"k1"}', b'{"sub":"system:serviceaccount:prod:deployer"}', b"signature-bytes-0123456789"))
URL_PASSWORD = "hunter2hunter2"
HEALTHY = "{candidate: {error_rate: 0.001}}"


@dataclass
class Run:
    """A finished papermill (or deploysim run) process and the record folder it was given."""

    proc: subprocess.CompletedProcess
    record_dir: Path
    out: Path

    @property
    def folders(self) -> list[Path]:
        return find_runs(self.record_dir)

    @property
    def folder(self) -> Path:
        folders = self.folders
        assert len(folders) == 1, (folders, self.proc.stderr[-3000:])
        return folders[0]

    @property
    def record(self) -> dict:
        return read_record(self.folder)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (runbooks.ENV_RUN_DIR, runbooks.ENV_NOTEBOOK)}
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


CASES: dict[str, tuple[str, list[str]]] = {
    # every runbook, several parameter sets; record_dir and the output notebook are added
    "rolling_good_with_secrets": ("papermill", [
        "runbooks/rolling.ipynb", "-p", "duration", "20m", "-y", HEALTHY,
        "-p", "prometheus_token", TOKEN,
        "-p", "prometheus_url", f"https://admin:{URL_PASSWORD}@prometheus.example:9090",
        "-p", "reason", f"CHG-42 approved; probe with Authorization: Bearer {JWT}"]),
    "canary_bad": ("papermill", [
        "runbooks/canary.ipynb", "-p", "duration", "20m", "-y", "{candidate: {error_rate: 0.05}}"]),
    "blue_green_gate_never": ("papermill", [
        "runbooks/blue_green.ipynb", "-p", "duration", "20m", "-p", "manual_gate", "True",
        "-p", "approve", "never", "-y", HEALTHY]),
    "rollback": ("papermill", [
        "runbooks/rollback.ipynb", "-p", "duration", "20m", "-p", "verify", "3m",
        "-p", "reason", "INC-7: checkout 1.42.0 fails 2% of payments"]),
    "canary_unknown_parameter": ("papermill", ["runbooks/canary.ipynb", "-p", "no_such_param", "1"]),
    "run_canary_good": ("deploysim", [
        "run", "canary", "-p", "duration", "20m", "-p", "step_pause", "30s", "-y", HEALTHY,
        "-r", "prometheus_token", TOKEN]),
    "run_bad_value": ("deploysim", ["run", "canary", "-y", "{candidate: {error_rate: 2}}"]),
}


def _launch(name: str, base: Path) -> Run:
    tool, args = CASES[name]
    record_dir = base / name / "runs"
    record_dir.mkdir(parents=True)
    out = base / name / "out.ipynb"
    if tool == "papermill":
        cmd = [str(PAPERMILL), str(ROOT / args[0]), str(out), *args[1:], "-p", "record_dir", str(record_dir),
               "--no-progress-bar"]
    else:
        cmd = [str(DEPLOYSIM), *args, "--record-dir", str(record_dir)]
    proc = subprocess.run(cmd, cwd=base / name, env=_env(), capture_output=True, text=True, timeout=600)
    return Run(proc, record_dir, out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future]:
    """Every case, started at once, two processes at a time (the machine has two cores)."""
    base = tmp_path_factory.mktemp("runbooks")
    pool = ThreadPoolExecutor(max_workers=2)
    futures = {name: pool.submit(_launch, name, base) for name in CASES}
    yield futures
    pool.shutdown(wait=True)


def _all_text(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- the papermill command line --------------------------------------------------------------


def test_good_candidate_exits_0_and_the_trail_says_promoted(runs: dict[str, Future]) -> None:
    run = runs["rolling_good_with_secrets"].result()
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    data = run.record
    assert data["run"]["outcome"] == "promoted" and data["run"]["ok"] is True
    assert data["summary"]["outcome"] == "promoted"
    assert data["run"]["status"].startswith("promoted: checkout:1.42.0 serves all traffic")
    kinds = [d["kind"] for d in data["decisions"]]
    assert kinds[0] == "start" and "promote" in kinds and "abort" not in kinds


def test_the_audit_folder_holds_everything(runs: dict[str, Future]) -> None:
    run = runs["rolling_good_with_secrets"].result()
    folder = run.folder
    name = folder.name
    assert re.fullmatch(r"\d{8}T\d{6}Z-rolling-[0-9a-f]{6}", name)
    assert {p.name for p in folder.iterdir()} == {
        "record.json", "timeline.csv", "summary.json", "traffic.png", "pods.png", "rolling.ipynb", "rolling.html"}
    data = run.record
    r = data["run"]
    assert data["version"] == 1 and data["kind"] == "deploysim.run"
    assert r["runbook"] == "rolling" and r["id"] == name
    assert r["who"]["user"] and r["who"]["host"]
    assert r["started_at"].endswith("Z") and r["finished_at"] >= r["started_at"]
    assert r["target"] == {"name": "sim", "world": "SimPy rehearsal", "scenario": "built-in", "seed": 7,
                           "simulated_seconds": 1200.0}
    assert r["parameters"]["given"]["duration"] == "20m"
    assert r["parameters"]["given"]["candidate"] == {"error_rate": 0.001}
    assert r["parameters"]["resolved"]["target"] == "sim"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert r["git"]["commit"] == head.stdout.strip()
    else:
        assert r["git"] is None
    # each step: start, end, observed metric values, its decisions with their reasons
    step = data["steps"][0]
    assert step["kind"] == "rolling_update" and step["result"] == "done"
    assert step["end"] > step["start"]
    assert step["observed"]["requests"] > 0 and 0 <= step["observed"]["error_rate"] < 0.01
    assert any(d["kind"] == "step" and d["reason"].startswith("step 1:") for d in step["decisions"])
    assert r["notebook"]["copied"] is True and r["notebook"]["html"] == "rolling.html"


def test_a_token_like_parameter_leaves_no_copy_in_any_file_of_the_run_folder(runs: dict[str, Future]) -> None:
    run = runs["rolling_good_with_secrets"].result()
    files = _all_text(run.folder)
    assert {"rolling.ipynb", "rolling.html", "record.json"} <= set(files)
    for secret in (TOKEN, JWT, URL_PASSWORD):
        leaking = [name for name, content in files.items() if secret.encode() in content]
        assert leaking == [], f"{secret[:6]}... found in {leaking}"
    # the parameters were recorded, redacted: not simply dropped
    given = run.record["run"]["parameters"]["given"]
    assert given["prometheus_token"] == REDACTED
    assert given["prometheus_url"] == f"https://admin:{REDACTED}@prometheus.example:9090"
    assert given["reason"] == f"CHG-42 approved; probe with Authorization: Bearer {REDACTED}"
    notebook = files["rolling.ipynb"].decode()
    assert "prometheus_token" in notebook and REDACTED in notebook
    # papermill's own output notebook, outside the trail, is papermill's business
    assert TOKEN in run.out.read_text()


def test_bad_candidate_exits_non_zero_after_recording_the_rollback(runs: dict[str, Future]) -> None:
    run = runs["canary_bad"].result()
    assert run.proc.returncode != 0
    assert "RolloutNotPromoted" in run.proc.stderr and "rolled back" in run.proc.stderr
    data = run.record
    assert data["run"]["outcome"] == "rolled_back" and data["run"]["ok"] is False
    abort = [d for d in data["decisions"] if d["kind"] == "abort"]
    assert len(abort) == 1 and "error_rate" in abort[0]["reason"]
    analysed = next(s for s in data["steps"] if s["result"] == "aborted")
    assert analysed["measurements"][0]["error_rate"] > 0.01
    assert any(d["kind"] == "abort" for d in analysed["decisions"])
    # written before the last cell raised: the notebook copy and the HTML are there too
    assert (run.folder / "canary.ipynb").is_file() and (run.folder / "canary.html").is_file()
    assert data["run"]["finished_at"] is not None


def test_the_notebook_shows_progress_and_the_versioned_record(runs: dict[str, Future]) -> None:
    run = runs["canary_bad"].result()
    nb = nbformat.read(str(run.folder / "canary.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "t+05:00  step 1/10  set weight to 5%" in printed
    assert "abort" in printed
    bundles = [o.data for c in nb.cells if c.cell_type == "code" for o in c.outputs if "data" in o]
    records = [b[RECORD_MIMETYPE] for b in bundles if RECORD_MIMETYPE in b]
    assert len(records) == 1
    assert records[0]["outcome"] == "rolled_back" and records[0]["version"] == 1
    assert sum("image/png" in b for b in bundles) == 2


def test_manual_gate_with_approve_never_stops_paused_and_non_zero(runs: dict[str, Future]) -> None:
    run = runs["blue_green_gate_never"].result()
    assert run.proc.returncode != 0
    assert "paused at manual gate" in run.proc.stderr
    data = run.record
    assert data["run"]["outcome"] == "paused" and data["summary"]["outcome"] == "paused"
    assert data["run"]["status"].startswith("paused at manual gate (step ")
    assert "pause until approved" in data["run"]["status"]
    assert not any(d["kind"] in ("promote", "abort") for d in data["decisions"])


def test_rollback_runbook_restores_the_previous_version_and_verifies_it(runs: dict[str, Future]) -> None:
    run = runs["rollback"].result()
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    r = run.record["run"]
    assert r["outcome"] == "rolled_back" and r["ok"] is True
    assert r["rollback"] == {"from_image": "checkout:1.42.0", "to_image": "checkout:1.41.0", "method": "rolling",
                             "reason": "INC-7: checkout 1.42.0 fails 2% of payments"}
    assert r["verification"]["passed"] is True and r["verification"]["window_seconds"] == 180.0
    assert r["verification"]["values"]["error_rate"] < 0.01


def test_unknown_parameter_fails_before_any_step_naming_it(runs: dict[str, Future]) -> None:
    run = runs["canary_unknown_parameter"].result()
    assert run.proc.returncode != 0
    assert "unknown parameter 'no_such_param'" in run.proc.stderr
    assert run.folders == [] and list(run.record_dir.iterdir()) == []  # nothing happened
    nb = nbformat.read(str(run.out), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    injected = next(i for i, c in enumerate(code) if "injected-parameters" in c.metadata.get("tags", []))
    assert "parameters" in code[injected - 1].metadata.get("tags", [])
    first = code[injected + 1]  # the first cell executed after the parameters
    errors = [o for o in first.outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "ParameterError" and "no_such_param" in errors[0].evalue
    assert all(c.execution_count is None for c in code[injected + 2:])


def test_help_notebook_lists_every_parameter_with_type_and_help() -> None:
    proc = subprocess.run([str(PAPERMILL), "--help-notebook", str(ROOT / "runbooks/canary.ipynb")],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0
    assert "manual_gate: bool (default False)" in proc.stdout
    assert "wait for approval (see approve) before the final 100% step" in proc.stdout
    for name in runbooks.RUNBOOKS:
        inferred = papermill.inspect_notebook(str(ROOT / f"runbooks/{name}.ipynb"))
        model = runbooks.PARAMETER_MODELS[name]
        assert list(inferred) == [n for g in runbooks.GROUPS for n, f in model.model_fields.items()
                                  if f.json_schema_extra["group"] == g]
        for pname, p in inferred.items():
            assert p["help"] == model.model_fields[pname].description
            assert p["inferred_type_name"] == model.model_fields[pname].json_schema_extra["shown"]


# --- deploysim run: the same parameters through papermill's Python API -----------------------


def test_deploysim_run_promotes_and_completes_the_trail(runs: dict[str, Future]) -> None:
    run = runs["run_canary_good"].result()
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    assert run.proc.stdout.startswith("promoted: ")
    assert f"audit trail: {run.folder}/" in run.proc.stdout
    r = run.record["run"]
    assert r["outcome"] == "promoted"
    assert r["notebook"] == {"copied": True, "ipynb": "canary.ipynb", "html": "canary.html", "complete": True}
    html = (run.folder / "canary.html").read_text()
    assert "validate_parameters(" not in html  # no code cells
    assert "runbook canary on target sim" in html and "promoted" in html
    nb = nbformat.read(str(run.folder / "canary.ipynb"), as_version=4)
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert last.execution_count is not None  # the final notebook, last cell included
    for name, content in _all_text(run.folder).items():
        assert TOKEN.encode() not in content, name
    assert not run.out.exists()  # papermill's own copy stayed in a private temporary folder


def test_deploysim_run_bad_value_exits_2_naming_the_parameter(runs: dict[str, Future]) -> None:
    run = runs["run_bad_value"].result()
    assert run.proc.returncode == 2
    assert "parameter 'candidate' (candidate.error_rate): got 2; must be at most 1" in run.proc.stderr
    assert run.folders == []


# --- validation, in-process ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"no_such_param": 1}, "unknown parameter 'no_such_param' for runbook canary"),
        ({"seeed": 3}, "unknown parameter 'seeed' (did you mean 'seed'?)"),
        ({"seed": "abc"}, "parameter 'seed': got 'abc'; expected a valid integer"),
        ({"image": 1.42}, "parameter 'image': got 1.42; expected text"),
        ({"image": "checkout:latest"}, "use an immutable version"),
        ({"candidate": {"error_rate": 2}}, "parameter 'candidate' (candidate.error_rate): got 2; must be at most 1"),
        ({"candidate": {"eror_rate": 0.1}}, "parameter 'candidate' (candidate.eror_rate)"),
        ({"approve": "sometimes"}, "parameter 'approve': got 'sometimes'; must be auto, never, or a duration"),
        ({"target": "prod"}, "parameter 'target': got 'prod'; allowed: 'sim' or 'kubernetes'"),
        ({"duration": "soon"}, "parameter 'duration': got 'soon'; a duration like 30s"),
        ({"weights": [50, 10]}, "parameter 'weights'"),
        ({"steps": [{"set_weight": 5}], "weights": [5]}, "give one of them, not both"),
        ({"steps": [{"set_weight": 5, "pause": 1}]}, "parameter 'steps' (strategy.steps.0)"),
        ({"step_pause": "1m", "overrides": ["replicas=0"]}, "parameter 'overrides' (replicas): got 0"),
        ({"namespace": "Prod_NS"}, "parameter 'namespace': got 'Prod_NS'; must be a DNS label"),
        ({"scenario": "/no/such/scenario.yaml"}, "parameter 'scenario'"),
        ({"manifest": "/no/such/rollout.yaml"}, "parameter 'manifest': no such file"),
        ({"prometheus_token": 12345678}, "parameter 'prometheus_token': got '[REDACTED]'"),
    ],
)
def test_parameter_errors_name_the_parameter(given: dict, message: str) -> None:
    with pytest.raises(ParameterError) as err:
        runbooks.validate_parameters("canary", given)
    assert message in str(err.value)


@pytest.mark.parametrize(("source", "names"), [
    ('# Parameters\nduration = "20m"\n', {"duration"}),
    ('# Parameters\ncandidate = {"error_rate": 0.05}\nseed = 3\n', {"candidate", "seed"}),
    # papermill's inspect skips a line with two '=': its name is still read
    ('# Parameters\noverrides = ["replicas=3"]\nbogus = "a=b=c"\n', {"overrides", "bogus"}),
    ('# Parameters\nreason = "CHG-42 # urgent"\n', {"reason"}),
    ("# Parameters\n", set()),
])
def test_injected_cell_names_are_read_with_papermills_inspect(source: str, names: set[str]) -> None:
    assert runbooks.parameter_names(source) == names


def test_every_cell_papermill_injects_gives_back_its_names() -> None:
    from papermill.translators import PythonTranslator

    given = {"duration": "20m", "overrides": ["replicas=3", "slo.target=0.99"], "reason": "x = y # z",
             "candidate": {"error_rate": 0.05, "note": "a=b"}, "weights": [10, 50], "step_analysis": False,
             "seed": None, "bogus": 1.5}
    assert runbooks.parameter_names(PythonTranslator.codify(given)) == set(given)


@pytest.mark.parametrize(("options", "expected"), [
    ({"values": [("seed", "3"), ("verify", "1.5"), ("manual_gate", "True"), ("image", "None")]},
     {"seed": 3, "verify": 1.5, "manual_gate": True, "image": None}),
    ({"values": [("reason", "CHG 42")], "raw": [("seed", "3")]}, {"reason": "CHG 42", "seed": "3"}),
    # YAML as papermill reads it: no dates, later options win
    ({"yaml_texts": ["{reason: 2024-01-01, seed: 1}"], "values": [("seed", "2")]},
     {"reason": "2024-01-01", "seed": 2}),
])
def test_parameters_are_collected_as_papermills_cli_reads_them(options: dict, expected: dict) -> None:
    assert runbooks.collect_parameters(**options) == expected


@pytest.mark.parametrize(("options", "message"), [
    ({"yaml_texts": ["[1, 2]"]}, "-y '[1, 2]': expected a mapping"),
    ({"yaml_texts": ["{a: [}"]}, "not valid YAML"),
    ({"files": ["/no/such/params.yaml"]}, "-f /no/such/params.yaml: cannot read YAML parameters"),
])
def test_unreadable_parameters_are_parameter_errors(options: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        runbooks.collect_parameters(**options)


def test_unknown_names_are_read_from_the_injected_cell_of_the_kernel_history() -> None:
    defaults = {n: f.default for n, f in runbooks.CanaryParameters.model_fields.items()}
    history = ["", runbooks.parameter_cell("canary"), '# Parameters\nduration = "20m"\nbogus = 1\n']
    namespace = {**defaults, "duration": "20m", "bogus": 1, "In": history}
    with pytest.raises(ParameterError, match="unknown parameter 'bogus'"):
        runbooks.validate_parameters("canary", namespace)
    history[2] = '# Parameters\nduration = "20m"\nPAPERMILL_OUTPUT_PATH = "out.ipynb"\n'
    namespace = {**defaults, "duration": "20m", "PAPERMILL_OUTPUT_PATH": "out.ipynb", "In": history}
    run = runbooks.validate_parameters("canary", namespace)
    assert run.given == {"duration": "20m"}  # the parameters cell's defaults are not "given"
    assert run.notebook_hint == "out.ipynb"


def test_parameters_cell_defaults_are_the_models_defaults() -> None:
    for name in runbooks.RUNBOOKS:
        namespace: dict = {}
        exec(runbooks.parameter_cell(name), {}, namespace)  # noqa: S102 - our own generated source
        values = {k: v for k, v in namespace.items() if not k.startswith("__")}
        model = runbooks.PARAMETER_MODELS[name]
        assert values == {n: f.default for n, f in model.model_fields.items()}


def test_committed_runbooks_are_what_the_generator_writes() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_notebooks
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for name in runbooks.RUNBOOKS:
        committed = nbformat.read(str(ROOT / f"runbooks/{name}.ipynb"), as_version=4)
        fresh = build_notebooks.runbook_notebook(name)
        assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], name
        tagged = [c for c in committed.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1
        assert all(not c.get("outputs") for c in committed.cells if c.cell_type == "code")


def test_scenario_sections_and_knobs_merge_into_the_scenario() -> None:
    run = runbooks.validate_parameters("canary", {
        "candidate": {"error_rate": 0.05}, "traffic": {"rps": 500}, "weights": [10, 50], "step_pause": "1m",
        "manual_gate": True, "seed": 3, "replicas": 4, "image": "checkout@sha256:" + "ab" * 32,
        "overrides": ["slo.target=0.99"], "analysis": {"count": 2}})
    s = run.scenario
    assert s.candidate.error_rate == 0.05 and s.candidate.latency_ms == 50  # merged, not replaced
    assert s.traffic.rps == 500 and s.traffic.shape == "diurnal"
    assert (s.seed, s.replicas, s.slo.target, s.analysis.count) == (3, 4, 0.99, 2)
    assert [st.describe() for st in run.plan.steps] == [
        "set weight to 10%", "pause 1m", "threshold analysis 'step-3' 2x every 1m on error_rate <= 0.01, "
        "latency_p99 <= 400, failure limit 0", "set weight to 50%", "pause 1m",
        "threshold analysis 'step-6' 2x every 1m on error_rate <= 0.01, latency_p99 <= 400, failure limit 0",
        "pause until approved (manual gate)", "set weight to 100%"]


def test_rollback_world_swaps_the_versions() -> None:
    run = runbooks.validate_parameters("rollback", {"image": "checkout:1.42.0", "to_image": "checkout:1.40.2"})
    s = run.scenario
    assert (s.stable.image, s.stable.error_rate) == ("checkout:1.42.0", 0.021)  # the bad release serves now
    assert (s.candidate.image, s.candidate.error_rate) == ("checkout:1.40.2", 0.001)
    assert s.strategy.kind == "rolling" and s.strategy.max_surge == "100%" and s.strategy.max_unavailable == 0
    assert run.plan.background is None  # a rollback is not aborted half-way; it is verified after


def test_target_kubernetes_fails_clearly_without_its_world(monkeypatch) -> None:  # noqa: ANN001
    import deploysim.kube

    monkeypatch.delattr(deploysim.kube, "execute_plan", raising=False)
    with pytest.raises(TargetUnavailable, match=r"^target kubernetes needs deploysim.kube \(not available\)$"):
        runbooks.validate_parameters("canary", {"target": "kubernetes", "namespace": "shop",
                                               "kubeconfig": "/etc/kube/config", "workload": "checkout"})
    run = runbooks.validate_parameters("canary", {"duration": "20m"})
    with pytest.raises(TargetUnavailable):
        runbooks.WORLDS["kubernetes"](run, print)


def test_target_kubernetes_plugs_in_behind_the_same_execute(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """The kube world is called with the same scenario and plan, a KubeTarget, the trail's id,
    the approval rule and the progress callback; its record lands in the same trail."""
    import deploysim.kube
    from deploysim.sim import rehearse

    calls: list[dict] = []

    def fake_execute_plan(scenario, plan, target, run_id=None, approve_after=0.0, on_decision=None):  # noqa: ANN001, ANN202
        calls.append({"target": target, "run_id": run_id, "approve_after": approve_after, "plan": plan})
        record = rehearse(scenario, plan)
        for d in record.decisions:
            on_decision(d)
        record.changes = [{"verb": "patch", "kind": "Deployment", "name": "checkout", "token": TOKEN}]
        record.status = {**record.status, "context": "prod-eu", "resumed": False}
        return record

    monkeypatch.setattr(deploysim.kube, "execute_plan", fake_execute_plan)
    monkeypatch.setattr(session, "notebook_output_path", lambda hint=None: None)
    run = runbooks.validate_parameters("canary", {
        "target": "kubernetes", "namespace": "shop", "kubeconfig": "/etc/kube/config", "workload": "checkout",
        "prometheus_url": "http://prometheus.shop:9090", "prometheus_token": TOKEN, "approve": "10m",
        "duration": "20m", "step_pause": "30s", "candidate": {"error_rate": 0.001}, "record_dir": str(tmp_path)})
    out = io.StringIO()
    with redirect_stdout(out):
        run.execute()
        outcome = run.finish()
    assert outcome.outcome == "promoted"
    assert "step 1/10  set weight to 5%" in out.getvalue()
    (call,) = calls
    assert call["target"] == runbooks.KubeTarget(
        kubeconfig="/etc/kube/config", context=None, namespace="shop", workload="checkout",
        candidate_workload=None, route=None, prometheus_url="http://prometheus.shop:9090",
        prometheus_token=TOKEN, image="checkout:1.42.0")
    assert call["run_id"] == run.folder.name and call["approve_after"] == 600.0
    assert call["plan"] is run.plan
    data = read_record(run.folder)
    assert data["run"]["target"] == {
        "name": "kubernetes", "kubeconfig": "/etc/kube/config", "context": None, "namespace": "shop",
        "workload": "checkout", "candidate_workload": None, "route": None, "metrics": "auto",
        "prometheus_url": "http://prometheus.shop:9090", "probe_urls": {}, "image": "checkout:1.42.0",
        "context_used": "prod-eu", "resumed": False}
    assert data["changes"][0]["verb"] == "patch" and data["changes"][0]["token"] == REDACTED
    for name, content in _all_text(run.folder).items():
        assert TOKEN.encode() not in content, name


def test_execute_dispatches_on_target_and_reports_each_decision() -> None:
    params = runbooks.CanaryParameters(duration="20m", candidate={"error_rate": 0.05})
    seen: list[dict] = []
    record = runbooks.execute(params, on_decision=seen.append)
    assert record.summary["outcome"] == "rolled_back"
    assert seen == record.decisions
    out = io.StringIO()
    printer = runbooks.ProgressPrinter(runbooks.prepare(params).plan, stream=out)
    for d in seen:
        printer(d)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("t+05:00  start")
    assert lines[1] == "t+05:00  step 1/10  set weight to 5%"
    assert any(line.split()[1] == "abort" for line in lines)


def test_record_json_is_written_when_the_run_starts_and_when_it_fails(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    run = runbooks.validate_parameters("rolling", {"duration": "20m", "record_dir": str(tmp_path)})
    with redirect_stdout(io.StringIO()):
        folder = run.start()
    first = read_record(folder)["run"]
    assert first["outcome"] == "running" and first["finished_at"] is None

    def broken(run, on_decision):  # noqa: ANN001, ANN202
        raise RuntimeError("the world fell over; Authorization: Bearer abcdefgh123")

    monkeypatch.setitem(runbooks.WORLDS, "sim", broken)
    monkeypatch.setattr(session, "notebook_output_path", lambda hint=None: None)
    with pytest.raises(RuntimeError):
        run.execute()
    after = read_record(folder)["run"]
    assert after["outcome"] == "error" and after["finished_at"] is not None
    assert after["error"] == f"RuntimeError: the world fell over; Authorization: Bearer {REDACTED}"
    assert after["notebook"]["copied"] is False


def test_close_raises_rollout_not_promoted_after_writing_the_record(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(session, "notebook_output_path", lambda hint=None: None)
    run = runbooks.validate_parameters("blue_green", {"duration": "30m", "manual_gate": True, "approve": "5m",
                                                     "candidate": {"error_rate": 0.001},
                                                     "record_dir": str(tmp_path)})
    with redirect_stdout(io.StringIO()):
        run.execute()
        outcome = run.finish()
        run.close()  # promoted: no exception
    assert outcome.outcome == "promoted"
    assert run.record.summary["time_paused_seconds"] >= 300  # approved 5 minutes after the gate
    run2 = runbooks.validate_parameters("blue_green", {"duration": "20m", "manual_gate": True, "approve": "never",
                                                      "candidate": {"error_rate": 0.001},
                                                      "record_dir": str(tmp_path)})
    with redirect_stdout(io.StringIO()), pytest.raises(RolloutNotPromoted) as err:
        run2.execute()
        run2.close()
    assert err.value.outcome == "paused" and err.value.folder == str(run2.folder)
    assert json.loads((run2.folder / "record.json").read_text())["run"]["outcome"] == "paused"


def test_ci_example_runs_a_rehearsal_and_a_runbook_and_keeps_the_trail() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / "examples/ci/github-actions.yml").read_text())
    steps = workflow["jobs"]["rollout"]["steps"]
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "papermill notebooks/rehearse.ipynb" in scripts and "papermill runbooks/canary.ipynb" in scripts
    assert "-p record_dir runs" in scripts and "$RUNNER_TEMP/canary.ipynb" in scripts
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "runs/" in upload["with"]["path"]
    runbook_step = next(s for s in steps if "runbooks/canary.ipynb" in s.get("run", ""))
    assert "if" not in runbook_step  # its exit code fails the job
    assert workflow["jobs"]["promoted"]["needs"] == "rollout"
    for name, value in workflow["jobs"]["rollout"]["env"].items():
        if "TOKEN" in name:
            assert value.startswith("${{ secrets.")


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout}
spec:
  replicas: 6
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 2, maxUnavailable: 0}
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec:
      containers: [{name: app, image: "checkout:1.42.0"}]
"""


def test_a_manifest_gives_the_strategy_and_must_match_the_runbook(tmp_path: Path) -> None:
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(DEPLOYMENT)
    run = runbooks.validate_parameters("rolling", {"manifest": str(manifest), "duration": "20m"})
    assert (run.plan.strategy, run.plan.replicas, run.plan.max_surge, run.plan.max_unavailable) == (
        "rolling", 6, 2, 0)
    with pytest.raises(ParameterError, match="describes a rolling rollout; this is the canary runbook"):
        runbooks.validate_parameters("canary", {"manifest": str(manifest)})
    with pytest.raises(ParameterError, match="the strategy comes from the manifest"):
        runbooks.validate_parameters("rolling", {"manifest": str(manifest), "max_surge": 3})


@pytest.mark.parametrize(("method", "stable_error_rate", "outcome", "ok"), [
    ("rolling", 0.001, "rolled_back", True),
    ("blue-green", 0.001, "rolled_back", True),
    ("rolling", 0.03, "failed", False),  # the version gone back to is bad too: not verified
])
def test_rollback_is_verified_after_it_completes(tmp_path: Path, method: str, stable_error_rate: float,
                                                 outcome: str, ok: bool) -> None:
    run = runbooks.validate_parameters("rollback", {"method": method, "duration": "20m", "verify": "5m",
                                                   "stable": {"error_rate": stable_error_rate},
                                                   "record_dir": str(tmp_path)})
    with redirect_stdout(io.StringIO()):
        run.execute()
        result = run.finish()
    assert (result.outcome, result.ok) == (outcome, ok)
    assert run.record.summary["outcome"] == "promoted"  # the controller finished the rollback either way
    verification = read_record(run.folder)["run"]["verification"]
    assert verification["passed"] is ok and verification["window_seconds"] == 300.0
