"""deploysim.manifests.flagger_builtins: the PromQL Flagger sends for its built-in metrics.

Each expected string is copied from the ``expected`` of the provider's test in
``fluxcd/flagger`` ``pkg/metrics/observers/<provider>_test.go`` (what the fake Prometheus
receives after ``trimQuery``), with the model that test passes.
"""

from __future__ import annotations

import math

import pytest

from deploysim.analysis.templating import TemplateError
from deploysim.manifests.flagger_builtins import (
    BUILTIN_METRICS,
    BUILTIN_PROVIDERS,
    QUERIES,
    builtin_query,
    builtin_statistic,
    builtin_unit,
    flagger_value,
    observer_for,
)

# the model most observer tests use: Name/Target/Service podinfo, Namespace default, Interval 1m
PODINFO = {"namespace": "default", "target": "podinfo", "service": "podinfo", "ingress": "podinfo",
           "route": "podinfo", "interval": "1m"}
NGINX = {**PODINFO, "namespace": "nginx"}
KNATIVE = {**PODINFO, "route": "podinfo-00001"}
SKIPPER = {"namespace": "skipper", "target": "", "service": "backend", "ingress": "skipper-ingress", "route": "",
           "interval": "1m"}

CASES = [
    ("istio", PODINFO,
     ' sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) by (le) )'),
    ("linkerd", PODINFO,
     ' sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure", direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )'),
    ("appmesh", PODINFO,
     ' sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )'),
    ("contour", PODINFO,
     ' sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )'),
    ("gloo", PODINFO,
     ' sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )'),
    ("kuma", PODINFO,
     ' sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )'),
    ("knative", KNATIVE,
     ' sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) by (le) )'),
    ("nginx", NGINX,
     ' sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="", status!~"5.*" }[1m] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 100',
     ' sum( rate( nginx_ingress_controller_ingress_upstream_latency_seconds_sum{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) / sum( rate( nginx_ingress_controller_ingress_upstream_latency_seconds_count{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 1000'),
    ("kubernetes", PODINFO,
     ' sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[1m] ) ) / sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )'),
    ("osm", PODINFO,
     ' sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) by (le) )'),
    ("traefik", PODINFO,
     ' sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[1m] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd" }[1m] ) ) by (le) ) * 1000'),
    ("apisix", PODINFO,
     ' sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+", code!~"5.." }[1m] ) ) / sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) * 100',
     ' histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) by (le) )'),
    ("skipper", SKIPPER,
     ' sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",code!~"5..",le="+Inf"}[1m])) / sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",le="+Inf"}[1m])) * 100',
     ' sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) * 1000'),
]


@pytest.mark.parametrize(("provider", "model", "success_rate", "duration"), CASES, ids=[c[0] for c in CASES])
def test_builtin_queries_equal_flaggers_observer_tests(provider: str, model: dict, success_rate: str,
                                                        duration: str) -> None:
    assert builtin_query(provider, "request-success-rate", **model) == success_rate
    assert builtin_query(provider, "request-duration", **model) == duration


def test_every_provider_is_covered_by_a_case() -> None:
    assert sorted(c[0] for c in CASES) == list(BUILTIN_PROVIDERS) == sorted(QUERIES)


def test_the_model_reaches_the_query() -> None:
    q = builtin_query("istio", "request-success-rate", namespace="shop", target="cart", service="cart",
                      ingress="cart", route="cart", interval="30s")
    assert 'destination_workload_namespace="shop"' in q and 'destination_workload=~"cart"' in q and "[30s]" in q
    assert "{{" not in q and "podinfo" not in q
    q = builtin_query("nginx", "request-duration", namespace="ns", target="app", service="app",
                      ingress="edge", route="app", interval="2m")
    assert 'ingress="edge"' in q and "[2m]" in q


def test_skipper_encodes_non_word_characters() -> None:  # encodeModelForSkipper
    q = builtin_query("skipper", "request-success-rate", namespace="my-ns", target="t", service="my.svc",
                      ingress="my-ing", route="", interval="1m")
    assert 'route=~"kube(ew)?_my_ns__my_ing_canary__.*__my_svc_canary(_[0-9]+)?"' in q


@pytest.mark.parametrize(
    ("provider", "observer"),
    [
        ("istio", "istio"), ("appmesh:v1beta2", "appmesh"), ("gloo", "gloo"), ("gloo:v1", "gloo"),
        ("gatewayapi:v1", "istio"), ("gatewayapi:v1beta1", "istio"), ("smi:v1alpha3:linkerd", "istio"),
        ("kubernetes:service", "istio"),  # Factory.Observer has no "kubernetes:service": default case
        ("appmesh:service", "appmesh"), ("linkerd", "linkerd"),
    ],
)
def test_observer_for_follows_the_factory(provider: str, observer: str) -> None:
    assert observer_for(provider) == observer


def test_an_unknown_provider_or_metric_names_the_allowed_ones() -> None:
    with pytest.raises(TemplateError, match=r"provider 'isito': Flagger has no built-in metrics for it; "
                                            r"allowed: apisix, appmesh, contour"):
        builtin_query("isito", "request-duration", **PODINFO)
    with pytest.raises(TemplateError, match=r"metric 'error-rate': not a Flagger built-in; "
                                            r"allowed: request-success-rate, request-duration"):
        builtin_unit("istio", "error-rate")
    assert BUILTIN_METRICS == ("request-success-rate", "request-duration")


@pytest.mark.parametrize("provider", BUILTIN_PROVIDERS)
def test_units(provider: str) -> None:
    assert builtin_unit(provider, "request-success-rate") == "percent"
    assert builtin_unit(provider, "request-duration") == ("seconds" if provider == "kubernetes" else "milliseconds")
    # a success rate is a percentage: every query multiplies its ratio by 100
    assert QUERIES[provider][0].endswith("* 100")


def test_a_milliseconds_duration_query_reads_ms_or_multiplies_by_1000() -> None:
    for provider in BUILTIN_PROVIDERS:
        query = QUERIES[provider][1]
        # Envoy's upstream_rq_time and APISIX's http_latency histograms count milliseconds
        ms_source = any(s in query for s in ("_milliseconds_", "_ms_", "upstream_rq_time", "apisix_http_latency"))
        times_1000 = query.endswith("* 1000")
        assert (ms_source or times_1000) == (builtin_unit(provider, "request-duration") == "milliseconds"), provider


def test_statistics() -> None:
    assert builtin_statistic("istio", "request-success-rate") == "ratio"
    assert {p: builtin_statistic(p, "request-duration") for p in ("istio", "nginx", "skipper", "traefik")} == {
        "istio": "p99", "nginx": "mean", "skipper": "mean", "traefik": "p99"}


@pytest.mark.parametrize(
    ("provider", "metric", "raw", "judged"),
    [
        ("istio", "request-duration", 100.0, 100.0),  # istio_test: value "100" -> 100ms
        ("istio", "request-duration", 99.99, 99.0),  # time.Duration(int64(value)): whole ms, truncated
        ("kubernetes", "request-duration", 0.100, 100.0),  # http_test: value "0.100" -> 100ms
        ("kubernetes", "request-duration", 0.0999, 99.0),
        ("nginx", "request-success-rate", 99.5, 99.5),
    ],
)
def test_flagger_value(provider: str, metric: str, raw: float, judged: float) -> None:
    assert flagger_value(provider, metric, raw) == judged


def test_flagger_value_keeps_nan() -> None:
    assert math.isnan(flagger_value("istio", "request-duration", math.nan))
