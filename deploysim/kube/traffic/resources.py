"""The pods' CPU and memory, as cAdvisor-shaped series, from the load each tick puts on them.

A KWOK pod runs nothing, so the exporter also plays the kubelet's cAdvisor endpoint
(``/metrics/cadvisor``) for the service's pods, by the saturation model the simulator uses
(:mod:`deploysim.rules.saturation`): a ready pod at ``rps`` uses ``cpu_base + rps ×
cpu_per_request`` cores up to its CPU limit and holds ``memory_base + rps × memory_per_rps``
bytes. The series, named and typed as google/cadvisor metrics/prometheus.go
``NewPrometheusCollector`` defines them, labelled ``namespace``, ``pod`` and ``container`` as
the kubelet labels a container's series:

- ``container_cpu_usage_seconds_total{cpu="total"}``: counter, cores·s used (per-CPU usage
  off, as the kubelet runs cAdvisor);
- ``container_memory_working_set_bytes``: gauge, the working set now;
- ``container_cpu_cfs_periods_total`` / ``container_cpu_cfs_throttled_periods_total``:
  counters of 100 ms CFS periods, every one throttled while the demand is above the limit;
- ``container_spec_cpu_quota`` and ``container_spec_cpu_period`` (µs; only with a CPU limit,
  as cAdvisor serves them only when a quota is set), ``container_spec_cpu_shares`` (the
  request × 1024, at least 2: the kubelet's ``MilliCPUToShares``),
  ``container_spec_memory_limit_bytes`` (0 when unlimited).

Beside them, ``deploysim_pod_info{service, namespace, pod, version}`` is 1 for each ready pod:
the pod-to-version map the exporter counts requests by, so a query can sum a version's pods
(``* on (namespace, pod) group_left (version) deploysim_pod_info``). A pod's requests and limits
are its first container's; a container that declares none has the scenario's
``pod.resources``. A pod uses nothing while it is not ready; a pod gone from the watch is
gone from the series, as cAdvisor drops a container that is gone. OOM kills are not played:
the working set served is at most the memory limit.

>>> from deploysim.kube.traffic.routing import Flow, PodView
>>> from deploysim.scenario import load_scenario
>>> sc = load_scenario(overrides=["pod.resources.limits.cpu=500m", "candidate.image=v2",
...                               "candidate.cpu_per_request=0.02", "candidate.cpu_base=50m"])
>>> c = Containers(sc, "shop", "checkout")
>>> c.add([PodView("checkout-1", {}, "v2", True)], [Flow("checkout-1", "candidate", "user", 20.0)],
...       {"checkout-1": "candidate"}, 10.0)
>>> round(c.pods["checkout-1"].cpu_seconds, 3), c.pods["checkout-1"].periods
(4.5, 100)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from deploysim.kube.traffic.routing import Flow, PodView
from deploysim.resources import costs_of
from deploysim.rules.saturation import (
    CFS_PERIOD_US,
    MIN_SHARES,
    SHARES_PER_CPU,
    PodResources,
    pod_usage,
)
from deploysim.scenario import Scenario

CPU_USAGE = "container_cpu_usage_seconds_total"
WORKING_SET = "container_memory_working_set_bytes"
CFS_PERIODS = "container_cpu_cfs_periods_total"
CFS_THROTTLED = "container_cpu_cfs_throttled_periods_total"
CPU_QUOTA = "container_spec_cpu_quota"
CPU_PERIOD = "container_spec_cpu_period"
CPU_SHARES = "container_spec_cpu_shares"
MEMORY_LIMIT = "container_spec_memory_limit_bytes"
POD_INFO = "deploysim_pod_info"
LABELS = ("namespace", "pod", "container")


@dataclass
class PodMeter:
    """One pod's container so far: its counters, its working set now and its spec."""

    container: str
    version: str
    ready: bool
    resources: PodResources
    cpu_seconds: float = 0.0
    memory: float = 0.0
    periods: int = 0
    throttled: int = 0
    _period_seconds: float = 0.0  # seconds not yet a whole CFS period


