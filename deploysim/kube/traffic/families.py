"""Real-shaped metric families: Istio's, ingress-nginx's and an app's own request counter.

The exporter serves them beside the ``deploysim_*`` families, from the same draws, so a
query written for a mesh or an ingress controller (Flagger's built-in checks, Argo Rollouts'
analysis templates) reads the emulated traffic as it would a real one:

- ``istio_requests_total`` and ``istio_request_duration_milliseconds`` (Istio's standard
  metrics, istio.io ``docs/reference/config/metrics``), every standard label. Users come in by
  the ingress gateway (``source_workload="istio-ingressgateway"``), which reports them
  ``reporter="source"``; the pod's sidecar reports what the pod answered
  ``reporter="destination"`` (preview smoke tests, from no workload of the mesh, only so). A
  request with no ready endpoint is reported by the gateway alone: ``destination_workload``
  "unknown", ``response_code`` 503, ``response_flags`` "UH" (Envoy's no healthy upstream).
  ``destination_workload`` is the pod's Deployment (:func:`routing.workload_of`),
  ``destination_service`` the FQDN of the Service that routed the request. Flagger's Istio
  observer (``pkg/metrics/observers/istio.go``) filters ``reporter="destination"``,
  ``destination_workload_namespace`` and ``destination_workload``; Argo's docs
  (``docs/analysis/prometheus.md``) ``reporter="source"`` and ``destination_service``. Buckets:
  Envoy's defaults (``HistogramSettingsImpl::defaultBuckets``, 0.5 ms to 1 h), in ms.
- ``nginx_ingress_controller_requests`` and ``nginx_ingress_controller_request_duration_seconds``
  with ingress-nginx's labels (``internal/ingress/metric/collectors/socket.go``: ``status``,
  ``method``, ``path``, ``namespace``, ``ingress``, ``service``, ``canary``, ``host`` and the
  ``controller_*`` constants), for users who came in by an Ingress. Every request of a location
  carries the location's Ingress and Service, the canary's too; ``canary`` is the canary
  upstream's name (``$proxy_alternative_upstream_name``, "namespace-service-port") when the
  canary took it, "" else (``rootfs/etc/nginx/lua/monitor.lua``, ``balancer.lua``). Flagger's
  nginx observer reads ``ingress``, ``namespace``, ``status`` and
  ``nginx_ingress_controller_ingress_upstream_latency_seconds`` (served as a summary with its
  ``_sum`` and ``_count`` only); its docs' templates add ``canary!=""``. Buckets: the
  controller's default ``--time-buckets`` (client_golang's ``DefBuckets``), in seconds. The
  request counter is served untyped: prometheus_client appends ``_total`` to every counter's
  name, and the name here is the controller's.
- ``http_requests_total{code, method, service, namespace, version, pod}``: what each pod
  answered, as an app's own instrumentation counts it.

Latencies are drawn on the fine bounds of :data:`sampling.BUCKETS`; a fine bucket that holds
a coarse bound is split across it log-uniformly (:class:`Rebin`), requests under 5 ms count at
5 ms and those above 17.8 s above every bound. Within a flow, latency does not depend on the
status code, so a tick's latencies go to its codes as a random draw without replacement.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from deploysim.kube.traffic.routing import Flow, PodView
from deploysim.kube.traffic.sampling import BUCKETS, CODES, TickCounts, sample_tick
from deploysim.scenario import Scenario

ISTIO_REQUESTS = "istio_requests_total"
ISTIO_DURATION = "istio_request_duration_milliseconds"
NGINX_REQUESTS = "nginx_ingress_controller_requests"
NGINX_DURATION = "nginx_ingress_controller_request_duration_seconds"
NGINX_LATENCY = "nginx_ingress_controller_ingress_upstream_latency_seconds"
HTTP_REQUESTS = "http_requests_total"

ISTIO_BUCKETS_MS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                                       60000, 300000, 600000, 1800000, 3600000)
NGINX_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

ISTIO_LABELS = (
    "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
    "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
    "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
    "destination_version", "destination_service", "destination_canonical_service",
    "destination_canonical_revision", "destination_service_name", "destination_service_namespace",
    "destination_cluster", "request_protocol", "response_code", "grpc_response_status", "response_flags",
    "connection_security_policy",
)
CONTROLLER_LABELS = ("controller_namespace", "controller_class", "controller_pod")
#: the controller the requests came through, as its Helm chart installs it
CONTROLLER = ("ingress-nginx", "k8s.io/ingress-nginx", "ingress-nginx-controller")
NGINX_LABELS = ("status", "method", "path", "namespace", "ingress", "service", "canary", "host", *CONTROLLER_LABELS)
NGINX_LATENCY_LABELS = ("ingress", "namespace", "service", "canary", *CONTROLLER_LABELS)
HTTP_LABELS = ("code", "method", "service", "namespace", "version", "pod")
METHOD = "GET"
CLUSTER = "Kubernetes"  # Istio's cluster name unless set at install
UNKNOWN = "unknown"
#: source_workload, _canonical_service, _canonical_revision, _workload_namespace, _principal, _app, _version
GATEWAY = ("istio-ingressgateway", "istio-ingressgateway", "latest", "istio-system",
           "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
           "istio-ingressgateway", UNKNOWN)
NO_SOURCE = (UNKNOWN,) * 7


@dataclass(frozen=True)
class FlowDraw:
    """One flow's requests in one tick: counts of :data:`CODES`, latency counts on
    :data:`BUCKETS` (and above), and the latencies' sum in seconds."""

    codes: np.ndarray
    buckets: np.ndarray
    latency_sum: float


