"""Flagger canaries in the shapes of its tutorials (docs/gitbook/tutorials/*), and helpers
to read their plans and rehearsals, for the Flagger fidelity tests."""

from __future__ import annotations

from pathlib import Path

from deploysim.manifests import plan_from_manifests, scenario_from_manifests
from deploysim.plan import Analyze

HEALTHY = ["candidate.error_rate=0.001"]

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: podinfo}
spec:
  replicas: 4
  selector: {matchLabels: {app: podinfo}}
  template:
    metadata: {labels: {app: podinfo}}
    spec:
      containers: [{name: podinfod, image: "ghcr.io/stefanprodan/podinfo:6.0.1"}]
---
"""

# docs/gitbook/tutorials/istio-progressive-delivery.md
ISTIO_PROGRESSIVE = """apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    gateways: [public-gateway.istio-system.svc.cluster.local]
    hosts: [app.example.com]
    trafficPolicy:
      tls: {mode: DISABLE}
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: "gateway-error,connect-failure,refused-stream"
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 1m
    - name: request-duration
      thresholdRange: {max: 500}
      interval: 30s
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
        timeout: 30s
        metadata: {type: bash, cmd: "curl -sd 'test' http://podinfo-canary:9898/token | grep token"}
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 5s
        metadata: {cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"}
"""

# docs/gitbook/tutorials/istio-ab-testing.md
ISTIO_AB = """apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    gateways: [istio-system/public-gateway]
    hosts: [app.example.com]
  analysis:
    interval: 1m
    iterations: 10
    threshold: 2
    match:
      - headers:
          user-agent: {regex: ".*Firefox.*"}
      - headers:
          cookie: {regex: "^(.*?;)?(type=insider)(;.*)?$"}
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 1m
    - name: request-duration
      thresholdRange: {max: 500}
      interval: 30s
    webhooks:
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 15s
        metadata: {cmd: "hey -z 1m -q 10 -c 2 -H 'Cookie: type=insider' http://podinfo.test:9898/"}
"""

# docs/gitbook/tutorials/kubernetes-blue-green.md
KUBERNETES_BLUE_GREEN = """apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    portDiscovery: true
  analysis:
    interval: 30s
    threshold: 2
    iterations: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
        interval: 1m
      - name: request-duration
        thresholdRange: {max: 500}
        interval: 30s
    webhooks:
      - name: smoke-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
        timeout: 15s
        metadata: {type: bash, cmd: "curl -sd 'anon' http://podinfo-canary.test:9898/token | grep token"}
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 5s
        metadata: {type: cmd, cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"}
"""

# docs/gitbook/tutorials/linkerd-progressive-delivery.md: MetricTemplates with templateVariables
LINKERD = """apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: success-rate, namespace: test}
spec:
  provider: {type: prometheus, address: "http://prometheus.linkerd-viz:9090"}
  query: |
    sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",
      classification!="failure", direction="{{ variables.direction }}"}[{{ interval }}]))
    /
    sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",
      direction="{{ variables.direction }}"}[{{ interval }}]))
    * 100
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: latency, namespace: test}
spec:
  provider: {type: prometheus, address: "http://prometheus.linkerd-viz:9090"}
  query: |
    histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}",
      deployment=~"{{ target }}", direction="{{ variables.direction }}"}[{{ interval }}])) by (le))
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    gatewayRefs:
      - {name: podinfo, namespace: test, group: core, kind: Service, port: 9898}
  analysis:
    interval: 30s
    threshold: 5
    maxWeight: 50
    stepWeight: 5
    metrics:
    - name: success-rate
      templateRef: {name: success-rate, namespace: test}
      thresholdRange: {min: 99}
      interval: 1m
      templateVariables: {direction: inbound}
    - name: latency
      templateRef: {name: latency, namespace: test}
      thresholdRange: {max: 500}
      interval: 30s
      templateVariables: {direction: inbound}
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
        timeout: 30s
        metadata: {type: bash, cmd: "curl -sd 'test' http://podinfo-canary.test:9898/token | grep token"}
      - name: load-test
        type: rollout
        url: http://flagger-loadtester.test/
        metadata: {cmd: "hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/"}
"""

# docs/gitbook/tutorials/gatewayapi-progressive-delivery.md / gatewayapi-ab-testing.md
GATEWAY_API = """apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    hosts: [www.example.com]
    gatewayRefs:
      - {name: gateway, namespace: istio-ingress}
  analysis:
    interval: 1m
    threshold: 5
{analysis}
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 1m
"""
GATEWAY_PROGRESSIVE = "    maxWeight: 50\n    stepWeight: 10\n"
GATEWAY_AB = """    iterations: 10
    match:
      - headers:
        - {name: x-canary, value: insider}
"""


def load(tmp_path: Path, text: str, overrides: list[str] | None = None, name: str = "podinfo.yaml"):  # noqa: ANN201
    f = tmp_path / name
    f.write_text(DEPLOYMENT + text)
    scenario = scenario_from_manifests([str(f)], overrides=overrides or [])
    return scenario, plan_from_manifests([str(f)], scenario)


def warned(plan, path: str) -> list[str]:  # noqa: ANN001
    return [w for w in plan.warnings if f": {path}: " in w]


def analyses(plan) -> list[int | None]:  # noqa: ANN001
    return [s.analysis.count for s in plan.steps if isinstance(s, Analyze)]


def measures(rec) -> list[dict]:  # noqa: ANN001
    return [d for d in rec.decisions if d["kind"] == "measure"]


def first(rec, kind: str, prefix: str = "") -> dict:  # noqa: ANN001
    return next(s for s in rec.steps if s["kind"] == kind and s["describe"].startswith(prefix))


def decided(rec, kind: str) -> float:  # noqa: ANN001
    return next(d["at"] for d in rec.decisions if d["kind"] == kind)


GATES = """      - name: {name}
        type: {kind}
        url: http://flagger-loadtester.test/gate/check
"""


def with_hook(text: str, kind: str, name: str = "gate") -> str:
    return text.replace("    webhooks:\n", "    webhooks:\n" + GATES.format(name=name, kind=kind))
