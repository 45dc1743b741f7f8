"""Each traffic router against the kubernetes client's objects, through a fake API that
keeps what was written and records every call; the weight is always read back from it."""

from __future__ import annotations

import copy
import doctest
import importlib
from typing import Any, get_args

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.controller import Action
from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.kube.world import KubeWorld
from deploysim.plan import Plan, RoutingMode
from deploysim.routers import (
    ROUTERS,
    ROUTING,
    GatewayHTTPRouteRouter,
    ReplicaRatioRouter,
    RouteNames,
    ServiceSelectorRouter,
    router_for,
)
from deploysim.scenario import load_scenario

NS, SVC = "shop", "checkout"
NAMES = RouteNames(NS, SVC, SVC, "blue", "green", "checkout:2", run_id="r1")


class FakeAPI:
    """The calls the routers make on CoreV1Api, DiscoveryV1Api and CustomObjectsApi."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.services: dict[str, client.V1Service] = {}
        self.routes: dict[str, dict[str, Any]] = {}
        self.slices: list[client.V1EndpointSlice] = []
        self.pods: list[client.V1Pod] = []

    def _missing(self, kind: str, name: str) -> ApiException:
        return ApiException(status=404, reason=f"{kind} {name} not found")

    # CustomObjectsApi
    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> dict:
        self.calls.append(("get", f"{plural}/{name}"))
        assert (group, version, ns, plural) == (n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, NS, "httproutes")
        if name not in self.routes:
            raise self._missing("HTTPRoute", name)
        return copy.deepcopy(self.routes[name])

    def patch_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str,
                                       body: dict) -> dict:
        self.calls.append(("patch", f"{plural}/{name}"))
        self.patches.append((f"HTTPRoute/{name}", copy.deepcopy(body)))
        route = self.routes[name]
        route["spec"] = {**route["spec"], **body["spec"]}  # a merge patch replaces the rules list whole
        return copy.deepcopy(route)

    # CoreV1Api
    def read_namespaced_service(self, name: str, ns: str) -> client.V1Service:
        self.calls.append(("get", f"services/{name}"))
        if name not in self.services:
            raise self._missing("Service", name)
        return copy.deepcopy(self.services[name])

    def patch_namespaced_service(self, name: str, ns: str, body: dict) -> client.V1Service:
        self.calls.append(("patch", f"services/{name}"))
        if name not in self.services:
            raise self._missing("Service", name)
        self.patches.append((f"Service/{name}", copy.deepcopy(body)))
        svc = self.services[name]
        svc.spec.selector = {**(svc.spec.selector or {}), **body["spec"]["selector"]}
        return copy.deepcopy(svc)

    def list_namespaced_pod(self, ns: str, label_selector: str = "") -> client.V1PodList:
        self.calls.append(("list", f"pods?{label_selector}"))
        wanted = dict(kv.split("=") for kv in label_selector.split(",") if kv)
        return client.V1PodList(items=[p for p in self.pods
                                       if wanted.items() <= (p.metadata.labels or {}).items()])

    # DiscoveryV1Api
    def list_namespaced_endpoint_slice(self, ns: str, label_selector: str = "") -> client.V1EndpointSliceList:
        self.calls.append(("list", f"endpointslices?{label_selector}"))
        key, _, value = label_selector.partition("=")
        return client.V1EndpointSliceList(items=[s for s in self.slices if s.metadata.labels.get(key) == value])

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] == "patch"]


def service(name: str, selector: dict[str, str]) -> client.V1Service:
    return client.V1Service(metadata=client.V1ObjectMeta(name=name, namespace=NS),
                            spec=client.V1ServiceSpec(selector=dict(selector)))


def httproute(*rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": SVC, "namespace": NS},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": refs} for refs in rules]}}


# --- Gateway API HTTPRoute --------------------------------------------------------------------


def gateway(api: FakeAPI) -> tuple[GatewayHTTPRouteRouter, list[tuple]]:
    notes: list[tuple] = []
    router = GatewayHTTPRouteRouter(api, NS, SVC, "checkout-blue", "checkout-green",
                                    NAMES.run_annotation(), lambda *c: notes.append(c))
    return router, notes


@pytest.mark.parametrize(
    ("weight", "stable", "candidate"),
    [(0, 100, 0), (5, 95, 5), (25, 75, 25), (100, 0, 100), (33.4, 67, 33)],
)
def test_httproute_weights(weight, stable, candidate) -> None:
    api = FakeAPI()
    api.routes[SVC] = httproute([{"name": "checkout-blue", "port": 80, "weight": 100},
                                 {"name": "checkout-green", "port": 80, "weight": 0}])
    router, notes = gateway(api)
    router.set_weight(weight)
    refs = api.routes[SVC]["spec"]["rules"][0]["backendRefs"]
    assert refs == [{"name": "checkout-blue", "port": 80, "weight": stable},
                    {"name": "checkout-green", "port": 80, "weight": candidate}]
    assert api.routes[SVC]["spec"]["parentRefs"] == [{"name": "gw"}]  # the rest of the spec is kept
    assert router.observed_weight() == candidate
    assert api.patches[0][1]["metadata"] == {"annotations": {n.RUN_ANNOTATION: "r1"}}
    assert notes == [("HTTPRoute/checkout", "spec.rules[].backendRefs[].weight",
                      {"checkout-blue": 100, "checkout-green": 0},
                      {"checkout-blue": stable, "checkout-green": candidate})]


def test_httproute_sets_every_rule_and_leaves_other_backends() -> None:
    api = FakeAPI()
    api.routes[SVC] = httproute(
        [{"name": "checkout-blue", "weight": 90}, {"name": "checkout-green", "weight": 0},
         {"name": "maintenance", "weight": 10}],
        [{"name": "checkout-blue", "weight": 1}, {"name": "checkout-green", "weight": 1}],
    )
    router, _ = gateway(api)
    router.set_weight(20)
    first, second = (r["backendRefs"] for r in api.routes[SVC]["spec"]["rules"])
    assert [r["weight"] for r in first] == [80, 20, 10]
    assert [r["weight"] for r in second] == [80, 20]
    # the first rule's share: 20 of 110
    assert router.observed_weight() == pytest.approx(100 * 20 / 110)


@pytest.mark.parametrize(
    ("refs", "observed"),
    [
        ([{"name": "checkout-blue"}, {"name": "checkout-green"}], 50.0),  # no weight: 1 each
        ([{"name": "checkout-blue", "weight": 0}, {"name": "checkout-green", "weight": 0}], 0.0),
        ([{"name": "checkout-blue", "weight": 3}, {"name": "checkout-green", "weight": 1}], 25.0),
    ],
)
def test_httproute_observed_weight_is_read_from_the_stored_route(refs, observed) -> None:
    api = FakeAPI()
    api.routes[SVC] = httproute(refs)
    router, _ = gateway(api)
    assert router.observed_weight() == observed
    assert api.calls == [("get", "httproutes/checkout")]


def test_httproute_without_the_colours_is_an_error_naming_them() -> None:
    api = FakeAPI()
    api.routes[SVC] = httproute([{"name": "legacy", "weight": 100}])
    router, _ = gateway(api)
    with pytest.raises(ClusterError, match="HTTPRoute shop/checkout: no rule has a backendRef naming Service "
                                           "checkout-blue or checkout-green"):
        router.set_weight(5)
    assert api.writes() == []
    with pytest.raises(ValueError, match=r"weight: got 101; must be within 0-100"):
        router.set_weight(101)


def test_httproute_reset_sends_everything_to_stable() -> None:
    api = FakeAPI()
    api.routes[SVC] = httproute([{"name": "checkout-blue", "weight": 50}, {"name": "checkout-green", "weight": 50}])
    router, _ = gateway(api)
    router.reset()
    assert [r["weight"] for r in api.routes[SVC]["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    assert router.observed_weight() == 0.0


# --- Service selector (blue-green) ------------------------------------------------------------


def blue_green(api: FakeAPI) -> tuple[ServiceSelectorRouter, list[tuple]]:
    notes: list[tuple] = []
    router = ServiceSelectorRouter(api, NS, SVC, "checkout-preview", "blue", "green",
                                   NAMES.run_annotation(), lambda *c: notes.append(c))
    return router, notes


@pytest.mark.parametrize(
    ("weight", "active", "preview", "observed"),
    # a share between (a Flagger promotion) moves users to the candidate's colour: a selector
    # cannot split, and the stable colour is the one being scaled down
    [(0, "blue", "green", 0.0), (50, "green", "blue", 100.0), (99, "green", "blue", 100.0),
     (100, "green", "blue", 100.0)],
)
def test_blue_green_switch_moves_the_selectors(weight, active, preview, observed) -> None:
    api = FakeAPI()
    api.services[SVC] = service(SVC, n.selector(SVC, "blue"))
    api.services["checkout-preview"] = service("checkout-preview", n.selector(SVC, "green"))
    router, notes = blue_green(api)
    router.set_weight(weight)
    assert api.services[SVC].spec.selector == {n.APP_LABEL: SVC, n.SLOT_LABEL: active}
    assert api.services["checkout-preview"].spec.selector == {n.APP_LABEL: SVC, n.SLOT_LABEL: preview}
    assert router.observed_weight() == observed
    switched = active == "green"
    assert notes == ([("Service/checkout", f"spec.selector[{n.SLOT_LABEL}]", "blue", "green")] if switched else [])
    # the active Service is patched only when it changes; the preview always follows
    assert api.writes() == ([("patch", "services/checkout")] if switched else []) + \
        [("patch", "services/checkout-preview")]


def test_blue_green_rollback_switches_back_and_needs_no_preview() -> None:
    api = FakeAPI()
    api.services[SVC] = service(SVC, n.selector(SVC, "green"))
    router, notes = blue_green(api)
    router.reset()
    assert api.services[SVC].spec.selector[n.SLOT_LABEL] == "blue"
    assert router.observed_weight() == 0.0
    assert notes == [("Service/checkout", f"spec.selector[{n.SLOT_LABEL}]", "green", "blue")]
    assert api.patches[0][1]["metadata"] == {"annotations": {n.RUN_ANNOTATION: "r1"}}


# --- replica ratio ----------------------------------------------------------------------------


def pod(name: str, image: str, slot: str) -> client.V1Pod:
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=n.selector(SVC, slot)),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=image)]))


def endpoint(pod_name: str, ready: bool | None) -> client.V1Endpoint:
    return client.V1Endpoint(addresses=["10.0.0.1"], conditions=client.V1EndpointConditions(ready=ready),
                             target_ref=client.V1ObjectReference(kind="Pod", name=pod_name))


def endpoint_slice(*endpoints: client.V1Endpoint, service_name: str = SVC) -> client.V1EndpointSlice:
    return client.V1EndpointSlice(address_type="IPv4", endpoints=list(endpoints),
                                  metadata=client.V1ObjectMeta(labels={"kubernetes.io/service-name": service_name}))


def replica_ratio(api: FakeAPI) -> ReplicaRatioRouter:
    return ReplicaRatioRouter(api, api, NS, SVC, "checkout:2")


@pytest.mark.parametrize(
    ("stable_ready", "candidate_ready", "not_ready", "weight"),
    [(3, 1, 0, 25.0), (3, 1, 2, 25.0), (9, 1, 0, 10.0), (0, 2, 1, 100.0), (0, 0, 3, 0.0), (2, 2, 0, 50.0)],
)
def test_replica_ratio_is_the_share_of_ready_endpoints(stable_ready, candidate_ready, not_ready, weight) -> None:
    api = FakeAPI()
    api.services[SVC] = service(SVC, n.selector(SVC))
    eps = []
    for i in range(stable_ready):
        api.pods.append(pod(f"s{i}", "checkout:1", "blue"))
        eps.append(endpoint(f"s{i}", True if i % 2 else None))  # unset ready reads as ready
    for i in range(candidate_ready):
        api.pods.append(pod(f"c{i}", "checkout:2", "green"))
        eps.append(endpoint(f"c{i}", True))
    for i in range(not_ready):
        api.pods.append(pod(f"x{i}", "checkout:2", "green"))
        eps.append(endpoint(f"x{i}", False))
    # split over two slices, and another Service's slice that must not count
    api.slices = [endpoint_slice(*eps[::2]), endpoint_slice(*eps[1::2]),
                  endpoint_slice(endpoint("s0", True), service_name="other")]
    router = replica_ratio(api)
    assert router.observed_weight() == weight
    assert ("list", "endpointslices?kubernetes.io/service-name=checkout") in api.calls


def test_replica_ratio_routes_nothing() -> None:
    api = FakeAPI()
    router = replica_ratio(api)
    router.set_weight(25)
    router.reset()
    assert api.calls == []


def test_replica_ratio_ignores_endpoints_of_pods_already_gone() -> None:
    api = FakeAPI()
    api.services[SVC] = service(SVC, n.selector(SVC))
    api.pods = [pod("s0", "checkout:1", "blue")]
    api.slices = [endpoint_slice(endpoint("s0", True), endpoint("c-gone", True))]
    assert replica_ratio(api).ready_endpoints() == {"stable": 1, "candidate": 0}


def test_replica_ratio_without_the_service_is_an_error_naming_it() -> None:
    with pytest.raises(ClusterError, match="Service shop/checkout does not exist; without a traffic router"):
        replica_ratio(FakeAPI()).observed_weight()


# --- the registry and the world ---------------------------------------------------------------


def test_every_routing_mode_has_a_router() -> None:
    assert set(ROUTING) == set(get_args(RoutingMode))
    # every mode has a router; the routers beyond them are chosen by name (Plan.router)
    assert set(ROUTING.values()) <= set(ROUTERS)
    assert set(ROUTERS) - set(ROUTING.values()) == {"nginx-ingress"}
    assert router_for("nginx-ingress", client.ApiClient(), NAMES).name == "nginx-ingress"
    with pytest.raises(ValueError, match="routing: got 'nginx'; allowed: "):
        router_for("nginx", client.ApiClient(), NAMES)


@pytest.mark.parametrize(
    ("strategy", "routing", "kind"),
    [("blue-green", "active", ServiceSelectorRouter), ("canary", "replica_ratio", ReplicaRatioRouter),
     ("canary", "router", GatewayHTTPRouteRouter), ("rolling", "replica_ratio", ReplicaRatioRouter)],
)
def test_the_world_routes_through_the_plans_router(strategy, routing, kind) -> None:
    plan = Plan(strategy=strategy, replicas=4, steps=(), routing=routing)
    world = KubeWorld(client.ApiClient(), NS, load_scenario(overrides=[f"service={SVC}"]), plan, "r1",
                      route="checkout-route")
    world.saved["stable_slot"] = "green"  # as a resumed run has it: no read needed
    router = world.router
    assert type(router) is kind and world.router is router
    if kind is GatewayHTTPRouteRouter:
        assert (router.route, router.stable_service, router.candidate_service) == \
            ("checkout-route", "checkout-green", "checkout-blue")
    if kind is ServiceSelectorRouter:
        assert (router.stable_slot, router.candidate_slot, router.preview_service) == \
            ("green", "blue", "checkout-preview")


def test_the_world_asks_its_router_and_notes_its_changes() -> None:
    class Recording:
        name, exact = "recording", True

        def __init__(self) -> None:
            self.set: list[float] = []

        def set_weight(self, weight: float) -> None:
            self.set.append(weight)
            world._note_change("HTTPRoute/x", "weight", 0, weight)

        def observed_weight(self) -> float:
            return 42.0

    plan = Plan(strategy="canary", replicas=4, steps=(), routing="router")
    world = KubeWorld(client.ApiClient(), NS, load_scenario(overrides=[f"service={SVC}"]), plan, "r1")
    world._router = Recording()
    world.apply(Action("route", {"weight": 25}))
    assert world._router.set == [25.0]
    assert world.weight() == 42.0
    assert [(c.object, c.new) for c in world.changes] == [("HTTPRoute/x", 25.0)]


@pytest.mark.parametrize("module", [
    "deploysim.routers", "deploysim.routers.names", "deploysim.routers.gateway_httproute",
    "deploysim.routers.service_selector", "deploysim.routers.replica_ratio",
])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
