"""Team metrics on a cluster, without one: TeamMetrics and AnalysisSources against mock
Prometheus and web servers (httpx.MockTransport), through the analysis run's limits.

The real chain (the traffic emulator's Istio / NGINX series, a real Prometheus, a runbook
through papermill) is in tests/kube/test_team_metrics.py.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.analysis.metrics import Arg, MetricDef, MetricSource
from deploysim.analysis.run import record_measurement, start_run
from deploysim.errors import ParameterError
from deploysim.plan import AnalysisSpec, Analyze, Check, Plan
from deploysim.providers.evaluate import AnalysisSources, EvalContext, TeamMetrics, needs_window

CTX = EvalContext(namespace="shop", service="checkout", target="checkout-green")
ISTIO_Q = ('sum(irate(istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",'
           'response_code!~"5.*"}[1m])) / sum(irate(istio_requests_total{reporter="source",'
           'destination_service=~"{{args.service-name}}"}[1m]))')


def vector(*values: float | str) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1700000000.0, str(v)]} for v in values]}}


class FakeProm:
    """A Prometheus HTTP API that answers each query from a list of bodies (or status codes)."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, int):
            return httpx.Response(answer, json={"status": "error", "errorType": "internal", "error": "boom"})
        return httpx.Response(200, json=answer)

    def queries(self) -> list[str]:
        return [r.url.params["query"] for r in self.seen]


def team(handler, **kw) -> TeamMetrics:
    return TeamMetrics(CTX, prometheus_url="http://prom:9090", client=httpx.Client(transport=httpx.MockTransport(handler)),
                       **kw)


def argo_spec(success: str = "result[0] >= 0.95", failure: str | None = None, **kw) -> AnalysisSpec:
    metric = MetricDef("success-rate", MetricSource("prometheus", query=ISTIO_Q),
                       success_condition=success, failure_condition=failure)
    return AnalysisSpec(name="success-rate", interval=10, count=3, consecutive_error_limit=2,
                        checks=(Check("error_rate", max=0.05, stands_for="success-rate"),), metrics=(metric,),
                        args=(Arg("service-name", "checkout-canary.shop.svc.cluster.local"),), **kw)


# --- one measurement, Argo's rules --------------------------------------------------------


@pytest.mark.parametrize(("answer", "phase", "value"), [
    (vector(0.99), "Successful", "[0.99]"),
    (vector(0.9), "Failed", "[0.9]"),
])
def test_an_argo_prometheus_metric_is_judged_by_its_success_condition(answer, phase, value) -> None:
    prom = FakeProm(answer)
    spec = argo_spec()
    [r] = team(prom).evaluate(spec, at=1700000000.0)
    assert (r.phase, r.value) == (phase, value)
    # the query sent is the template's, with the arg filled in, at the measurement's end
    assert prom.queries() == [ISTIO_Q.replace("{{args.service-name}}", "checkout-canary.shop.svc.cluster.local")]
    assert prom.seen[0].url.params["time"] == "1700000000.000"
    assert r.query == prom.queries()[0]
    assert json.loads(r.raw)["result"][0]["value"][1] == value.strip("[]")
    assert math.isclose(r.number, float(value.strip("[]")))
    if phase == "Failed":
        assert "0.9" in r.message and "result[0] >= 0.95" in r.message


def test_no_series_is_an_error_for_result_0_and_a_pass_for_a_guarded_condition() -> None:
    [bare] = team(FakeProm(vector())).evaluate(argo_spec(), at=0)
    assert bare.phase == "Error" and bare.value == "[]"
    [guarded] = team(FakeProm(vector())).evaluate(argo_spec("len(result) == 0 || result[0] >= 0.95"), at=0)
    assert guarded.phase == "Successful"


def test_a_nan_sample_reaches_the_condition_as_nan() -> None:
    [r] = team(FakeProm(vector("NaN"))).evaluate(argo_spec("isNaN(result[0]) || result[0] >= 0.95"), at=0)
    assert r.phase == "Successful"
    [r] = team(FakeProm(vector("NaN"))).evaluate(argo_spec(), at=0)
    assert r.phase != "Successful"  # NaN >= 0.95 is false: the measurement fails


@pytest.mark.parametrize("answer", [500, 503])
def test_a_prometheus_that_answers_5xx_is_an_error_measurement(answer) -> None:
    [r] = team(FakeProm(answer)).evaluate(argo_spec(), at=0)
    assert r.phase == "Error" and f"HTTP {answer}" in r.message


