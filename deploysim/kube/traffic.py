"""``deploysim traffic``: the scenario's users, sent (on paper) to a real cluster's pods.

A control-plane rehearsal runs real Deployments, Services and HTTPRoutes on a cluster whose
pods run nothing (KWOK). This exporter supplies what their users would have done: it
watches the pods of one service, reads the routing from the cluster the way
:mod:`deploysim.kube.naming` lays it out, applies the scenario's traffic and failure model to
whichever pods are ready and weighted, and serves the outcome as Prometheus metrics on
127.0.0.1, so the Prometheus provider and the analysis read them as they would a real app.

Routing, read every tick:

- an HTTPRoute ``S`` (gateway.networking.k8s.io/v1) splits requests by the ``weight`` of its
  first rule's ``backendRefs``; each backend Service spreads its share evenly over its ready
  pods. A backend with no ready pod answers 503.
- without one, the Service ``S`` spreads requests evenly over the ready pods its selector
  picks (kube-proxy); no Service, or no ready pod, answers 503.
- blue-green smoke tests: ``strategy.preview_rps`` go to the ready pods of Service
  ``S-preview`` while no user request reaches the candidate (as the simulator does).

Per pod, as in the simulator (:meth:`deploysim.sim.world.SimWorld.flush`): load
rho = offered rps / capacity_rps; shed 1 - 1/rho above 1 (answered 503); failure probability
1 - (1 - shed)(1 - error_rate)(1 - outage) (the rest of the failures answer 500); latency
log-normal with median latency_ms / sqrt(1 - min(rho, 0.9)) and sigma latency_sigma.
``dependency_outage`` faults apply by wall time since the exporter started. Requests are
drawn per tick (Poisson counts, multinomial codes and latency buckets), seeded by
``scenario.seed``; their cost does not grow with rps.

Metrics (labels ``service``, ``namespace``, ``version`` = stable|candidate by the pod's first
container image, ``route`` = user|preview):

- ``deploysim_requests_total{...,code="200|500|503"}`` counter;
- ``deploysim_request_duration_seconds`` histogram (buckets 5 ms to 20 s, 15% apart);
- ``deploysim_ready_pods{...}`` and ``deploysim_candidate_weight`` gauges;
- ``deploysim_traffic_seconds_total``: seconds of traffic drawn so far, so a rate from two
  scrapes is exact whatever their timing against the ticks.

>>> ex = start_exporter("scenario.yaml", kubeconfig="kubeconfig", port=0)  # doctest: +SKIP
>>> ex.port, ex.url                                                       # doctest: +SKIP
(40123, 'http://127.0.0.1:40123/metrics')
>>> ex.stop()                                                              # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import bisect
import math
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr

from deploysim.errors import ClusterError, DeploysimError
from deploysim.kube import naming
from deploysim.scenario import Scenario, load_scenario, parse_duration
from deploysim.sim.traffic import TrafficShape

HOST = "127.0.0.1"
VERSIONS = ("stable", "candidate")
ROUTES = ("user", "preview")
CODES = ("200", "500", "503")
#: Histogram bounds in seconds: 5 ms to 20 s, each 2^(1/5) (~15%) above the last, rounded to
#: 3 significant digits; histogram_quantile interpolates within a bucket, so a p99 between
#: 20 ms and 2 s reads within a few percent.
BUCKETS: tuple[float, ...] = tuple(
    float(f"{0.005 * 2 ** (i / 5):.3g}") for i in range(int(5 * math.log2(20 / 0.005)) + 1)
)


class TrafficError(DeploysimError):
    """The traffic exporter cannot start (bad option, cluster unreachable, port taken)."""


# --- routing: pure functions of the cluster's objects ---------------------------------------


@dataclass(frozen=True)
class PodView:
    """What the model needs of a pod."""

    name: str
    labels: Mapping[str, str]
    image: str
    ready: bool


@dataclass(frozen=True)
class Backend:
    """A share of one route's requests, spread evenly over ``pods`` (ready pod names).

    With no ready pod the share is answered 503 and counted against ``version``: the
    version of the pods the backend selects, the stable one if it selects none.
    """

    name: str
    share: float
    pods: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class Flow:
    """Requests per second from one route to one pod (``pod`` None: no ready endpoint)."""

    pod: str | None
    version: str
    route: str
    rps: float


def version_of(image: str, candidate_image: str) -> str:
    """A pod's version by its first container's image (naming.py)."""
    return "candidate" if image == candidate_image else "stable"


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service selector picks a pod when every key matches; no selector picks nothing."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def _backend(
    name: str,
    share: float,
    selector: Mapping[str, str] | None,
    pods: Iterable[PodView],
    candidate_image: str,
) -> Backend:
    chosen = [p for p in pods if selects(selector, p.labels)]
    ready = tuple(sorted(p.name for p in chosen if p.ready))
    versions = Counter(version_of(p.image, candidate_image) for p in chosen)
    version = max(VERSIONS, key=lambda v: (versions[v], v == "stable")) if chosen else "stable"
    return Backend(name, share, ready, version)


def user_backends(
    service: str,
    pods: Iterable[PodView],
    services: Mapping[str, Mapping[str, str] | None],
    httproute: Mapping[str, Any] | None,
    candidate_image: str,
) -> list[Backend]:
    """Where users' requests go: the HTTPRoute's weighted backends, else Service ``S``.

    ``services`` maps each Service name in the namespace to its selector (None: no selector).

    >>> pods = [PodView("a", {"app.kubernetes.io/name": "s", "deploysim.io/slot": "blue"}, "v1", True),
    ...         PodView("b", {"app.kubernetes.io/name": "s", "deploysim.io/slot": "green"}, "v2", True)]
    >>> svcs = {"s-blue": {"deploysim.io/slot": "blue"}, "s-green": {"deploysim.io/slot": "green"}}
    >>> route = {"spec": {"rules": [{"backendRefs": [{"name": "s-blue", "weight": 80},
    ...                                              {"name": "s-green", "weight": 20}]}]}}
    >>> [(b.name, b.share, b.pods, b.version) for b in user_backends("s", pods, svcs, route, "v2")]
    [('s-blue', 0.8, ('a',), 'stable'), ('s-green', 0.2, ('b',), 'candidate')]
    """
    pods = list(pods)
    if httproute is not None:
        rules = (httproute.get("spec") or {}).get("rules") or []
        refs = next((r.get("backendRefs") for r in rules if r.get("backendRefs")), None) or []
        refs = [r for r in refs if (r.get("kind") or "Service") == "Service"]
        weights = [
            max(int(r.get("weight", 1) if r.get("weight") is not None else 1), 0) for r in refs
        ]
        total = sum(weights)
        if total == 0:
            return [Backend("", 1.0, (), "stable")]  # nothing to send to: every request fails
        return [
            _backend(r["name"], w / total, services.get(r["name"]), pods, candidate_image)
            for r, w in zip(refs, weights, strict=True)
            if w > 0
        ]
    if service not in services:
        return [Backend("", 1.0, (), "stable")]
    return [_backend(service, 1.0, services[service], pods, candidate_image)]


def preview_backend(
    service: str,
    pods: Iterable[PodView],
    services: Mapping[str, Mapping[str, str] | None],
    candidate_image: str,
) -> Backend | None:
    """Service ``S-preview``'s ready pods, or None when there is no such Service."""
    name = naming.preview_service(service)
    if name not in services:
        return None
    return _backend(name, 1.0, services[name], pods, candidate_image)


