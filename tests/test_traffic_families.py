"""The real-shaped families (Istio, ingress-nginx, http_requests_total) against the deploysim_* ones:
the same requests, their real names, label sets and units, read back with prometheus_client's parser."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from deploysim.kube import naming as n
from deploysim.kube.traffic import (
    BUCKETS,
    CODES,
    Flow,
    Metrics,
    PodView,
    plan_flows,
    sample_tick,
    user_backends,
)
from deploysim.kube.traffic.families import (
    HTTP_LABELS,
    ISTIO_BUCKETS_MS,
    ISTIO_LABELS,
    ISTIO_REBIN,
    NGINX_BUCKETS,
    NGINX_LABELS,
    NGINX_REBIN,
    Rebin,
    sample_flows,
    split_codes,
)
from deploysim.kube.traffic.routing import expected_flows, version_of
from deploysim.routers.nginx_ingress import CANARY, CANARY_WEIGHT
from deploysim.scenario import load_scenario

NS, SVC = "shop", "s"
APP, SLOT = n.APP_LABEL, n.SLOT_LABEL


def scenario(*overrides: str):
    return load_scenario(overrides=["traffic.shape=constant", "stable.image=app:1", "candidate.image=app:2",
                                    "stable.error_rate=0.01", "candidate.error_rate=0.1", "pod.capacity_rps=1000",
                                    *overrides])


def pod(name: str, slot: str, image: str, ready: bool = True) -> PodView:
    return PodView(name, {APP: SVC, SLOT: slot, "pod-template-hash": "h"}, image, ready, f"{SVC}-{slot}")


PODS = [pod("b1", "blue", "app:1"), pod("b2", "blue", "app:1"), pod("g1", "green", "app:2"),
        pod("g2", "green", "app:2", ready=False)]
SVCS = {SVC: {APP: SVC}, "s-blue": {SLOT: "blue"}, "s-green": {SLOT: "green"}}


def ingress(name: str, backend: str, **annotations: str) -> dict:
    return {"metadata": {"name": name, "annotations": annotations}, "spec": {"rules": [
        {"host": "shop.example", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": backend, "port": {"number": 80}}}}]}}]}}


def canary(weight: str) -> dict:
    return ingress("s-s-canary", "s-green", **{CANARY: "true", CANARY_WEIGHT: weight})


def samples_of(metrics: Metrics) -> tuple[dict[str, str], list[tuple[str, dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(metrics)
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    return ({f.name: f.type for f in families},
            [(s.name, s.labels, s.value) for f in families for s in f.samples])


def total(samples, name: str, **match: str) -> float:
    return sum(v for s, lb, v in samples if s == name and all(lb.get(k) == x for k, x in match.items()))


def run_ticks(metrics: Metrics, pods, ingresses, ticks: int = 20, rps: float = 400.0, seed: int = 5):
    """Route, draw and count ``ticks`` seconds of traffic as the exporter's tick does."""
    sc = scenario()
    rng, real_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    versions = {p.name: version_of(p.image, sc.candidate.image) for p in pods}
    backends = user_backends(SVC, pods, SVCS, None, sc.candidate.image, ingresses=ingresses, namespace=NS)
    flows = plan_flows(backends, None, rps, 0.0, versions)
    for _ in range(ticks):
        tick, draws = sample_flows(rng, sc, flows, 1.0)
        real = metrics.real.prepare(flows, draws, {p.name: p for p in pods}, real_rng,
                                    expected_flows(backends, None, versions))
        metrics.add(tick, real=real)
    return flows


# --- the draws ---------------------------------------------------------------------------------


def test_sample_flows_draws_what_sample_tick_draws() -> None:
    sc = scenario()
    flows = [Flow("a", "stable", "user", 300.0), Flow("b", "stable", "user", 200.0, "s-blue"),
             Flow("c", "candidate", "user", 100.0), Flow(None, "candidate", "user", 50.0),
             Flow("c", "candidate", "preview", 20.0)]
    want = sample_tick(np.random.default_rng(11), sc, flows, 2.0)
    got, draws = sample_flows(np.random.default_rng(11), sc, flows, 2.0)
    assert sorted(got.codes) == sorted(want.codes)
    for key in want.codes:
        assert got.codes[key].tolist() == want.codes[key].tolist()
        assert got.buckets[key].tolist() == want.buckets[key].tolist()
        assert got.latency_sum[key] == pytest.approx(want.latency_sum[key], rel=1e-12)
    # the per-flow draws add up to the sums, and each flow's latencies count its answered requests
    assert sum(d.codes for d in draws[:2]).tolist() == want.codes[("stable", "user")].tolist()
    assert [int(d.buckets.sum()) for d in draws] == [int(d.codes.sum()) for d in draws[:3]] + [0, int(draws[4].codes.sum())]
    assert draws[3].codes[:2].tolist() == [0, 0] and draws[3].codes[2] > 0  # no endpoint: all 503


