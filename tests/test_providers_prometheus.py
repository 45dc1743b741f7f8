"""The Prometheus provider: PromQL text, answers parsed, retries counted, failures as errors."""

from __future__ import annotations

import math
import socket

import httpx
import pytest

from deploysim.errors import DeploysimError, MetricsError, PrometheusError
from deploysim.providers import PrometheusProvider, ProviderConfig, provider_for
from deploysim.providers.prometheus import matchers, promql_quantile, promql_requests

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


def fake_prometheus(seen: list[httpx.Request]):  # noqa: ANN201
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


def provider(handle, **kw) -> tuple[PrometheusProvider, list[float]]:  # noqa: ANN001
    """A provider over a mock transport, and the waits between its attempts (never slept)."""
    waits: list[float] = []
    kw.setdefault("retries", 2)
    p = PrometheusProvider("http://prom:9090", kw.pop("service", "s"), sleep=waits.append,
                           client=httpx.Client(transport=httpx.MockTransport(handle)), **kw)
    return p, waits


def test_measure_reads_totals_percentiles_and_series() -> None:
    seen: list[httpx.Request] = []
    p, waits = provider(fake_prometheus(seen), service="checkout", step=20)
    m = p.measure(1000.0, 1060.0)
    assert m.error is None and (m.start, m.end) == (1000.0, 1060.0)
    s, c = m.baseline, m.candidate
    assert (s.requests, s.errors, c.requests, c.errors) == (6000, 12, 600, 6)
    assert (s.latency_p50, s.latency_p95, s.latency_p99) == pytest.approx((40.0, 70.0, 90.0))
    assert c.latency_p50 == pytest.approx(80.0)
    assert math.isnan(c.latency_p95)
    assert s.seconds == 60.0 and s.request_rate == pytest.approx(100.0)
    assert s.series_requests == (2000, 2000, 1999) and c.series_requests == (0, 300, 300)
    assert s.series_errors == (0, 0, 0) and c.series_errors == (1, 2, 3)
    assert s.series_latency_p99 == pytest.approx((90.0, 91.0, 89.0))
    assert [math.isnan(x) for x in c.series_latency_p99] == [True, True, True]
    assert {r.url.host for r in seen} == {"prom"}
    assert len(seen) == 5 + 3  # window totals and quantiles, then three range queries
    assert waits == []


def test_a_bad_query_is_one_attempt() -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": "parse error"})

    p, waits = provider(handle, retries=3)
    m = p.measure(0, 60)
    assert m.error == "prometheus at http://prom:9090: HTTP 400 bad_data: parse error"
    assert len(calls) == 1 and waits == [] and m.versions == {}


@pytest.mark.parametrize(
    ("failure", "retries", "expected"),
    [
        (httpx.Response(503, text="overloaded"), 2, "HTTP 503 (after 3 attempts)"),
        (httpx.Response(429, json={"status": "error", "errorType": "too_many", "error": "slow down"}), 1,
         "HTTP 429 too_many: slow down (after 2 attempts)"),
        (httpx.ConnectError("[Errno 111] Connection refused"), 2, "connection refused (after 3 attempts)"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), 1,
         "cannot connect ([Errno -2] Name or service not known) (after 2 attempts)"),
        (httpx.ReadTimeout("timed out"), 1, "no answer within 0.3s (after 2 attempts)"),
        (httpx.ConnectError("[Errno 111] Connection refused"), 0, "connection refused"),
    ],
)
def test_transient_failures_are_asked_again_up_to_the_retries(failure, retries, expected) -> None:
    attempts: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if isinstance(failure, Exception):
            raise failure
        return failure

    p, waits = provider(handle, retries=retries, backoff=0.5, timeout=0.3)
    m = p.measure(0, 60)
    assert m.error == f"prometheus at http://prom:9090: {expected}"
    assert len(attempts) == retries + 1
    # exponential backoff: 0.5 s, then 1 s, between attempts
    assert waits == [0.5, 1.0][:retries]


def test_server_errors_are_retried_then_answered() -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= 2:
            return httpx.Response(503, text="overloaded")
        return httpx.Response(200, json=vector({"stable": 1.0}))

    p, waits = provider(handle, retries=2, backoff=0.01)
    assert p.query("up") == [{"metric": {"version": "stable"}, "value": [1000.0, "1.0"]}]
    assert len(calls) == 3 and waits == [0.01, 0.02]
    calls.clear()
    p.retries = 1
    with pytest.raises(PrometheusError, match=r"^prometheus at http://prom:9090: HTTP 503 \(after 2 attempts\)$"):
        p.query("up")
    assert len(calls) == 2


def test_prometheus_errors_are_deploysim_errors_of_the_environment() -> None:
    assert issubclass(PrometheusError, MetricsError) and issubclass(MetricsError, DeploysimError)
    assert PrometheusError("x").exit_code == 3


def test_no_series_for_the_service_is_an_error() -> None:
    p, _ = provider(lambda request: httpx.Response(200, json=vector({})), service="ghost", namespace="shop")
    m = p.measure(0, 60)
    assert m.error == ("prometheus at http://prom:9090: no deploysim_requests_total series for service 'ghost'"
                       " in namespace 'shop' over [0, 60] (is the traffic exporter scraped?)")


def test_token_goes_in_the_header_only() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, text="unauthorized")

    p, _ = provider(handle, token="s3cret")
    m = p.measure(0, 60)
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert m.error == "prometheus at http://prom:9090: HTTP 401"


def test_a_closed_port_answers_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = PrometheusProvider(f"http://127.0.0.1:{port}", "s", timeout=1.0, retries=1, sleep=lambda _s: None)
    assert p.measure(0, 60).error == f"prometheus at http://127.0.0.1:{port}: connection refused (after 2 attempts)"
    p.close()


def test_built_from_its_configuration() -> None:
    config = ProviderConfig("prometheus", url="http://prom:9090/", token="s3cret", service="checkout",
                            namespace="shop", step=5.0, timeout=1.5)
    p = provider_for(config)
    assert isinstance(p, PrometheusProvider)
    assert (p.url, p.service, p.namespace, p.step, p.timeout) == ("http://prom:9090", "checkout", "shop", 5.0, 1.5)
    assert p._headers == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(config)
    p.close()
