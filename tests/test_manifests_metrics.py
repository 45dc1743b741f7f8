"""The team's own metrics as the importers read them: each Argo AnalysisTemplate metric and
Flagger MetricTemplate becomes a MetricDef (what a cluster run evaluates) beside the check that
stands in for it in rehearsal; args, Secrets, web metrics, routers and unsupported providers.

Manifests are written in the shapes the Argo Rollouts and Flagger docs show.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.analysis.metrics import Arg
from deploysim.errors import ManifestError, ParameterError
from deploysim.manifests import plan_from_manifests, scenario_from_manifests
from deploysim.plan import Analyze

ROLLOUT = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  labels: {app: web, team: payments}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1.0.0"}]
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
{routing}
      steps:
      - setWeight: 20
      - analysis:
          templates:
          - templateName: success-rate
          args:
          - name: service-name
            value: web-canary.shop.svc.cluster.local
          - name: team
            valueFrom:
              fieldRef:
                fieldPath: metadata.labels['team']
"""
GATEWAY = """        plugins:
          argoproj-labs/gatewayAPI:
            httpRoute: web-route
            namespace: shop"""
NGINX = """        nginx:
          stableIngress: web-ingress"""
TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service-name
  - name: team
  - name: api-token
    valueFrom:
      secretKeyRef:
        name: prometheus-auth
        key: token
  metrics:
  - name: success-rate
    interval: 5m
    successCondition: result[0] >= 0.95
    failureLimit: 3
    provider:
      prometheus:
        address: http://prometheus.example.com:9090
        timeout: 20
        headers:
        - key: Authorization
          value: "Bearer {{args.api-token}}"
        query: |
          sum(irate(
            istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code!~"5.*"}[5m]
          )) /
          sum(irate(
            istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}"}[5m]
          ))
  - name: webmetric
    successCondition: result == true
    provider:
      web:
        url: "http://my-server.com/api/v1/measurement?service={{ args.service-name }}"
        timeoutSeconds: 20
        jsonPath: "{$.data.ok}"
        headers:
        - key: X-Team
          value: "{{args.team}}"
  - name: datadog-errors
    successCondition: default(result, 0) < 0.05
    provider:
      datadog:
        interval: 5m
        query: sum:requests.error.count{service:web}
