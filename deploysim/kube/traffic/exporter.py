"""The exporter: watch one service's pods, draw its traffic every tick, serve the metrics.

Three threads until ``stop()``: a pod watch (list, then watch from its resourceVersion, and
list again on 410 Gone, as client-go's Reflector does in ``ListAndWatch``), a tick loop
(read the Services, the HTTPRoute and the Ingresses, route, draw, count) and
prometheus_client's HTTP server over a private registry on 127.0.0.1.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server

from deploysim.errors import ClusterError, DeploysimError
from deploysim.kube import naming
from deploysim.kube.traffic.families import sample_flows
from deploysim.kube.traffic.metrics import Metrics
from deploysim.kube.traffic.resources import Containers
from deploysim.kube.traffic.routing import (
    VERSIONS,
    Flow,
    PodView,
    candidate_weight,
    expected_flows,
    plan_flows,
    pod_view,
    preview_backend,
    ready_pods,
    user_backends,
    version_of,
)
from deploysim.kube.traffic.sampling import outage_rate
from deploysim.scenario import Scenario, load_scenario
from deploysim.sim.traffic import TrafficShape

HOST = "127.0.0.1"


class TrafficError(DeploysimError):
    """The traffic exporter cannot start with the options given (kubeconfig, port, tick, duration)."""


def api_reason(exc: BaseException) -> str:
    """An API or connection error in a few words, for a one-line message."""
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
    """The traffic model for one service, running in background threads until ``stop()``.

    ``port`` is the one asked for until ``start()`` binds it (0: a free one), then the one
    it serves on.
    """

    def __init__(
        self,
        scenario: Scenario,
        api_client: Any,
        watch_client: Any,
        namespace: str = "default",
        service: str | None = None,
        port: int = 0,
        tick: float = 0.5,
        route: str | None = None,
        ingress: str | None = None,
    ) -> None:
        from kubernetes import client

        if tick <= 0:
            raise TrafficError(f"tick: got {tick!r}; must be more than 0 seconds")
        self.scenario = scenario
        self.service = service or scenario.service
        self.route_name = route or self.service  # the HTTPRoute, when one splits the traffic
        self.ingress_name = ingress or self.route_name  # the stable Ingress, when users come in by one
        self.namespace = namespace
        self.tick = tick
        self.port = port
        self.metrics = Metrics(self.service, namespace)
        self.registry = CollectorRegistry()
        self.registry.register(self.metrics)
        self.containers = Containers(scenario, namespace, self.service)  # cAdvisor-shaped CPU and memory
        self.registry.register(self.containers)
        self.rng = np.random.default_rng(scenario.seed)
        # the real-shaped families' own draws, so the deploysim_* draws are what they were
        self.real_rng = np.random.default_rng([scenario.seed, 1])
        self.shape = TrafficShape(scenario.traffic)
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._networking = client.NetworkingV1Api(api_client)
        self._watch_core = client.CoreV1Api(watch_client)
        self._clients = (api_client, watch_client)
        self._pods: dict[str, PodView] = {}
        self._pods_lock = threading.Lock()
        self._stop = threading.Event()
        self._watch: Any = None
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self._services: dict[str, dict[str, str] | None] = {}
        self._route: dict[str, Any] | None = None
        self._ingresses: list[dict[str, Any]] = []
        self._ingresses_unread = False  # listing them was refused (said once)
        self._listed_version: str | None = None
        self.error_count = 0
        self.flows: list[Flow] = []
        self.errors: deque[str] = deque(maxlen=50)
        self.history: deque[tuple[float, dict[str, tuple[int, int]]]] = deque(maxlen=100_000)
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Exporter:
        """List the pods and read the routing once (errors raise), then serve in the background."""
        self._listed_version = self._list_pods()
        self._refresh_routing(strict=True)
        try:
            server, thread = start_http_server(self.port, addr=HOST, registry=self.registry)
        except OSError as exc:
            raise TrafficError(
                f"--port: cannot listen on {HOST}:{self.port} ({exc.strerror}); "
                "give a free port, or 0 for any"
            ) from None
        self._server = server
        self.port = server.server_port
        thread.name = "deploysim-traffic-metrics"  # so a leak check finds it with the others
        self._threads.append(thread)
        self.started_at = self._last = time.time()
        self.history.append((self.started_at, self.metrics.totals()))
        for target, name in ((self._watch_loop, "watch"), (self._tick_loop, "tick")):
            thread = threading.Thread(target=target, name=f"deploysim-traffic-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and watching, and free the port; the counters keep their values."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # shutdown() alone keeps the socket bound
            self._server = None
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
            self._pods = {p.metadata.name: pod_view(p) for p in listed.items}
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
                    view = pod_view(obj)
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
                self._warn(f"watching pods: {api_reason(exc)}")
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
                    naming.HTTPROUTE_PLURAL, self.route_name, _request_timeout=10,
                )
            except ApiException as exc:
                if exc.status != 404:  # 404: no HTTPRoute, or no Gateway API installed
                    raise
                route = None
            ingresses = self._list_ingresses()
            self._route = route
            self._services = services
            self._ingresses = ingresses
        except Exception as exc:
            if strict:
                raise ClusterError(
                    f"cannot read Services in namespace {self.namespace!r}: {api_reason(exc)}"
                ) from None
            self._warn(f"reading routing: {api_reason(exc)}")

    def _list_ingresses(self) -> list[dict[str, Any]]:
        """The namespace's Ingresses in their JSON form; none when they may not be listed (once said)."""
        from kubernetes.client.rest import ApiException

        try:
            listed = self._networking.list_namespaced_ingress(self.namespace, _request_timeout=10)
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise
            if not self._ingresses_unread:
                self._warn(f"listing Ingresses in namespace {self.namespace!r}: {api_reason(exc)}; "
                           "users are routed as if there were none")
            self._ingresses_unread = True
            return []
        serialize = self._clients[0].sanitize_for_serialization
        return [serialize(i) for i in listed.items]

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
        seconds = b - a
        user_rps = self.shape.requests(a, b) / seconds if seconds > 0 else 0.0
        versions = {p.name: version_of(p.image, sc.candidate.image) for p in pods}
        backends = user_backends(
            self.service, pods, self._services, self._route, sc.candidate.image,
            ingresses=self._ingresses, ingress=self.ingress_name, namespace=self.namespace,
        )
        preview = preview_backend(self.service, pods, self._services, sc.candidate.image)
        flows = plan_flows(backends, preview, user_rps, sc.strategy.preview_rps, versions)
        tick, draws = sample_flows(self.rng, sc, flows, seconds, outage_rate(sc, b),
                                   {p.name: p.resources.cpu_limit for p in pods if p.resources is not None})
        real = self.metrics.real.prepare(flows, draws, {p.name: p for p in pods}, self.real_rng,
                                         expected_flows(backends, preview, versions))
        self.metrics.add(
            tick, ready=ready_pods(pods, versions), weight=candidate_weight(flows), real=real
        )
        self.containers.add(pods, flows, versions, seconds)
        self.flows = flows
        self.history.append((now, self.metrics.totals()))


