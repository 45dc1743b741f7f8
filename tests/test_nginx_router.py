"""The NGINX Ingress canary router: the canary Ingress it builds (Argo Rollouts' worked cases), the
weight as ingress-nginx reads it, and the calls it makes, through tests/kubefake.py's API."""

from __future__ import annotations

import copy

import kubefake
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.routers.names import RouteNames
from deploysim.routers.nginx_ingress import (
    CANARY,
    CANARY_OF,
    CANARY_WEIGHT,
    CANARY_WEIGHT_TOTAL,
    INGRESS_CLASS,
    NginxIngressRouter,
    canary_ingress_name,
    canary_patch,
    canary_share,
    canary_weight,
    desired_canary,
    user_split,
)

NS, SVC = "shop", "checkout"
STABLE, CAND = "checkout-blue", "checkout-green"
CANARY_NAME = "checkout-checkout-canary"
NAMES = RouteNames(NS, SVC, SVC, "blue", "green", "checkout:2", run_id="r1")


def ingress(name: str, *paths: tuple[str, str], host: str = "shop.example", **annotations: str) -> dict:
    """An Ingress with one rule: (path, Service) pairs on port 80."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"rules": [{"host": host, "http": {"paths": [
                {"path": p, "pathType": "Prefix", "backend": {"service": {"name": s, "port": {"number": 80}}}}
                for p, s in paths]}}]}}


class Cluster(kubefake.FakeCluster):
    """kubefake's cluster with Ingresses (networking.k8s.io/v1) besides its own kinds."""

    def __init__(self) -> None:
        super().__init__()
        self.NetworkingV1Api = kubefake._Api(self, client.NetworkingV1Api)


@pytest.fixture
def cluster(monkeypatch) -> Cluster:
    monkeypatch.setitem(kubefake.KINDS, "ingress", "Ingress")
    fake = Cluster()
    monkeypatch.setattr(client, "NetworkingV1Api", lambda api_client=None: fake.NetworkingV1Api)
    return fake


def router(cluster: Cluster, changes: list | None = None, **kw) -> NginxIngressRouter:
    """The router as the registry builds it, its changes noted in ``changes``."""
    noted = changes if changes is not None else []
    r = NginxIngressRouter.build(client.ApiClient(), NAMES, lambda *c: noted.append(c))
    for key, value in kw.items():
        setattr(r, key, value)
    return r


# --- names and weights as ingress-nginx reads them ---------------------------------------------


@pytest.mark.parametrize(("rollout", "stable", "want"), [
    ("rollout", "stable-ingress", "rollout-stable-ingress-canary"),  # Argo's nginx_test.go
    ("checkout", "checkout", "checkout-checkout-canary"),
    ("r", "x" * 300, ("r-" + "x" * 300)[:246] + "-canary"),  # cut to 253 characters
])
def test_canary_ingress_name(rollout, stable, want) -> None:
    assert canary_ingress_name(rollout, stable) == want
    assert len(want) <= 253


@pytest.mark.parametrize(("annotations", "want"), [
    ({CANARY: "true", CANARY_WEIGHT: "30"}, (30, 100)),
    ({CANARY: "True", CANARY_WEIGHT: "30"}, (30, 100)),  # strconv.ParseBool
    ({CANARY: "1", CANARY_WEIGHT: "0"}, (0, 100)),
    ({CANARY: "true"}, (0, 100)),  # no weight: 0, only headers or cookies would reach it
    ({CANARY: "true", CANARY_WEIGHT: "x"}, (0, 100)),  # does not parse: the default
    ({CANARY: "true", CANARY_WEIGHT: "300", CANARY_WEIGHT_TOTAL: "1000"}, (300, 1000)),
    ({CANARY: "true", CANARY_WEIGHT: "30", CANARY_WEIGHT_TOTAL: "100"}, (30, 100)),
    ({CANARY: "true", CANARY_WEIGHT: "30", CANARY_WEIGHT_TOTAL: "50"}, (30, 100)),  # balancer.lua: > 100 only
    ({CANARY: "false", CANARY_WEIGHT: "30"}, None),
    ({CANARY: "yes", CANARY_WEIGHT: "30"}, None),  # not a bool to Go
    ({CANARY_WEIGHT: "30"}, None),
    (None, None),
])
def test_canary_weight(annotations, want) -> None:
    assert canary_weight(annotations) == want


@pytest.mark.parametrize(("weight", "total", "share"), [
    (30, 100, 0.3), (0, 100, 0.0), (100, 100, 1.0), (150, 100, 1.0), (-1, 100, 0.0), (1, 1000, 0.001)])
def test_canary_share_is_math_random_total_at_most_weight(weight, total, share) -> None:
    assert canary_share(weight, total) == pytest.approx(share)
    # math.random(total) is uniform over 1..total
    assert canary_share(weight, total) == pytest.approx(sum(1 for r in range(1, total + 1) if r <= weight) / total)