class Containers:
    """The cAdvisor-shaped series of one service's pods (a prometheus_client collector)."""

    def __init__(self, scenario: Scenario, namespace: str, service: str) -> None:
        self.scenario = scenario
        self.namespace = namespace
        self.service = service
        self.resources = scenario.pod.resources.parsed()
        self.costs = {"stable": costs_of(scenario.stable), "candidate": costs_of(scenario.candidate)}
        self.pods: dict[str, PodMeter] = {}
        self.lock = threading.Lock()

    def add(self, pods: Iterable[PodView], flows: Iterable[Flow], versions: Mapping[str, str],
            seconds: float) -> None:
        """``seconds`` of each watched pod at the load its ``flows`` put on it."""
        load: dict[str, float] = {}
        for f in flows:
            if f.pod is not None:
                load[f.pod] = load.get(f.pod, 0.0) + f.rps
        with self.lock:
            seen = set()
            for p in pods:
                seen.add(p.name)
                resources = p.resources or self.resources
                meter = self.pods.get(p.name)
                if meter is None:
                    meter = self.pods[p.name] = PodMeter(p.container, versions[p.name], p.ready, resources)
                meter.version, meter.ready, meter.resources = versions[p.name], p.ready, resources
                if not p.ready or seconds <= 0:
                    meter.memory = 0.0 if not p.ready else meter.memory
                    continue
                u = pod_usage(load.get(p.name, 0.0), self.costs[meter.version], resources)
                meter.cpu_seconds += u.used * seconds
                limit = resources.memory_limit
                meter.memory = u.memory if limit is None else min(u.memory, limit)
                if resources.cpu_limit is not None:
                    meter._period_seconds += seconds
                    whole = int(meter._period_seconds * 1e6 // CFS_PERIOD_US)
                    meter._period_seconds -= whole * CFS_PERIOD_US / 1e6
                    meter.periods += whole
                    meter.throttled += whole if u.demand > resources.cpu_limit else 0
            for gone in set(self.pods) - seen:
                del self.pods[gone]

    def collect(self) -> Iterator[Metric]:
        """The families a scrape serves (the prometheus_client ``Collector`` protocol)."""
        cpu = CounterMetricFamily(CPU_USAGE, "Cumulative cpu time consumed in seconds.", labels=[*LABELS, "cpu"])
        memory = GaugeMetricFamily(WORKING_SET, "Current working set in bytes.", labels=LABELS)
        periods = CounterMetricFamily(CFS_PERIODS, "Number of elapsed enforcement period intervals.", labels=LABELS)
        throttled = CounterMetricFamily(CFS_THROTTLED, "Number of throttled period intervals.", labels=LABELS)
        quota = GaugeMetricFamily(CPU_QUOTA, "CPU quota of the container.", labels=LABELS)
        period = GaugeMetricFamily(CPU_PERIOD, "CPU period of the container.", labels=LABELS)
        shares = GaugeMetricFamily(CPU_SHARES, "CPU share of the container.", labels=LABELS)
        limit = GaugeMetricFamily(MEMORY_LIMIT, "Memory limit for the container.", labels=LABELS)
        info = GaugeMetricFamily(POD_INFO, "1 for each ready pod of the service, by the version it serves.",
                                 labels=["service", "namespace", "pod", "version"])
        with self.lock:
            for name, m in sorted(self.pods.items()):
                key = [self.namespace, name, m.container]
                res = m.resources
                cpu.add_metric([*key, "total"], m.cpu_seconds)
                memory.add_metric(key, m.memory)
                shares.add_metric(key, max(MIN_SHARES, round((res.cpu_request or 0.0) * SHARES_PER_CPU)))
                limit.add_metric(key, res.memory_limit or 0.0)
                if res.cpu_limit is not None:
                    periods.add_metric(key, m.periods)
                    throttled.add_metric(key, m.throttled)
                    quota.add_metric(key, round(res.cpu_limit * CFS_PERIOD_US))
                    period.add_metric(key, CFS_PERIOD_US)
                if m.ready:
                    info.add_metric([self.service, self.namespace, name, m.version], 1)
        yield from (cpu, memory, periods, throttled, quota, period, shares, limit, info)
