"""Team queries read by their whole expression (deploysim/manifests/promql_reading.py, queries.py).

Each row is a query in a shape Flagger or Argo Rollouts documents, with what it measures, the
scale to the simulated unit, and a rehearsal verdict the old keyword reading got backwards: a
success ratio written with ``classification!="failure"`` was read as an error ratio (a healthy
candidate failed a ``>= 99%`` bound), a ``..._milliseconds_bucket ... / 1000`` latency in seconds
was read as milliseconds (a 0.5 s bound became 0.5 ms), Envoy's millisecond histograms were read
as seconds (a 500 ms bound became 500 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.analysis.metrics import MetricDef, MetricSource
from deploysim.manifests import plan_from_manifests, scenario_from_manifests
from deploysim.manifests.flagger_builtins import (
    BUILTIN_PROVIDERS,
    DURATION,
    QUERIES,
    SUCCESS_RATE,
    builtin_statistic,
    builtin_unit,
    observer_for,
)
from deploysim.manifests.queries import classify_query, read_query, stand_in_for
from deploysim.plan import Analyze
from deploysim.rules.checks import within_bounds

ARGO_DOCS_SUCCESS_RATE = """
sum(irate(
  istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code!~"5.*"}[5m]
)) /
sum(irate(
  istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}"}[5m]
))
"""
LINKERD_SUCCESS = """
sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",
    classification!="failure", direction="inbound"}[{{ interval }}]))
/
sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound"}[{{ interval }}]))
* 100
"""
FLAGGER_NOT_FOUND = """
100 - sum(rate(istio_requests_total{reporter="destination", destination_workload="{{ target }}",
    response_code!="404"}[{{ interval }}]))
