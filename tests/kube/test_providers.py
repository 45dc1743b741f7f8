"""The real chain: pods -> traffic exporter -> local Prometheus -> PrometheusProvider.

Runs on the session's local control plane (``local_cluster`` in tests/conftest.py), in a
namespace of its own. PromQL text, answers, retries and failures are tested without a
cluster in tests/test_providers_prometheus.py.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable

import pytest
from kubernetes import client, config

from deploysim.kube import naming as n
from deploysim.kube.app import delete_namespace
from deploysim.kube.traffic import start_exporter
from deploysim.providers import PrometheusProvider
from deploysim.rules.service import latency_factor, latency_quantile
from deploysim.scenario import load_scenario


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def lognormal_quantile(median_ms: float, rho: float, sigma: float, q: float) -> float:
    return float(latency_quantile(q, math.log(median_ms * latency_factor(rho)), sigma))


@pytest.mark.cluster
def test_prometheus_reads_what_the_exporter_served(local_cluster) -> None:
    info = local_cluster
    api = config.new_client_from_config(config_file=str(info.kubeconfig))
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    ns, s = f"providers-{uuid.uuid4().hex[:6]}", "shop"
    core.create_namespace({"metadata": {"name": ns}})
    try:
        for slot, image in (("blue", "shop:1"), ("green", "shop:2")):
            labels = n.selector(s, slot)
            apps.create_namespaced_deployment(ns, {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": n.slot_deployment(s, slot)},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
                    "metadata": {"labels": labels, "annotations": {"deploysim.io/ready-delay": "200ms"}},
                    "spec": {"containers": [{"name": "app", "image": image}]}}}})
        core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": s},
                                            "spec": {"selector": n.selector(s), "ports": [{"port": 80}]}})

        def ready() -> int:
            pods = core.list_namespaced_pod(ns, label_selector=f"{n.APP_LABEL}={s}").items
            return sum(1 for p in pods
                       if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])))

        wait_for("4 ready pods", lambda: ready() == 4)
        sc = load_scenario(overrides=[
            f"service={s}", "traffic.shape=constant", "traffic.rps=400", "pod.capacity_rps=1000",
            "stable.image=shop:1", "candidate.image=shop:2", "stable.error_rate=0.001", "candidate.error_rate=0.2",
            "stable.latency_ms=40", "candidate.latency_ms=80", "stable.latency_sigma=0.3", "candidate.latency_sigma=0.3",
        ])
        prom = PrometheusProvider(info.prometheus_url, s, namespace=ns, step=5, timeout=2.0)
        with start_exporter(sc, kubeconfig=info.kubeconfig, namespace=ns, tick=0.25, register=info.name) as ex:
            t0 = time.time()
            # Prometheus picks the target up from file_sd, then scrapes every second
            scraped = f'count_over_time(deploysim_requests_total{{service="{s}",namespace="{ns}"}}[1m])'
            wait_for("scraped samples", lambda: float(
                (prom.query(scraped) or [{"value": [0, "0"]}])[0]["value"][1]) >= 4, 30)
            start = max(t0, time.time()) + 1
            end = start + 10
            # 10 s of traffic, and Prometheus has scraped past its end
            latest = f'max(timestamp(deploysim_requests_total{{service="{s}",namespace="{ns}"}}))'
            wait_for("a scrape after the window", lambda: time.time() > end and float(
                (prom.query(latest) or [{"value": [0, "0"]}])[0]["value"][1]) >= end + 0.5, 60)
            m = prom.measure(start, end)
            served = ex.served(start, end)
        prom.close()
    finally:
        delete_namespace(api, ns)
        api.close()
    assert m.error is None, m.error
    for version, expected_errors in (("stable", 0.001), ("candidate", 0.2)):
        w = m.versions[version]
        requests, errors = served[version]
        # increase() extrapolates between 1 s scrapes; the exporter's ticks are 0.25 s
        assert w.requests == pytest.approx(requests, rel=0.1)
        assert w.requests == pytest.approx(200 * 10, rel=0.15)
        assert w.error_rate == pytest.approx(errors / requests, abs=0.02)
        assert w.error_rate == pytest.approx(expected_errors, abs=0.04)
        assert len(w.series_requests) == 2
        assert sum(w.series_requests) == pytest.approx(w.requests, rel=0.15)
        assert sum(w.series_errors) == pytest.approx(w.errors, rel=0.3, abs=10)
    # each version serves 200 rps on 2 pods of 1000: rho 0.1
    for version, median in (("stable", 40.0), ("candidate", 80.0)):
        w = m.versions[version]
        for q, got in ((0.5, w.latency_p50), (0.95, w.latency_p95), (0.99, w.latency_p99)):
            assert got == pytest.approx(lognormal_quantile(median, 0.1, 0.3, q), rel=0.12), (version, q)
        assert [x == pytest.approx(w.latency_p99, rel=0.25) for x in w.series_latency_p99] == [True, True]
    assert m.candidate.latency_p99 > 1.6 * m.baseline.latency_p99
