"""``fail_after``: a version whose ready pods fail that long after becoming ready (a crash loop).

Kubernetes' semantics, which the simulator follows and KWOK's pod-fail stage produces on a
cluster: the pod's phase becomes Failed, so it is not ready, leaves the endpoints, and is no
longer active for its ReplicaSet (pkg/controller/controller_utils.go ``IsPodActive`` /
``FilterActivePods``); ``manageReplicas`` (pkg/controller/replicaset/replica_set.go) then
creates a replacement, which starts from scratch and fails in turn.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubefake import FakeCluster, deployment, service
from kubernetes import client

from deploysim.controller import Action
from deploysim.errors import ScenarioError
from deploysim.kube import naming as n
from deploysim.kube.world import KubeWorld
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse
from deploysim.strategies import compile_plan

FAIL_AFTER = "deploysim.io/fail-after"
START = 60.0  # the rollout starts a minute in
STARTUP = 1.0
# one 25% step of a routed canary, held 8 s, then an analysis of 2 x 5 s: the plan the
# cluster test runs (tests/kube/test_faults_pods.py)
STEPS = [{"set_weight": 25}, {"pause": "8s"}, {"analysis": True}, {"set_weight": 100}]


def _scenario(candidate: dict[str, Any], steps: list[dict[str, Any]] = STEPS, stable: dict[str, Any] | None = None):
    return load_scenario(data={
        "service": "web", "replicas": 4, "duration": "4m", "resolution": "5s", "seed": 3, "start_at": START,
        "traffic": {"rps": 80, "shape": "constant"},
        "pod": {"startup": STARTUP, "startup_jitter": 0, "termination": "2s", "capacity_rps": 200},
        "stable": {"image": "web:1.0.0", "error_rate": 0.0, **(stable or {})},
        "candidate": {"image": "web:1.1.0", "error_rate": 0.0, **candidate},
        "strategy": {"kind": "canary", "traffic_router": True, "steps": steps, "progress_deadline_seconds": "25s",
                     "abort_scale_down_delay_seconds": "3s", "scale_down_delay_seconds": "3s",
                     "max_surge": 1, "max_unavailable": 0},
        "analysis": {"interval": "5s", "count": 2, "min_requests": 1, "consecutive_error_limit": 1,
                     "checks": [{"metric": "error_rate", "max": 0.05}]},
    })


def _changes(trace, column: str) -> list[tuple[float, int]]:
    """(time, value) each time ``column`` of a pod trace changes."""
    out: list[tuple[float, int]] = []
    for t, v in zip(trace["time"], trace[column], strict=True):
        if not out or out[-1][1] != v:
            out.append((float(t), int(v)))
    return out


def _last(trace, column: str, t: float) -> int:
    """``column`` of a pod trace as it stood at time ``t``, after every change made then."""
    return int(trace[trace["time"] <= t][column].iloc[-1])


# --- the scenario field --------------------------------------------------------------------------


def test_fail_after_is_a_duration_and_unset_by_default():
    assert load_scenario().candidate.fail_after is None
    assert load_scenario(overrides=["candidate.fail_after=1m30s"]).candidate.fail_after == 90.0
    assert load_scenario(overrides=["stable.fail_after=6"]).stable.fail_after == 6.0


@pytest.mark.parametrize(("value", "allowed"), [
    ("0", "must be greater than 0"),
    ("-5s", "cannot be negative"),
    ("soon", "a duration like 30s"),
    ("true", "a duration like 30s"),
])
def test_fail_after_refuses_what_is_not_a_positive_duration(value, allowed):
    with pytest.raises(ScenarioError) as err:
        load_scenario(overrides=[f"candidate.fail_after={value}"])
    assert "candidate.fail_after" in str(err.value) and allowed in str(err.value)


# --- the rehearsal -------------------------------------------------------------------------------


def test_a_canary_whose_candidate_fails_before_the_analysis_ends_is_rolled_back():
    rec = rehearse(_scenario({"fail_after": "6s"}), trace_pods=True)
    assert rec.summary["outcome"] == "rolled_back"
    kinds = [d["kind"] for d in rec.decisions]
    assert kinds.count("abort") == 1 and "promote" not in kinds
    abort = next(d for d in rec.decisions if d["kind"] == "abort")
    # caught by the analysis: while the failed pod's replacement starts the 25% routed to the
    # candidate finds no ready endpoint, and those requests fail
    assert abort["reason"].startswith("analysis") and "error_rate" in abort["reason"]
    # ready at 61 s (1 s startup), failed at 67 s, the replacement ready at 68 s
    trace = rec.pod_trace
    ready = _changes(trace, "ready_candidate")
    assert ready[:4] == [(0.0, 0), (START + STARTUP, 1), (START + STARTUP + 6, 0), (START + 2 * STARTUP + 6, 1)]
    at_failure = trace[trace["time"] == START + STARTUP + 6]
    # the failed pod is gone from its ReplicaSet's count and its replacement is already there
    assert set(at_failure["pods_candidate"]) == {1} and at_failure["available_candidate"].iloc[-1] == 0
    assert rec.timeline["ready_candidate"].iloc[-1] == 0
    assert rec.timeline["ready_stable"].iloc[-1] == 4


@pytest.mark.parametrize("candidate", [{}, {"fail_after": "1h"}], ids=["no-fail-after", "fails-after-the-run"])
def test_the_same_canary_is_promoted_when_the_candidate_does_not_fail_during_it(candidate):
    rec = rehearse(_scenario(candidate), trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    assert [d["kind"] for d in rec.decisions].count("abort") == 0
    # the one candidate pod of the 25% step stays ready from 61 s until the promotion
    ready = _changes(rec.pod_trace, "ready_candidate")
    assert ready[:2] == [(0.0, 0), (START + STARTUP, 1)] and ready[2][1] > 1
    assert rec.timeline["ready_candidate"].iloc[-1] == 4 and rec.timeline["pods_stable"].iloc[-1] == 0


def test_each_replacement_fails_in_turn_a_crash_loop():
    # nothing judges the 25% step: the failures go on for the whole 40 s pause
    rec = rehearse(_scenario({"fail_after": "6s"}, steps=[{"set_weight": 25}, {"pause": "40s"}]), trace_pods=True)
    trace = rec.pod_trace
    during = trace[(trace["time"] > START) & (trace["time"] < START + 40)]
    ready = _changes(during, "ready_candidate")
    # a cycle is the 1 s startup plus the 6 s until failure: ready at 61, 68, 75, ...
    ups = [t for t, v in ready if v == 1]
    downs = [t for t, v in ready if v == 0]
    assert ups[:5] == [START + STARTUP + 7 * k for k in range(5)]
    assert downs[:5] == [START + STARTUP + 6 + 7 * k for k in range(5)]
    # one pod at a time: a failed pod is replaced, not piled up beside its replacement
    assert set(during["pods_candidate"]) == {1}
    bins = rec.timeline[(rec.timeline["start"] >= START + 5) & (rec.timeline["time"] <= START + 40)]
    assert bins["failed_candidate"].sum() > 0 and bins["failed_stable"].sum() == 0


def test_a_stable_version_with_fail_after_fails_that_long_after_the_start():
    rec = rehearse(_scenario({}, stable={"fail_after": "30s"}), trace_pods=True)
    trace = rec.pod_trace
    # all four were serving when the world started; they fail together and come back together
    assert [_last(trace, "ready_stable", t) for t in (29.9, 30.0, 30.0 + STARTUP)] == [4, 0, 4]
    assert _last(trace, "pods_stable", 30.0) == 4  # replaced at once


# --- on a cluster: the KWOK annotation -----------------------------------------------------------

STABLE, CANDIDATE = "checkout:1.41.0", "checkout:1.42.0"
BLUE, GREEN = n.selector("checkout", "blue"), n.selector("checkout", "green")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    return FakeCluster().install(monkeypatch)


def _world(overrides: list[str], **names: str) -> KubeWorld:
    scenario = load_scenario(overrides=["replicas=4", f"stable.image={STABLE}", f"candidate.image={CANDIDATE}",
                                        *overrides])
    return KubeWorld(client.ApiClient(), "shop", scenario, compile_plan(scenario), "run-1", **names)


@pytest.mark.parametrize(("fail_after", "annotation"), [("6s", "6000ms"), ("1m30.25s", "90250ms"),
                                                        ("10us", "1ms"), (None, None)])
def test_a_rolling_update_gives_the_candidate_pods_the_kwok_fail_after(cluster, fail_after, annotation):
    cluster.add(deployment("web-api", {"app": "web-api"}, 4, STABLE))
    extra = [f"candidate.fail_after={fail_after}"] if fail_after else []
    _world(["strategy.kind=rolling", *extra], workload="web-api").apply(
        Action("rolling_update", {"version": "candidate"}))
    annotations = cluster.raw("Deployment", "web-api")["spec"]["template"]["metadata"]["annotations"]
    assert annotations.get(FAIL_AFTER) == annotation
    assert annotations["deploysim.io/never-ready"] == "false"


def test_a_canary_scale_gives_the_candidate_colour_the_kwok_fail_after(cluster):
    cluster.add(deployment("web-api", BLUE, 4, STABLE))
    cluster.add(deployment("web-api-next", GREEN, 0, STABLE))
    cluster.add(service("checkout", BLUE, {n.STABLE_SLOT_ANNOTATION: "blue"}))
    world = _world(["strategy.kind=canary", "strategy.traffic_router=true", "candidate.fail_after=6s"],
                   workload="web-api", second_workload="web-api-next")
    world.apply(Action("scale", {"version": "candidate", "replicas": 1}))
    template = cluster.raw("Deployment", "web-api-next")["spec"]["template"]
    assert template["metadata"]["annotations"][FAIL_AFTER] == "6000ms"
    assert FAIL_AFTER not in (cluster.raw("Deployment", "web-api")["spec"]["template"]["metadata"].get(
        "annotations") or {})