/
sum(rate(istio_requests_total{reporter="destination", destination_workload="{{ target }}"}[{{ interval }}])) * 100
"""
FLAGGER_GRPC = """
100 - sum(rate(grpc_server_handled_total{grpc_code!="OK", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}]))
/
sum(rate(grpc_server_started_total{kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100
"""
MS_IN_SECONDS = "histogram_quantile(0.99, sum(rate(request_duration_milliseconds_bucket[1m])) by (le)) / 1000"
SECONDS_IN_MS = "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[1m])) by (le)) * 1000"


def metric(query: str, *, lo: float | None = None, hi: float | None = None, success: str | None = None,
           failure: str | None = None) -> MetricDef:
    """A Flagger metric (``lo``/``hi``: its thresholdRange) or an Argo one (its conditions)."""
    source = MetricSource("prometheus", query=query)
    if success or failure:
        return MetricDef("team", source, success_condition=success, failure_condition=failure)
    return MetricDef("team", source, dialect="flagger", min=lo, max=hi)


def passes(m: MetricDef, value: float) -> bool:
    """The rehearsal's verdict on a candidate whose simulated metric is ``value``."""
    check, why = stand_in_for(m)
    assert check is not None, why
    return within_bounds(value, check.min, check.max)


# --- what a query measures, its direction and its scale -------------------------------------------


@pytest.mark.parametrize(
    ("query", "metric_", "scale"),
    [
        # direction from the numerator: successes on top of all requests ...
        (LINKERD_SUCCESS, "success_rate", 0.01),
        (ARGO_DOCS_SUCCESS_RATE, "success_rate", 1.0),
        ('sum(rate(istio_requests_total{response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total[1m]))',
         "success_rate", 1.0),
        ('sum(rate(nginx_ingress_controller_requests{ingress="app", status!~"5.*"}[1m])) / '
         'sum(rate(nginx_ingress_controller_requests{ingress="app"}[1m])) * 100', "success_rate", 0.01),
        ('sum(rate(http_requests_total{status_code=~"2.."}[5m])) / sum(rate(http_requests_total[5m]))',
         "success_rate", 1.0),
        ('sum(rate(http_server_requests_seconds_count{outcome="SUCCESS"}[1m])) / '
         'sum(rate(http_server_requests_seconds_count[1m]))', "success_rate", 1.0),
        # ... or failures on top
        ('sum(rate(response_total{classification="failure"}[1m])) / sum(rate(response_total[1m]))',
         "error_rate", 1.0),
        ('sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))', "error_rate", 1.0),
        ('sum(rate(envoy_cluster_upstream_rq{envoy_response_code_class="5"}[1m])) / '
         'sum(rate(envoy_cluster_upstream_rq[1m]))', "error_rate", 1.0),
        ('100 * sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))', "error_rate", 0.01),
        # labels that say nothing of outcomes are left alone
        ('sum(rate(grpc_server_handled_total{grpc_method="Get", grpc_code!="OK"}[1m])) / '
         'sum(rate(grpc_server_started_total{grpc_method="Get"}[1m]))', "error_rate", 1.0),
        ('sum(rate(x{country_code="US", code=~"5.."}[1m])) / sum(rate(x{country_code="US", code!=""}[1m]))',
         "error_rate", 1.0),
        # complements and percentages, with PromQL's precedence
        ('1 - sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))', "success_rate", 1.0),
        ('(1 - sum(rate(x{code!~"5.."}[1m])) / sum(rate(x[1m]))) * 100', "error_rate", 0.01),
        ('100 - sum(rate(x{code!~"5.."}[1m])) / sum(rate(x[1m])) * 100', "error_rate", 0.01),
        # Flagger's docs call this "grpc-error-rate-percentage"; 100 - non-OK% is the OK share
        (FLAGGER_GRPC, "success_rate", 0.01),
        ('100 - (sum(rate(payments_total{status="failed"}[{{ interval }}])) / '
         'sum(rate(payments_total[{{ interval }}]))) * 100', "success_rate", 0.01),
        ('sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m])) or on() vector(0)', "error_rate", 1.0),
        # latency: the bucket's unit and the arithmetic on it
        (MS_IN_SECONDS, "latency_p99", 1000.0),
        (SECONDS_IN_MS, "latency_p99", 1.0),
        ("1000 * histogram_quantile(0.95, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket[1m])) "
         "by (le))", "latency_p95", 1.0),
        ("histogram_quantile(0.5, sum by (le) (rate(response_latency_ms_bucket[1m])))", "latency_p50", 1.0),
        ("histogram_quantile(0.99, sum(rate(skipper_serve_route_duration_seconds_bucket{route=~\"{{ printf "
         "\"kube(ew)?_%s__%s_canary__.*\" namespace ingress }}\"}[1m])) by (le))", "latency_p99", 1000.0),
        ('max(http_request_duration_seconds{quantile="0.99"})', "latency_p99", 1000.0),
        # request rates per second
        ('sum(rate(http_requests_total{app="x"}[1m]))', "request_rate", 1.0),
        ("sum(increase(http_requests_total[5m]))", "request_rate", 1 / 300),
    ],
)
def test_a_query_is_read_from_its_whole_expression(query: str, metric_: str, scale: float) -> None:
    measures, why = read_query(query)
    assert why == ""
    assert measures is not None and measures.metric == metric_
    assert measures.scale == pytest.approx(scale)


@pytest.mark.parametrize("provider", BUILTIN_PROVIDERS)
@pytest.mark.parametrize("builtin", [SUCCESS_RATE, DURATION])
def test_flaggers_builtin_queries_are_read_in_flaggers_units(provider: str, builtin: str) -> None:
    query = QUERIES[provider][0 if builtin == SUCCESS_RATE else 1]
    measures, why = read_query(query)
    if builtin_statistic(provider, builtin) == "mean":  # nginx, skipper: _sum / _count
        assert measures is None and "a mean" in why and "_sum" in why
        return
    unit = builtin_unit(provider, builtin)
    assert measures is not None, why
    assert (measures.metric, measures.scale) == (
        ("success_rate", 0.01) if unit == "percent" else ("latency_p99", {"milliseconds": 1.0, "seconds": 1000.0}[unit]))


@pytest.mark.parametrize("provider", ["gatewayapi:v1", "appmesh:v1beta2", "gloo:v1", "contour", "smi:v1alpha3"])
def test_providers_that_share_an_observer_read_as_it_does(provider: str) -> None:
    success, duration = (classify_query(q) for q in QUERIES[observer_for(provider)])
    assert success is not None and (success.metric, success.scale) == ("success_rate", 0.01)
    # Istio's istio_request_duration_milliseconds and Envoy's upstream_rq_time are both ms
    assert duration is not None and (duration.metric, duration.scale) == ("latency_p99", 1.0)


# --- verdicts the old reading inverted -------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "value", "verdict"),
    [
        # Linkerd success % >= 99: was read as an error rate >= 0.99, failing every healthy candidate
        (metric(LINKERD_SUCCESS, lo=99), 0.001, True),
        (metric(LINKERD_SUCCESS, lo=99), 0.05, False),
        # Argo's docs: result[0] >= 0.95 on the Istio success ratio
        (metric(ARGO_DOCS_SUCCESS_RATE, success="result[0] >= 0.95"), 0.001, True),
        (metric(ARGO_DOCS_SUCCESS_RATE, success="result[0] >= 0.95"), 0.10, False),
        (metric(ARGO_DOCS_SUCCESS_RATE, failure="result[0] < 0.95"), 0.10, False),
        # NGINX success % >= 99
        (metric('sum(rate(nginx_ingress_controller_requests{status!~"5.*"}[1m])) / '
                'sum(rate(nginx_ingress_controller_requests[1m])) * 100', lo=99), 0.001, True),
        # response_code!="500" on top is a success ratio (note: other 5xx count as successes)
        (metric('sum(rate(istio_requests_total{response_code!="500"}[1m])) / sum(rate(istio_requests_total[1m]))',
                success="result[0] >= 0.99"), 0.001, True),
        # a ms histogram / 1000 compared with seconds: 0.5 s, not 0.5 ms
        (metric(MS_IN_SECONDS, success="result[0] <= 0.5"), 120.0, True),
        (metric(MS_IN_SECONDS, success="result[0] <= 0.5"), 800.0, False),
        # a seconds histogram * 1000 compared with ms
        (metric(SECONDS_IN_MS, hi=300), 120.0, True),
        (metric(SECONDS_IN_MS, hi=300), 450.0, False),
        # Envoy's upstream_rq_time is ms: a 500 ms bound was 500 s, passing any candidate
        (metric(QUERIES["contour"][1], hi=500), 900.0, False),
        (metric(QUERIES["contour"][1], hi=500), 200.0, True),
    ],
)
def test_rehearsal_verdicts_follow_what_the_query_returns(m: MetricDef, value: float, verdict: bool) -> None:
    assert passes(m, value) is verdict


def test_a_success_ratio_bound_becomes_an_error_rate_bound() -> None:
    check, why = stand_in_for(metric(LINKERD_SUCCESS, lo=99))
    assert why == "" and check is not None
    assert (check.metric, check.min, check.max) == ("error_rate", None, 0.01)
    check, _ = stand_in_for(metric(MS_IN_SECONDS, success="result[0] <= 0.5"))
    assert check is not None and (check.metric, check.max) == ("latency_p99", 500.0)


def test_a_partial_selector_is_read_with_a_note() -> None:
    measures, _ = read_query('sum(rate(x{response_code!="500"}[1m])) / sum(rate(x[1m]))')
    assert measures is not None and measures.metric == "success_rate"
    assert 'response_code!="500"' in measures.note and "some failed requests" in measures.note
    measures, _ = read_query('sum(rate(x{code="503"}[1m])) / sum(rate(x[1m]))')
    assert measures is not None and measures.metric == "error_rate" and "only some" in measures.note


def test_a_percentage_bound_on_a_share_of_one_is_named() -> None:
    check, note = stand_in_for(metric('sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))', hi=5))
    assert check is not None and check.max == 0.05
    assert note == "a bound of 5 is above 1: the result is read as a percentage (5%)"


# --- what cannot be known is said, with the query -------------------------------------------------


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("sum(rate(a_total[1m])) / sum(rate(b_total[1m]))", "neither selects an outcome"),
        (FLAGGER_NOT_FOUND, 'counts response_code!="404", leaving out only 404'),
        ('sum(rate(x{code="404"}[1m])) / sum(rate(x[1m]))', "neither failed nor successful"),
        ('sum(rate(x{pod=~"canary-.*"}[1m])) / sum(rate(x[1m]))', "a share of traffic"),
        ('sum(rate(x{code=~"5.."}[1m])) / sum(rate(x{code=~"5.."}[1m]))', "only some of the requests"),
        ('2 * sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m])) - 1', "neither an error nor a success ratio"),
        ("histogram_quantile(0.99, sum(rate(request_latency_bucket[1m])) by (le))", "unit is not in its name"),
        ("histogram_quantile(0.9, sum(rate(x_seconds_bucket[1m])) by (le))", "the 0.9 quantile"),
        ("sum(rate(x_seconds_sum[1m])) / sum(rate(x_seconds_count[1m]))", "a mean"),
        ('sum(rate(x{code=~"{{args.codes}}"}[1m])) / sum(rate(x[1m]))', 'code=~"{{args.codes}}", filled in'),
        ('sum(rate(x{code=~"5.."}[1m]))', "an absolute rate"),
        ("avg(rate(container_cpu_usage_seconds_total[1m]))", "avg() of a count"),
        ('sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m])) > 0.05', "filters with '>'"),
        ("sum:istio.mesh.request.count{reporter:destination}.as_count()", "is not PromQL the reader can parse"),
        ("up", "the series up as it stands"),
    ],
)
def test_what_cannot_be_known_is_not_simulated_with_a_reason(query: str, why: str) -> None:
    measures, reason = read_query(query)
    assert measures is None and classify_query(query) is None
    assert reason.startswith(f"its query {' '.join(query.split())[:60]}") and why in reason
    check, said = stand_in_for(metric(query, hi=1.0))
    assert check is None and said == reason


