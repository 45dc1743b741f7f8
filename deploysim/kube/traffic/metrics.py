"""What the exporter has served, as a prometheus_client collector.

The exporter keeps its own totals and yields them as metric families at each scrape (the
library's custom-collector pattern for pre-aggregated data): a tick adds many observations
per bucket at once, which ``Histogram.observe`` cannot, and one lock over every family keeps
a scrape whole, so ``deploysim_traffic_seconds_total`` always matches the counts beside it,
and the real-shaped families (:mod:`~deploysim.kube.traffic.families`: Istio's,
ingress-nginx's, ``http_requests_total``) match the ``deploysim_*`` ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from deploysim.kube.traffic.families import Families, Store
from deploysim.kube.traffic.routing import ROUTES, VERSIONS
from deploysim.kube.traffic.sampling import BUCKETS, CODES, TickCounts

REQUESTS = "deploysim_requests_total"
DURATION = "deploysim_request_duration_seconds"
READY = "deploysim_ready_pods"
WEIGHT = "deploysim_candidate_weight"
SECONDS = "deploysim_traffic_seconds_total"
#: ``le`` as the exposition has always written it (3 significant digits, no trailing zeros)
LE = tuple(f"{bound:g}" for bound in BUCKETS) + ("+Inf",)


class Metrics:
    """Counters, a histogram and gauges for one service, collected under one lock.

    Every (version, code, route) series exists from the start at 0, so ``increase()`` sees
    the first requests of a version that appears later.
    """

    def __init__(self, service: str, namespace: str) -> None:
        self.service = service
        self.namespace = namespace
        self.lock = threading.Lock()
        self.requests = {(v, c, r): 0 for v in VERSIONS for c in CODES for r in ROUTES}
        self.buckets = {
            (v, r): np.zeros(len(BUCKETS) + 1, dtype=np.int64) for v in VERSIONS for r in ROUTES
        }
        self.sums = {(v, r): 0.0 for v in VERSIONS for r in ROUTES}
        self.ready = dict.fromkeys(VERSIONS, 0)
        self.weight = 0.0
        self.seconds = 0.0
        self.real = Families(service, namespace)

    def add(
        self,
        tick: TickCounts,
        ready: Mapping[str, int] | None = None,
        weight: float | None = None,
        real: Store | None = None,
    ) -> None:
        """Count a tick's requests, and set the gauges to the state it was drawn in; ``real``:
        the same requests in the real-shaped families (``Families.prepare``)."""
        with self.lock:
            if real is not None:
                self.real.add(real)
            for (version, route), counts in tick.codes.items():
                for code, count in zip(CODES, counts, strict=True):
                    self.requests[(version, code, route)] += int(count)
            for key, counts in tick.buckets.items():
                self.buckets[key] += counts
                self.sums[key] += tick.latency_sum[key]
            self.seconds += tick.seconds
            if ready is not None:
                self.ready = {v: ready.get(v, 0) for v in VERSIONS}
            if weight is not None:
                self.weight = weight

    def totals(self) -> dict[str, tuple[int, int]]:
        """(requests, failed requests) per version so far, all routes."""
        with self.lock:
            return {
                v: (
                    sum(n for (ver, _, _), n in self.requests.items() if ver == v),
                    sum(n for (ver, c, _), n in self.requests.items() if ver == v and c != "200"),
                )
                for v in VERSIONS
            }

    def collect(self) -> Iterator[Metric]:
        """The families a scrape serves (the prometheus_client ``Collector`` protocol)."""
        base = ["service", "namespace"]
        where = [self.service, self.namespace]
        requests = CounterMetricFamily(
            REQUESTS,
            "Requests answered, by version, status code and route.",
            labels=[*base, "version", "code", "route"],
        )
        duration = HistogramMetricFamily(
            DURATION, "Latency of requests a pod answered.", labels=[*base, "version", "route"]
        )
        ready = GaugeMetricFamily(
            READY, "Ready pods of the service, by version.", labels=[*base, "version"]
        )
        weight = GaugeMetricFamily(
            WEIGHT, "Share of user requests routed to the candidate, 0-100.", labels=base
        )
        seconds = CounterMetricFamily(SECONDS, "Seconds of traffic drawn so far.", labels=base)
        with self.lock:
            for (v, c, r), n in sorted(self.requests.items()):
                requests.add_metric([*where, v, c, r], n)
            for (v, r), counts in sorted(self.buckets.items()):
                cumulative = np.cumsum(counts).tolist()
                duration.add_metric(
                    [*where, v, r], list(zip(LE, cumulative, strict=True)), self.sums[(v, r)]
                )
            for v in VERSIONS:
                ready.add_metric([*where, v], self.ready[v])
            weight.add_metric(where, self.weight)
            seconds.add_metric(where, self.seconds)
            real = list(self.real.collect())
        yield from (requests, duration, ready, weight, seconds, *real)
