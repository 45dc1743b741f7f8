"""Flagger's built-in metrics, ``request-success-rate`` and ``request-duration``, per mesh provider.

A Canary metric named ``request-success-rate`` or ``request-duration`` with no ``templateRef``
runs the provider's own PromQL (``fluxcd/flagger`` ``pkg/controller/scheduler_metrics.go``
``runBuiltinMetricChecks``). The observer is chosen by ``pkg/metrics/observers/factory.go``
``Factory.Observer``: ``appmesh*`` and ``gloo*`` by prefix, the others by exact name, anything else
(``gatewayapi:v1``, ``smi:...``, a ``:service`` suffix for a Service target) falls to Istio's.

Units, as Flagger judges them against ``thresholdRange``:

* ``request-success-rate`` is a percentage, 0-100 (every query ends ``* 100``);
* ``request-duration`` is milliseconds: the queries read ms histograms (Istio, Linkerd, OSM,
  APISIX, Envoy's ``upstream_rq_time``) or multiply seconds by 1000 (NGINX, Skipper, Traefik); the
  ``kubernetes`` query returns seconds and Flagger multiplies in Go (``HttpObserver``). Flagger
  then keeps whole milliseconds: ``time.Duration(int64(value)) * time.Millisecond``.

The queries are the text Flagger sends, after its Prometheus provider collapses whitespace
(``pkg/metrics/providers/prometheus.go`` ``trimQuery``), so they equal the observer tests'
expected strings. Each is cited by the observer file and the commit it was read at:

=============  ==========================================================================
provider       ``pkg/metrics/observers/`` file (commit read)
=============  ==========================================================================
apisix         ``apisix.go`` (2dd48c6), route ``{{ namespace }}_{{ route }}-{{ target }}-canary_.+``
appmesh        ``appmesh.go`` (1535f7a)
contour        ``contour.go`` (a2e864d)
gloo           ``gloo.go`` with ``canaryupstream`` (``gloo_test.go`` 3ad55c9)
istio          ``istio.go`` (1535f7a), ``istio_request_duration_milliseconds_bucket``
knative        ``knative.go`` (f1c8807), ``envoy_cluster_name=~"{{ namespace }}/{{ route }}"``
kubernetes     ``http.go`` (1535f7a) ``HttpObserver``, pods' own ``http_request_duration_seconds``
kuma           ``kuma.go`` (3d1aede)
linkerd        ``linkerd.go`` (90abb7b)
nginx          ``nginx.go`` with ``canary!=""`` (``nginx_test.go`` 01d4780; Flagger v1.15, PR #1023)
osm            ``osm.go`` (a6fae01)
skipper        ``skipper.go`` (cd75c5f), names encoded ``\\W`` -> ``_`` (``encodeModelForSkipper``)
traefik        ``traefik.go`` (c812dcf, with ``* 1000`` from PR #1446)
=============  ==========================================================================

>>> builtin_query("istio", "request-duration", namespace="default", target="podinfo",
...               service="podinfo", ingress="podinfo", route="podinfo", interval="1m")
' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) by (le) )'
>>> builtin_unit("istio", "request-duration"), flagger_value("kubernetes", "request-duration", 0.1234)
('milliseconds', 123.0)
"""

from __future__ import annotations

import math
import re

from deploysim.analysis.templating import FlaggerModel, TemplateError, render_flagger, trim_query

SUCCESS_RATE = "request-success-rate"
DURATION = "request-duration"
BUILTIN_METRICS = (SUCCESS_RATE, DURATION)

_ENVOY_RQ = ' sum( rate( envoy_cluster_upstream_rq{{ {sel}, envoy_response_code!~"5.*" }}[{{{{ interval }}}}] ) ) / sum( rate( envoy_cluster_upstream_rq{{ {sel}{tail} }}[{{{{ interval }}}}] ) ) * 100'
_ENVOY_TIME = ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{{ {sel}{tail} }}[{{{{ interval }}}}] ) ) by (le) )'


def _envoy(sel: str, tail: str) -> tuple[str, str]:
    """The Envoy cluster queries several observers share, over their cluster selector."""
    return _ENVOY_RQ.format(sel=sel, tail=tail), _ENVOY_TIME.format(sel=sel, tail=tail)


