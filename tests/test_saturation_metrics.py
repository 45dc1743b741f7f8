"""Saturation on a cluster: the exporter's cAdvisor-shaped series, throttled latency in its
draws, and the Prometheus provider's queries and answers for saturation, cpu and memory."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_providers_prometheus import fake_prometheus, provider, vector

from deploysim.kube.traffic.resources import Containers
from deploysim.kube.traffic.routing import Flow, PodView
from deploysim.kube.traffic.sampling import sample_tick
from deploysim.plan import AnalysisSpec, Check
from deploysim.providers.saturation import containers, promql_resources
from deploysim.rules.saturation import PodResources
from deploysim.scenario import load_scenario

SCENARIO = ["pod.resources.limits.cpu=500m", "pod.resources.limits.memory=256Mi", "pod.resources.requests.cpu=250m",
            "candidate.image=web:2", "candidate.cpu_per_request=0.04", "candidate.cpu_base=50m",
            "candidate.memory_base=100Mi", "candidate.memory_per_rps=1Mi",
            "stable.image=web:1", "stable.cpu_per_request=0.01", "stable.cpu_base=50m"]


def scrape(collector: Containers) -> dict[str, dict[tuple, float]]:
    """family name -> {sorted labels: value}, as Prometheus would read the exposition."""
    registry = CollectorRegistry()
    registry.register(collector)
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_the_exporter_serves_each_pods_cpu_and_memory_as_cadvisor_does() -> None:
    sc = load_scenario(overrides=SCENARIO)
    c = Containers(sc, "shop", "web")
    pods = [PodView("web-c1", {}, "web:2", True), PodView("web-s1", {}, "web:1", True),
            PodView("web-s2", {}, "web:1", False)]
    versions = {"web-c1": "candidate", "web-s1": "stable", "web-s2": "stable"}
    flows = [Flow("web-c1", "candidate", "user", 20.0), Flow("web-s1", "stable", "user", 15.0),
             Flow("web-s1", "stable", "preview", 5.0)]
    for _ in range(4):
        c.add(pods, flows, versions, 0.5)  # two seconds of ticks
    got = scrape(c)
    key = lambda pod, **extra: tuple(sorted({"namespace": "shop", "pod": pod, "container": "app", **extra}.items()))  # noqa: E731
    # the candidate wants 0.05 + 20 x 0.04 = 0.85 cores, gets its 0.5 limit: 1 core-second in 2 s
    assert got["container_cpu_usage_seconds_total"][key("web-c1", cpu="total")] == pytest.approx(1.0)
    # the stable pod serves 20 rps in two flows at 10 ms each: 0.25 cores, 0.5 core-seconds
    assert got["container_cpu_usage_seconds_total"][key("web-s1", cpu="total")] == pytest.approx(0.5)
    assert got["container_cpu_usage_seconds_total"][key("web-s2", cpu="total")] == 0.0  # not ready: idle
    assert got["container_memory_working_set_bytes"][key("web-c1")] == 120 * 2**20
    # 20 CFS periods in 2 s, every one throttled for the candidate, none for the stable pod
    assert got["container_cpu_cfs_periods_total"][key("web-c1")] == 20
    assert got["container_cpu_cfs_throttled_periods_total"][key("web-c1")] == 20
    assert got["container_cpu_cfs_throttled_periods_total"][key("web-s1")] == 0
    assert got["container_spec_cpu_quota"][key("web-c1")] == 50_000  # 500m of a 100 ms period
    assert got["container_spec_cpu_period"][key("web-c1")] == 100_000
    assert got["container_spec_cpu_shares"][key("web-c1")] == 256  # 250m x 1024
    assert got["container_spec_memory_limit_bytes"][key("web-c1")] == 256 * 2**20
    info = got["deploysim_pod_info"]
    assert set(info) == {tuple(sorted({"service": "web", "namespace": "shop", "pod": p, "version": v}.items()))
                         for p, v in (("web-c1", "candidate"), ("web-s1", "stable"))}
    # a pod gone from the watch is gone from the series; a pod's own resources win over the scenario's
    own = PodView("web-c2", {}, "web:2", True, container="server", resources=PodResources(cpu_request=0.5))
    c.add([own], [Flow("web-c2", "candidate", "user", 20.0)], {"web-c2": "candidate"}, 1.0)
    got = scrape(c)
    assert list(got["container_cpu_usage_seconds_total"]) == [
        tuple(sorted({"namespace": "shop", "pod": "web-c2", "container": "server", "cpu": "total"}.items()))]
    assert got["container_cpu_usage_seconds_total"][next(iter(got["container_cpu_usage_seconds_total"]))] == \
        pytest.approx(0.85)  # no limit of its own: never throttled
    assert "container_spec_cpu_quota" not in got  # cAdvisor serves a quota only when one is set
    assert list(got["container_spec_cpu_shares"].values()) == [512]


def test_a_throttled_pod_answers_demand_over_limit_slower() -> None:
    flows = [Flow("c1", "candidate", "user", 20.0)]
    throttled = load_scenario(overrides=SCENARIO)
    unlimited = load_scenario(overrides=[o for o in SCENARIO if "limits.cpu" not in o and "requests.cpu" not in o])
    a = sample_tick(np.random.default_rng(5), throttled, flows, 10.0)
    b = sample_tick(np.random.default_rng(5), unlimited, flows, 10.0)
    key = ("candidate", "user")
    assert a.codes[key].tolist() == b.codes[key].tolist()  # the same requests and failures
    assert a.latency_sum[key] / b.latency_sum[key] == pytest.approx(0.85 / 0.5)
    # a pod's own limit overrides the scenario's: 1 core is more than the 0.85 it wants
    c = sample_tick(np.random.default_rng(5), throttled, flows, 10.0, cpu_limits={"c1": 1.0})
    assert c.latency_sum[key] == pytest.approx(b.latency_sum[key])


# --- the Prometheus provider ----------------------------------------------------------------


def test_saturation_promql_divides_a_versions_cpu_by_its_limits_or_requests() -> None:
    q = promql_resources('{service="web",namespace="shop"}', "shop", "[30s]")
    sel = containers("shop")
    info = ('* on (namespace, pod) group_left (version) max by (namespace, pod, version) '
            '(deploysim_pod_info{service="web",namespace="shop"})')
    used = f"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{sel}[30s]))"
    limit = (f"(sum by (namespace, pod) (max_over_time(container_spec_cpu_quota{sel}[30s])) / "
             f"sum by (namespace, pod) (max_over_time(container_spec_cpu_period{sel}[30s])))")
    request = f"(sum by (namespace, pod) (max_over_time(container_spec_cpu_shares{sel}[30s])) / 1024)"
    assert q["saturation"] == f"sum by (version) ({used} {info}) / sum by (version) (({limit} or {request}) {info})"
    assert q["memory"] == ("avg by (version) (sum by (namespace, pod) (avg_over_time("
                           f"container_memory_working_set_bytes{sel}[30s])) {info})")


def with_resources(seen: list[httpx.Request]):  # noqa: ANN201
    standard = fake_prometheus(seen)

    def handle(request: httpx.Request) -> httpx.Response:
        q = request.url.params.get("query", "")
        if "deploysim_pod_info" in q:
            seen.append(request)
            if q.startswith("sum by (version)"):
                return httpx.Response(200, json=vector({"stable": 0.5, "candidate": 0.9}))
            if "working_set" in q:
                return httpx.Response(200, json=vector({"stable": 2.0**27}))  # no candidate series
            return httpx.Response(200, json=vector({"stable": 0.25, "candidate": 0.45}))
        return standard(request)

    return handle


def test_the_provider_asks_for_resources_only_when_a_check_needs_them() -> None:
    seen: list[httpx.Request] = []
    p, _ = provider(with_resources(seen), service="web", namespace="shop", step=20)
    plain = p.measure(1000.0, 1060.0, AnalysisSpec(checks=(Check("error_rate", max=0.01),)))
    assert not [r for r in seen if "container_" in r.url.params["query"]]
    assert math.isnan(plain.candidate.saturation)
    seen.clear()
    m = p.measure(1000.0, 1060.0, AnalysisSpec(checks=(Check("saturation", max=0.8),)))
    asked = [r.url.params["query"] for r in seen if "container_" in r.url.params["query"]]
    assert len(asked) == 3 and all("[60s]" in q and 'namespace="shop"' in q for q in asked)
    assert (m.candidate.saturation, m.candidate.cpu, m.baseline.saturation) == (0.9, 0.45, 0.5)
    assert math.isnan(m.candidate.memory) and m.baseline.memory == 2.0**27  # no series: no value, not 0
    assert m.candidate.requests == 600  # the standard window as before


def test_a_pods_own_requests_and_limits_are_read_from_its_first_container() -> None:
    from kubernetes import client

    from deploysim.kube.traffic.routing import pod_view

    def pod(resources):  # noqa: ANN001, ANN202
        return client.V1Pod(metadata=client.V1ObjectMeta(name="web-1", labels={}),
                            spec=client.V1PodSpec(containers=[client.V1Container(
                                name="server", image="web:2", resources=resources)]))

    view = pod_view(pod(client.V1ResourceRequirements(requests={"cpu": "250m"}, limits={"cpu": "1", "memory": "1Gi"})))
    assert view.container == "server"
    assert view.resources == PodResources(cpu_request=0.25, cpu_limit=1.0, memory_request=2.0**30,
                                          memory_limit=2.0**30)
    assert pod_view(pod(None)).resources is None  # none declared: the scenario's pod.resources