def plan_flows(
    backends: list[Backend],
    preview: Backend | None,
    user_rps: float,
    preview_rps: float,
    versions: Mapping[str, str],
) -> list[Flow]:
    """Requests per second per (route, pod); ``versions`` maps a pod name to its version.

    Preview traffic flows only to ready preview pods and only while no user request reaches
    the candidate, as in the simulator (smoke tests before the switch).
    """
    flows: list[Flow] = []
    for b in backends:
        rps = user_rps * b.share
        if not b.pods:
            flows.append(Flow(None, b.version, "user", rps))
            continue
        for pod in b.pods:
            flows.append(Flow(pod, versions[pod], "user", rps / len(b.pods)))
    to_candidate = sum(f.rps for f in flows if f.version == "candidate")
    if preview is not None and preview.pods and preview_rps > 0 and to_candidate == 0:
        for pod in preview.pods:
            flows.append(Flow(pod, versions[pod], "preview", preview_rps / len(preview.pods)))
    return flows


def candidate_weight(flows: list[Flow]) -> float:
    """The share of user requests routed to the candidate, 0-100."""
    users = [f for f in flows if f.route == "user"]
    total = sum(f.rps for f in users)
    return 100.0 * sum(f.rps for f in users if f.version == "candidate") / total if total else 0.0