def test_a_canary_joins_the_location_of_the_same_host_path_and_path_type() -> None:
    stable = ingress(SVC, ("/", STABLE))
    can = ingress(CANARY_NAME, ("/", CAND), **{CANARY: "true", CANARY_WEIGHT: "25"})
    split = user_split(stable, [stable, can], NS)
    assert [(s.service, s.share, s.canary, s.ingress, s.location_service) for s in split] == [
        (STABLE, 0.75, "", SVC, STABLE), (CAND, 0.25, f"{NS}-{CAND}-80", SVC, STABLE)]
    for other in (ingress(CANARY_NAME, ("/api", CAND), **{CANARY: "true", CANARY_WEIGHT: "25"}),  # another path
                  ingress(CANARY_NAME, ("/", CAND), host="other", **{CANARY: "true", CANARY_WEIGHT: "25"}),
                  ingress(CANARY_NAME, ("/", STABLE), **{CANARY: "true", CANARY_WEIGHT: "25"}),  # same upstream
                  ingress(CANARY_NAME, ("/", CAND), **{CANARY: "false", CANARY_WEIGHT: "25"})):
        assert [(s.service, s.share) for s in user_split(stable, [other], NS)] == [(STABLE, 1.0)]
    other_type = copy.deepcopy(can)
    other_type["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Exact"
    assert [(s.service, s.share) for s in user_split(stable, [other_type], NS)] == [(STABLE, 1.0)]
    assert user_split({"metadata": {"name": SVC}, "spec": {}}, [], NS) is None


# --- the canary Ingress (Argo's buildCanaryIngress) -----------------------------------------------


def test_the_canary_ingress_copies_the_rules_to_the_stable_service() -> None:
    stable = ingress(SVC, ("/", STABLE), ("/static", "cdn"), **{"annotation-key1": "annotation-value1",
                                                                INGRESS_CLASS: "nginx-foo"})
    stable["spec"]["rules"].append({"host": "other", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "other", "port": {"number": 80}}}}]}})
    stable["spec"]["ingressClassName"] = "nginx-ext"
    stable["spec"]["tls"] = [{"hosts": ["shop.example"], "secretName": "tls-secret-name"}]
    want = desired_canary(stable, CANARY_NAME, STABLE, CAND, 10)
    assert want["metadata"] == {"name": CANARY_NAME, "annotations": {
        INGRESS_CLASS: "nginx-foo", CANARY_OF: SVC, CANARY: "true", CANARY_WEIGHT: "10"}}
    assert want["spec"]["ingressClassName"] == "nginx-ext"
    assert want["spec"]["tls"] == stable["spec"]["tls"]
    # the rule naming the stable Service, its path renamed, the other path of that rule as it was
    (rule,) = want["spec"]["rules"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]] == [
        ("/", CAND), ("/static", "cdn")]
    assert stable["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == STABLE  # not changed
    assert desired_canary(stable, CANARY_NAME, STABLE, CAND, 10, 1000)["metadata"]["annotations"][
        CANARY_WEIGHT_TOTAL] == "1000"
    with pytest.raises(ValueError, match="no rule with a path to Service 'checkout-blue'"):
        desired_canary(ingress(SVC, ("/", "other")), CANARY_NAME, STABLE, CAND, 10)


def test_patches_as_argo_builds_them() -> None:
    stable = ingress(SVC, ("/", STABLE))
    current = desired_canary(stable, CANARY_NAME, STABLE, CAND, 10)
    # weight 10 -> 15: only the annotation (TestCanaryIngressPatchWeight)
    assert canary_patch(current, desired_canary(stable, CANARY_NAME, STABLE, CAND, 15)) == {
        "metadata": {"annotations": {CANARY_WEIGHT: "15"}}}
    # the stable path moved to /bar: the rules (TestCanaryIngressUpdateRoute)
    moved = ingress(SVC, ("/bar", STABLE))
    patch = canary_patch(current, desired_canary(moved, CANARY_NAME, STABLE, CAND, 10))
    assert list(patch) == ["spec"] and patch["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/bar"
    # nothing to change: no patch; an annotation it should not have: removed
    assert canary_patch(current, current) is None
    extra = copy.deepcopy(current)
    extra["metadata"]["annotations"][CANARY_WEIGHT_TOTAL] = "1000"
    assert canary_patch(extra, current) == {"metadata": {"annotations": {CANARY_WEIGHT_TOTAL: None}}}


# --- against the API -----------------------------------------------------------------------------


def test_set_weight_creates_then_patches_and_reads_back(cluster) -> None:
    cluster.add(ingress(SVC, ("/", STABLE)), NS)
    changes: list = []
    r = router(cluster, changes)
    assert (r.name, r.exact, r.stable_ingress, r.canary_ingress) == ("nginx-ingress", True, SVC, CANARY_NAME)
    assert r.needs() == [("Service", STABLE), ("Service", CAND), ("Ingress", SVC)]
    assert r.observed_weight() == 0.0  # no canary Ingress yet
    r.set_weight(30)
    made = cluster.raw("Ingress", CANARY_NAME, NS)
    assert made["metadata"]["annotations"] == {n.RUN_ANNOTATION: "r1", CANARY_OF: SVC, CANARY: "true",
                                               CANARY_WEIGHT: "30"}
    assert made["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == CAND
    assert r.observed_weight() == pytest.approx(30.0)
    cluster.calls.clear()
    r.set_weight(50.4)
    assert cluster.raw("Ingress", CANARY_NAME, NS)["metadata"]["annotations"][CANARY_WEIGHT] == "50"
    assert ("patch", "Ingress", CANARY_NAME) in cluster.calls
    assert ("patch", "Ingress", SVC) not in cluster.calls  # the stable Ingress is left alone
    cluster.calls.clear()
    r.set_weight(50)  # as it is: read, no patch
    assert [c for c in cluster.calls if c[0] != "read"] == []
    r.reset()
    assert r.observed_weight() == 0.0
    assert [(obj, old, new) for obj, _, old, new in changes] == [
        (f"Ingress/{CANARY_NAME}", None, "30"), (f"Ingress/{CANARY_NAME}", "30", "50"),
        (f"Ingress/{CANARY_NAME}", "50", "0")]


def test_a_weight_total_scales_the_weight(cluster) -> None:
    cluster.add(ingress(SVC, ("/", STABLE)), NS)
    r = router(cluster, weight_total=1000)
    r.set_weight(2.5)
    ann = cluster.raw("Ingress", CANARY_NAME, NS)["metadata"]["annotations"]
    assert (ann[CANARY_WEIGHT], ann[CANARY_WEIGHT_TOTAL]) == ("25", "1000")
    assert r.observed_weight() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="weight_total: got 50"):
        NginxIngressRouter(None, NS, SVC, CANARY_NAME, STABLE, CAND, weight_total=50)


def test_after_a_promotion_the_stable_ingress_is_pointed_at_the_new_stable_colour(cluster) -> None:
    # the last run left the stable Ingress on blue and the canary on green at 100; green is stable now
    cluster.add(ingress(SVC, ("/", STABLE)), NS)
    router(cluster).set_weight(100)
    swapped = RouteNames(NS, SVC, SVC, "green", "blue", "checkout:3", run_id="r2")
    changes: list = []
    r = NginxIngressRouter.build(client.ApiClient(), swapped, lambda *c: changes.append(c))
    assert r.observed_weight() == 0.0  # all of it on green, the stable colour
    r.set_weight(10)
    stable = cluster.raw("Ingress", SVC, NS)
    assert stable["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == CAND
    can = cluster.raw("Ingress", CANARY_NAME, NS)
    assert can["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == STABLE
    assert r.observed_weight() == pytest.approx(10.0)
    assert changes[0][0] == f"Ingress/{SVC}" and changes[0][2:] == (STABLE, CAND)


def test_errors_name_the_ingress_and_what_to_do(cluster) -> None:
    r = router(cluster)
    with pytest.raises(ClusterError, match=rf"Ingress {NS}/{SVC} does not exist; create it with a path to "
                                           f"Service {STABLE}"):
        r.set_weight(10)
    cluster.add(ingress(SVC, ("/", "other")), NS)
    with pytest.raises(ClusterError, match=rf"Ingress {NS}/{SVC}: .* give it a path whose backend is Service "
                                           f"{STABLE} or {CAND}"):
        r.set_weight(10)
    with pytest.raises(ValueError, match="weight: got 101"):
        r.set_weight(101)
    # a canary Ingress of that name made by someone else is not taken over
    cluster.objects.clear()
    cluster.add(ingress(SVC, ("/", STABLE)), NS)
    cluster.add(ingress(CANARY_NAME, ("/", CAND), **{CANARY: "true", CANARY_WEIGHT: "5"}), NS)
    with pytest.raises(ClusterError, match=f"{CANARY_NAME} exists but was not made for Ingress {SVC}"):
        r.set_weight(10)
    assert cluster.raw("Ingress", CANARY_NAME, NS)["metadata"]["annotations"][CANARY_WEIGHT] == "5"


def test_a_canary_made_meanwhile_is_read_and_patched(cluster, monkeypatch) -> None:
    cluster.add(ingress(SVC, ("/", STABLE)), NS)
    r = router(cluster)
    real_create = cluster.NetworkingV1Api.create_namespaced_ingress

    def racing_create(namespace, body, **kw):
        made = desired_canary(cluster.raw("Ingress", SVC, NS), CANARY_NAME, STABLE, CAND, 1)
        real_create(namespace, made)  # another reconcile got there first
        raise ApiException(status=409, reason="AlreadyExists")

    monkeypatch.setattr(r.networking, "create_namespaced_ingress", racing_create, raising=False)
    r.set_weight(20)
    assert cluster.raw("Ingress", CANARY_NAME, NS)["metadata"]["annotations"][CANARY_WEIGHT] == "20"