def test_a_prometheus_that_is_down_is_an_error_measurement() -> None:
    def refuse(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    [r] = team(refuse).evaluate(argo_spec(), at=0)
    assert r.phase == "Error" and "connection refused" in r.message


def test_inconclusive_between_success_and_failure_conditions() -> None:
    spec = argo_spec(success="result[0] >= 0.99", failure="result[0] < 0.9")
    [r] = team(FakeProm(vector(0.95))).evaluate(spec, at=0)
    assert r.phase == "Inconclusive"


# --- errors count toward consecutiveErrorLimit, failures toward failureLimit -----------------


def _run(spec: AnalysisSpec, sources: AnalysisSources, times: int) -> dict:
    run = start_run(spec, now=0.0)
    for i in range(times):
        if run["phase"] != "Running":
            break
        run = record_measurement(spec, run, sources.measure(i * 10.0, i * 10.0 + 10, spec))
    return run


class NoWindow:
    """A window source that must not be asked: the analysis has only team metrics."""

    def measure(self, start, end, spec=None):
        raise AssertionError("the standard window was measured")

    def close(self):
        pass


def test_errors_abort_after_the_consecutive_error_limit() -> None:
    spec = argo_spec()  # consecutive_error_limit 2: the third error in a row ends the run
    run = _run(spec, AnalysisSources(NoWindow(), team(FakeProm(500))), times=5)
    assert run["phase"] == "Error" and run["consecutive_errors"] == 3 and run["errors"] == 3
    assert "success-rate" in run["message"] and "HTTP 500" in run["message"]
    # each measurement keeps what was sent and what came back
    assert all(m["metrics"][0]["query"].startswith("sum(irate(istio_requests_total") for m in run["measurements"])


def test_an_error_between_passes_resets_the_count_and_the_run_succeeds() -> None:
    prom = FakeProm(vector(0.99), 500, 500, vector(0.99), vector(0.99))
    run = _run(argo_spec(), AnalysisSources(NoWindow(), team(prom)), times=5)
    assert run["phase"] == "Successful" and run["errors"] == 2 and run["taken"] == 3


def test_a_failed_measurement_fails_the_run_naming_the_metric_and_value() -> None:
    run = _run(argo_spec(), AnalysisSources(NoWindow(), team(FakeProm(vector(0.5)))), times=3)
    assert run["phase"] == "Failed"
    assert "success-rate" in run["message"] and "0.5" in run["message"]
    assert run["measurements"][0]["values"]["success-rate"] == 0.5


def test_own_checks_still_read_the_standard_window() -> None:
    class Window:
        asked = 0

        def measure(self, start, end, spec=None):
            Window.asked += 1
            return Measurement(start, end, {"candidate": VersionWindow(requests=100, errors=10)})

        def close(self):
            pass

    spec = AnalysisSpec(name="a", interval=10, count=1, checks=(Check("error_rate", max=0.05),),
                        metrics=argo_spec().metrics, args=argo_spec().args)
    assert needs_window(spec) and not needs_window(argo_spec())
    m = AnalysisSources(Window(), team(FakeProm(vector(0.99)))).measure(0, 10, spec)
    run = record_measurement(spec, start_run(spec, 0.0), m)
    assert Window.asked == 1 and run["phase"] == "Failed" and "error_rate 0.1 > 0.05" in run["message"]


def test_a_dry_run_metric_is_recorded_and_never_fails() -> None:
    spec = argo_spec()
    spec = AnalysisSpec(name=spec.name, interval=10, count=1, metrics=(
        MetricDef("success-rate", MetricSource("prometheus", query=ISTIO_Q), success_condition="result[0] >= 0.95",
                  dry_run=True),), args=spec.args)
    run = _run(spec, AnalysisSources(NoWindow(), team(FakeProm(vector(0.1)))), times=1)
    assert run["phase"] == "Successful" and run["measurements"][0]["metrics"][0]["phase"] == "Failed"


# --- secrets ------------------------------------------------------------------------------


def test_a_secret_arg_is_sent_and_never_recorded() -> None:
    token = "tok-9f8e7d6c5b4a"
    prom = FakeProm(vector(0.99))
    query = 'sum(rate(http_requests_total{tenant="{{args.tenant}}"}[1m]))'
    spec = AnalysisSpec(name="s", interval=10, count=1, metrics=(
        MetricDef("m", MetricSource("prometheus", query=query, headers=(("X-Token", "{{args.token}}"),)),
                  success_condition="result[0] > 0"),),
        args=(Arg("token", secret=("prom-auth", "token")), Arg("tenant", secret=("prom-auth", "tenant"))))
    secrets = {("prom-auth", "token"): token, ("prom-auth", "tenant"): "acme-tenant-42"}
    t = team(prom, read_secret=lambda name, key: secrets[(name, key)])
    [r] = t.evaluate(spec, at=0)
    assert r.phase == "Successful"
    assert prom.seen[0].headers["x-token"] == token
    assert 'tenant="acme-tenant-42"' in prom.queries()[0]
    assert "acme-tenant-42" not in r.query and "[REDACTED]" in r.query
    assert token not in json.dumps(r.to_dict())


def test_a_missing_secret_key_stops_the_run_before_it_starts() -> None:
    spec = AnalysisSpec(name="s", interval=10, count=1, metrics=(
        MetricDef("m", MetricSource("prometheus", query='up{job="{{args.job}}"}'), success_condition="true"),),
        args=(Arg("job", secret=("prom-auth", "job")),))
    plan = Plan(strategy="canary", replicas=2, steps=(Analyze(spec),))

    def read(name, key):
        raise KeyError(f"Secret shop/{name} has no key {key!r}")

    with pytest.raises(ParameterError, match=r"analysis 's' metric 'm': .*job.*prom-auth"):
        team(FakeProm(vector(1)), read_secret=read).preflight(plan)


def test_an_arg_the_rollout_does_not_give_is_named_before_the_run() -> None:
    spec = AnalysisSpec(name="s", interval=10, count=1, metrics=(
        MetricDef("m", MetricSource("prometheus", query='up{job="{{args.job}}"}'), success_condition="true"),))
    plan = Plan(strategy="canary", replicas=2, steps=(Analyze(spec),))
    with pytest.raises(ParameterError, match=r"metric 'm'.*job"):
        team(FakeProm(vector(1))).preflight(plan)


# --- Flagger ------------------------------------------------------------------------------


def test_a_flagger_metric_template_fills_its_variables_and_judges_by_threshold_range() -> None:
    query = ('sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-.*",code=~"5.."}'
             '[{{ interval }}])) / sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-.*",'
             'app="{{ variables.app }}"}[{{ interval }}]))')
    metric = MetricDef("error-rate", MetricSource("prometheus", query=query), dialect="flagger", max=0.01,
                       interval="30s", variables=(("app", "checkout"),))
    spec = AnalysisSpec(name="f", interval=10, count=1, metrics=(metric,))
    prom = FakeProm(vector(0.002), vector(0.02))
    t = team(prom)
    ok, bad = t.evaluate(spec, at=0)[0], t.evaluate(spec, at=10)[0]
    assert prom.queries()[0] == ('sum(rate(http_requests_total{namespace="shop",pod=~"checkout-green-.*",code=~"5.."}'
                                 '[30s])) / sum(rate(http_requests_total{namespace="shop",pod=~"checkout-green-.*",'
                                 'app="checkout"}[30s]))')
    assert (ok.phase, bad.phase) == ("Successful", "Failed")
    assert "0.02" in bad.message and "0.01" in bad.message


def test_a_flagger_builtin_runs_its_mesh_providers_query() -> None:
    from deploysim.manifests.flagger_builtins import QUERIES

    metric = MetricDef("request-success-rate", MetricSource("prometheus", query=QUERIES["istio"][0].strip()),
                       dialect="flagger", min=99, interval="1m", builtin="istio")
    spec = AnalysisSpec(name="f", interval=10, count=1, metrics=(metric,))
    prom = FakeProm(vector(98.5))
    [r] = team(prom).evaluate(spec, at=0)
    sent = prom.queries()[0]
    assert "istio_requests_total" in sent and 'destination_workload=~"checkout-green"' in sent
    assert 'destination_workload_namespace="shop"' in sent
    assert r.phase == "Failed"


# --- web ----------------------------------------------------------------------------------


def web_team(body, status: int = 200) -> tuple[TeamMetrics, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request):
        seen.append(request)
        return httpx.Response(status, content=json.dumps(body).encode())

    return TeamMetrics(CTX, client=httpx.Client(transport=httpx.MockTransport(handle))), seen


@pytest.mark.parametrize(("body", "phase"), [({"data": {"ok": 0.999}}, "Successful"),
                                             ({"data": {"ok": 0.9}}, "Failed")])
def test_a_web_metric_reads_its_json_path(body, phase) -> None:
    metric = MetricDef("web-ok", MetricSource("web", url="http://127.0.0.1:9/health?svc={{args.svc}}",
                                              json_path="{$.data.ok}"), success_condition="result >= 0.99")
    spec = AnalysisSpec(name="w", interval=10, count=1, metrics=(metric,), args=(Arg("svc", "checkout"),))
    t, seen = web_team(body)
    [r] = t.evaluate(spec, at=0)
    assert str(seen[0].url) == "http://127.0.0.1:9/health?svc=checkout"
    assert r.phase == phase and r.value.startswith(str(body["data"]["ok"]))


def test_a_web_metric_answering_non_2xx_is_an_error() -> None:
    metric = MetricDef("web-ok", MetricSource("web", url="http://127.0.0.1:9/health", json_path="{$.ok}"),
                       success_condition="result == true")
    t, _ = web_team({"ok": True}, status=503)
    [r] = t.evaluate(AnalysisSpec(name="w", interval=10, count=1, metrics=(metric,)), at=0)
    assert r.phase == "Error" and r.message == "received non 2xx response code: 503"