def test_no_flow_or_no_time_draws_nothing() -> None:
    tick, draws = sample_flows(np.random.default_rng(1), scenario(), [Flow("a", "stable", "user", 10.0)], 0.0)
    assert tick.codes == {} and [d.codes.tolist() for d in draws] == [[0, 0, 0]]


# --- buckets ------------------------------------------------------------------------------------


def test_envoy_and_client_golang_bounds() -> None:
    assert ISTIO_BUCKETS_MS[:7] == (0.5, 1, 5, 10, 25, 50, 100) and ISTIO_BUCKETS_MS[-1] == 3_600_000
    assert len(ISTIO_BUCKETS_MS) == 19
    assert NGINX_BUCKETS == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    # ingress-nginx's bounds are Envoy's (in seconds): one grid serves both without a second split
    assert set(NGINX_BUCKETS) <= {b / 1000 for b in ISTIO_BUCKETS_MS}
    assert NGINX_REBIN.splits == []


def test_rebin_moves_aligned_buckets_whole_and_keeps_every_request() -> None:
    rng = np.random.default_rng(0)
    fine = np.zeros(len(BUCKETS) + 1, dtype=np.int64)
    i10 = BUCKETS.index(0.01)  # 10 ms is a bound of both grids
    fine[0], fine[i10], fine[i10 + 1], fine[-1] = 7, 11, 13, 2  # <=5 ms, (8.71, 10] ms, (10, 11.5] ms, > 17.8 s
    coarse = ISTIO_REBIN(fine, rng)
    assert coarse.sum() == fine.sum()
    le = dict(zip([*ISTIO_BUCKETS_MS, math.inf], np.cumsum(coarse).tolist(), strict=True))
    # under 5 ms counts at 5 ms; (8.71, 10] ms is at most 10 ms; (10, 11.5] ms within 25 ms
    assert (le[0.5], le[1], le[5], le[10], le[25]) == (0, 0, 7, 18, 31)
    assert (le[10000], le[30000], le[math.inf]) == (31, 31, 33)  # above 17.8 s: above every bound


def test_rebin_splits_a_bucket_holding_a_bound_log_uniformly() -> None:
    rng = np.random.default_rng(2)
    j = next(j for j, b in enumerate(BUCKETS) if b > 0.025)  # the fine bucket holding 25 ms
    lo, hi = BUCKETS[j - 1], BUCKETS[j]
    fine = np.zeros(len(BUCKETS) + 1, dtype=np.int64)
    fine[j] = 1_000_000
    coarse = ISTIO_REBIN(fine, rng)
    below = int(coarse[: ISTIO_BUCKETS_MS.index(25) + 1].sum())
    p = math.log(0.025 / lo) / math.log(hi / lo)
    assert (lo, hi) == (0.023, 0.0264) and p == pytest.approx(0.605, abs=0.001)
    assert abs(below - p * 1e6) < 6 * math.sqrt(1e6 * p * (1 - p))  # binomial, 6 sigma
    assert coarse.sum() == 1_000_000
    # a grid whose bounds are a subset of the fine one's moves every bucket whole
    assert Rebin(BUCKETS, (0.01, 0.02)).splits == []


def test_latencies_go_to_codes_without_replacement() -> None:
    rng = np.random.default_rng(3)
    buckets = np.array([40, 0, 35, 25])
    parts = split_codes(buckets, np.array([70, 20, 10]), rng)
    assert sum(parts).tolist() == buckets.tolist()
    assert [int(p.sum()) for p in parts] == [70, 20, 10]
    assert all((p >= 0).all() for p in parts)


# --- the exposition ------------------------------------------------------------------------------


