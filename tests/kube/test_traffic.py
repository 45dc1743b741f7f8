"""The traffic exporter: routing rules and sampling as pure functions, then against real pods.

The cluster tests bring up their own local control plane (no Prometheus) for this module.
"""

from __future__ import annotations

import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from scipy.special import ndtri

from deploysim import cli
from deploysim.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, ClusterError
from deploysim.kube import localcluster
from deploysim.kube import naming as n
from deploysim.kube.traffic import (
    BUCKETS,
    CODES,
    ROUTES,
    VERSIONS,
    Exporter,
    Flow,
    Metrics,
    PodView,
    TickCounts,
    TrafficError,
    candidate_weight,
    outage_rate,
    plan_flows,
    preview_backend,
    sample_tick,
    start_exporter,
    user_backends,
)
from deploysim.routers.names import RouteNames
from deploysim.routers.nginx_ingress import NginxIngressRouter, canary_ingress_name
from deploysim.scenario import Scenario, load_scenario

APP = n.APP_LABEL
SLOT = n.SLOT_LABEL


def scenario(*overrides: str) -> Scenario:
    base = [
        "traffic.shape=constant", "stable.image=app:1", "candidate.image=app:2",
        "stable.error_rate=0.001", "pod.capacity_rps=1000",
    ]
    return load_scenario(overrides=base + list(overrides))


def pod(name: str, image: str, ready: bool = True, slot: str | None = None, svc: str = "s") -> PodView:
    labels = {APP: svc} | ({SLOT: slot} if slot else {})
    return PodView(name, labels, image, ready)


# --- routing (pure) ---------------------------------------------------------------------------

PODS = [
    pod("b1", "app:1", slot="blue"), pod("b2", "app:1", slot="blue"),
    pod("g1", "app:2", slot="green"), pod("g2", "app:2", ready=False, slot="green"),
]
SVCS = {"s": {APP: "s"}, "s-blue": {SLOT: "blue"}, "s-green": {SLOT: "green"}}


def route(*refs: tuple[str, int | None]) -> dict:
    return {"spec": {"rules": [{"backendRefs": [
        {"name": name, "port": 80} | ({} if w is None else {"weight": w}) for name, w in refs]}]}}


@pytest.mark.parametrize(
    ("services", "httproute", "expected"),
    [
        # the Service spreads requests over the ready pods it selects (g2 is not ready)
        (SVCS, None, [("s", 1.0, ("b1", "b2", "g1"), "stable")]),
        # no Service and no HTTPRoute: users reach nothing
        ({}, None, [("", 1.0, (), "stable")]),
        # a Service without a selector has no pod endpoints
        ({"s": None}, None, [("s", 1.0, (), "stable")]),
        # the HTTPRoute splits by weight, whatever the Service S selects
        (SVCS, route(("s-blue", 90), ("s-green", 10)),
         [("s-blue", 0.9, ("b1", "b2"), "stable"), ("s-green", 0.1, ("g1",), "candidate")]),
        # weight defaults to 1; a zero weight gets nothing
        (SVCS, route(("s-blue", None), ("s-green", None)),
         [("s-blue", 0.5, ("b1", "b2"), "stable"), ("s-green", 0.5, ("g1",), "candidate")]),
        (SVCS, route(("s-blue", 0), ("s-green", 100)), [("s-green", 1.0, ("g1",), "candidate")]),
        # every weight zero: nothing to send to
        (SVCS, route(("s-blue", 0), ("s-green", 0)), [("", 1.0, (), "stable")]),
        # a backend Service beside the colours that does not exist has no endpoints
        (SVCS, route(("s-blue", 1), ("s-red", 1)), [("s-blue", 0.5, ("b1", "b2"), "stable"),
                                                   ("s-red", 0.5, (), "stable")]),
        # a route naming neither colour is not this service's split (as the router reads it):
        # users reach nothing
        (SVCS, route(("s-red", 1)), [("", 1.0, (), "stable")]),
        # the first rule naming a colour splits, as the router reads its weight back
        (SVCS, {"spec": {"rules": [{"backendRefs": [{"name": "other", "weight": 1}]},
                                   {"backendRefs": [{"name": "s-blue", "weight": 75}, {"name": "s-green", "weight": 25}]}]}},
         [("s-blue", 0.75, ("b1", "b2"), "stable"), ("s-green", 0.25, ("g1",), "candidate")]),
    ],
)
def test_user_backends(services, httproute, expected) -> None:
    got = user_backends("s", PODS, services, httproute, "app:2")
    assert [(b.name, b.share, b.pods, b.version) for b in got] == expected


