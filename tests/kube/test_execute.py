"""Execute for real: the runbooks, through the papermill CLI, against a local control plane.

A real kube-apiserver, controller-manager, scheduler and etcd with KWOK for kubelets; a real
Prometheus scraping ``deploysim traffic``, which serves the scenario's failure model for
whichever pods are ready and routed; and the runbook acting as a ServiceAccount bound to
``deploy/rbac.yaml``, not as cluster admin.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from deploysim.kube import naming as n
from deploysim.kube.app import create_app, delete_namespace
from deploysim.kube.traffic import start_exporter

pytestmark = pytest.mark.cluster

from cluster_app import (  # noqa: E402
    CANDIDATE,
    PAPERMILL,
    REPLICAS,
    ROOT,
    STABLE,
    App,
    decision_sequence,
    scenario_file,
)

BAD = {"error_rate": 0.3}
CASES = [
    # the background analysis measures at the start (no candidate yet: an Error), at 10 s and
    # at 20 s; the update (4 waves of pods taking 2 s to start) ends at 8 s in the rehearsal
    # and a few seconds later on a busy cluster, both well inside the same intervals, so the
    # two worlds take the same decisions however loaded the machine is
    ("rolling", "rolling", False, ["-p", "image", CANDIDATE, "-y", "{pod: {startup: 2s}, analysis: {interval: 10s}}"]),
    ("blue-green", "blue_green", False, ["-p", "image", CANDIDATE]),
    ("canary", "canary", False, ["-p", "image", CANDIDATE, "-p", "traffic_router", "False",
                                  "-y", "{weights: [50], step_pause: 8s}"]),
    ("canary", "canary", True, ["-p", "image", CANDIDATE, "-p", "traffic_router", "True",
                                 "-y", "{weights: [25], step_pause: 8s}"]),
]
IDS = ["rolling", "blue-green", "canary-replica-ratio", "canary-httproute"]
# the Deployment's Recreate strategy through the rolling runbook: every pod down, then the
# new ones up (nothing serves in between, so no analysis: only a healthy case)
HEALTHY = [*CASES, ("recreate", "rolling", False, ["-p", "image", CANDIDATE, "-p", "deployment_strategy", "Recreate",
                                                   "-p", "background_analysis", "False"])]
HEALTHY_IDS = [*IDS, "recreate"]


def _assert_promoted(app: App, proc, record) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert record["summary"]["outcome"] == "promoted"
    serving = app.serving()
    assert serving.get(CANDIDATE) == REPLICAS and serving.get(STABLE, 0) == 0, serving
    if app.strategy in ("rolling", "recreate"):
        assert app.deployment("web").spec.template.spec.containers[0].image == CANDIDATE
        assert app.deployment("web").spec.strategy.type == ("Recreate" if app.strategy == "recreate" else "RollingUpdate")
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
    if app.strategy in ("rolling", "recreate"):
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


@pytest.mark.parametrize(("strategy", "runbook", "router", "extra"), HEALTHY, ids=HEALTHY_IDS)
def test_healthy_candidate_is_promoted_as_rehearsed(make_app, strategy, runbook, router, extra):
    app = make_app(strategy, router=router)
    proc, record = app.run(runbook, *extra)
    _assert_promoted(app, proc, record)
    # the same runbook rehearsed: the same decisions, the same summary fields, and the pod
    # figures the glossary defines agree with what the cluster did
    _, sim = app.run(runbook, *extra, target="sim")
    assert decision_sequence(sim) == decision_sequence(record)
    assert list(sim["summary"]) == list(record["summary"])
    assert (record["summary"]["world"], sim["summary"]["world"]) == ("kubernetes", "sim")
    for key in ("outcome", "min_available", "max_pods"):
        assert record["summary"][key] == sim["summary"][key], (key, record["summary"], sim["summary"])


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
    # no background analysis: with it, the candidate's missing data would err the run first
    app = make_app("rolling", candidate={"never_ready": True})
    proc, record = app.run("rolling", "-p", "image", CANDIDATE, "-p", "background_analysis", "False")
    assert proc.returncode != 0
    assert record["summary"]["outcome"] == "failed"
    abort = next(d for d in record["decisions"] if d["kind"] == "abort")
    assert "ProgressDeadlineExceeded" in abort["reason"]
    assert app.serving().get(STABLE) == REPLICAS
    assert app.deployment("web").spec.template.spec.containers[0].image == STABLE


def test_with_prometheus_stopped_analysis_errors_abort_instead_of_hanging(make_app):
    app = make_app("canary", router=True)
    dead = f"http://127.0.0.1:{_closed_port()}"
    args = ["-p", "image", CANDIDATE, "-p", "traffic_router", "True", "-y", "{weights: [25], step_pause: 8s}"]
    # point the runbook at a Prometheus that is not there (the real one keeps serving the others)
    app.record_dir.mkdir(parents=True, exist_ok=True)
    out = app.record_dir / "dead.ipynb"
    proc = subprocess.run(
        [PAPERMILL, str(ROOT / "runbooks" / "canary.ipynb"), str(out), "-p", "target", "kubernetes",
         "-p", "scenario", str(app.scenario), "-p", "record_dir", str(app.record_dir / "dead"),
         "-p", "kubeconfig", app.kubeconfig, "-p", "namespace", app.ns, "-p", "prometheus_url", dead, *args],
        capture_output=True, text=True, timeout=300, check=False)
    # the cluster's own Prometheus was never asked and still serves the other runs
    assert httpx.get(f"{app.info.prometheus_url}/-/ready", timeout=5).status_code == 200
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


def test_a_rolled_back_cluster_run_and_its_rehearsal_read_the_same_after_the_incident(make_app):
    app = make_app("canary", router=True, candidate=BAD)
    args = ["-p", "image", CANDIDATE, "-p", "traffic_router", "True", "-y", "{weights: [25], step_pause: 8s}"]
    _, sim = app.run("canary", *args, target="sim")
    proc, real = app.run("canary", *args)
    assert decision_sequence(sim) == decision_sequence(real)
    assert sim["summary"]["outcome"] == real["summary"]["outcome"] == "rolled_back"
    # every field a number, or unknown with its reason: nothing a notebook trips over
    for summary in (sim["summary"], real["summary"]):
        assert {k for k, v in summary.items() if v is None} == set(summary["unknown"])
        assert summary["rollout_attributable_failures"] > 0
        assert summary["time_to_detect_seconds"] > 0 and summary["time_to_recover_seconds"] is not None
    # the two records laid side by side by the post-incident notebook
    folders = [str(next((app.record_dir / t).glob("*/record.json")).parent) for t in ("sim", "kubernetes")]
    out = app.record_dir / "post_incident.ipynb"
    proc = subprocess.run(
        [PAPERMILL, str(ROOT / "notebooks" / "post_incident.ipynb"), str(out), "--cwd", str(ROOT),
         "-y", json.dumps({"trails": folders, "strategies": ["canary", "rolling"]})],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from deploysim.incident import load_trails, summary_frame

    table = summary_frame(load_trails(folders))
    assert sorted(table["world"]) == ["kubernetes", "sim"]
    for _, row in table.iterrows():  # a blank is a field that world cannot know, and says why
        blank = {k for k, v in row.items() if v is None or (isinstance(v, float) and v != v)}
        assert blank == {k.split(":")[0] for k in row["unknown"].split("; ") if k}, row


NAMED = [
    # (strategy, runbook, names given to the runbook, Deployments to create, HTTPRoute name)
    ("rolling", "rolling", {"workload": "web-api"}, ["web-api"], None),
    ("canary", "canary", {"workload": "web-api", "candidate_workload": "web-api-next", "route": "checkout-route"},
     ["web-api", "web-api-next"], "checkout-route"),
]


@pytest.mark.parametrize(("strategy", "runbook", "names", "deployments", "route"), NAMED,
                         ids=["rolling", "canary-httproute"])
def test_workloads_named_apart_from_the_service_are_the_ones_changed(
        cluster, tmp_path, strategy, runbook, names, deployments, route):
    """Service ``checkout``, Deployment(s) ``web-api``: the run checks and changes exactly the
    objects it was given, and a Deployment that merely shares the service's name is left alone."""
    info, admin = cluster
    ns = f"named-{uuid.uuid4().hex[:6]}"
    scenario = scenario_file(tmp_path, {}, {})
    data = yaml.safe_load(scenario.read_text())
    scenario.write_text(yaml.safe_dump({**data, "service": "checkout"}))
    create_app(admin, ns, "checkout", strategy, REPLICAS, STABLE, router=route is not None,
               workload=names["workload"], second_workload=names.get("candidate_workload"), route_name=route)
    # a bystander named like the service, selected by nothing the run uses
    client.AppsV1Api(admin).create_namespaced_deployment(ns, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="checkout", labels={"app": "bystander"}),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels={"app": "bystander"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "bystander"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="bystander:1")])))))
    exporter = start_exporter(scenario, kubeconfig=str(info.kubeconfig), namespace=ns, service="checkout",
                              tick=0.5, register=info.name, route=route)
    try:
        out = tmp_path / "out.ipynb"
        args = [PAPERMILL, str(ROOT / "runbooks" / f"{runbook}.ipynb"), str(out), "-p", "target", "kubernetes",
                "-p", "scenario", str(scenario), "-p", "record_dir", str(tmp_path / "runs"),
                "-p", "kubeconfig", str(info.kubeconfig), "-p", "namespace", ns,
                "-p", "prometheus_url", info.prometheus_url, "-p", "image", CANDIDATE]
        for key, value in names.items():
            args += ["-p", key, value]
        if strategy == "canary":
            args += ["-p", "traffic_router", "True", "-y", "{weights: [25], step_pause: 8s}"]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
        record = json.loads(next((tmp_path / "runs").glob("*/record.json")).read_text())
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert record["summary"]["outcome"] == "promoted"
        apps = client.AppsV1Api(admin)
        if strategy == "rolling":
            assert apps.read_namespaced_deployment("web-api", ns).spec.template.spec.containers[0].image == CANDIDATE
            allowed = {"Deployment/web-api"}
        else:
            assert apps.read_namespaced_deployment("web-api-next", ns).spec.replicas == REPLICAS
            assert apps.read_namespaced_deployment("web-api", ns).spec.replicas == 0
            weights = client.CustomObjectsApi(admin).get_namespaced_custom_object(
                n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, ns, n.HTTPROUTE_PLURAL, route)
            assert {r["name"]: r["weight"] for r in weights["spec"]["rules"][0]["backendRefs"]} == {
                "checkout-blue": 0, "checkout-green": 100}
            allowed = {"Deployment/web-api", "Deployment/web-api-next", f"HTTPRoute/{route}", "Service/checkout"}
        assert {d.metadata.name for d in apps.list_namespaced_deployment(ns).items} == {*deployments, "checkout"}
        changed = {c["object"] for c in record["changes"]}
        assert changed and changed <= allowed, changed
        bystander = apps.read_namespaced_deployment("checkout", ns)
        assert bystander.spec.template.spec.containers[0].image == "bystander:1"
        assert n.RUN_ANNOTATION not in (bystander.metadata.annotations or {})
    finally:
        exporter.stop()
        delete_namespace(admin, ns)