_PODS = 'kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
_ISTIO = 'reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}"'
_LINKERD = 'namespace="{{ namespace }}", deployment=~"{{ target }}"'
_NGINX = 'namespace="{{ namespace }}", ingress="{{ ingress }}", canary!=""'
_OSM = 'destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}"'
_TRAEFIK = 'service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"'
_APISIX = 'route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"'
_SKIPPER = 'route=~"{{ $route }}"'

# provider: (request-success-rate, request-duration), each as Flagger sends it before filling
QUERIES: dict[str, tuple[str, str]] = {
    "istio": (
        f' sum( rate( istio_requests_total{{ {_ISTIO}, response_code!~"5.*" }}[{{{{ interval }}}}] ) ) / sum( rate( istio_requests_total{{ {_ISTIO} }}[{{{{ interval }}}}] ) ) * 100',
        f" histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{{ {_ISTIO} }}[{{{{ interval }}}}] ) ) by (le) )",
    ),
    "linkerd": (
        f' sum( rate( response_total{{ {_LINKERD}, classification!="failure", direction="inbound" }}[{{{{ interval }}}}] ) ) / sum( rate( response_total{{ {_LINKERD}, direction="inbound" }}[{{{{ interval }}}}] ) ) * 100',
        f' histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{{ {_LINKERD}, direction="inbound" }}[{{{{ interval }}}}] ) ) by (le) )',
    ),
    "appmesh": _envoy(_PODS, ""),
    "contour": _envoy('envoy_cluster_name=~"{{ namespace }}_{{ target }}-canary_[0-9a-zA-Z-]+"', ","),
    "gloo": _envoy('envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"', ","),
    "kuma": _envoy('service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"', ","),
    "knative": _envoy('envoy_cluster_name=~"{{ namespace }}/{{ route }}"', ","),
    "nginx": (
        f' sum( rate( nginx_ingress_controller_requests{{ {_NGINX}, status!~"5.*" }}[{{{{ interval }}}}] ) ) / sum( rate( nginx_ingress_controller_requests{{ {_NGINX} }}[{{{{ interval }}}}] ) ) * 100',
        f" sum( rate( nginx_ingress_controller_ingress_upstream_latency_seconds_sum{{ {_NGINX} }}[{{{{ interval }}}}] ) ) / sum( rate( nginx_ingress_controller_ingress_upstream_latency_seconds_count{{ {_NGINX} }}[{{{{ interval }}}}] ) ) * 1000",
    ),
    "kubernetes": (
        f' sum( rate( http_request_duration_seconds_count{{ {_PODS}, status!~"5.*" }}[{{{{ interval }}}}] ) ) / sum( rate( http_request_duration_seconds_count{{ {_PODS} }}[{{{{ interval }}}}] ) ) * 100',
        f" histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{{ {_PODS} }}[{{{{ interval }}}}] ) ) by (le) )",
    ),
    "osm": (
        f' sum( rate( osm_request_total{{ {_OSM}, response_code!~"5.*" }}[{{{{ interval }}}}] ) ) / sum( rate( osm_request_total{{ {_OSM} }}[{{{{ interval }}}}] ) ) * 100',
        f" histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{{ {_OSM} }}[{{{{ interval }}}}] ) ) by (le) )",
    ),
    "traefik": (
        f' sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK}, code!~"5..", le="+Inf" }}[{{{{ interval }}}}] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK}, le="+Inf" }}[{{{{ interval }}}}] ) ) * 100',
        f" histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK} }}[{{{{ interval }}}}] ) ) by (le) ) * 1000",
    ),
    "apisix": (
        f' sum( rate( apisix_http_status{{ {_APISIX}, code!~"5.." }}[{{{{ interval }}}}] ) ) / sum( rate( apisix_http_status{{ {_APISIX} }}[{{{{ interval }}}}] ) ) * 100',
        f' histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{{ type=~"request", {_APISIX} }}[{{{{ interval }}}}] ) ) by (le) )',
    ),
    "skipper": (
        f' sum(rate(skipper_response_duration_seconds_bucket{{{_SKIPPER},code!~"5..",le="+Inf"}}[{{{{ interval }}}}])) / sum(rate(skipper_response_duration_seconds_bucket{{{_SKIPPER},le="+Inf"}}[{{{{ interval }}}}])) * 100',
        f" sum(rate(skipper_serve_route_duration_seconds_sum{{{_SKIPPER}}}[{{{{ interval }}}}])) / sum(rate(skipper_serve_route_duration_seconds_count{{{_SKIPPER}}}[{{{{ interval }}}}])) * 1000",
    ),
}
BUILTIN_PROVIDERS = tuple(sorted(QUERIES))
_BY_PREFIX = ("appmesh", "gloo")
# names Flagger takes as a provider whose built-ins fall to Istio's observer (factory default)
_TO_ISTIO = ("gatewayapi", "smi")
_MEAN_DURATION = ("nginx", "skipper")  # sum/count: a mean, where the others take the p99