def ingress(name: str, backend: str, path: str = "/", host: str | None = "shop.example", **annotations: str) -> dict:
    rule = {"http": {"paths": [{"path": path, "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}}}]}}
    return {"metadata": {"name": name, "annotations": annotations},
            "spec": {"rules": [rule | ({"host": host} if host else {})]}}


def canary_ing(weight: str | None = "30", canary: str = "true", name: str = "s-s-canary", **kw: str) -> dict:
    ann = {"nginx.ingress.kubernetes.io/canary": canary} | (
        {"nginx.ingress.kubernetes.io/canary-weight": weight} if weight is not None else {})
    return ingress(name, "s-green", **kw, **ann)


UPSTREAM = "shop-s-green-80"  # ingress-nginx's upstream of Service s-green port 80 in namespace shop


@pytest.mark.parametrize(
    ("ingresses", "httproute", "expected"),
    [
        # the stable Ingress alone: all of it to its backend
        ([ingress("s", "s-blue")], None, [("s-blue", 1.0, ("b1", "b2"), "stable", "")]),
        # a canary Ingress at 30 of 100 beside it
        ([ingress("s", "s-blue"), canary_ing()], None,
         [("s-blue", 0.7, ("b1", "b2"), "stable", ""), ("s-green", 0.3, ("g1",), "candidate", UPSTREAM)]),
        # canary "false" or no canary annotation: not a canary, all to stable
        ([ingress("s", "s-blue"), canary_ing(canary="false")], None, [("s-blue", 1.0, ("b1", "b2"), "stable", "")]),
        ([ingress("s", "s-blue"), ingress("s-s-canary", "s-green")], None,
         [("s-blue", 1.0, ("b1", "b2"), "stable", "")]),
        # a canary with no weight: 0 (listed, so its series exist), all to stable
        ([ingress("s", "s-blue"), canary_ing(weight=None)], None,
         [("s-blue", 1.0, ("b1", "b2"), "stable", ""), ("s-green", 0.0, ("g1",), "candidate", UPSTREAM)]),
        # out of canary-weight-total, when above 100
        ([ingress("s", "s-blue"), canary_ing("300", **{"nginx.ingress.kubernetes.io/canary-weight-total": "1000"})],
         None, [("s-blue", 0.7, ("b1", "b2"), "stable", ""), ("s-green", 0.3, ("g1",), "candidate", UPSTREAM)]),
        # a canary for another host or path is not this location's
        ([ingress("s", "s-blue"), ingress("c", "s-green", host="other", **{
            "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "50"})], None,
         [("s-blue", 1.0, ("b1", "b2"), "stable", "")]),
        ([ingress("s", "s-blue"), ingress("c", "s-green", path="/api", **{
            "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "50"})], None,
         [("s-blue", 1.0, ("b1", "b2"), "stable", "")]),
        # the pairing is by host and path, whatever the canary's name
        ([canary_ing("40", name="whatever"), ingress("s", "s-blue")], None,
         [("s-blue", 0.6, ("b1", "b2"), "stable", ""), ("s-green", 0.4, ("g1",), "candidate", UPSTREAM)]),
        # an HTTPRoute takes precedence, as before
        ([ingress("s", "s-blue"), canary_ing()], route(("s-blue", 90), ("s-green", 10)),
         [("s-blue", 0.9, ("b1", "b2"), "stable", None), ("s-green", 0.1, ("g1",), "candidate", None)]),
        # a canary with no stable Ingress: users reach Service S
        ([canary_ing()], None, [("s", 1.0, ("b1", "b2", "g1"), "stable", None)]),
        # a stable Ingress with no path to a Service: users reach nothing
        ([{"metadata": {"name": "s"}, "spec": {"defaultBackend": {"resource": {"kind": "Bucket", "name": "b"}}}}],
         None, [("", 1.0, (), "stable", None)]),
    ],
)
def test_user_backends_through_ingresses(ingresses, httproute, expected) -> None:
    got = user_backends("s", PODS, SVCS, httproute, "app:2", ingresses=ingresses, namespace="shop")
    assert [(b.name, pytest.approx(b.share), b.pods, b.version, b.entry and b.entry.canary) for b in got] == expected
    for b in got:
        if b.entry is not None:  # every request of the location carries the stable Ingress and its Service
            assert (b.entry.ingress, b.entry.service, b.entry.host, b.entry.path) == ("s", "s-blue", "shop.example", "/")


def test_the_stable_ingress_is_named_apart_from_the_service() -> None:
    ings = [ingress("web", "s-blue"), canary_ing("50", name="web-canary")]
    got = user_backends("s", PODS, SVCS, None, "app:2", ingresses=ings, ingress="web", namespace="shop")
    assert [(b.name, b.share, b.entry.ingress) for b in got] == [("s-blue", 0.5, "web"), ("s-green", 0.5, "web")]
    # a rule without a host is ingress-nginx's catch-all server "_"
    (b,) = user_backends("s", PODS, SVCS, None, "app:2", ingresses=[ingress("s", "s-blue", host=None)])
    assert b.entry.host == "_"
    # flows carry the Service and the location; selected pods include the ones not ready
    assert [(f.pod, f.backend, f.entry.canary) for f in plan_flows(got, None, 100.0, 0.0, {"b1": "stable",
            "b2": "stable", "g1": "candidate"})] == [("b1", "s-blue", ""), ("b2", "s-blue", ""),
                                                     ("g1", "s-green", "shop-s-green-80")]
    assert got[1].selected == ("g1", "g2")


def test_a_backend_with_no_ready_pod_is_charged_to_the_version_it_selects() -> None:
    pods = [pod("g1", "app:2", ready=False, slot="green"), pod("g2", "app:2", ready=False, slot="green")]
    (b,) = user_backends("s", pods, SVCS, route(("s-green", 1)), "app:2")
    assert (b.pods, b.version) == ((), "candidate")
    flows = plan_flows([b], None, 100.0, 0.0, {})
    assert flows == [Flow(None, "candidate", "user", 100.0, "s-green")]


def test_flows_split_evenly_and_preview_waits_for_the_switch() -> None:
    versions = {p.name: ("candidate" if p.image == "app:2" else "stable") for p in PODS}
    svcs = SVCS | {"s-preview": {SLOT: "green"}}
    preview = preview_backend("s", PODS, svcs, "app:2")
    assert preview is not None and preview.pods == ("g1",)
    # blue-green before the switch: users on blue, smoke tests on the preview
    active = user_backends("s", PODS, {**svcs, "s": {SLOT: "blue"}}, None, "app:2")
    flows = plan_flows(active, preview, 200.0, 20.0, versions)
    assert sorted((f.pod, f.route, f.rps) for f in flows) == [
        ("b1", "user", 100.0), ("b2", "user", 100.0), ("g1", "preview", 20.0)]
    assert candidate_weight(flows) == 0.0
    # once users reach the candidate there is no preview traffic
    split = user_backends("s", PODS, svcs, route(("s-blue", 3), ("s-green", 1)), "app:2")
    flows = plan_flows(split, preview, 200.0, 20.0, versions)
    assert {f.route for f in flows} == {"user"}
    assert candidate_weight(flows) == pytest.approx(25.0)
    assert sum(f.rps for f in flows) == pytest.approx(200.0)
    # no S-preview Service: no preview traffic
    assert preview_backend("s", PODS, SVCS, "app:2") is None


def test_outage_rate_by_wall_time_since_start() -> None:
    sc = scenario("faults.0.kind=dependency_outage", "faults.0.at=10s", "faults.0.duration=5s",
                  "faults.0.error_rate=0.5", "faults.1.kind=dependency_outage", "faults.1.at=12s",
                  "faults.1.duration=10s", "faults.1.error_rate=0.5", "faults.2.kind=node_failure",
                  "faults.2.at=0s")
    assert [outage_rate(sc, t) for t in (0, 9.9, 10, 12, 14.9, 15, 21.9, 22)] == [
        0.0, 0.0, 0.5, 0.75, 0.75, 0.5, 0.5, 0.0]


# --- sampling (pure) --------------------------------------------------------------------------


def bucket_quantile(counts: np.ndarray, q: float) -> float:
    """histogram_quantile's rule: linear within the bucket holding rank q * total."""
    cum = np.cumsum(counts)
    rank = q * cum[-1]
    i = int(np.searchsorted(cum, rank))
    lo = BUCKETS[i - 1] if i else 0.0
    below = cum[i - 1] if i else 0
    return lo + (BUCKETS[i] - lo) * (rank - below) / counts[i]


def test_sample_tick_errors_latency_and_shedding() -> None:
    sc = scenario("candidate.error_rate=0.2", "stable.latency_ms=40", "candidate.latency_ms=80",
                  "stable.latency_sigma=0.3", "candidate.latency_sigma=0.3")
    flows = [Flow("a", "stable", "user", 250.0), Flow("b", "candidate", "user", 250.0),
             Flow(None, "candidate", "user", 50.0)]
    tick = sample_tick(np.random.default_rng(3), sc, flows, 20.0)
    stable, cand = tick.codes[("stable", "user")], tick.codes[("candidate", "user")]
    assert stable.sum() == pytest.approx(5000, rel=0.06)
    assert stable[1] / stable.sum() < 0.005
    # the candidate's pod fails 20%; the requests with no endpoint are all 503
    assert cand[1] / (cand.sum() - cand[2]) == pytest.approx(0.2, abs=0.025)
    assert cand[2] == pytest.approx(1000, rel=0.15)
    # latency: only answered requests, log-normal with median latency_ms / sqrt(1 - rho)
    assert tick.buckets[("stable", "user")].sum() == stable.sum()
    assert tick.buckets[("candidate", "user")].sum() == cand.sum() - cand[2]
    factor = 1 / math.sqrt(1 - 0.25)
    for key, median in ((("stable", "user"), 0.040), (("candidate", "user"), 0.080)):
        for q in (0.5, 0.99):
            want = median * factor * math.exp(0.3 * ndtri(q))
            assert bucket_quantile(tick.buckets[key], q) == pytest.approx(want, rel=0.06)
    # one pod offered twice its capacity sheds half, answered 503
    over = sample_tick(np.random.default_rng(4), sc, [Flow("a", "stable", "user", 2000.0)], 5.0)
    codes = over.codes[("stable", "user")]
    assert codes[2] / codes.sum() == pytest.approx(0.5, abs=0.02)


def test_sample_tick_is_seeded_and_outage_fails_everything() -> None:
    sc = scenario()
    flows = [Flow("a", "stable", "user", 100.0), Flow("b", "candidate", "preview", 10.0)]
    one = sample_tick(np.random.default_rng(7), sc, flows, 1.0)
    two = sample_tick(np.random.default_rng(7), sc, flows, 1.0)
    assert all((one.codes[k] == two.codes[k]).all() for k in one.codes)
    down = sample_tick(np.random.default_rng(7), sc, flows, 1.0, outage=1.0)
    for counts in down.codes.values():
        assert counts[0] == 0 and counts[1] > 0


# --- exposition -------------------------------------------------------------------------------


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text exposition, as (name, labels, value)."""
    return [(s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples, name: str, **match: str) -> float:
    return sum(v for s, labels, v in samples if s == name and all(labels.get(k) == x for k, x in match.items()))


def exposition(metrics: Metrics) -> str:
    registry = CollectorRegistry()
    registry.register(metrics)
    return generate_latest(registry).decode()


def test_every_series_exists_at_zero_from_the_start() -> None:
    samples = parse_metrics(exposition(Metrics("shop", "prod")))
    reqs = [(lb["version"], lb["code"], lb["route"]) for s, lb, _ in samples if s == "deploysim_requests_total"]
    assert sorted(reqs) == sorted((v, c, r) for v in VERSIONS for c in CODES for r in ROUTES)
    assert {(lb["service"], lb["namespace"]) for _, lb, _ in samples} == {("shop", "prod")}
    assert total(samples, "deploysim_requests_total") == 0
    # 4 histograms (version x route) of 60 bounds and +Inf, each with a sum and a count
    assert len([s for s, _, _ in samples if s.startswith("deploysim_request_duration_seconds")]) == 4 * 63
    assert [(s, lb.get("version"), v) for s, lb, v in samples if s == "deploysim_ready_pods"] == [
        ("deploysim_ready_pods", "stable", 0.0), ("deploysim_ready_pods", "candidate", 0.0)]


def test_a_tick_in_the_exposition() -> None:
    metrics = Metrics("shop", "prod")
    buckets = np.zeros(len(BUCKETS) + 1, dtype=np.int64)
    buckets[0], buckets[10], buckets[60] = 3, 90, 5  # at most 5 ms, 17.4-20 ms, above 17.8 s
    tick = TickCounts(codes={("stable", "user"): np.array([90, 6, 2])},
                      buckets={("stable", "user"): buckets},
                      latency_sum={("stable", "user"): 1.5}, seconds=2.0)
    metrics.add(tick, ready={"stable": 3, "candidate": 1}, weight=25.0)
    metrics.add(tick)  # a second tick adds to the counters and leaves the gauges
    samples = parse_metrics(exposition(metrics))
    stable = {"version": "stable", "route": "user"}
    assert [total(samples, "deploysim_requests_total", code=c, **stable) for c in CODES] == [180, 12, 4]
    assert total(samples, "deploysim_requests_total", version="candidate") == 0
    le = {lb["le"]: v for s, lb, v in samples
          if s == "deploysim_request_duration_seconds_bucket" and lb["version"] == "stable" and lb["route"] == "user"}
    assert list(le) == [f"{b:g}" for b in BUCKETS] + ["+Inf"]
    assert (BUCKETS[0], BUCKETS[9], BUCKETS[10], BUCKETS[-1]) == (0.005, 0.0174, 0.02, 17.8)
    assert (le["0.005"], le["0.0174"], le["0.02"], le["17.8"], le["+Inf"]) == (6, 6, 186, 186, 196)
    assert total(samples, "deploysim_request_duration_seconds_count", **stable) == 196
    assert total(samples, "deploysim_request_duration_seconds_sum", **stable) == pytest.approx(3.0)
    assert total(samples, "deploysim_traffic_seconds_total") == pytest.approx(4.0)
    assert total(samples, "deploysim_ready_pods", version="stable") == 3
    assert total(samples, "deploysim_ready_pods", version="candidate") == 1
    assert total(samples, "deploysim_candidate_weight") == 25.0
    assert metrics.totals() == {"stable": (196, 16), "candidate": (0, 0)}


class OffCluster(Exporter):
    """The exporter over fixed pods and Services: serving and ticking without an API server."""

    def __init__(self, sc: Scenario, port: int = 0) -> None:
        super().__init__(sc, client.ApiClient(), client.ApiClient(), service="s", port=port, tick=0.05)

    def _list_pods(self) -> str:
        self._pods = {p.name: p for p in PODS}
        return "1"

    def _refresh_routing(self, strict: bool = False) -> None:
        self._services = dict(SVCS)

    def _watch_loop(self) -> None:
        self._stop.wait()


def test_the_exporter_serves_its_registry_and_frees_the_port() -> None:
    sc = scenario("traffic.rps=600")
    ex = OffCluster(sc).start()
    try:
        assert ex.port != 0 and ex.url == f"http://127.0.0.1:{ex.port}/metrics"
        wait_for("a few ticks", lambda: ex.totals()["stable"][0] > 100, 10)
        samples = parse_metrics(httpx.get(ex.url, timeout=5).text)
        # b1 and b2 ready on stable, g1 on the candidate: a replica-ratio canary at 1/3
        assert total(samples, "deploysim_ready_pods", version="stable") == 2
        assert total(samples, "deploysim_ready_pods", version="candidate") == 1
        assert total(samples, "deploysim_candidate_weight") == pytest.approx(100 / 3)
        assert total(samples, "deploysim_requests_total") > 100
        # a second exporter cannot have the same port: one line naming the flag
        with pytest.raises(TrafficError, match=rf"^--port: cannot listen on 127.0.0.1:{ex.port} "):
            OffCluster(sc, port=ex.port).start()
    finally:
        ex.stop()
    with socket.socket() as s:
        # as a server binds (the scrape's connection may linger in TIME_WAIT); raises if
        # stop() left the port listening
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", ex.port))
        s.listen()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("deploysim-traffic")]


def test_ingresses_it_may_not_list_are_none_said_once() -> None:
    class Refusing:
        def list_namespaced_ingress(self, namespace: str, **kw: object) -> None:
            raise ApiException(status=403, reason="Forbidden")

    ex = Exporter(scenario(), client.ApiClient(), client.ApiClient(), service="s")
    ex._networking = Refusing()
    assert ex._list_ingresses() == [] and ex._list_ingresses() == []
    assert list(ex.errors) == ["listing Ingresses in namespace 'default': HTTP 403 Forbidden; users are routed "
                               "as if there were none"]


# --- against a real cluster -------------------------------------------------------------------


@pytest.fixture(scope="module")
def kube(local_cluster) -> Iterator[tuple[localcluster.ClusterInfo, client.ApiClient]]:
    """The session's control plane; these tests are the only ones using its ``default``
    namespace."""
    api = config.new_client_from_config(config_file=str(local_cluster.kubeconfig))
    try:
        yield local_cluster, api
    finally:
        api.close()


def deployment(api: client.ApiClient, name: str, service: str, image: str, replicas: int,
               slot: str | None = None) -> None:
    labels = n.selector(service, slot)
    client.AppsV1Api(api).create_namespaced_deployment("default", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels, "annotations": {"deploysim.io/ready-delay": "200ms",
                                                           "deploysim.io/ready-jitter": "100ms"}},
            "spec": {"containers": [{"name": "app", "image": image}]}}}})


def service(api: client.ApiClient, name: str, selector: dict[str, str]) -> None:
    client.CoreV1Api(api).create_namespaced_service("default", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": selector, "ports": [{"port": 80}]}})


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ready_pods(api: client.ApiClient, svc: str) -> int:
    pods = client.CoreV1Api(api).list_namespaced_pod("default", label_selector=f"{APP}={svc}").items
    return sum(1 for p in pods if p.metadata.deletion_timestamp is None
               and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])))


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> tuple[float, list]:
    """(seconds of traffic drawn, samples): rates from two scrapes need no wall clock."""
    samples = parse_metrics(httpx.get(url, timeout=5).text)
    return total(samples, "deploysim_traffic_seconds_total"), samples


@pytest.mark.cluster
def test_counters_increase_at_the_scenario_rps(kube) -> None:
    info, api = kube
    deployment(api, "plain", "plain", "app:1", 3)
    service(api, "plain", n.selector("plain"))
    wait_for("3 ready pods", lambda: ready_pods(api, "plain") == 3)
    sc = scenario("service=plain", "traffic.rps=300")
    with start_exporter(sc, kubeconfig=info.kubeconfig, tick=0.25) as ex:
        wait_for("the first tick", lambda: ex.flows)
        t1, s1 = scrape(ex.url)
        time.sleep(3)
        t2, s2 = scrape(ex.url)
    served = total(s2, "deploysim_requests_total") - total(s1, "deploysim_requests_total")
    assert served / (t2 - t1) == pytest.approx(300, rel=0.15)
    assert total(s2, "deploysim_requests_total", version="candidate") == 0
    assert total(s2, "deploysim_requests_total", code="503") == 0
    assert total(s2, "deploysim_ready_pods", version="stable") == 3
    assert total(s2, "deploysim_candidate_weight") == 0
    # three ready pods of the Service share the requests evenly
    assert sorted(f.rps for f in ex.flows) == pytest.approx([100.0] * 3)


@pytest.mark.cluster
def test_candidate_on_half_the_ready_pods(kube) -> None:
    info, api = kube
    deployment(api, "mixed-blue", "mixed", "app:1", 2, "blue")
    deployment(api, "mixed-green", "mixed", "app:2", 2, "green")
    service(api, "mixed", n.selector("mixed"))  # replica-ratio canary: every pod of the service
    wait_for("4 ready pods", lambda: ready_pods(api, "mixed") == 4)
    sc = scenario("service=mixed", "traffic.rps=1000", "candidate.error_rate=0.2")
    with start_exporter(sc, kubeconfig=info.kubeconfig, tick=0.25) as ex:
        wait_for("the first tick", lambda: ex.flows)
        t0 = time.time()
        time.sleep(4)
        served = ex.served(t0, time.time())
        (sreq, serr), (creq, cerr) = served["stable"], served["candidate"]
        assert (sreq + creq) > 3000
        assert creq / (sreq + creq) == pytest.approx(0.5, abs=0.04)
        assert (serr + cerr) / (sreq + creq) == pytest.approx(0.1, abs=0.02)
        assert cerr / creq == pytest.approx(0.2, abs=0.04)
        assert serr / sreq < 0.01
        # the candidate's pods go away: the watch sees it and it gets no more requests
        client.AppsV1Api(api).patch_namespaced_deployment_scale("mixed-green", "default", {"spec": {"replicas": 0}})
        wait_for("no flow to the candidate", lambda: all(f.version == "stable" for f in ex.flows), 20)
        before = ex.totals()["candidate"][0]
        time.sleep(1.0)
        assert ex.totals()["candidate"][0] == before
        assert ex.totals()["stable"][0] > sreq


HTTPROUTE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {
        "name": f"{n.HTTPROUTE_PLURAL}.{n.HTTPROUTE_GROUP}",
        # *.k8s.io groups need this, as the Gateway API's own CRDs carry
        "annotations": {"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466"},
    },
    "spec": {
        "group": n.HTTPROUTE_GROUP,
        "scope": "Namespaced",
        "names": {"plural": n.HTTPROUTE_PLURAL, "singular": "httproute", "kind": "HTTPRoute",
                  "listKind": "HTTPRouteList"},
        "versions": [{"name": n.HTTPROUTE_VERSION, "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


def install_httproute_crd(api: client.ApiClient) -> None:
    """A schemaless stand-in for the Gateway API's HTTPRoute CRD (no download needed)."""
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.create_custom_resource_definition(HTTPROUTE_CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition(HTTPROUTE_CRD["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))

    wait_for("the HTTPRoute CRD", established)
    # the API server serves the new kind a moment after Established
    custom = client.CustomObjectsApi(api)
    wait_for("HTTPRoutes served", lambda: _served(custom))


def _served(custom: client.CustomObjectsApi) -> bool:
    try:
        custom.list_namespaced_custom_object(n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, "default", n.HTTPROUTE_PLURAL)
        return True
    except ApiException:
        return False


@pytest.mark.cluster
def test_httproute_weights_then_preview_traffic(kube) -> None:
    info, api = kube
    install_httproute_crd(api)
    s = "routed"
    deployment(api, n.slot_deployment(s, "blue"), s, "app:1", 2, "blue")
    deployment(api, n.slot_deployment(s, "green"), s, "app:2", 2, "green")
    service(api, s, n.selector(s, "blue"))
    for slot in n.SLOTS:
        service(api, n.slot_service(s, slot), n.selector(s, slot))
    service(api, n.preview_service(s), n.selector(s, "green"))
    custom = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{n.HTTPROUTE_GROUP}/{n.HTTPROUTE_VERSION}", "kind": "HTTPRoute",
            "metadata": {"name": s}, "spec": {"rules": [{"backendRefs": [
                {"name": n.slot_service(s, "blue"), "port": 80, "weight": 75},
                {"name": n.slot_service(s, "green"), "port": 80, "weight": 25}]}]}}
    custom.create_namespaced_custom_object(n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, "default", n.HTTPROUTE_PLURAL, body)
    wait_for("4 ready pods", lambda: ready_pods(api, s) == 4)
    sc = scenario(f"service={s}", "traffic.rps=800", "strategy.kind=blue-green", "strategy.preview_rps=100")
    with start_exporter(sc, kubeconfig=info.kubeconfig, tick=0.25) as ex:
        wait_for("the first tick", lambda: ex.flows)
        t0 = time.time()
        time.sleep(3)
        served = ex.served(t0, time.time())
        creq, sreq = served["candidate"][0], served["stable"][0]
        # exactly the weight asked for (HTTPRoute), not the share of ready pods (50%)
        assert creq / (creq + sreq) == pytest.approx(0.25, abs=0.04)
        assert {f.route for f in ex.flows} == {"user"}
        # weight back to 0: the candidate sees only smoke tests through S-preview
        body["spec"]["rules"][0]["backendRefs"][1]["weight"] = 0
        custom.patch_namespaced_custom_object(n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, "default",
                                              n.HTTPROUTE_PLURAL, s, {"spec": body["spec"]})
        wait_for("preview flows", lambda: {f.route for f in ex.flows} == {"user", "preview"}, 10)
        t1, s1 = scrape(ex.url)
        time.sleep(3)
        t2, s2 = scrape(ex.url)
    preview = (total(s2, "deploysim_requests_total", version="candidate", route="preview")
               - total(s1, "deploysim_requests_total", version="candidate", route="preview"))
    user_c = (total(s2, "deploysim_requests_total", version="candidate", route="user")
              - total(s1, "deploysim_requests_total", version="candidate", route="user"))
    assert preview / (t2 - t1) == pytest.approx(100, rel=0.25)
    assert user_c == 0
    assert total(s2, "deploysim_candidate_weight") == 0


@pytest.mark.cluster
def test_nginx_canary_ingress_set_by_the_router_splits_users(kube) -> None:
    info, api = kube
    s = "ingressed"
    deployment(api, n.slot_deployment(s, "blue"), s, "app:1", 2, "blue")
    deployment(api, n.slot_deployment(s, "green"), s, "app:2", 2, "green")
    service(api, s, n.selector(s))
    for slot in n.SLOTS:
        service(api, n.slot_service(s, slot), n.selector(s, slot))
    networking = client.NetworkingV1Api(api)
    networking.create_namespaced_ingress("default", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": s},
        "spec": {"rules": [{"host": "shop.example", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": n.slot_service(s, "blue"), "port": {"number": 80}}}}]}}]}})
    router = NginxIngressRouter.build(api, RouteNames("default", s, s, "blue", "green", "app:2", run_id="t1"))
    router.set_weight(30)
    # read back from the API server: the canary Ingress as stored
    assert router.observed_weight() == pytest.approx(30.0)
    stored = networking.read_namespaced_ingress(canary_ingress_name(s, s), "default")
    assert stored.metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"] == "30"
    assert stored.spec.rules[0].http.paths[0].backend.service.name == n.slot_service(s, "green")
    wait_for("4 ready pods", lambda: ready_pods(api, s) == 4)
    sc = scenario(f"service={s}", "traffic.rps=1000")
    with start_exporter(sc, kubeconfig=info.kubeconfig, tick=0.25) as ex:
        wait_for("flows to the canary", lambda: any(f.version == "candidate" for f in ex.flows))
        t1, s1 = scrape(ex.url)
        time.sleep(3)
        t2, s2 = scrape(ex.url)

    def served(name: str, **match: str) -> float:
        return total(s2, name, **match) - total(s1, name, **match)

    cand = served("deploysim_requests_total", version="candidate", route="user")
    users = served("deploysim_requests_total", route="user")
    # given their number, the candidate's requests are binomial(users, 0.3): 6 sigma cannot fail by chance;
    # the share of ready pods (the replica ratio) would be 0.5
    assert users > 2000
    assert cand / users == pytest.approx(0.3, abs=6 * math.sqrt(0.3 * 0.7 / users))
    # the same requests in the real-shaped families: the canary's by its upstream, the candidate's
    # pods by their Deployment (the ReplicaSet owner of each pod)
    assert served("nginx_ingress_controller_requests", ingress=s, canary=f"default-{s}-green-80") == cand
    assert served("nginx_ingress_controller_requests", ingress=s, canary="") == users - cand
    assert served("istio_requests_total", reporter="destination",
                  destination_workload=n.slot_deployment(s, "green")) == cand
    assert served("http_requests_total", version="candidate") == cand
    router.reset()
    assert router.observed_weight() == 0.0


@pytest.mark.cluster
def test_cli_serves_then_reports(kube, capsys) -> None:
    info, api = kube
    deployment(api, "clisvc", "clisvc", "app:1", 1)
    service(api, "clisvc", n.selector("clisvc"))
    wait_for("1 ready pod", lambda: ready_pods(api, "clisvc") == 1)
    code = cli.main(["traffic", "--kubeconfig", str(info.kubeconfig), "--service", "clisvc",
                     "--set", "traffic.shape=constant", "--set", "traffic.rps=200",
                     "--set", "stable.image=app:1", "--duration", "1.5s", "--tick", "0.25"])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^port \d+$", out, re.M)
    requests = int(re.search(r"stable: (\d+) requests", out).group(1))
    assert 150 < requests < 450
    # registering with a cluster that is not up: one line naming it, and a failed command
    code = cli.main(["traffic", "--kubeconfig", str(info.kubeconfig), "--service", "clisvc",
                     "--register", "no-such-cluster", "--duration", "1s"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_ENVIRONMENT and len(err) == 1 and "no-such-cluster" in err[0]
    # stopped right after it started, and still no thread (or open watch) left behind
    assert not [t.name for t in threading.enumerate() if t.name.startswith("deploysim-traffic")]


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    # a kubeconfig that is not there is a bad flag
    assert cli.main(["traffic", "--kubeconfig", str(tmp_path / "missing"), "--duration", "1s"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deploysim: error: --kubeconfig")
    # an API server that is not there
    port = closed_port()
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: x, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: x, user: {}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\n")
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=rf"^cannot reach the API server at http://127.0.0.1:{port}: "):
        start_exporter(kubeconfig=kc)
    assert time.monotonic() - t0 < 15
    assert cli.main(["traffic", "--kubeconfig", str(kc), "--duration", "1s"]) == EXIT_ENVIRONMENT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0], err
    # a ready exporter is never left behind by a failed start
    assert not [t.name for t in threading.enumerate() if t.name.startswith("deploysim-traffic")]
