"""Metric providers: PromQL text, answers parsed, failures as Measurement.error, and the real
chain pods -> traffic exporter -> local Prometheus -> PrometheusProvider.

The cluster test brings up its own local control plane with Prometheus for this module.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from kubernetes import client, config
from scipy.special import ndtri

from deploysim.analysis.providers import (
    HttpProbeProvider,
    PrometheusProvider,
    matchers,
    promql_quantile,
    promql_requests,
)
from deploysim.kube import localcluster
from deploysim.kube import naming as n
from deploysim.kube.traffic import start_exporter
from deploysim.scenario import load_scenario

# --- PromQL text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (("checkout", 60), {}, 'sum by (version) (increase(deploysim_requests_total{service="checkout"}[60s]))'),
        (("checkout", 59.6, "shop"), {"errors_only": True},
         'sum by (version) (increase(deploysim_requests_total{service="checkout",namespace="shop",code=~"5.."}[60s]))'),
        # a window under a second is still a valid range
        (("api", 0.2), {}, 'sum by (version) (increase(deploysim_requests_total{service="api"}[1s]))'),
    ],
)
def test_promql_requests(args, kwargs, expected) -> None:
    assert promql_requests(*args, **kwargs) == expected


def test_promql_quantile_and_escaping() -> None:
    assert promql_quantile("api", 0.95, 30, "ns") == (
        'histogram_quantile(0.95, sum by (version, le) '
        '(rate(deploysim_request_duration_seconds_bucket{service="api",namespace="ns"}[30s])))'
    )
    assert matchers('a"b\\c') == '{service="a\\"b\\\\c"}'
    assert matchers("s", None, code="~5..", route="user") == '{service="s",code=~"5..",route="user"}'


# --- a fake Prometheus ------------------------------------------------------------------------


def vector(values: dict[str, float]) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"version": v}, "value": [1000.0, str(x)]} for v, x in values.items()]}}


def matrix(values: dict[str, list[tuple[float, float]]]) -> dict:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"version": v}, "values": [[t, str(x)] for t, x in pts]} for v, pts in values.items()]}}


def fake_prometheus(seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    """Answers like Prometheus for a 60 s window ending at 1060 with 20 s steps."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        q = request.url.params["query"]
        errors = 'code=~"5.."' in q
        if request.url.path == "/api/v1/query":
            assert request.url.params["time"] == "1060.000"
            if q.startswith("histogram_quantile(0.5,"):
                return httpx.Response(200, json=vector({"stable": 0.040, "candidate": 0.080}))
            if q.startswith("histogram_quantile(0.95,"):
                return httpx.Response(200, json=vector({"stable": 0.070, "candidate": "NaN"}))
            if q.startswith("histogram_quantile(0.99,"):
                return httpx.Response(200, json=vector({"stable": 0.090, "candidate": 0.200}))
            return httpx.Response(200, json=vector({"stable": 12.0, "candidate": 6.0} if errors
                                                   else {"stable": 5999.6, "candidate": 600.4}))
        assert request.url.path == "/api/v1/query_range"
        assert request.url.params["step"] == "20s"
        assert (request.url.params["start"], request.url.params["end"]) == ("1020.000", "1060.000")
        if q.startswith("histogram_quantile"):
            return httpx.Response(200, json=matrix({"stable": [(1020, 0.09), (1040, 0.091), (1060, 0.089)]}))
        if errors:
            return httpx.Response(200, json=matrix({"candidate": [(1020, 1), (1040, 2), (1060, 3)]}))
        # the candidate's series starts late: the missing bin counts as 0
        return httpx.Response(200, json=matrix({"stable": [(1020, 2000), (1040, 2000.4), (1060, 1999)],
                                                "candidate": [(1040, 300), (1060, 300)]}))

    return handle


def test_measure_reads_totals_percentiles_and_series() -> None:
    seen: list[httpx.Request] = []
    http = httpx.Client(transport=httpx.MockTransport(fake_prometheus(seen)))
    p = PrometheusProvider("http://prom:9090/", "checkout", step=20, client=http)
    m = p.measure(1000.0, 1060.0)
    assert m.error is None and (m.start, m.end) == (1000.0, 1060.0)
    s, c = m.baseline, m.candidate
    assert (s.requests, s.errors, c.requests, c.errors) == (6000, 12, 600, 6)
    assert (s.latency_p50, s.latency_p95, s.latency_p99) == pytest.approx((40.0, 70.0, 90.0))
    assert c.latency_p50 == pytest.approx(80.0) and math.isnan(c.latency_p95)
    assert s.seconds == 60.0 and s.request_rate == pytest.approx(100.0)
    assert s.series_requests == (2000, 2000, 1999) and c.series_requests == (0, 300, 300)
    assert s.series_errors == (0, 0, 0) and c.series_errors == (1, 2, 3)
    assert s.series_latency_p99 == pytest.approx((90.0, 91.0, 89.0))
    assert all(math.isnan(x) for x in c.series_latency_p99)
    assert {r.url.host for r in seen} == {"prom"}
    assert len(seen) == 5 + 3  # window totals and quantiles, then three range queries