"""


def _write(tmp_path: Path, *docs: str) -> list[str]:
    paths = []
    for i, text in enumerate(docs):
        p = tmp_path / f"m{i}.yaml"
        p.write_text(text)
        paths.append(str(p))
    return paths


def _plan(paths: list[str]):  # noqa: ANN202
    scenario = scenario_from_manifests(paths, overrides=["candidate.error_rate=0.001"])
    return plan_from_manifests(paths, scenario)


def _analysis(plan):  # noqa: ANN001, ANN202
    return next(s.analysis for s in plan.steps if isinstance(s, Analyze))


def test_argo_metrics_become_definitions_with_their_provider_fields(tmp_path: Path) -> None:
    plan = _plan(_write(tmp_path, ROLLOUT.replace("{routing}", GATEWAY), TEMPLATE))
    spec = _analysis(plan)
    prom, web = spec.metrics
    assert (prom.name, prom.dialect, prom.success_condition) == ("success-rate", "argo", "result[0] >= 0.95")
    assert prom.source.kind == "prometheus" and prom.source.address == "http://prometheus.example.com:9090"
    assert prom.source.timeout == 20.0 and prom.source.headers == (("Authorization", "Bearer {{args.api-token}}"),)
    assert 'destination_service=~"{{args.service-name}}"' in prom.source.query
    assert (web.source.kind, web.source.json_path, web.source.timeout) == ("web", "{$.data.ok}", 20.0)
    # the simulated stand-in of the Istio success rate: an error rate of at most 5%
    assert [c for c in spec.checks if c.stands_for == "success-rate"][0].max == pytest.approx(0.05)
    assert prom.stand_in.startswith("error_rate <= 0.05")
    # datadog is not run on a cluster: named, so a cluster run refuses it before it starts
    assert spec.foreign_metrics == ("datadog-errors (datadog)",)


def test_args_merge_as_argo_merges_them(tmp_path: Path) -> None:
    spec = _analysis(_plan(_write(tmp_path, ROLLOUT.replace("{routing}", GATEWAY), TEMPLATE)))
    args = {a.name: a for a in spec.args}
    # the Rollout's value fills the template's declared arg; the fieldRef is read from the Rollout
    assert args["service-name"] == Arg("service-name", "web-canary.shop.svc.cluster.local")
    assert args["team"].value == "payments"
    # the Secret is read when the run starts, never at import
    assert args["api-token"].secret == ("prometheus-auth", "token") and args["api-token"].value is None


def test_routers_from_traffic_routing(tmp_path: Path) -> None:
    gw = _plan(_write(tmp_path, ROLLOUT.replace("{routing}", GATEWAY), TEMPLATE))
    assert (gw.routing, gw.router, gw.route) == ("router", "gateway-httproute", "web-route")
    (tmp_path / "n").mkdir()
    ng = _plan(_write(tmp_path / "n", ROLLOUT.replace("{routing}", NGINX), TEMPLATE))
    assert (ng.routing, ng.router, ng.route) == ("router", "nginx-ingress", "web-ingress")


def test_a_declared_arg_without_a_value_is_refused_and_an_undeclared_one_dropped(tmp_path: Path) -> None:
    given = "          - name: service-name\n            value: web-canary.shop.svc.cluster.local\n"
    extra = ROLLOUT.replace("{routing}", GATEWAY).replace(given, given + "          - name: colour\n"
                                                          "            value: green\n")
    # Argo's MergeArgs keeps only the args the templates declare
    assert "colour" not in {a.name for a in _analysis(_plan(_write(tmp_path, extra, TEMPLATE))).args}
    (tmp_path / "b").mkdir()
    missing = ROLLOUT.replace("{routing}", GATEWAY).replace(given, "")
    with pytest.raises(ManifestError, match=r"args.service-name: no value"):
        _plan(_write(tmp_path / "b", missing, TEMPLATE))


def test_a_foreign_provider_stops_a_cluster_run_before_the_cluster_is_touched(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from deploysim.kube import _analysis_sources
    from deploysim.providers import ProviderConfig

    paths = _write(tmp_path, ROLLOUT.replace("{routing}", GATEWAY), TEMPLATE)
    scenario = scenario_from_manifests(paths)
    plan = plan_from_manifests(paths, scenario)
    target = SimpleNamespace(namespace="shop", route=None, prometheus_url=None, prometheus_token=None)
    with pytest.raises(ParameterError, match=r"datadog-errors \(datadog\): deploysim runs prometheus and web"):
        _analysis_sources(ProviderConfig("none"), target, scenario, plan, api=None, world=None)


CANARY = """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: {provider}
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    - name: request-duration
      thresholdRange:
        max: 500
      interval: 30s
    - name: "404s percentage"
      templateRef:
        name: not-found-percentage
        namespace: istio-system
      templateVariables:
        reqType: GET
      thresholdRange:
        max: 5
      interval: 1m
"""
METRIC_TEMPLATE = """
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: not-found-percentage
  namespace: istio-system
spec:
  provider:
    type: prometheus
    address: http://prometheus.istio-system:9090
    secretRef:
      name: prom-basic-auth
  query: |
    100 - sum(
        rate(
            istio_requests_total{
              reporter="destination",
              destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}",
              response_code!="404",
              request_method="{{ variables.reqType }}"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            istio_requests_total{
              reporter="destination",
              destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}"
            }[{{ interval }}]
        )
    ) * 100
