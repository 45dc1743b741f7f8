"""The cluster world over the official client's models, against an in-memory API (no cluster).

The service users reach is ``checkout``; its workloads are named otherwise (``web-api``,
``web-api-next``, HTTPRoute ``checkout-route``), and objects with the names the defaults
would pick (Deployment ``checkout``, ``checkout-blue``, HTTPRoute ``checkout``) exist as
decoys, so a world that falls back to them is seen touching them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubefake import FakeCluster, deployment, httproute, pod, replica_set, service
from kubernetes import client

from deploysim.controller import Action, VersionState
from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.kube.world import KubeWorld
from deploysim.scenario import load_scenario
from deploysim.strategies import compile_plan

NS = "shop"
STABLE, CANDIDATE = "checkout:1.41.0", "checkout:1.42.0"
ROLLING = ["strategy.kind=rolling"]
CANARY = ["strategy.kind=canary", "strategy.traffic_router=true"]
RATIO = ["strategy.kind=canary", "strategy.traffic_router=false"]
BLUE_GREEN = ["strategy.kind=blue-green"]
COLOURS = {"workload": "web-api", "second_workload": "web-api-next", "route": "checkout-route"}
WEB = {"app": "web-api"}
BLUE, GREEN = n.selector("checkout", "blue"), n.selector("checkout", "green")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    return FakeCluster().install(monkeypatch)


def make_world(overrides: list[str], **names: Any) -> KubeWorld:
    scenario = load_scenario(overrides=["replicas=4", *overrides])
    return KubeWorld(client.ApiClient(), NS, scenario, compile_plan(scenario), "run-1", clock=Clock(), **names)


def rolling_app(cluster: FakeCluster, *replica_sets: client.V1ReplicaSet, image: str = STABLE) -> None:
    """Deployment web-api behind Service checkout, and a decoy Deployment named checkout."""
    cluster.add(deployment("web-api", WEB, 4, image))
    cluster.add(deployment("checkout", {"app": "checkout"}, 4, "decoy:9"))
    cluster.add(replica_set("checkout", "checkout-1", {"app": "checkout"}, "decoy:9", 4, replicas=4))
    cluster.add(service("checkout", WEB))
    for rs in replica_sets or (replica_set("web-api", "web-api-1", WEB, STABLE, 4, replicas=4, ready_replicas=4,
                                           available_replicas=4, observed_generation=1),):
        cluster.add(rs)


def colour_app(cluster: FakeCluster, stable_status: dict[str, int] | None = None,
               candidate_status: dict[str, int] | None = None, weights: tuple[int, int] = (100, 0),
               active: str = "blue") -> None:
    """web-api (blue, stable) and web-api-next (green), Services, the HTTPRoute, and decoys."""
    full = {"replicas": 4, "updated_replicas": 4, "ready_replicas": 4, "available_replicas": 4}
    cluster.add(deployment("web-api", BLUE, 4, STABLE, **(full if stable_status is None else stable_status)))
    cluster.add(deployment("web-api-next", GREEN, 0, STABLE, **(candidate_status or {})))
    for decoy in ("checkout-blue", "checkout-green"):
        cluster.add(deployment(decoy, {"app": decoy}, 4, "decoy:9"))
    cluster.add(service("checkout", BLUE if active == "blue" else GREEN if active == "green" else
                        n.selector("checkout"), {n.STABLE_SLOT_ANNOTATION: "blue"}))
    cluster.add(service("checkout-blue", BLUE))
    cluster.add(service("checkout-green", GREEN))
    cluster.add(service("checkout-preview", GREEN))
    cluster.add(httproute("checkout-route", {"checkout-blue": weights[0], "checkout-green": weights[1]}))
    cluster.add(httproute("checkout", {"checkout-blue": 50, "checkout-green": 50}))


# --- 1. names ------------------------------------------------------------------------------------


def test_rolling_world_reads_and_changes_only_its_workload(cluster: FakeCluster) -> None:
    rolling_app(cluster)
    world = make_world(ROLLING, workload="web-api")
    world.preflight()
    world.observe()
    world.apply(Action("rolling_update", {"version": "candidate"}))
    world.observe()
    world.apply(Action("rolling_update", {"version": "stable"}))
    # the Service users reach is read for the weight (its ready endpoints), never changed
    assert cluster.touched("read") == {"Deployment/web-api", "Service/checkout"}
    assert cluster.touched("patch", "replace", "create") == {"Deployment/web-api"}
    assert cluster.listed() == {"ReplicaSet?app=web-api", "Pod?app=web-api",
                                "EndpointSlice?kubernetes.io/service-name=checkout"}
    assert {c.object for c in world.changes} == {"Deployment/web-api"}
    assert cluster.raw("Deployment", "checkout")["spec"]["template"]["spec"]["containers"][0]["image"] == "decoy:9"


def test_canary_world_reads_and_changes_only_the_objects_it_was_named(cluster: FakeCluster) -> None:
    colour_app(cluster)
    world = make_world(CANARY, **COLOURS)
    world.preflight()
    world.observe()
    world.apply(Action("scale", {"version": "candidate", "replicas": 1}))
    world.apply(Action("route", {"weight": 25}))
    world.observe()
    world.finish({"outcome": "promoted"})
    assert cluster.touched("read") == {"Deployment/web-api", "Deployment/web-api-next", "Service/checkout",
                                       "Service/checkout-blue", "Service/checkout-green",
                                       "HTTPRoute/checkout-route"}
    assert cluster.touched("patch", "replace", "create") == {
        "Deployment/web-api-next", "HTTPRoute/checkout-route", "Service/checkout"}
    assert {c.object for c in world.changes} == {"Deployment/web-api-next", "HTTPRoute/checkout-route",
                                                 "Service/checkout"}
    assert cluster.listed() == {f"Pod?{n.label_selector(BLUE)}", f"Pod?{n.label_selector(GREEN)}"}


@pytest.mark.parametrize(("overrides", "names", "remove", "missing"), [
    (ROLLING, {"workload": "web-api"}, [("Deployment", "web-api")], {"Deployment shop/web-api"}),
    # the weight is the share of the Service's ready endpoints: it must exist too
    (ROLLING, {"workload": "web-api"}, [("Service", "checkout")], {"Service shop/checkout"}),
    (CANARY, COLOURS, [("Deployment", "web-api-next"), ("HTTPRoute", "checkout-route")],
     {"Deployment shop/web-api-next", "HTTPRoute shop/checkout-route"}),
    (CANARY, COLOURS, [("Service", "checkout-green")], {"Service shop/checkout-green"}),
    (BLUE_GREEN, COLOURS, [("Service", "checkout-preview"), ("Deployment", "web-api")],
     {"Service shop/checkout-preview", "Deployment shop/web-api"}),
])
def test_preflight_names_every_missing_object(cluster: FakeCluster, overrides: list[str], names: dict[str, str],
                                              remove: list[tuple[str, str]], missing: set[str]) -> None:
    rolling_app(cluster) if overrides is ROLLING else colour_app(cluster)
    for kind, name in remove:
        del cluster.objects[(kind, NS, name)]
    with pytest.raises(ClusterError) as info:
        make_world(overrides, **names).preflight()
    assert set(re.findall(r"(?:Deployment|Service|HTTPRoute) shop/[\w-]+", str(info.value))) == missing


def test_preflight_says_what_the_run_will_change(cluster: FakeCluster) -> None:
    colour_app(cluster)
    lines = make_world(CANARY, **COLOURS).preflight()
    assert f"Deployment web-api-next: image -> {CANDIDATE}, replicas 0 -> up to 4" in lines
    assert any(line.startswith("HTTPRoute checkout-route: weights checkout-blue / checkout-green") for line in lines)
    assert "Deployment web-api: replicas -> 0 when promoted" in lines


# --- 2. observe ----------------------------------------------------------------------------------


def rs(name: str, image: str, spec: int, replicas: int, ready: int, available: int, generation: int = 1,
       observed: int = 1, owner: str = "web-api") -> client.V1ReplicaSet:
    return replica_set(owner, name, WEB, image, spec, generation=generation, replicas=replicas,
                       ready_replicas=ready, available_replicas=available, observed_generation=observed)


@pytest.mark.parametrize(("sets", "stable", "candidate"), [
    # spec, status replicas, ready, available per ReplicaSet
    ([rs("a", STABLE, 2, 2, 2, 2), rs("b", CANDIDATE, 3, 3, 2, 1)], VersionState(2, 2, 2, 2), VersionState(3, 3, 2, 1)),
    # two old ReplicaSets (an earlier rollout) both count as the stable version
    ([rs("a", "checkout:1.40.0", 1, 1, 1, 1), rs("a2", STABLE, 2, 2, 2, 2), rs("b", CANDIDATE, 1, 1, 1, 1)],
     VersionState(3, 3, 3, 3), VersionState(1, 1, 1, 1)),
    # a ReplicaSet of another Deployment with the same labels is not this workload's
    ([rs("a", STABLE, 4, 4, 4, 4), rs("x", CANDIDATE, 5, 5, 5, 5, owner="web-api-canary")],
     VersionState(4, 4, 4, 4), VersionState()),
    # the ReplicaSet controller has not seen the latest spec: not settled
    ([rs("a", STABLE, 1, 1, 1, 1), rs("b", CANDIDATE, 3, 3, 3, 3, generation=2, observed=1)],
     VersionState(1, 1, 1, 1), VersionState(3, -1, 3, 3)),
])
def test_versions_from_replica_sets(cluster: FakeCluster, sets: list[client.V1ReplicaSet], stable: VersionState,
                                    candidate: VersionState) -> None:
    rolling_app(cluster, *sets, image=CANDIDATE)
    obs = make_world(ROLLING, workload="web-api").observe()
    assert (obs.stable, obs.candidate) == (stable, candidate)


def test_a_deployment_whose_controller_lags_leaves_the_candidate_unsettled(cluster: FakeCluster) -> None:
    rolling_app(cluster, rs("a", STABLE, 0, 0, 0, 0), rs("b", CANDIDATE, 4, 4, 4, 4), image=CANDIDATE)
    world = make_world(ROLLING, workload="web-api")
    assert world.observe().candidate.settled is True
    cluster.raw("Deployment", "web-api")["metadata"]["generation"] = 2  # a spec change not yet observed
    obs = world.observe()
    assert obs.candidate.settled is False
    assert obs.candidate.available == 4


@pytest.mark.parametrize(("stable_status", "candidate_status", "stable", "candidate"), [
    ({"replicas": 4, "updated_replicas": 4, "ready_replicas": 4, "available_replicas": 4},
     {"replicas": 2, "updated_replicas": 2, "ready_replicas": 2, "available_replicas": 1},
     VersionState(4, 4, 4, 4), VersionState(0, 2, 2, 1)),
    # a rollout inside the colour (updated < replicas) is not settled
    ({"replicas": 4, "updated_replicas": 3, "ready_replicas": 4, "available_replicas": 4}, {},
     VersionState(4, -1, 4, 4), VersionState(0, 0, 0, 0)),
    # the colour's Deployment controller has not seen the latest spec
    ({"replicas": 4, "updated_replicas": 4, "ready_replicas": 4, "available_replicas": 4,
      "observed_generation": 0}, {}, VersionState(4, -1, 4, 4), VersionState(0, 0, 0, 0)),
])
def test_versions_from_the_colour_deployments(cluster: FakeCluster, stable_status: dict[str, int],
                                              candidate_status: dict[str, int], stable: VersionState,
                                              candidate: VersionState) -> None:
    colour_app(cluster, stable_status, candidate_status)
    obs = make_world(CANARY, **COLOURS).observe()
    assert (obs.stable, obs.candidate) == (stable, candidate)


DEADLINE = client.V1DeploymentCondition(type="Progressing", status="False", reason="ProgressDeadlineExceeded")


def _with_deadline(cluster: FakeCluster, name: str, image: str) -> None:
    raw = cluster.raw("Deployment", name)
    raw["spec"]["template"]["spec"]["containers"][0]["image"] = image
    raw["status"]["conditions"] = [client.ApiClient().sanitize_for_serialization(DEADLINE)]


@pytest.mark.parametrize(("overrides", "name", "image", "exceeded"), [
    pytest.param(ROLLING, "web-api", CANDIDATE, True, id="rolling-candidate"),
    # the stable template's old condition is not this rollout's
    pytest.param(ROLLING, "web-api", STABLE, False, id="rolling-stable"),
    pytest.param(CANARY, "web-api-next", CANDIDATE, True, id="colour-candidate"),
    # the idle colour still carries an earlier failed run's condition before it is scaled up
    pytest.param(CANARY, "web-api-next", "checkout:1.40.0", False, id="colour-idle-stale"),
    pytest.param(CANARY, "web-api", STABLE, False, id="colour-stable"),
])
def test_progress_deadline_condition_counts_only_for_the_candidate_template(
        cluster: FakeCluster, overrides: list[str], name: str, image: str, exceeded: bool) -> None:
    if overrides is ROLLING:
        rolling_app(cluster, rs("a", STABLE, 4, 4, 4, 4))
        world = make_world(overrides, workload="web-api")
    else:
        colour_app(cluster)
        world = make_world(overrides, **COLOURS)
    _with_deadline(cluster, name, image)
    assert world.observe().progress_deadline_exceeded is exceeded


def test_terminating_pods_of_the_workload_are_counted(cluster: FakeCluster) -> None:
    rolling_app(cluster, rs("a", STABLE, 2, 2, 2, 2), rs("b", CANDIDATE, 2, 3, 1, 1), image=CANDIDATE)
    for i, deleting in enumerate([False, False, True, True, False]):
        cluster.add(pod(f"web-api-{i}", WEB, STABLE, deleting=deleting))
    for i in range(3):  # another workload's pods shutting down are not this one's
        cluster.add(pod(f"checkout-{i}", {"app": "checkout"}, "decoy:9", deleting=True))
    world = make_world(ROLLING, workload="web-api")
    world.observe()
    sample = world.emitted.states[-1]
    assert (sample.pods, sample.ready, sample.available, sample.terminating) == ((2, 3), (2, 1), (2, 1), 2)


def _colour_pods(cluster: FakeCluster, stable_ready: int, candidate_ready: int) -> None:
    for i in range(stable_ready):
        cluster.add(pod(f"web-api-{i}", BLUE, STABLE))
    for i in range(candidate_ready):
        cluster.add(pod(f"web-api-next-{i}", GREEN, CANDIDATE))


@pytest.mark.parametrize(("overrides", "setup", "weight"), [
    (CANARY, {"weights": (95, 5)}, 5.0),
    (CANARY, {"weights": (0, 100)}, 100.0),
    (BLUE_GREEN, {"active": "green"}, 100.0),
    (BLUE_GREEN, {"active": "blue"}, 0.0),
    (RATIO, {"active": "all", "stable_status": {"replicas": 3, "updated_replicas": 3, "ready_replicas": 3},
             "candidate_status": {"replicas": 1, "updated_replicas": 1, "ready_replicas": 1}}, 25.0),
])
def test_weight_as_the_routing_says(cluster: FakeCluster, overrides: list[str], setup: dict[str, Any],
                                    weight: float) -> None:
    colour_app(cluster, **setup)
    _colour_pods(cluster, 3, 1)
    world = make_world(overrides, **COLOURS)
    assert world.observe().weight == weight
    assert world.emitted.states[-1].weight == weight


# --- 3. apply ------------------------------------------------------------------------------------

KNOBS = ["strategy.max_surge=50%", "strategy.max_unavailable=0", "strategy.min_ready_seconds=5s",
         "strategy.progress_deadline_seconds=90s"]


def _spec(cluster: FakeCluster, name: str) -> dict[str, Any]:
    return cluster.raw("Deployment", name)["spec"]


def test_rolling_update_sets_the_image_and_the_plan_knobs(cluster: FakeCluster) -> None:
    rolling_app(cluster)
    world = make_world([*ROLLING, *KNOBS], workload="web-api")
    world.apply(Action("rolling_update", {"version": "candidate"}))
    spec = _spec(cluster, "web-api")
    assert spec["template"]["spec"]["containers"][0]["image"] == CANDIDATE
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 0}}
    assert (spec["minReadySeconds"], spec["progressDeadlineSeconds"], spec["paused"]) == (5, 90, False)
    assert cluster.raw("Deployment", "web-api")["metadata"]["annotations"][n.RUN_ANNOTATION] == "run-1"
    assert [c.to_dict() | {"at": 0} for c in world.changes] == [
        {"at": 0, "object": "Deployment/web-api", "field": "spec.template.spec.containers[0].image",
         "old": STABLE, "new": CANDIDATE}]


def test_rollback_restores_the_saved_template_and_strategy_exactly(cluster: FakeCluster) -> None:
    rolling_app(cluster)
    raw = cluster.raw("Deployment", "web-api")
    raw["spec"]["template"]["metadata"]["annotations"] = {"team": "payments"}
    raw["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    before = {k: v for k, v in raw["spec"].items() if k in ("template", "strategy")}
    world = make_world([*ROLLING, *KNOBS], workload="web-api")
    world.apply(Action("rolling_update", {"version": "candidate"}))
    assert set(_spec(cluster, "web-api")["template"]["metadata"]["annotations"]) > {"team"}
    world.apply(Action("rolling_update", {"version": "stable"}))
    spec = _spec(cluster, "web-api")
    assert {"template": spec["template"], "strategy": spec["strategy"]} == before
    assert [(c.old, c.new) for c in world.changes] == [(STABLE, CANDIDATE), (CANDIDATE, STABLE)]


@pytest.mark.parametrize(("version", "replicas", "name", "image"), [
    ("candidate", 2, "web-api-next", CANDIDATE),
    ("candidate", 0, "web-api-next", STABLE),  # scaling the idle colour down leaves its image
    ("stable", 0, "web-api", STABLE),
    ("stable", 4, "web-api", STABLE),
])
def test_scale_scales_the_right_colour(cluster: FakeCluster, version: str, replicas: int, name: str,
                                       image: str) -> None:
    colour_app(cluster)
    ports = [{"containerPort": 8080}]
    for dep in ("web-api", "web-api-next"):
        _spec(cluster, dep)["template"]["spec"]["containers"][0]["ports"] = ports
    world = make_world([*CANARY, *KNOBS], **COLOURS)
    world.apply(Action("scale", {"version": version, "replicas": replicas}))
    other = "web-api" if name == "web-api-next" else "web-api-next"
    spec = _spec(cluster, name)
    container = spec["template"]["spec"]["containers"][0]
    assert (spec["replicas"], container["image"], container["ports"]) == (replicas, image, ports)
    assert (spec["minReadySeconds"], spec["progressDeadlineSeconds"]) == (5, 90)
    assert _spec(cluster, other)["replicas"] == (0 if other == "web-api-next" else 4)
    assert _spec(cluster, other)["template"]["spec"]["containers"][0]["image"] == STABLE
    fields = {c.field for c in world.changes}
    assert fields == ({"spec.replicas", "spec.template.spec.containers[0].image"} if image == CANDIDATE
                      else {"spec.replicas"})


@pytest.mark.parametrize(("weight", "blue", "green"), [(5, 95, 5), (33.3, 67, 33), (12.5, 88, 12), (100, 0, 100),
                                                       (0, 100, 0)])
def test_route_writes_httproute_weights_that_sum_to_100(cluster: FakeCluster, weight: float, blue: int,
                                                        green: int) -> None:
    colour_app(cluster)
    world = make_world(CANARY, **COLOURS)
    world.apply(Action("route", {"weight": weight}))
    refs = cluster.raw("HTTPRoute", "checkout-route")["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"checkout-blue": blue, "checkout-green": green}
    assert all(r["port"] == 80 for r in refs)
    assert world.observe().weight == pytest.approx(green)
    assert cluster.raw("HTTPRoute", "checkout")["spec"]["rules"][0]["backendRefs"][0]["weight"] == 50


def test_route_switches_the_service_selectors(cluster: FakeCluster) -> None:
    colour_app(cluster)
    world = make_world(BLUE_GREEN, **COLOURS)
    selectors = []
    # 0 stays, 100 switches, 0 switches back; a share between (a Flagger promotion) moves
    # users to the candidate's colour, as a selector cannot split
    for weight in (0, 100, 0, 50):
        world.apply(Action("route", {"weight": weight}))
        selectors.append(tuple(cluster.raw("Service", s)["spec"]["selector"][n.SLOT_LABEL]
                               for s in ("checkout", "checkout-preview")))
    assert selectors == [("blue", "green"), ("green", "blue"), ("blue", "green"), ("green", "blue")]
    assert [(c.object, c.old, c.new) for c in world.changes] == [
        ("Service/checkout", "blue", "green"), ("Service/checkout", "green", "blue"),
        ("Service/checkout", "blue", "green")]


@pytest.mark.parametrize(("outcome", "slot"), [("promoted", "green"), ("rolled_back", "blue")])
def test_finish_swaps_the_stable_slot_only_after_a_promotion(cluster: FakeCluster, outcome: str, slot: str) -> None:
    colour_app(cluster)
    world = make_world(CANARY, **COLOURS)
    world.observe()
    world.finish({"outcome": outcome})
    annotations = cluster.raw("Service", "checkout")["metadata"]["annotations"]
    assert annotations[n.STABLE_SLOT_ANNOTATION] == slot
    assert len(world.changes) == (outcome == "promoted")
    # the next run sees green as its stable colour and rolls out to blue
    assert make_world(CANARY, **COLOURS).stable_slot() == slot
