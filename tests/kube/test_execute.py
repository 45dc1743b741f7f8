"""Execute for real: the runbooks, through the papermill CLI, against a local control plane.

A real kube-apiserver, controller-manager, scheduler and etcd with KWOK for kubelets; a real
Prometheus scraping ``deploysim traffic``, which serves the scenario's failure model for
whichever pods are ready and routed; and the runbook acting as a ServiceAccount bound to
``deploy/rbac.yaml``, not as cluster admin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from deploysim.kube import gateway, localcluster
from deploysim.kube import naming as n
from deploysim.kube.app import apply_rbac, create_app, delete_namespace, service_account_kubeconfig
from deploysim.kube.traffic import start_exporter

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
PAPERMILL = str(Path(sys.executable).parent / "papermill")
NAME = f"dsp-execute-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
STABLE, CANDIDATE = "web:1.0.0", "web:1.1.0"
REPLICAS = 4


@pytest.fixture(scope="module")
def cluster():
    localcluster.ensure_built()
    localcluster.down(NAME)
    info = localcluster.up(nodes=3, prometheus=True, name=NAME, scrape_interval="1s", timeout=120)
    admin = config.new_client_from_config(str(info.kubeconfig))
    gateway.install_crds(admin)
    try:
        yield info, admin
    finally:
        localcluster.down(NAME)


def _scenario_file(tmp_path: Path, candidate: dict, strategy: dict) -> Path:
    data = {
        "service": "web", "replicas": REPLICAS, "duration": "4m", "resolution": "5s", "seed": 3,
        "traffic": {"rps": 80, "shape": "constant"},
        "pod": {"startup": "1s", "startup_jitter": "0s", "capacity_rps": 200},
        "stable": {"image": STABLE, "error_rate": 0.0},
        "candidate": {"image": CANDIDATE, "error_rate": 0.0, **candidate},
        "strategy": {"progress_deadline_seconds": "25s", "scale_down_delay_seconds": "3s",
                     "auto_promotion_seconds": 0, "max_surge": 1, "max_unavailable": 0, **strategy},
        "analysis": {"interval": "5s", "count": 2, "min_requests": 1, "consecutive_error_limit": 1,
                     "checks": [{"metric": "error_rate", "max": 0.05}]},
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class App:
    """One namespace with the service's workloads, its traffic and a least-privilege kubeconfig."""

    def __init__(self, cluster, tmp_path: Path, strategy: str, router: bool, candidate: dict, knobs: dict):
        info, admin = cluster
        self.info, self.admin = info, admin
        self.ns = f"e2e-{uuid.uuid4().hex[:6]}"
        self.strategy, self.router = strategy, router
        self.scenario = _scenario_file(tmp_path, candidate, knobs)
        create_app(admin, self.ns, "web", strategy, REPLICAS, STABLE, router=router)
        apply_rbac(admin, self.ns, str(ROOT / "deploy" / "rbac.yaml"))
        self.kubeconfig = service_account_kubeconfig(admin, self.ns, "deploysim-runbook", str(info.kubeconfig),
                                                     str(tmp_path / "sa-kubeconfig"))
        self.exporter = start_exporter(self.scenario, kubeconfig=str(info.kubeconfig), namespace=self.ns,
                                       service="web", tick=0.5, register=NAME)
        self.record_dir = tmp_path / "runs"
        self._wait_for_metrics()

    def _wait_for_metrics(self) -> None:
        query = f'sum(deploysim_requests_total{{service="web",namespace="{self.ns}"}})'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.info.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
            if r.json()["data"]["result"]:
                return
            time.sleep(0.5)
        raise AssertionError("Prometheus never scraped the traffic exporter")

    def run(self, runbook: str, *extra: str, target: str = "kubernetes") -> tuple[subprocess.CompletedProcess, dict]:
        self.record_dir.mkdir(parents=True, exist_ok=True)
        out = self.record_dir / f"{runbook}-{target}-out.ipynb"
        args = [PAPERMILL, str(ROOT / "runbooks" / f"{runbook}.ipynb"), str(out),
                "-p", "target", target, "-p", "scenario", str(self.scenario),
                "-p", "record_dir", str(self.record_dir / target), *extra]
        if target == "kubernetes":
            args += ["-p", "kubeconfig", self.kubeconfig, "-p", "namespace", self.ns,
                     "-p", "prometheus_url", self.info.prometheus_url]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
        records = sorted((self.record_dir / target).glob("*/record.json"), key=lambda p: p.stat().st_mtime)
        assert records, f"no record.json written:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc, json.loads(records[-1].read_text())

    # --- reading the cluster afterwards ------------------------------------------------

    def deployment(self, name: str) -> client.V1Deployment:
        return client.AppsV1Api(self.admin).read_namespaced_deployment(name, self.ns)

    def stable_slot(self) -> str:
        svc = client.CoreV1Api(self.admin).read_namespaced_service("web", self.ns)
        return svc.metadata.annotations[n.STABLE_SLOT_ANNOTATION]

    def serving(self) -> dict[str, int]:
        """Ready pods per image among the Deployments the users' traffic reaches."""
        apps = client.AppsV1Api(self.admin)
        images: dict[str, int] = {}
        for d in apps.list_namespaced_deployment(self.ns).items:
            image = d.spec.template.spec.containers[0].image
            images[image] = images.get(image, 0) + (d.status.available_replicas or 0)
        return images

    def close(self) -> None:
        self.exporter.stop()
        delete_namespace(self.admin, self.ns)