def sample_flows(rng: np.random.Generator, scenario: Scenario, flows: list[Flow], seconds: float,
                 outage: float = 0.0, cpu_limits: Mapping[str, float | None] | None = None,
                 ) -> tuple[TickCounts, list[FlowDraw]]:
    """``sample_tick``'s draw, summed per (version, route) as it sums it and kept per flow.

    ``sample_tick`` draws per flow, in the flows' order, and only sums by (version, route); a
    route of its own for each flow (its index) makes the same generator calls on the same
    arrays and hands the draws back one by one, so the sums are the ones it would give.
    """
    keyed = [replace(f, route=str(i)) for i, f in enumerate(flows)]
    drawn = sample_tick(rng, scenario, keyed, seconds, outage, cpu_limits)
    width = len(BUCKETS) + 1
    draws = [FlowDraw(drawn.codes.get((f.version, f.route), np.zeros(len(CODES), dtype=np.int64)),
                      drawn.buckets.get((f.version, f.route), np.zeros(width, dtype=np.int64)),
                      drawn.latency_sum.get((f.version, f.route), 0.0)) for f in keyed]
    tick = TickCounts(seconds=drawn.seconds)
    for f, k, d in zip(flows, keyed, draws, strict=True):
        if (k.version, k.route) not in drawn.codes:
            continue
        key = (f.version, f.route)
        if key in tick.codes:
            tick.codes[key] = tick.codes[key] + d.codes
            tick.buckets[key] = tick.buckets[key] + d.buckets
            tick.latency_sum[key] += d.latency_sum
        else:
            tick.codes[key], tick.buckets[key], tick.latency_sum[key] = d.codes.copy(), d.buckets.copy(), d.latency_sum
    return tick, draws


def _at_or_above(bounds: Sequence[float], value: float) -> int:
    """The bucket (index into ``bounds``, len for +Inf) holding a value just at ``value``."""
    return len(bounds) if math.isinf(value) else bisect.bisect_left(bounds, value * (1 - 1e-9))