def observer_for(provider: str) -> str:
    """Whose built-in queries a Canary ``provider`` runs, as ``Factory.Observer`` picks them.

    >>> [observer_for(p) for p in ("appmesh:v1beta2", "gloo", "gatewayapi:v1", "kubernetes:service")]
    ['appmesh', 'gloo', 'istio', 'istio']
    """
    if provider in QUERIES:
        return provider
    for prefix in _BY_PREFIX:
        if provider.startswith(prefix):
            return prefix
    base = provider.split(":", 1)[0]
    if base in QUERIES or base in _TO_ISTIO:
        return "istio"
    raise TemplateError(f"provider {provider!r}: Flagger has no built-in metrics for it; allowed: "
                        f"{', '.join(BUILTIN_PROVIDERS)}, appmesh:*, gloo:*, gatewayapi:* and smi:* (as istio)")


def _metric(metric: str) -> int:
    if metric not in BUILTIN_METRICS:
        raise TemplateError(f"metric {metric!r}: not a Flagger built-in; allowed: {', '.join(BUILTIN_METRICS)}")
    return BUILTIN_METRICS.index(metric)


def builtin_query(provider: str, metric: str, *, namespace: str, target: str, service: str, ingress: str,
                  route: str, interval: str) -> str:
    """The PromQL Flagger sends for a built-in ``metric`` under ``provider``, filled and trimmed.

    >>> builtin_query("skipper", "request-duration", namespace="skipper", target="", service="backend",
    ...               ingress="skipper-ingress", route="", interval="1m")[:96]
    ' sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_skipper__skipper_ingress_ca'
    """
    observer = observer_for(provider)
    template = QUERIES[observer][_metric(metric)]
    model = FlaggerModel(name="", namespace=namespace, target=target, service=service, ingress=ingress,
                         route=route, interval=interval)
    if observer == "skipper":
        # encodeModelForSkipper: every non-word character becomes "_", as Skipper names its routes
        model = FlaggerModel(*(re.sub(r"[^0-9A-Za-z_]", "_", v) for v in (
            model.name, model.namespace, model.target, model.service, model.ingress)),
            route=route, interval=interval)
        pattern = f"kube(ew)?_{model.namespace}__{model.ingress}_canary__.*__{model.service}_canary(_[0-9]+)?"
        template = template.replace("{{ $route }}", pattern)
    return trim_query(render_flagger(template, model))


def builtin_unit(provider: str, metric: str) -> str:
    """The unit of the value the built-in query returns: ``percent``, ``milliseconds`` or ``seconds``.

    Only the ``kubernetes`` duration comes back in seconds; Flagger turns it into milliseconds.

    >>> builtin_unit("nginx", "request-success-rate"), builtin_unit("kubernetes", "request-duration")
    ('percent', 'seconds')
    """
    if _metric(metric) == 0:
        return "percent"
    return "seconds" if observer_for(provider) == "kubernetes" else "milliseconds"


def builtin_statistic(provider: str, metric: str) -> str:
    """What the query computes: ``ratio`` (success rate), ``p99`` or ``mean`` (duration).

    >>> builtin_statistic("istio", "request-duration"), builtin_statistic("nginx", "request-duration")
    ('p99', 'mean')
    """
    if _metric(metric) == 0:
        return "ratio"
    return "mean" if observer_for(provider) in _MEAN_DURATION else "p99"


def flagger_value(provider: str, metric: str, raw: float) -> float:
    """The number Flagger compares with ``thresholdRange`` for a query result ``raw``.

    A success rate is taken as it is; a duration becomes whole milliseconds, truncated toward
    zero as Go's ``int64`` conversion does (``value * 1000`` first for ``kubernetes``).

    >>> flagger_value("istio", "request-duration", 99.9), flagger_value("istio", "request-success-rate", 99.9)
    (99.0, 99.9)
    """
    if _metric(metric) == 0 or math.isnan(raw) or math.isinf(raw):
        return raw
    return float(math.trunc(raw * 1000 if observer_for(provider) == "kubernetes" else raw))