def api_clients(
    kubeconfig: str | Path | None = None, context: str | None = None
) -> tuple[Any, Any]:
    """Two API clients from a kubeconfig (one for the watch, one for reads).

    A kubeconfig that cannot be loaded is a bad ``--kubeconfig`` (TrafficError).
    """
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
        raise TrafficError(
            f"--kubeconfig {where}: cannot load it ({exc}); give a kubeconfig file that exists "
            "and names a current context"
        ) from None


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
    route: str | None = None,
    ingress: str | None = None,
) -> Exporter:
    """Start the exporter in background threads and return it once it serves.

    ``scenario`` is a Scenario, a scenario file, or None for the built-in one (``overrides``
    apply to files and the built-in one). ``register`` names a local cluster whose
    Prometheus should scrape the exporter (see localcluster.add_prometheus_target).
    ``route`` names the HTTPRoute and ``ingress`` the stable Ingress (default: the route's name).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides)
    elif overrides:
        scenario = load_scenario(data=scenario.to_data(), overrides=overrides)
    api, watch_api = api_clients(kubeconfig, context)
    try:
        exporter = Exporter(
            scenario, api, watch_api, namespace=namespace, service=service, port=port, tick=tick,
            route=route, ingress=ingress,
        ).start()
    except BaseException as exc:
        api.close()
        watch_api.close()
        if isinstance(exc, DeploysimError) or not isinstance(exc, Exception):
            raise
        server = getattr(api.configuration, "host", "the API server")
        raise ClusterError(f"cannot reach the API server at {server}: {api_reason(exc)}") from None
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