def outage_rate(scenario: Scenario, elapsed: float) -> float:
    """Share of requests failing from dependency outages active ``elapsed`` s after start."""
    ok = 1.0
    for fault in scenario.faults:
        if fault.kind == "dependency_outage" and fault.at <= elapsed < fault.at + fault.duration:
            ok *= 1.0 - fault.error_rate
    return 1.0 - ok


# --- one tick of requests ---------------------------------------------------------------------


@dataclass
class TickCounts:
    """Requests drawn for one tick, per (version, route)."""

    codes: dict[tuple[str, str], np.ndarray]  # counts of CODES
    buckets: dict[tuple[str, str], np.ndarray]  # len(BUCKETS) + 1 (the last is above all bounds)
    latency_sum: dict[tuple[str, str], float]
    seconds: float = 0.0  # of traffic drawn


def sample_tick(
    rng: np.random.Generator,
    scenario: Scenario,
    flows: list[Flow],
    seconds: float,
    outage: float = 0.0,
) -> TickCounts:
    """Draw ``seconds`` worth of the flows' requests: codes and latency buckets.

    Failure and latency follow the simulator's model per pod (see the module docstring).
    """
    out = TickCounts({}, {}, {}, max(seconds, 0.0))
    if not flows or seconds <= 0:
        return out
    spec = {"stable": scenario.stable, "candidate": scenario.candidate}
    cap = scenario.pod.capacity_rps
    load: dict[str, float] = {}
    for f in flows:
        if f.pod is not None:
            load[f.pod] = load.get(f.pod, 0.0) + f.rps
    lam = np.array([f.rps * seconds for f in flows])
    has_pod = np.array([f.pod is not None for f in flows])
    rho = np.array([load[f.pod] / cap if f.pod is not None else 0.0 for f in flows])
    err = np.array([spec[f.version].error_rate for f in flows])
    with np.errstate(divide="ignore"):
        shed = np.where(rho > 1, 1.0 - 1.0 / np.maximum(rho, 1.0), 0.0)
    p503 = np.where(has_pod, shed, 1.0)
    p500 = np.where(has_pod, (1.0 - shed) * (1.0 - (1.0 - err) * (1.0 - outage)), 0.0)
    p200 = np.clip(1.0 - p503 - p500, 0.0, 1.0)
    n = rng.poisson(lam)
    codes = rng.multinomial(n, np.stack([p200, p500, p503], axis=1))  # order of CODES
    # latency of the requests a pod answered (a request with no endpoint has none)
    median = np.array(
        [(spec[f.version].latency_ms or scenario.pod.latency_ms) / 1000.0 for f in flows]
    )
    log_median = np.log(median / np.sqrt(1.0 - np.minimum(rho, 0.9)))
    sigma = np.array([spec[f.version].latency_sigma for f in flows])
    cdf = ndtr((np.log(np.array(BUCKETS))[None, :] - log_median[:, None]) / sigma[:, None])
    probs = np.diff(
        np.concatenate([np.zeros((len(flows), 1)), cdf, np.ones((len(flows), 1))], axis=1), axis=1
    )
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum(axis=1, keepdims=True)
    served = np.where(has_pod, n, 0)
    buckets = rng.multinomial(served, probs)
    mean = np.exp(log_median + sigma**2 / 2)
    for key in {(f.version, f.route) for f in flows}:
        mask = np.array([(f.version, f.route) == key for f in flows])
        out.codes[key] = codes[mask].sum(axis=0)
        out.buckets[key] = buckets[mask].sum(axis=0)
        out.latency_sum[key] = float((served[mask] * mean[mask]).sum())
    return out


# --- the metrics ------------------------------------------------------------------------------


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs) + "}"