@pytest.fixture
def make_app(cluster, tmp_path):
    apps: list[App] = []

    def make(strategy: str, router: bool = False, candidate: dict | None = None, **knobs) -> App:
        app = App(cluster, tmp_path, strategy, router, candidate or {}, knobs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


BAD = {"error_rate": 0.3}
CASES = [
    # pods take 3 s to start, so the rolling update outlasts the first analysis interval
    ("rolling", "rolling", False, ["-p", "image", CANDIDATE, "-y", "{pod: {startup: 3s}}"]),
    ("blue-green", "blue_green", False, ["-p", "image", CANDIDATE]),
    ("canary", "canary", False, ["-p", "image", CANDIDATE, "-p", "traffic_router", "False",
                                  "-y", "{weights: [50], step_pause: 2s}"]),
    ("canary", "canary", True, ["-p", "image", CANDIDATE, "-p", "traffic_router", "True",
                                 "-y", "{weights: [25], step_pause: 2s}"]),
]
IDS = ["rolling", "blue-green", "canary-replica-ratio", "canary-httproute"]


def _assert_promoted(app: App, proc, record) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert record["summary"]["outcome"] == "promoted"
    assert app.serving() == {CANDIDATE: REPLICAS} or app.serving().get(CANDIDATE) == REPLICAS
    if app.strategy == "rolling":
        assert app.deployment("web").spec.template.spec.containers[0].image == CANDIDATE
    else:
        assert app.stable_slot() == "green"  # the candidate's colour is now the stable one
        assert app.deployment("web-blue").spec.replicas == 0


def _assert_rolled_back(app: App, proc, record) -> None:
    assert proc.returncode != 0
    assert record["summary"]["outcome"] == "rolled_back"
    assert any(d["kind"] == "abort" for d in record["decisions"])
    # the stable version serves everything afterwards, read from the cluster
    serving = app.serving()
    assert serving.get(STABLE) == REPLICAS and serving.get(CANDIDATE, 0) == 0, serving
    if app.strategy == "rolling":
        assert app.deployment("web").spec.template.spec.containers[0].image == STABLE
    else:
        assert app.stable_slot() == "blue"
        assert app.deployment("web-green").spec.replicas == 0
        if app.router:
            route = client.CustomObjectsApi(app.admin).get_namespaced_custom_object(
                n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, app.ns, n.HTTPROUTE_PLURAL, "web")
            weights = {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}
            assert weights == {"web-blue": 100, "web-green": 0}
        elif app.strategy == "blue-green":
            svc = client.CoreV1Api(app.admin).read_namespaced_service("web", app.ns)
            assert svc.spec.selector[n.SLOT_LABEL] == "blue"
    # every API change is in the trail, with the object, the field, old and new value
    changes = record.get("changes") or []
    assert changes and all({"object", "field", "old", "new"} <= set(c) for c in changes)


@pytest.mark.parametrize(("strategy", "runbook", "router", "extra"), CASES, ids=IDS)
def test_healthy_candidate_is_promoted(make_app, strategy, runbook, router, extra):
    app = make_app(strategy, router=router)
    proc, record = app.run(runbook, *extra)
    _assert_promoted(app, proc, record)


@pytest.mark.parametrize(("strategy", "runbook", "router", "extra"), CASES, ids=IDS)
def test_failing_candidate_is_rolled_back(make_app, strategy, runbook, router, extra):
    app = make_app(strategy, router=router, candidate=BAD)
    proc, record = app.run(runbook, *extra)
    _assert_rolled_back(app, proc, record)
    # the analysis read real PromQL answers: the stable version fails nothing here, so the
    # failures it measured (above the check's 5%) are the candidate's, served and scraped
    rates = [d.get("values", {}).get("error_rate") for d in record["decisions"] if d["kind"] == "measure"]
    assert any(r is not None and r > 0.05 for r in rates), rates


def test_never_ready_candidate_is_caught_by_the_progress_deadline(make_app):
    app = make_app("rolling", candidate={"never_ready": True})
    proc, record = app.run("rolling", "-p", "image", CANDIDATE)
    assert proc.returncode != 0
    assert record["summary"]["outcome"] == "failed"
    abort = next(d for d in record["decisions"] if d["kind"] == "abort")
    assert "ProgressDeadlineExceeded" in abort["reason"]
    assert app.serving().get(STABLE) == REPLICAS
    assert app.deployment("web").spec.template.spec.containers[0].image == STABLE


def test_with_prometheus_stopped_analysis_errors_abort_instead_of_hanging(make_app):
    app = make_app("canary", router=True)
    prom = app.info.processes["prometheus"]
    dead = f"http://127.0.0.1:{_closed_port()}"
    args = ["-p", "image", CANDIDATE, "-p", "traffic_router", "True", "-y", "{weights: [25], step_pause: 2s}"]
    # point the runbook at a Prometheus that is not there (the real one keeps serving the others)
    app.record_dir.mkdir(parents=True, exist_ok=True)
    out = app.record_dir / "dead.ipynb"
    proc = subprocess.run(
        [PAPERMILL, str(ROOT / "runbooks" / "canary.ipynb"), str(out), "-p", "target", "kubernetes",
         "-p", "scenario", str(app.scenario), "-p", "record_dir", str(app.record_dir / "dead"),
         "-p", "kubeconfig", app.kubeconfig, "-p", "namespace", app.ns, "-p", "prometheus_url", dead, *args],
        capture_output=True, text=True, timeout=300, check=False)
    assert prom.pid  # the cluster's own Prometheus was never needed for this
    record = json.loads(next((app.record_dir / "dead").glob("*/record.json")).read_text())
    assert proc.returncode != 0
    assert record["summary"]["outcome"] == "rolled_back"
    errors = [d for d in record["decisions"] if d["kind"] == "measure" and "Error" in d["reason"]]
    assert len(errors) == 2  # consecutive_error_limit 1: the second error in a row aborts
    abort = next(d for d in record["decisions"] if d["kind"] == "abort")
    assert "consecutive provider errors" in abort["reason"]
    assert app.stable_slot() == "blue" and app.deployment("web-green").spec.replicas == 0


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_as_the_service_account_bound_to_the_role(make_app):
    app = make_app("rolling")
    sa = config.new_client_from_config(app.kubeconfig)
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(sa).list_node()
    assert denied.value.status == 403  # not cluster admin
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(sa).list_namespaced_secret(app.ns)
    assert denied.value.status == 403
    # and yet it can do all a runbook needs
    proc, record = app.run("rolling", "-p", "image", CANDIDATE)
    assert proc.returncode == 0 and record["summary"]["outcome"] == "promoted"


def _decision_sequence(record: dict) -> list[str]:
    seq = []
    for d in record["decisions"]:
        if d["kind"] == "measure":
            seq.append("measure:" + d["reason"].split(": ", 1)[1].split(" ")[0])
        elif d["kind"] == "step":
            seq.append("step:" + d["reason"].split(": ", 1)[1])
        else:
            seq.append(d["kind"])
    return seq


@pytest.mark.parametrize("candidate", [{}, BAD], ids=["healthy", "failing"])
def test_rehearsal_and_execution_take_the_same_decisions(make_app, candidate):
    app = make_app("canary", router=True, candidate=candidate)
    args = ["-p", "image", CANDIDATE, "-p", "traffic_router", "True", "-y", "{weights: [25], step_pause: 2s}"]
    _, sim = app.run("canary", *args, target="sim")
    proc, real = app.run("canary", *args)
    assert _decision_sequence(sim) == _decision_sequence(real)
    assert sim["summary"]["outcome"] == real["summary"]["outcome"]
    if candidate:
        return
    # the two records laid side by side by the post-incident notebook
    folders = [str(next((app.record_dir / t).glob("*/record.json")).parent) for t in ("sim", "kubernetes")]
    out = app.record_dir / "post_incident.ipynb"
    proc = subprocess.run(
        [PAPERMILL, str(ROOT / "notebooks" / "post_incident.ipynb"), str(out), "--cwd", str(ROOT),
         "-y", json.dumps({"trails": folders, "strategies": ["canary", "rolling"]})],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = out.read_text()
    assert "kubernetes" in executed and "sim" in executed