def test_bad_query_is_an_error_without_retries() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": "parse error"})

    p = PrometheusProvider("http://prom:9090", "s", retries=3, client=httpx.Client(transport=httpx.MockTransport(handle)))
    m = p.measure(0, 60)
    assert m.error == "prometheus at http://prom:9090: HTTP 400 bad_data: parse error"
    assert len(calls) == 1 and m.versions == {}


def test_server_errors_are_retried_then_answered() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= 2:
            return httpx.Response(503, text="overloaded")
        return httpx.Response(200, json=vector({"stable": 1.0}))

    p = PrometheusProvider("http://prom:9090", "s", retries=2, backoff=0.01,
                           client=httpx.Client(transport=httpx.MockTransport(handle)))
    assert p.query("up") == [{"metric": {"version": "stable"}, "value": [1000.0, "1.0"]}]
    assert len(calls) == 3
    calls.clear()
    p.retries = 1
    with pytest.raises(Exception, match=r"HTTP 503 \(after 2 attempts\)"):
        p.query("up")


def test_no_series_for_the_service_is_an_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=vector({}))

    p = PrometheusProvider("http://prom:9090", "ghost", client=httpx.Client(transport=httpx.MockTransport(handle)))
    m = p.measure(0, 60)
    assert m.error is not None and "no deploysim_requests_total series for service 'ghost'" in m.error


def test_token_goes_in_the_header_only() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, text="unauthorized")

    p = PrometheusProvider("http://prom:9090", "s", token="s3cret",
                           client=httpx.Client(transport=httpx.MockTransport(handle)))
    m = p.measure(0, 60)
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert "HTTP 401" in m.error and "s3cret" not in m.error


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_prometheus_is_a_quick_error() -> None:
    port = closed_port()
    p = PrometheusProvider(f"http://127.0.0.1:{port}", "s", timeout=1.0, retries=2, backoff=0.05)
    t0 = time.monotonic()
    m = p.measure(time.time() - 60, time.time())
    assert time.monotonic() - t0 < 2.0
    assert m.error == f"prometheus at http://127.0.0.1:{port}: connection refused (after 3 attempts)"


def test_a_silent_prometheus_times_out_within_the_bound() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        p = PrometheusProvider(f"http://127.0.0.1:{port}", "s", timeout=0.3, retries=1, backoff=0.05)
        t0 = time.monotonic()
        m = p.measure(0, 60)
        took = time.monotonic() - t0
    assert m.error == f"prometheus at http://127.0.0.1:{port}: no answer within 0.3s (after 2 attempts)"
    assert 0.6 <= took < 0.6 + 0.05 + 1.0


# --- HTTP probes ------------------------------------------------------------------------------


