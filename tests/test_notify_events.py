"""Kubernetes Events as the API server receives them: the official client pointed at a local
HTTP server answering as kube-apiserver would, so the requests are the client's own."""

from __future__ import annotations

import re
from types import SimpleNamespace

from kubernetes import client
from notify_server import Answer, Receiver, Request

from deploysim.kube import changed_objects, run_notifier
from deploysim.kube.world import Change
from deploysim.notify import Notifier, RunContext, Sending
from deploysim.notify.events import KubeEvents
from deploysim.scenario import load_scenario
from deploysim.strategies import compile_plan

CTX = RunContext("web", "shop", "canary", "web:1.0.0", "web:1.1.0", ("set weight to 25%", "pause 8s"),
                 "20250301T101500Z-canary-3f2a1c")
UIDS = {"/apis/apps/v1/namespaces/shop/deployments/web-green": "uid-green",
        "/api/v1/namespaces/shop/services/web": "uid-svc",
        "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/web": "uid-route"}
FAST = Sending(timeout=5.0, retries=2, wait=(0.01, 0.01))
OBJECTS = (("Deployment", "web-green"), ("HTTPRoute", "web"))


def apiserver(events_status: int = 201) -> Receiver:
    """Reads of the changed objects, and Event creation answered with ``events_status``."""
    def script(request: Request, before: int) -> Answer:
        if request.method == "GET" and request.path in UIDS:
            name = request.path.rsplit("/", 1)[1]
            return Answer(200, {"metadata": {"name": name, "namespace": "shop", "uid": UIDS[request.path]}})
        if request.method == "POST" and request.path == "/api/v1/namespaces/shop/events":
            if events_status != 201:
                return Answer(events_status, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                              "reason": "Forbidden", "code": events_status})
            return Answer(201, request.body)
        return Answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
    return Receiver(script)


def api_for(server: Receiver) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = server.url
    return client.ApiClient(configuration)


def _run(server: Receiver, decisions: list[dict], objects=OBJECTS, outcome: str = "promoted") -> dict:
    sink = KubeEvents(api_for(server), "shop", host="ci-runner-7", sending=FAST)
    notifier = Notifier([sink], CTX, objects=lambda: objects)
    for decision in decisions:
        notifier.decision(decision)
    return notifier.close(outcome=outcome)