class Metrics:
    """Counters and a histogram, rendered in the Prometheus text exposition format (0.0.4).

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

    def add(self, tick: TickCounts) -> None:
        with self.lock:
            for (version, route), counts in tick.codes.items():
                for code, count in zip(CODES, counts, strict=True):
                    self.requests[(version, code, route)] += int(count)
            for key, counts in tick.buckets.items():
                self.buckets[key] += counts
                self.sums[key] += tick.latency_sum[key]
            self.seconds += tick.seconds

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

    def render(self) -> str:
        base = (("service", self.service), ("namespace", self.namespace))
        lines = [
            "# HELP deploysim_requests_total Requests answered, by version, status code and route.",
            "# TYPE deploysim_requests_total counter",
        ]
        with self.lock:
            for (v, c, r), n in sorted(self.requests.items()):
                lines.append(
                    f"deploysim_requests_total{_labels((*base, ('version', v), ('code', c), ('route', r)))} {n}"
                )
            lines += [
                "# HELP deploysim_request_duration_seconds Latency of requests a pod answered.",
                "# TYPE deploysim_request_duration_seconds histogram",
            ]
            for (v, r), counts in sorted(self.buckets.items()):
                labels = (*base, ("version", v), ("route", r))
                cumulative = np.cumsum(counts)
                for bound, count in zip(BUCKETS, cumulative[:-1], strict=True):
                    lines.append(
                        f"deploysim_request_duration_seconds_bucket{_labels((*labels, ('le', f'{bound:g}')))} {count}"
                    )
                lines.append(
                    f"deploysim_request_duration_seconds_bucket{_labels((*labels, ('le', '+Inf')))} {cumulative[-1]}"
                )
                lines.append(
                    f"deploysim_request_duration_seconds_sum{_labels(labels)} {self.sums[(v, r)]:.6f}"
                )
                lines.append(
                    f"deploysim_request_duration_seconds_count{_labels(labels)} {cumulative[-1]}"
                )
            lines += [
                "# HELP deploysim_ready_pods Ready pods of the service, by version.",
                "# TYPE deploysim_ready_pods gauge",
            ]
            for v in VERSIONS:
                lines.append(
                    f"deploysim_ready_pods{_labels((*base, ('version', v)))} {self.ready[v]}"
                )
            lines += [
                "# HELP deploysim_candidate_weight Share of user requests routed to the candidate, 0-100.",
                "# TYPE deploysim_candidate_weight gauge",
                f"deploysim_candidate_weight{_labels(base)} {self.weight:g}",
                "# HELP deploysim_traffic_seconds_total Seconds of traffic drawn so far.",
                "# TYPE deploysim_traffic_seconds_total counter",
                f"deploysim_traffic_seconds_total{_labels(base)} {self.seconds:.6f}",
            ]
        return "\n".join(lines) + "\n"


# --- the exporter -----------------------------------------------------------------------------


def _pod_view(pod: Any) -> PodView:
    meta, spec, status = pod.metadata, pod.spec, pod.status
    image = spec.containers[0].image if spec and spec.containers else ""
    ready = meta.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in ((status and status.conditions) or [])
    )
    return PodView(meta.name, dict(meta.labels or {}), image or "", ready)


def _api_reason(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if status:
        return f"HTTP {status} {getattr(exc, 'reason', '')}".strip()
    reason = getattr(exc, "reason", None)  # urllib3's MaxRetryError wraps the cause
    text = str(reason if reason is not None else exc)
    lowered = text.lower()
    for words, short in (("refused", "connection refused"), ("timed out", "timed out"),
                         ("certificate", "TLS certificate rejected")):
        if words in lowered:
            return short
    return text.splitlines()[0][:200] if text else type(exc).__name__


class Exporter:
    """The traffic model for one service, running in background threads until ``stop()``."""

    def __init__(
        self,
        scenario: Scenario,
        api_client: Any,
        watch_client: Any,
        namespace: str = "default",
        service: str | None = None,
        port: int = 0,
        tick: float = 0.5,
    ) -> None:
        from kubernetes import client

        if tick <= 0:
            raise TrafficError(f"tick: got {tick!r}; must be more than 0 seconds")
        self.scenario = scenario
        self.service = service or scenario.service
        self.namespace = namespace
        self.tick = tick
        self.metrics = Metrics(self.service, namespace)
        self.rng = np.random.default_rng(scenario.seed)
        self.shape = TrafficShape(scenario.traffic)
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._watch_core = client.CoreV1Api(watch_client)
        self._clients = (api_client, watch_client)
        self._pods: dict[str, PodView] = {}
        self._pods_lock = threading.Lock()
        self._stop = threading.Event()
        self._watch: Any = None
        self._threads: list[threading.Thread] = []
        self._services: dict[str, dict[str, str] | None] = {}
        self._route: dict[str, Any] | None = None
        self._listed_version: str | None = None
        self.error_count = 0
        self.flows: list[Flow] = []
        self.errors: deque[str] = deque(maxlen=50)
        self.history: deque[tuple[float, dict[str, tuple[int, int]]]] = deque(maxlen=100_000)
        self.started_at = 0.0
        self._server = self._bind(port)
        self.port: int = self._server.server_address[1]
        self.url = f"http://{HOST}:{self.port}/metrics"

    # -- lifecycle ---------------------------------------------------------------------------

    def _bind(self, port: int) -> ThreadingHTTPServer:
        metrics = self.metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = metrics.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        try:
            server = ThreadingHTTPServer((HOST, port), Handler)
        except OSError as exc:
            raise TrafficError(f"--port: cannot listen on {HOST}:{port} ({exc.strerror})") from None
        server.daemon_threads = True
        return server

    def start(self) -> Exporter:
        """List the pods and read the routing once (errors raise), then run in the background."""
        try:
            self._listed_version = self._list_pods()
            self._refresh_routing(strict=True)
        except Exception:
            self._server.server_close()
            raise
        self.started_at = self._last = time.time()
        self.history.append((self.started_at, self.metrics.totals()))
        for target, name in (
            (self._server.serve_forever, "metrics"),
            (self._watch_loop, "watch"),
            (self._tick_loop, "tick"),
        ):
            thread = threading.Thread(target=target, name=f"deploysim-traffic-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and watching; the counters keep their values for ``totals()``."""
        self._stop.set()
        if self._threads:  # shutdown() would wait forever for a server that never served
            self._server.shutdown()
        self._server.server_close()
        # Watch.stop() closes the watch's connection only once its request is under way
        # (and stream() clears the flag when it starts), so ask until the thread is gone:
        # a watch left open keeps the API server from shutting down.
        deadline = time.monotonic() + 5
        for thread in self._threads:
            while thread.is_alive() and time.monotonic() < deadline:
                if self._watch is not None:
                    self._watch.stop()
                thread.join(0.05)
        for api_client in self._clients:
            try:
                api_client.close()
            except Exception:  # noqa: BLE001 - closing at exit must not fail the caller
                pass

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it has served ------------------------------------------------------------------

    def totals(self) -> dict[str, tuple[int, int]]:
        """(requests, failed requests) per version since the start."""
        return self.metrics.totals()

    def served(self, start: float, end: float) -> dict[str, tuple[int, int]]:
        """(requests, failed requests) per version between two wall-clock times (tick-exact)."""
        times = [t for t, _ in self.history]

        def at(t: float) -> dict[str, tuple[int, int]]:
            i = bisect.bisect_right(times, t) - 1
            return self.history[max(i, 0)][1]

        a, b = at(start), at(end)
        return {v: (b[v][0] - a[v][0], b[v][1] - a[v][1]) for v in VERSIONS}

    def pods(self) -> list[PodView]:
        with self._pods_lock:
            return list(self._pods.values())

    # -- the cluster -------------------------------------------------------------------------

    def _selector(self) -> str:
        return naming.label_selector(naming.selector(self.service))

    def _list_pods(self) -> str:
        listed = self._watch_core.list_namespaced_pod(
            self.namespace, label_selector=self._selector(), _request_timeout=10
        )
        with self._pods_lock:
            self._pods = {p.metadata.name: _pod_view(p) for p in listed.items}
        return listed.metadata.resource_version

    def _watch_loop(self) -> None:
        from kubernetes import watch

        version = self._listed_version  # watch on from start()'s list
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list_pods()
                if self._stop.is_set():
                    return
                w = watch.Watch()
                self._watch = w
                for event in w.stream(
                    self._watch_core.list_namespaced_pod,
                    self.namespace,
                    label_selector=self._selector(),
                    resource_version=version,
                    timeout_seconds=10,
                    _request_timeout=20,
                ):
                    if self._stop.is_set():
                        break
                    obj = event["object"]
                    view = _pod_view(obj)
                    with self._pods_lock:
                        if event["type"] == "DELETED":
                            self._pods.pop(view.name, None)
                        else:
                            self._pods[view.name] = view
                    version = obj.metadata.resource_version
            except Exception as exc:  # noqa: BLE001 - keep watching through API hiccups
                if self._stop.is_set():
                    return
                if getattr(exc, "status", None) == 410:  # the version expired: list again
                    version = None
                    continue
                self._warn(f"watching pods: {_api_reason(exc)}")
                version = None
                self._stop.wait(1.0)

    def _refresh_routing(self, strict: bool = False) -> None:
        from kubernetes.client.rest import ApiException

        try:
            listed = self._core.list_namespaced_service(self.namespace, _request_timeout=10)
            services = {
                s.metadata.name: (dict(s.spec.selector) if s.spec and s.spec.selector else None)
                for s in listed.items
            }
            try:
                route = self._custom.get_namespaced_custom_object(
                    naming.HTTPROUTE_GROUP, naming.HTTPROUTE_VERSION, self.namespace,
                    naming.HTTPROUTE_PLURAL, self.service, _request_timeout=10,
                )
            except ApiException as exc:
                if exc.status != 404:  # 404: no HTTPRoute, or no Gateway API installed
                    raise
                route = None
            self._route = route
            self._services = services
        except Exception as exc:
            if strict:
                raise ClusterError(
                    f"cannot read Services in namespace {self.namespace!r}: {_api_reason(exc)}"
                ) from None
            self._warn(f"reading routing: {_api_reason(exc)}")

    def _warn(self, message: str) -> None:
        self.errors.append(message)
        self.error_count += 1

    def _tick_loop(self) -> None:
        next_at = self._last + self.tick
        while not self._stop.wait(max(0.0, next_at - time.time())):
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - one bad tick must not end the traffic
                self._warn(f"tick: {type(exc).__name__}: {exc}")
            next_at = max(next_at + self.tick, time.time())

    def _tick(self) -> None:
        # traffic since the last tick, in the state observed now (off by at most one tick)
        self._refresh_routing()
        now = time.time()
        a, b = self._last - self.started_at, now - self.started_at
        self._last = now
        sc = self.scenario
        pods = self.pods()
        versions = {p.name: version_of(p.image, sc.candidate.image) for p in pods}
        backends = user_backends(
            self.service, pods, self._services, self._route, sc.candidate.image
        )
        preview = preview_backend(self.service, pods, self._services, sc.candidate.image)
        seconds = b - a
        user_rps = self.shape.requests(a, b) / seconds if seconds > 0 else 0.0
        flows = plan_flows(backends, preview, user_rps, sc.strategy.preview_rps, versions)
        tick = sample_tick(self.rng, sc, flows, seconds, outage_rate(sc, b))
        self.metrics.add(tick)
        with self.metrics.lock:
            self.metrics.ready = {
                v: sum(1 for p in pods if p.ready and versions[p.name] == v) for v in VERSIONS
            }
            self.metrics.weight = candidate_weight(flows)
        self.flows = flows
        self.history.append((now, self.metrics.totals()))