def test_every_real_series_exists_at_zero_before_the_first_request() -> None:
    metrics = Metrics(SVC, NS)
    sc = scenario()
    versions = {p.name: version_of(p.image, sc.candidate.image) for p in PODS}
    backends = user_backends(SVC, PODS, SVCS, None, "app:2", ingresses=[ingress(SVC, "s-blue"), canary("0")],
                             namespace=NS)
    metrics.add(sample_tick(np.random.default_rng(1), sc, [], 1.0),
                real=metrics.real.prepare([], [], {p.name: p for p in PODS}, np.random.default_rng(2),
                                          expected_flows(backends, None, versions)))
    _, samples = samples_of(metrics)
    assert total(samples, "istio_requests_total") == 0
    # the canary at weight 0 and its not yet ready pod g2 are there, at 0, for every code
    dest = {(lb["destination_workload"], lb["response_code"]) for s, lb, _ in samples
            if s == "istio_requests_total" and lb["reporter"] == "destination"}
    assert dest == {(w, c) for w in ("s-blue", "s-green") for c in CODES}
    assert {lb["pod"] for s, lb, _ in samples if s == "http_requests_total"} == {"b1", "b2", "g1", "g2"}
    canaries = {lb["canary"] for s, lb, _ in samples if s == "nginx_ingress_controller_requests"}
    assert canaries == {"", "shop-s-green-80"}
    # and the requests no endpoint would take: reported by the gateway alone, 503 UH
    uh = [lb for s, lb, _ in samples if s == "istio_requests_total" and lb["response_flags"] == "UH"]
    assert {(lb["reporter"], lb["response_code"], lb["destination_workload"]) for lb in uh} == {
        ("source", "503", "unknown")}


def test_families_count_the_deploysim_requests_with_real_names_labels_and_units() -> None:
    metrics = Metrics(SVC, NS)
    run_ticks(metrics, PODS, [ingress(SVC, "s-blue"), canary("30")])
    types, samples = samples_of(metrics)
    assert {k: types[k] for k in ("istio_requests", "istio_request_duration_milliseconds",
                                  "nginx_ingress_controller_requests",
                                  "nginx_ingress_controller_request_duration_seconds",
                                  "nginx_ingress_controller_ingress_upstream_latency_seconds", "http_requests")} == {
        "istio_requests": "counter", "istio_request_duration_milliseconds": "histogram",
        "nginx_ingress_controller_requests": "unknown",
        "nginx_ingress_controller_request_duration_seconds": "histogram",
        "nginx_ingress_controller_ingress_upstream_latency_seconds": "summary", "http_requests": "counter"}
    names = {s for s, _, _ in samples}
    assert {"istio_requests_total", "nginx_ingress_controller_requests", "http_requests_total"} <= names
    assert "nginx_ingress_controller_requests_total" not in names  # the controller's own name
    # the label sets, whole
    assert {frozenset(lb) for s, lb, _ in samples if s == "istio_requests_total"} == {frozenset(ISTIO_LABELS)}
    assert {frozenset(lb) for s, lb, _ in samples if s == "nginx_ingress_controller_requests"} == {
        frozenset(NGINX_LABELS)}
    assert {frozenset(lb) for s, lb, _ in samples if s == "http_requests_total"} == {frozenset(HTTP_LABELS)}
    cand, stable = metrics.totals()["candidate"][0], metrics.totals()["stable"][0]
    assert cand > 500 and stable > 2000
    # Istio: the Deployment of each pod's version, per code, from both proxies
    for reporter in ("destination", "source"):
        for version, workload in (("candidate", "s-green"), ("stable", "s-blue")):
            for code in CODES:
                want = total(samples, "deploysim_requests_total", version=version, code=code)
                got = total(samples, "istio_requests_total", reporter=reporter, destination_workload=workload,
                            response_code=code, destination_workload_namespace=NS)
                assert got == want
    by_service = {lb["destination_service"] for s, lb, _ in samples if s == "istio_requests_total"}
    assert by_service == {"s-blue.shop.svc.cluster.local", "s-green.shop.svc.cluster.local"}
    assert total(samples, "istio_requests_total", reporter="source",
                 destination_service="s-green.shop.svc.cluster.local") == cand
    assert {lb["source_workload"] for s, lb, _ in samples if s == "istio_requests_total"} == {"istio-ingressgateway"}
    # ingress-nginx: every request labelled with the stable Ingress and its Service; the canary's by its upstream
    nginx = "nginx_ingress_controller_requests"
    assert {(lb["ingress"], lb["service"], lb["host"], lb["path"], lb["method"]) for s, lb, _ in samples
            if s == nginx} == {(SVC, "s-blue", "shop.example", "/", "GET")}
    assert total(samples, nginx, canary="shop-s-green-80") == cand
    assert total(samples, nginx, canary="") == stable
    assert total(samples, nginx, canary="shop-s-green-80", status="500") == total(
        samples, "deploysim_requests_total", version="candidate", code="500")
    # the app's own counter, per pod
    assert total(samples, "http_requests_total", pod="g1") == cand
    assert total(samples, "http_requests_total", pod="b1") + total(samples, "http_requests_total", pod="b2") == stable
    assert total(samples, "http_requests_total", pod="g2") == 0  # not ready: no request
    # units: the same latencies in ms (Istio) and s (nginx, deploysim)
    seconds = total(samples, "deploysim_request_duration_seconds_sum")
    assert total(samples, "nginx_ingress_controller_request_duration_seconds_sum") == pytest.approx(seconds)
    assert total(samples, "istio_request_duration_milliseconds_sum", reporter="destination") == pytest.approx(
        1000 * seconds)
    assert total(samples, "nginx_ingress_controller_ingress_upstream_latency_seconds_sum") == pytest.approx(seconds)
    assert total(samples, "nginx_ingress_controller_ingress_upstream_latency_seconds_count") == cand + stable