def test_a_difference_of_two_versions_ratios_is_named() -> None:
    canary = 'sum(rate(x{hash="{{args.canary}}",code=~"5.."}[1m])) / sum(rate(x{hash="{{args.canary}}"}[1m]))'
    stable = canary.replace("canary", "baseline")
    measures, why = read_query(f"({canary}) - ({stable})")
    assert measures is None and "subtracts one share of requests from another" in why


# --- through the importers ---------------------------------------------------------------------------


def test_a_flagger_linkerd_metric_template_stands_in_as_an_error_rate_bound(tmp_path: Path) -> None:
    f = tmp_path / "canary.yaml"
    f.write_text(f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec: {{replicas: 4}}
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {{name: success-rate}}
spec:
  provider: {{type: prometheus, address: "http://prometheus.linkerd-viz:9090"}}
  query: |
{"".join("    " + line + chr(10) for line in LINKERD_SUCCESS.strip().splitlines())}
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: app}}
spec:
  provider: linkerd
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: app}}
  service: {{port: 80}}
  analysis:
    interval: 1m
    stepWeight: 50
    metrics:
      - name: success-rate
        templateRef: {{name: success-rate}}
        thresholdRange: {{min: 99}}
""")
    scenario = scenario_from_manifests([str(f)], overrides=[])
    plan = plan_from_manifests([str(f)], scenario)
    spec = next(s for s in plan.steps if isinstance(s, Analyze)).analysis
    assert [(c.metric, c.min, c.max) for c in spec.checks] == [("error_rate", None, 0.01)]


def test_an_argo_template_in_milliseconds_over_1000_stands_in_as_a_latency_in_ms(tmp_path: Path) -> None:
    f = tmp_path / "rollout.yaml"
    f.write_text(f"""
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: app}}
spec:
  replicas: 4
  strategy:
    canary:
      steps:
        - setWeight: 50
        - analysis: {{templates: [{{templateName: latency}}]}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: latency}}
spec:
  metrics:
    - name: p99-seconds
      interval: 1m
      count: 2
      successCondition: result[0] <= 0.5
      provider:
        prometheus:
          address: http://prometheus:9090
          query: {MS_IN_SECONDS}
""")
    scenario = scenario_from_manifests([str(f)], overrides=[])
    plan = plan_from_manifests([str(f)], scenario)
    spec = next(s for s in plan.steps if isinstance(s, Analyze)).analysis
    assert [(c.metric, c.max) for c in spec.checks] == [("latency_p99", 500.0)]