"""


@pytest.mark.parametrize("provider", ["istio", "nginx", "linkerd"])
def test_flagger_builtins_and_metric_templates_become_definitions(tmp_path: Path, provider: str) -> None:
    spec = _analysis(_plan(_write(tmp_path, CANARY.replace("{provider}", provider), METRIC_TEMPLATE)))
    success, duration, custom = spec.metrics
    assert (success.builtin, success.min, success.max, success.interval) == (provider, 99.0, None, "1m")
    assert (duration.builtin, duration.max, duration.interval) == (provider, 500.0, "30s")
    assert all(m.dialect == "flagger" for m in spec.metrics)
    assert custom.builtin is None and custom.variables == (("reqType", "GET"),)
    assert custom.source.address == "http://prometheus.istio-system:9090"
    assert custom.source.secret_ref == "prom-basic-auth"
    assert '{{ variables.reqType }}' in custom.source.query


def test_flagger_builtin_queries_are_rendered_for_the_run() -> None:
    from deploysim.analysis.metrics import MetricDef, MetricSource
    from deploysim.manifests.flagger_builtins import QUERIES
    from deploysim.plan import AnalysisSpec
    from deploysim.providers.evaluate import EvalContext, TeamMetrics

    metric = MetricDef("request-duration", MetricSource("prometheus", query=QUERIES["istio"][1].strip()),
                       dialect="flagger", max=500, interval="30s", builtin="istio")
    t = TeamMetrics(EvalContext("test", "podinfo", "podinfo-canary"))
    sent = t.render(metric, AnalysisSpec(metrics=(metric,)), metric.source.query)
    assert "istio_request_duration_milliseconds_bucket" in sent and "[30s]" in sent
    assert 'destination_workload=~"podinfo-canary"' in sent and 'destination_workload_namespace="test"' in sent
    t.close()


def test_a_flagger_metric_template_of_another_provider_is_named_for_a_cluster_run(tmp_path: Path) -> None:
    datadog = METRIC_TEMPLATE.replace("type: prometheus", "type: datadog").replace(
        "    address: http://prometheus.istio-system:9090\n", "    address: https://api.datadoghq.com\n")
    spec = _analysis(_plan(_write(tmp_path, CANARY.replace("{provider}", "istio"), datadog)))
    assert spec.foreign_metrics == ("404s percentage (datadog)",)
    assert [m.name for m in spec.metrics] == ["request-success-rate", "request-duration"]


def test_nginx_and_gateway_router_fields_not_carried_out_are_named(tmp_path: Path) -> None:
    nginx = NGINX + """
            additionalIngressAnnotations:
              canary-by-header: X-Canary
            stableIngresses: [web-ingress, web-ingress-2]"""
    nginx = nginx.replace("          stableIngress: web-ingress\n", "")
    scenario = scenario_from_manifests(_write(tmp_path, ROLLOUT.replace("{routing}", nginx), TEMPLATE))
    plan = plan_from_manifests(_write(tmp_path, ROLLOUT.replace("{routing}", nginx), TEMPLATE), scenario)
    assert plan.route == "web-ingress"
    text = "\n".join(plan.warnings)
    assert "trafficRouting.nginx.additionalIngressAnnotations" in text
    assert "web-ingress-2" in text


def test_args_in_interval_count_and_limits_are_filled_before_they_are_read(tmp_path: Path) -> None:
    # Argo resolves {{args.*}} over the whole metric (utils/analysis ResolveArgs) before it runs it;
    # count and the limits are IntOrString, so "3" counts as 3
    template = TEMPLATE.replace("    interval: 5m\n    successCondition: result[0] >= 0.95\n    failureLimit: 3\n",
                                "    interval: \"{{args.interval}}\"\n    count: \"{{args.count}}\"\n"
                                "    successCondition: result[0] >= 0.95\n    failureLimit: \"{{ args.limit }}\"\n")
    template = template.replace("  - name: team\n", "  - name: team\n  - name: interval\n    value: 30s\n"
                                "  - name: count\n    value: \"4\"\n  - name: limit\n")
    template = template[:template.index("  - name: webmetric")]  # the one metric: its limit is the spec's
    given = "          - name: service-name\n            value: web-canary.shop.svc.cluster.local\n"
    rollout = ROLLOUT.replace("{routing}", GATEWAY).replace(
        given, given + "          - name: count\n            value: \"3\"\n          - name: limit\n"
        "            value: \"1\"\n")
    spec = _analysis(_plan(_write(tmp_path, rollout, template)))
    # the template's default interval, the Rollout's count and limit over the template's
    assert (spec.interval, spec.count, spec.failure_limit) == (30.0, 3, 1)


def test_an_arg_in_a_count_that_no_one_gives_is_named(tmp_path: Path) -> None:
    template = TEMPLATE.replace("    failureLimit: 3\n", "    failureLimit: 3\n    count: \"{{args.runs}}\"\n")
    with pytest.raises(ManifestError, match=r"count: got '\{\{args.runs\}\}'; \{\{args.runs\}\}: no such argument"):
        _plan(_write(tmp_path, ROLLOUT.replace("{routing}", GATEWAY), template))