class Rebin:
    """Latency counts on ``fine`` bounds moved to ``coarse`` bounds (both ascending, seconds).

    A fine bucket with no coarse bound inside moves whole; one with bounds inside is split
    across them in proportion to the log-widths of its parts; the first fine bucket moves to
    its upper bound, the last (above every fine bound) above every coarse bound.

    >>> r = Rebin((0.005, 0.0174, 0.02, 0.023, 0.0264), (0.01, 0.025))
    >>> r(np.array([3, 0, 5, 1, 0, 2]), np.random.default_rng(1)).tolist()
    [3, 6, 2]
    >>> # (5, 17.4] ms holds 10 ms, (23, 26.4] ms 25 ms: split by log-widths
    >>> [(j, t.tolist(), p.round(3).tolist()) for j, t, p in r.splits]
    [(1, [0, 1], [0.556, 0.444]), (4, [1, 2], [0.605, 0.395])]
    """

    def __init__(self, fine: Sequence[float], coarse: Sequence[float]) -> None:
        self.coarse = tuple(coarse)
        edges = [0.0, *fine, math.inf]
        whole_from, whole_to = [], []
        self.splits: list[tuple[int, np.ndarray, np.ndarray]] = []
        for j, (lo, hi) in enumerate(pairwise(edges)):
            inside = [b for b in self.coarse if lo * (1 + 1e-9) < b < hi * (1 - 1e-9)]
            if not inside or lo == 0 or math.isinf(hi):
                whole_from.append(j)
                whole_to.append(_at_or_above(self.coarse, hi))
                continue
            cuts = [lo, *inside, hi]
            parts = np.array([math.log(b / a) for a, b in pairwise(cuts)]) / math.log(hi / lo)
            self.splits.append((j, np.array([_at_or_above(self.coarse, b) for b in cuts[1:]]), parts))
        self.whole_from, self.whole_to = np.array(whole_from), np.array(whole_to)

    def __call__(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros(len(self.coarse) + 1, dtype=np.int64)
        np.add.at(out, self.whole_to, counts[self.whole_from])
        for j, targets, parts in self.splits:
            if counts[j]:
                out[targets] += rng.multinomial(int(counts[j]), parts)
        return out


ISTIO_REBIN = Rebin(BUCKETS, tuple(b / 1000 for b in ISTIO_BUCKETS_MS))
NGINX_REBIN = Rebin(tuple(b / 1000 for b in ISTIO_BUCKETS_MS), NGINX_BUCKETS)  # bounds a subset: no split


def split_codes(buckets: np.ndarray, codes: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """A flow's latency counts shared out among its status codes, drawn without replacement.

    >>> [b.tolist() for b in split_codes(np.array([4, 0, 2]), np.array([6, 0, 0]), np.random.default_rng(0))]
    [[4, 0, 2], [0, 0, 0], [0, 0, 0]]
    """
    remaining = buckets.astype(np.int64).copy()
    out = []
    for k in codes[:-1]:
        part = rng.multivariate_hypergeometric(remaining, int(k)) if k else np.zeros_like(remaining)
        remaining = remaining - part
        out.append(part)
    return [*out, remaining]


def _le(bound: float) -> str:
    return f"{bound:.15g}"


class Store:
    """Counters, histograms (non-cumulative counts and a sum) and summaries, by (family, labels)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, tuple[str, ...]], int] = {}
        self.hists: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        self.summaries: dict[tuple[str, tuple[str, ...]], list[float]] = {}

    def count(self, family: str, key: tuple[str, ...], n: int) -> None:
        self.counts[(family, key)] = self.counts.get((family, key), 0) + int(n)

    def observe(self, family: str, key: tuple[str, ...], counts: np.ndarray, total: float) -> None:
        slot = self.hists.setdefault((family, key), [np.zeros(len(counts), dtype=np.int64), 0.0])
        slot[0] = slot[0] + counts
        slot[1] += total

    def summarize(self, family: str, key: tuple[str, ...], n: int, total: float) -> None:
        slot = self.summaries.setdefault((family, key), [0, 0.0])
        slot[0] += int(n)
        slot[1] += total

    def merge(self, other: Store) -> None:
        for (family, key), n in other.counts.items():
            self.count(family, key, n)
        for (family, key), (counts, total) in other.hists.items():
            self.observe(family, key, counts, total)
        for (family, key), (n, total) in other.summaries.items():
            self.summarize(family, key, int(n), total)


class Families:
    """The real-shaped families of one service, totalled tick by tick.

    :meth:`prepare` turns a tick's flows and draws into increments (no state changed, so the
    caller may do it outside its lock); :meth:`add` counts them; :meth:`collect` yields the
    families as a scrape serves them.
    """

    def __init__(self, service: str, namespace: str) -> None:
        self.service = service
        self.namespace = namespace
        self.totals = Store()

    # -- labels -------------------------------------------------------------------------------

    def _istio(self, flow: Flow, pod: PodView | None, code: str, reporter: str) -> tuple[str, ...]:
        ns = self.namespace
        source = GATEWAY if flow.route == "user" else NO_SOURCE
        svc = flow.backend
        if pod is None:
            dest = (UNKNOWN,) * 5
            canonical = (UNKNOWN, UNKNOWN)
        else:
            lb = pod.labels
            workload = pod.workload or pod.name
            dest = (workload, ns, f"spiffe://cluster.local/ns/{ns}/sa/{pod.service_account}",
                    lb.get("app", UNKNOWN), lb.get("version", UNKNOWN))
            canonical = (
                lb.get("service.istio.io/canonical-name") or lb.get("app.kubernetes.io/name") or lb.get("app")
                or workload,
                lb.get("service.istio.io/canonical-revision") or lb.get("app.kubernetes.io/version")
                or lb.get("version") or "latest",
            )
        return (reporter, *source, CLUSTER, *dest,
                f"{svc}.{ns}.svc.cluster.local" if svc else UNKNOWN, *canonical,
                svc or UNKNOWN, ns if svc else UNKNOWN, CLUSTER, "http", code, "",
                "-" if pod is not None else "UH", "mutual_tls" if reporter == "destination" else UNKNOWN)

    def _nginx(self, flow: Flow, code: str) -> tuple[str, ...]:
        e = flow.entry
        assert e is not None
        return (code, METHOD, e.path, self.namespace, e.ingress, e.service, e.canary, e.host, *CONTROLLER)

    def _http(self, flow: Flow, code: str) -> tuple[str, ...]:
        return (code, METHOD, self.service, self.namespace, flow.version, flow.pod or "")

    # -- a tick ---------------------------------------------------------------------------------

    def prepare(self, flows: Sequence[Flow], draws: Sequence[FlowDraw], pods: Mapping[str, PodView],
                rng: np.random.Generator, expected: Iterable[Flow] = ()) -> Store:
        """A tick's increments: the drawn flows' requests, and every ``expected`` flow's series
        at 0 (see :func:`routing.expected_flows`)."""
        out = Store()
        zero = FlowDraw(np.zeros(len(CODES), dtype=np.int64), np.zeros(len(BUCKETS) + 1, dtype=np.int64), 0.0)
        for flow, draw in [*zip(flows, draws, strict=True), *((f, zero) for f in expected)]:
            if flow.pod is None:
                self._unanswered(out, flow, int(draw.codes.sum()))
            else:
                self._answered(out, flow, pods.get(flow.pod), draw, rng)
        return out

    def _answered(self, out: Store, flow: Flow, pod: PodView | None, draw: FlowDraw,
                  rng: np.random.Generator) -> None:
        n = int(draw.codes.sum())
        by_code = split_codes(ISTIO_REBIN(draw.buckets, rng), draw.codes, rng)
        reporters = ("destination", "source") if flow.route == "user" else ("destination",)
        if pod is None:  # gone from the watch between the routing and the count
            pod = PodView(flow.pod or "", {}, "", True, flow.pod or "")
        for code, k, counts in zip(CODES, draw.codes, by_code, strict=True):
            seconds = draw.latency_sum * int(k) / n if n else 0.0
            for reporter in reporters:
                key = self._istio(flow, pod, code, reporter)
                out.count(ISTIO_REQUESTS, key, k)
                out.observe(ISTIO_DURATION, key, counts, 1000.0 * seconds)
            if flow.entry is not None:
                key = self._nginx(flow, code)
                out.count(NGINX_REQUESTS, key, k)
                out.observe(NGINX_DURATION, key, NGINX_REBIN(counts, rng), seconds)
            out.count(HTTP_REQUESTS, self._http(flow, code), k)
        if flow.entry is not None:
            e = flow.entry
            out.summarize(NGINX_LATENCY, (e.ingress, self.namespace, e.service, e.canary, *CONTROLLER),
                          n, draw.latency_sum)

    def _unanswered(self, out: Store, flow: Flow, n: int) -> None:
        """No ready endpoint: answered 503 at once, by the gateway (and by the controller)."""
        if flow.route == "user":
            key = self._istio(flow, None, "503", "source")
            out.count(ISTIO_REQUESTS, key, n)
            out.observe(ISTIO_DURATION, key, np.eye(len(ISTIO_BUCKETS_MS) + 1, dtype=np.int64)[0] * n, 0.0)
        if flow.entry is not None:
            key = self._nginx(flow, "503")
            out.count(NGINX_REQUESTS, key, n)
            out.observe(NGINX_DURATION, key, np.eye(len(NGINX_BUCKETS) + 1, dtype=np.int64)[0] * n, 0.0)

    def add(self, increments: Store) -> None:
        self.totals.merge(increments)

    # -- a scrape ---------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """The families with their series so far, in a stable order (the caller holds the lock)."""
        t = self.totals
        istio = CounterMetricFamily(ISTIO_REQUESTS, "Requests handled by an Istio proxy.", labels=ISTIO_LABELS)
        http = CounterMetricFamily(HTTP_REQUESTS, "Requests a pod answered.", labels=HTTP_LABELS)
        nginx = Metric(NGINX_REQUESTS, "The total number of client requests", "unknown")
        for (family, key), n in sorted(t.counts.items()):
            if family == ISTIO_REQUESTS:
                istio.add_metric(key, n)
            elif family == HTTP_REQUESTS:
                http.add_metric(key, n)
            else:
                nginx.add_sample(NGINX_REQUESTS, dict(zip(NGINX_LABELS, key, strict=True)), n)
        istio_ms = HistogramMetricFamily(ISTIO_DURATION, "Duration of requests, in milliseconds.",
                                         labels=ISTIO_LABELS)
        nginx_s = HistogramMetricFamily(NGINX_DURATION, "The request processing time in seconds",
                                        labels=NGINX_LABELS)
        for (family, key), (counts, total) in sorted(t.hists.items(), key=lambda item: item[0]):
            target, bounds = (istio_ms, ISTIO_BUCKETS_MS) if family == ISTIO_DURATION else (nginx_s, NGINX_BUCKETS)
            les = [*map(_le, bounds), "+Inf"]
            target.add_metric(key, list(zip(les, np.cumsum(counts).tolist(), strict=True)), total)
        latency = SummaryMetricFamily(NGINX_LATENCY, "Upstream service latency per Ingress",
                                      labels=NGINX_LATENCY_LABELS)
        for (_, key), (n, total) in sorted(t.summaries.items(), key=lambda item: item[0]):
            latency.add_metric(key, count_value=int(n), sum_value=total)
        yield from (istio, istio_ms, nginx, nginx_s, latency, http)
