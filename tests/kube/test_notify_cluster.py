"""Deploy annotations and notifications from a real runbook run on the local control plane:
Events read back from the API server (and shown by ``kubectl describe``), Grafana and webhook
requests received by a local HTTP server, and the Grafana token in no file of the trail.

The runbooks run through the papermill CLI as the ServiceAccount bound to deploy/rbac.yaml.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from cluster_app import CANDIDATE
from kubernetes import client
from notify_server import Answer, Receiver, Request, grafana_script

pytestmark = pytest.mark.cluster

TOKEN = "glsa_ClusterRunToken_4d5e6f7a8b9c"
BAD = {"error_rate": 0.3}


def _script(request: Request, before: int) -> Answer:
    if request.path.startswith("/grafana/"):
        return grafana_script(request, before)
    return Answer(200, {"ok": True})


def _events(app, kind: str, name: str) -> list:
    """The object's Events the way ``kubectl describe`` selects them (name, namespace, kind, uid)."""
    if kind == "Deployment":
        uid = app.deployment(name).metadata.uid
    else:
        uid = client.CustomObjectsApi(app.admin).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", app.ns, "httproutes", name)["metadata"]["uid"]
    selector = (f"involvedObject.name={name},involvedObject.namespace={app.ns},"
                f"involvedObject.kind={kind},involvedObject.uid={uid}")
    items = client.CoreV1Api(app.admin).list_namespaced_event(app.ns, field_selector=selector).items
    return sorted((e for e in items if e.source and e.source.component == "deploysim"),
                  key=lambda e: e.metadata.name)


def _files(folder) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_promoted_canary_leaves_events_a_grafana_region_and_webhook_calls(make_app, monkeypatch) -> None:
    app = make_app("canary", router=True)
    monkeypatch.setenv("DEPLOYSIM_GRAFANA_TOKEN", TOKEN)  # the runbook's process inherits it
    with Receiver(_script) as server:
        hooks = [{"url": f"{server.url}/hook", "kind": "generic"}, {"url": f"{server.url}/slack", "kind": "slack"}]
        proc, record = app.run(
            "canary", "-p", "image", CANDIDATE, "-p", "traffic_router", "True",
            "-y", json.dumps({"weights": [25], "step_pause": "8s", "webhooks": hooks}),
            "-p", "grafana_url", f"{server.url}/grafana", "-p", "grafana_dashboard_uid", "deploys")
        requests = list(server.requests)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert record["summary"]["outcome"] == "promoted"
    run_id = record["run"]["id"]

    # Events on the candidate's colour and on the HTTPRoute, read back from the API server
    green = _events(app, "Deployment", "web-green")
    reasons = [e.reason for e in green]
    assert reasons[0] == "RolloutStarted" and reasons[-1] == "RolloutPromoted", reasons
    assert "RolloutStepCompleted" in reasons and {e.type for e in green} == {"Normal"}
    assert all(e.involved_object.api_version == "apps/v1" and e.count == 1 for e in green)
    assert green[0].metadata.labels == {"deploysim.io/run": run_id}
    assert "web:1.0.0 -> web:1.1.0" in green[0].message
    route = [e.reason for e in _events(app, "HTTPRoute", "web")]
    assert "RolloutStepCompleted" in route and route[-1] == "RolloutPromoted", route

    # Grafana: the region opened with the token, closed by a PATCH with the outcome
    grafana = [r for r in requests if r.path.startswith("/grafana/")]
    opened, closed = grafana[0], grafana[-1]
    assert (opened.method, opened.path, opened.header("Authorization")) == (
        "POST", "/grafana/api/annotations", f"Bearer {TOKEN}")
    assert opened.body["dashboardUID"] == "deploys" and f"run:{run_id}" in opened.body["tags"]
    assert opened.body["time"] == opened.body["timeEnd"] and len(str(opened.body["time"])) == 13
    assert closed.method == "PATCH" and closed.path.startswith("/grafana/api/annotations/")
    assert closed.body["timeEnd"] > opened.body["time"] and "outcome:promoted" in closed.body["tags"]

    # webhooks: the same decisions, in Flagger's event shape and Slack's
    generic = [r.body for r in requests if r.path == "/hook"]
    assert generic[0]["reason"] == "RolloutStarted" and generic[-1]["reason"] == "RolloutPromoted"
    assert all(b["name"] == "web" and b["namespace"] == app.ns and b["run"] == run_id for b in generic)
    slack = [r.body for r in requests if r.path == "/slack"]
    assert [b["attachments"][0]["text"] for b in slack] == [b["metadata"]["eventMessage"] for b in generic]

    # the trail says what went where; the token is in none of its files
    notifications = record["run"]["target"]["notifications"]
    assert notifications["failures"] == [], notifications
    assert notifications["sinks"]["events"]["sent"] == len(reasons)
    assert notifications["sinks"]["grafana"]["region"] is not None
    for path, content in _files(app.run_folder("kubernetes")).items():
        assert TOKEN.encode() not in content, path


def test_a_rolled_back_update_leaves_warning_events_kubectl_describe_shows(make_app) -> None:
    app = make_app("rolling", candidate=BAD)
    proc, record = app.run("rolling", "-p", "image", CANDIDATE, "-y", "{pod: {startup: 3s}}")
    assert proc.returncode != 0 and record["summary"]["outcome"] == "rolled_back"
    events = _events(app, "Deployment", "web")
    by_reason = {e.reason: e for e in events}
    assert [e.reason for e in events][0] == "RolloutStarted"
    assert by_reason["RolloutAborted"].type == by_reason["RolloutRolledBack"].type == "Warning"
    abort = next(d for d in record["decisions"] if d["kind"] == "abort")
    assert abort["reason"] in by_reason["RolloutAborted"].message
    described = subprocess.run(["kubectl", "--kubeconfig", str(app.info.kubeconfig), "-n", app.ns,
                                "describe", "deployment", "web"], capture_output=True, text=True, timeout=120,
                               check=True).stdout
    events_section = described.split("Events:", 1)[1]
    for line in ("RolloutStarted", "RolloutAborted", "RolloutRolledBack"):
        row = next((r for r in events_section.splitlines() if line in r), "")
        assert "deploysim" in row, (line, events_section)
    assert "Warning" in next(r for r in events_section.splitlines() if "RolloutAborted" in r)
    assert record["run"]["target"]["notifications"]["sinks"]["events"]["failed"] == 0