def api_clients(
    kubeconfig: str | Path | None = None, context: str | None = None
) -> tuple[Any, Any]:
    """Two API clients from a kubeconfig (one for the watch, one for reads); errors are ClusterError."""
    from kubernetes import config

    try:
        return tuple(  # type: ignore[return-value]
            config.new_client_from_config(
                config_file=str(kubeconfig) if kubeconfig else None, context=context
            )
            for _ in range(2)
        )
    except (config.ConfigException, OSError, TypeError) as exc:
        where = kubeconfig or "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
        raise ClusterError(f"--kubeconfig {where}: cannot load it ({exc})") from None


def start_exporter(
    scenario: Scenario | str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    kubeconfig: str | Path | None = None,
    context: str | None = None,
    namespace: str = "default",
    service: str | None = None,
    port: int = 0,
    tick: float = 0.5,
    register: str | None = None,
) -> Exporter:
    """Start the exporter in background threads and return it once it serves.

    ``scenario`` is a Scenario, a scenario file, or None for the built-in one (``overrides``
    apply to files and the built-in one). ``register`` names a local cluster whose
    Prometheus should scrape the exporter (see localcluster.add_prometheus_target).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides)
    elif overrides:
        scenario = load_scenario(data=scenario.to_data(), overrides=overrides)
    api, watch_api = api_clients(kubeconfig, context)
    try:
        exporter = Exporter(
            scenario, api, watch_api, namespace=namespace, service=service, port=port, tick=tick
        )
    except BaseException:
        api.close()
        watch_api.close()
        raise
    try:
        exporter.start()
    except DeploysimError:
        api.close()
        watch_api.close()
        raise
    except Exception as exc:
        api.close()
        watch_api.close()
        server = getattr(api.configuration, "host", "the API server")
        raise ClusterError(f"cannot reach the API server at {server}: {_api_reason(exc)}") from None
    if register:
        from deploysim.kube import localcluster

        try:
            localcluster.add_prometheus_target(
                register, f"{HOST}:{exporter.port}", {"exporter": "deploysim-traffic"}
            )
        except BaseException:
            exporter.stop()
            raise
    return exporter


# --- the command ------------------------------------------------------------------------------


def cmd_traffic(args: argparse.Namespace) -> int:
    duration = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            raise TrafficError(f"--duration: got {args.duration!r}; {exc}") from None
    exporter = start_exporter(
        args.scenario,
        args.overrides,
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=args.namespace,
        service=args.service,
        port=args.port,
        tick=args.tick,
        register=args.register,
    )
    sc = exporter.scenario
    print(
        f"serving {exporter.url} for service {exporter.service!r} in namespace {exporter.namespace!r} "
        f"({sc.traffic.rps:g} rps {sc.traffic.shape}, seed {sc.seed})",
        flush=True,
    )
    print(f"port {exporter.port}", flush=True)
    if args.register:
        print(f"registered with the Prometheus of cluster {args.register!r}", flush=True)
    seen = 0
    try:
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
            new = min(exporter.error_count - seen, len(exporter.errors))
            for line in list(exporter.errors)[len(exporter.errors) - new:]:
                print(f"deploysim traffic: warning: {line}", file=sys.stderr, flush=True)
            seen = exporter.error_count
    except KeyboardInterrupt:
        pass
    finally:
        exporter.stop()
    totals = exporter.totals()
    print(
        "served " + ", ".join(f"{v}: {n} requests, {e} failed" for v, (n, e) in totals.items()),
        flush=True,
    )
    return 0


def add_traffic_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "traffic",
        help="serve the scenario's traffic to a cluster's pods as Prometheus metrics",
        description="Watch the pods of a service, apply the scenario's traffic and failure model to "
        "whichever are ready and weighted, and serve the result as Prometheus metrics on "
        f"{HOST} (deploysim_requests_total, deploysim_request_duration_seconds).",
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: its current context)")
    p.add_argument(
        "--namespace", "-n", default="default", help="namespace of the service (default: default)"
    )
    p.add_argument("--service", help="service name (default: the scenario's service)")
    p.add_argument("--scenario", "-s", help="scenario YAML (default: the built-in scenario)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set candidate.error_rate=0.05 (repeatable)",
    )
    p.add_argument(
        "--port", type=int, default=0, help=f"port on {HOST} (default 0: a free port, printed)"
    )
    p.add_argument(
        "--register",
        metavar="CLUSTER",
        help="have this local cluster's Prometheus scrape the exporter",
    )
    p.add_argument(
        "--tick", type=float, default=0.5, help="seconds between draws of requests (default 0.5)"
    )
    p.add_argument("--duration", help="stop after this long, e.g. 10m (default: until Ctrl-C)")
    p.set_defaults(func=cmd_traffic)