def test_each_notice_is_a_core_v1_event_on_each_changed_object_as_kubectl_describe_finds_it() -> None:
    decisions = [{"kind": "start", "step": 0, "reason": ""}, {"kind": "step", "step": 1, "reason": "step 2"},
                 {"kind": "abort", "step": 1, "reason": "error_rate 0.31 > 0.05"},
                 {"kind": "complete", "step": 1, "reason": "rolled back: the stable version serves all traffic"}]
    with apiserver() as server:
        report = _run(server, decisions, outcome="rolled_back")
    reads = [r.path for r in server.requests if r.method == "GET"]
    assert sorted(reads) == sorted(p for p in UIDS if "services" not in p)  # each object read once
    events = [r for r in server.requests if r.method == "POST"]
    assert all(r.path == "/api/v1/namespaces/shop/events" for r in events)
    bodies = [r.body for r in events]
    assert [(b["involvedObject"]["name"], b["reason"], b["type"]) for b in bodies] == [
        (name, reason, kind_type)
        for reason, kind_type in (("RolloutStarted", "Normal"), ("RolloutStepCompleted", "Normal"),
                                  ("RolloutAborted", "Warning"), ("RolloutRolledBack", "Warning"))
        for name in ("web-green", "web")]
    green = bodies[0]
    # what kubectl describe's field selector matches and what its table prints
    assert green["involvedObject"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-green",
                                       "namespace": "shop", "uid": "uid-green"}
    assert bodies[1]["involvedObject"]["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert bodies[1]["involvedObject"]["uid"] == "uid-route"
    assert green["source"] == {"component": "deploysim", "host": "ci-runner-7"}
    assert (green["reportingComponent"], green["reportingInstance"]) == ("deploysim", "ci-runner-7")
    assert green["count"] == 1 and green["firstTimestamp"] == green["lastTimestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|\+00:00)", green["firstTimestamp"])  # RFC 3339
    assert green["metadata"]["namespace"] == "shop"
    assert green["metadata"]["labels"] == {"deploysim.io/run": CTX.run_id}
    names = [b["metadata"]["name"] for b in bodies]
    assert len(set(names)) == len(names) and all(re.fullmatch(r"(web|web-green)\.[0-9a-f]+", x) for x in names)
    assert green["message"].startswith("Rollout started: canary rollout of web in shop")
    assert report["sinks"]["events"] == {"sent": 4, "failed": 0, "undelivered": 0, "created": 8}


def test_events_refused_by_rbac_are_reported_and_the_run_goes_on() -> None:
    with apiserver(events_status=403) as server:
        report = _run(server, [{"kind": "start", "step": 0, "reason": ""},
                               {"kind": "promote", "step": 2, "reason": "every step passed"}])
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 2 * len(OBJECTS)  # a refusal is not asked again
    assert [f["reason"] for f in report["failures"]] == ["RolloutStarted", "RolloutPromoted"]
    error = report["failures"][0]["error"]
    assert "Deployment/web-green: HTTP 403" in error and "deploy/rbac.yaml lets a runbook create events" in error


def test_an_api_answering_503_is_asked_again() -> None:
    seen: list[str] = []

    def script(request: Request, before: int) -> Answer:
        if request.method == "GET":
            return Answer(200, {"metadata": {"uid": "uid-green"}})
        seen.append(request.body["reason"])
        return Answer(503, {}) if len(seen) == 1 else Answer(201, request.body)

    with Receiver(script) as server:
        report = _run(server, [{"kind": "start", "step": 0, "reason": ""}], objects=(("Deployment", "web-green"),),
                      outcome="incomplete")
    assert seen == ["RolloutStarted", "RolloutStarted", "RolloutStopped"]
    assert report["sinks"]["events"]["failed"] == 0 and report["sinks"]["events"]["created"] == 2


def test_an_object_that_cannot_be_read_still_gets_its_event_without_a_uid() -> None:
    def script(request: Request, before: int) -> Answer:
        if request.method == "GET":
            return Answer(403, {"kind": "Status", "code": 403})
        return Answer(201, request.body)

    with Receiver(script) as server:
        _run(server, [{"kind": "start", "step": 0, "reason": ""}], objects=(("Service", "web"),), outcome="incomplete")
    events = [r.body for r in server.requests if r.method == "POST"]
    assert [e["reason"] for e in events] == ["RolloutStarted", "RolloutStopped"]
    for event in events:
        assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Service", "name": "web", "namespace": "shop"}


def test_the_end_after_a_promotion_is_no_event_and_a_run_id_that_is_no_label_value_is_not_a_label() -> None:
    ctx = RunContext("web", "shop", "rolling", "web:1", "web:2", ("rolling update",), "run id with spaces")
    with apiserver() as server:
        sink = KubeEvents(api_for(server), "shop", sending=FAST)
        notifier = Notifier([sink], ctx, objects=lambda: (("Deployment", "web-green"),))
        notifier.decision({"kind": "promote", "step": 1, "reason": "ok"})
        notifier.close(outcome="promoted")
    (event,) = [r.body for r in server.requests if r.method == "POST"]
    assert event["reason"] == "RolloutPromoted" and "labels" not in event["metadata"]


def test_the_objects_a_run_changed_start_with_the_candidates_deployment() -> None:
    world = SimpleNamespace(two_slots=True, stable_slot_cached=lambda: "blue",
                            slot_deployment=lambda slot: f"web-{slot}", workload="web", changes=[
                                Change(1.0, "Deployment/web-green", "spec.replicas", 0, 1),
                                Change(2.0, "HTTPRoute/web", "weights", 0, 25),
                                Change(3.0, "Deployment/web-green", "spec.replicas", 1, 4),
                                Change(4.0, "Deployment/web-blue", "spec.replicas", 4, 0)])
    assert changed_objects(world) == [("Deployment", "web-green"), ("HTTPRoute", "web"), ("Deployment", "web-blue")]
    rolling = SimpleNamespace(two_slots=False, workload="checkout", changes=[])
    assert changed_objects(rolling) == [("Deployment", "checkout")]


def test_a_runbooks_target_gives_the_notifier_its_sinks() -> None:
    scenario = load_scenario(overrides=["strategy.kind=canary"])
    target = SimpleNamespace(namespace="shop", events=True, grafana_url="https://grafana.example", grafana_token="t",
                             grafana_dashboard_uid=None,
                             webhooks=({"url": "https://hooks.example/x", "kind": "slack", "headers": {}},))
    with apiserver() as server:
        notifier = run_notifier(target, scenario, compile_plan(scenario), "r1", api_for(server))
        assert notifier.sinks == ["events", "grafana", "webhook 0 slack hooks.example"]
        notifier.close(outcome="incomplete")  # nothing was announced: no request leaves for the examples
    off = SimpleNamespace(namespace="shop", events=False)
    assert run_notifier(off, scenario, compile_plan(scenario), "r1", object()).sinks == []