def test_histograms_are_whole_and_on_their_own_bounds() -> None:
    metrics = Metrics(SVC, NS)
    run_ticks(metrics, PODS, [ingress(SVC, "s-blue"), canary("30")], ticks=5)
    _, samples = samples_of(metrics)
    for family, bounds in (("istio_request_duration_milliseconds", ISTIO_BUCKETS_MS),
                           ("nginx_ingress_controller_request_duration_seconds", NGINX_BUCKETS)):
        series: dict[tuple, list[tuple[float, float]]] = {}
        for s, lb, v in samples:
            if s == f"{family}_bucket":
                key = tuple(sorted((k, x) for k, x in lb.items() if k != "le"))
                series.setdefault(key, []).append((float(lb["le"]), v))
        assert series
        for key, le in series.items():
            assert [b for b, _ in le] == [*map(float, bounds), math.inf]
            counts = [c for _, c in le]
            assert counts == sorted(counts)  # cumulative
            assert counts[-1] == total(samples, f"{family}_count", **dict(key))
    # the latencies the deploysim histogram holds, read on Istio's bounds: its median within 25-100 ms
    dest = [(float(lb["le"]), v) for s, lb, v in samples if s == "istio_request_duration_milliseconds_bucket"
            and lb["reporter"] == "destination"]
    le = {}
    for b, v in dest:
        le[b] = le.get(b, 0) + v
    assert le[25] < le[math.inf] / 2 < le[100]
    # each request is counted once per reporter, in the right code's series
    count = total(samples, "istio_request_duration_milliseconds_count", reporter="destination")
    assert count == total(samples, "istio_requests_total", reporter="destination")


def test_no_ready_endpoint_is_the_gateways_503_and_no_pod_counts_it() -> None:
    pods = [p if p.labels[SLOT] == "blue" else PodView(p.name, p.labels, p.image, False, p.workload) for p in PODS]
    metrics = Metrics(SVC, NS)
    run_ticks(metrics, pods, [ingress(SVC, "s-blue"), canary("50")], ticks=5)
    _, samples = samples_of(metrics)
    lost = total(samples, "deploysim_requests_total", version="candidate", code="503")
    assert lost > 100 and total(samples, "deploysim_requests_total", version="candidate") == lost
    assert total(samples, "istio_requests_total", reporter="source", response_flags="UH", response_code="503",
                 destination_workload="unknown", destination_service="s-green.shop.svc.cluster.local") == lost
    assert total(samples, "istio_requests_total", reporter="destination", destination_workload="s-green") == 0
    assert total(samples, "nginx_ingress_controller_requests", canary="shop-s-green-80", status="503") == lost
    assert total(samples, "http_requests_total", version="candidate") == 0
    # answered at once: in the lowest bucket of each histogram
    assert total(samples, "nginx_ingress_controller_request_duration_seconds_bucket", canary="shop-s-green-80",
                 status="503", le="0.005") == lost