@pytest.fixture
def app() -> Iterator[str]:
    """127.0.0.1 app: /ok answers 200, /broken 500, /flaky alternates 200 and 500, after 20 ms."""
    state = {"flaky": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            time.sleep(0.02)
            code = 200
            if self.path == "/broken":
                code = 500
            elif self.path == "/flaky":
                with lock:
                    state["flaky"] += 1
                    code = 500 if state["flaky"] % 2 else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_probes_count_5xx_and_time_latency(app: str) -> None:
    with HttpProbeProvider({"stable": f"{app}/ok", "candidate": f"{app}/flaky"}, probes_per_measure=20,
                           concurrency=2, bins=4) as p:
        m = p.measure(100.0, 160.0)
    assert m.error is None
    s, c = m.baseline, m.candidate
    assert (s.requests, s.errors) == (20, 0)
    assert (c.requests, c.errors) == (20, 10)
    assert c.error_rate == pytest.approx(0.5)
    assert s.series_requests == (5, 5, 5, 5) and sum(c.series_errors) == 10
    assert 20.0 <= s.latency_p50 <= s.latency_p95 <= s.latency_p99 < 1000.0
    assert all(20.0 <= x < 1000.0 for x in s.series_latency_p99)


def test_http_probes_connection_failures_are_errors(app: str) -> None:
    port = closed_port()
    with HttpProbeProvider({"stable": f"{app}/broken", "candidate": f"http://127.0.0.1:{port}/"},
                           probes_per_measure=6, timeout=1.0) as p:
        m = p.measure(0.0, 10.0)
    assert (m.baseline.requests, m.baseline.errors) == (6, 6)
    assert (m.candidate.requests, m.candidate.errors) == (6, 6)
    assert math.isnan(m.candidate.latency_p99) and m.baseline.latency_p99 >= 20.0
    with pytest.raises(ValueError, match="versions are"):
        HttpProbeProvider({"canary": app})


# --- the real chain: pods, exporter, Prometheus -----------------------------------------------


@pytest.fixture(scope="module")
def prom_cluster() -> Iterator[localcluster.ClusterInfo]:
    name = f"providers-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    localcluster.down(name)  # whatever a killed earlier run left behind
    info = localcluster.up(nodes=2, prometheus=True, name=name, scrape_interval="1s", timeout=120)
    try:
        yield info
    finally:
        localcluster.down(name)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def lognormal_quantile(median_ms: float, rho: float, sigma: float, q: float) -> float:
    return median_ms / math.sqrt(1 - min(rho, 0.9)) * math.exp(sigma * ndtri(q))


@pytest.mark.cluster
def test_prometheus_reads_what_the_exporter_served_then_goes_away(prom_cluster) -> None:
    info = prom_cluster
    api = config.new_client_from_config(config_file=str(info.kubeconfig))
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    s = "shop"
    for slot, image in (("blue", "shop:1"), ("green", "shop:2")):
        labels = n.selector(s, slot)
        apps.create_namespaced_deployment("default", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": n.slot_deployment(s, slot)},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels, "annotations": {"deploysim.io/ready-delay": "200ms"}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}})
    core.create_namespaced_service("default", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": s},
                                               "spec": {"selector": n.selector(s), "ports": [{"port": 80}]}})

    def ready() -> int:
        pods = core.list_namespaced_pod("default", label_selector=f"{n.APP_LABEL}={s}").items
        return sum(1 for p in pods if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])))

    wait_for("4 ready pods", lambda: ready() == 4)
    api.close()
    sc = load_scenario(overrides=[
        f"service={s}", "traffic.shape=constant", "traffic.rps=400", "pod.capacity_rps=1000",
        "stable.image=shop:1", "candidate.image=shop:2", "stable.error_rate=0.001", "candidate.error_rate=0.2",
        "stable.latency_ms=40", "candidate.latency_ms=80", "stable.latency_sigma=0.3", "candidate.latency_sigma=0.3",
    ])
    prom = PrometheusProvider(info.prometheus_url, s, namespace="default", step=5, timeout=2.0)
    with start_exporter(sc, kubeconfig=info.kubeconfig, tick=0.25, register=info.name) as ex:
        t0 = time.time()
        # Prometheus picks the target up from file_sd, then scrapes every second
        wait_for("scraped samples", lambda: float(
            (prom.query(f'count_over_time(deploysim_requests_total{{service="{s}"}}[1m])') or
             [{"value": [0, "0"]}])[0]["value"][1]) >= 4, 30)
        start = max(t0, time.time()) + 1
        time.sleep(start + 10 - time.time() + 1.5)  # 10 s of traffic, then the last scrape
        end = start + 10
        m = prom.measure(start, end)
        served = ex.served(start, end)
    assert m.error is None, m.error
    for version, expected_errors in (("stable", 0.001), ("candidate", 0.2)):
        w = m.versions[version]
        requests, errors = served[version]
        # increase() extrapolates between 1 s scrapes; the exporter's ticks are 0.25 s
        assert w.requests == pytest.approx(requests, rel=0.1)
        assert w.requests == pytest.approx(200 * 10, rel=0.15)
        assert w.error_rate == pytest.approx(errors / requests, abs=0.02)
        assert w.error_rate == pytest.approx(expected_errors, abs=0.04)
        assert len(w.series_requests) == 2 and sum(w.series_requests) == pytest.approx(w.requests, rel=0.15)
        assert sum(w.series_errors) == pytest.approx(w.errors, rel=0.3, abs=10)
    # each version serves 200 rps on 2 pods of 1000: rho 0.1
    for version, median in (("stable", 40.0), ("candidate", 80.0)):
        w = m.versions[version]
        for q, got in ((0.5, w.latency_p50), (0.95, w.latency_p95), (0.99, w.latency_p99)):
            assert got == pytest.approx(lognormal_quantile(median, 0.1, 0.3, q), rel=0.12), (version, q)
        assert all(x == pytest.approx(w.latency_p99, rel=0.25) for x in w.series_latency_p99)
    assert m.candidate.latency_p99 > 1.6 * m.baseline.latency_p99

    # Prometheus stops: measure answers with an error, quickly, instead of raising
    proc = info.processes["prometheus"]
    os.killpg(proc.pid, signal.SIGKILL)
    wait_for("prometheus gone",
             lambda: not localcluster.status(info.name)["components"]["prometheus"]["alive"], 10)
    t1 = time.monotonic()
    m = prom.measure(time.time() - 30, time.time())
    assert time.monotonic() - t1 < prom.timeout * (prom.retries + 1) + 1.0
    assert m.error == f"prometheus at {info.prometheus_url}: connection refused (after 3 attempts)"
    assert m.versions == {}
    prom.close()
