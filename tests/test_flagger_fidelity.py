"""Flagger as its scheduler runs it (fluxcd/flagger ``pkg/controller/scheduler.go``).

- ``advanceCanary`` picks the strategy: A/B (``match`` + ``iterations``, ``runAB``), blue/green
  (``iterations``, ``runBlueGreen``; always with the kubernetes provider), or the progressive
  canary (``runCanary``; ``match`` with ``iterations: 0`` is one);
- ``runAB`` runs exactly ``iterations`` analyses, ``runBlueGreen`` one more after routing all
  traffic to the canary;
- the check that reaches ``threshold`` rolls back at the next tick (``failedChecks >=
  threshold`` is compared at the start of a tick), so time to detect is the failing tick plus
  one interval;
- promotion: ``Promote`` at the last analysing tick, traffic back to the primary at the next
  (Promoting), the canary scaled to zero at the one after (Finalising -> Succeeded);
- what the rehearsal does not simulate (``service.retries``, ``service.timeout``, ``match``,
  ``confirm-*`` gates) is named with its path.

Canaries are written in the shapes of Flagger's tutorials (docs/gitbook/tutorials/*).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.manifests import plan_from_manifests, scenario_from_manifests
from deploysim.plan import (
    Analyze,
    Pause,
    PromotePrimary,
    ScaleCandidate,
    SetWeight,
    SwitchTraffic,
)
from deploysim.sim import rehearse
from deploysim.strategies.flagger import (
    flagger_strategy,
    iteration_analyses,
    promotion_ticks,
    success_tick,
)

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


# --- the strategy advanceCanary picks, the analyses and ticks it runs ---------------------------


@pytest.mark.parametrize(
    ("iterations", "match", "kubernetes", "picked"),
    [
        (10, True, False, ("ab", 10)),  # istio-ab-testing
        (0, True, False, ("canary", 0)),  # match with iterations 0: progressive on the matched requests
        (10, False, False, ("blue-green", 10)),  # mesh blue/green (istio mirroring)
        (0, False, False, ("canary", 0)),
        (10, False, True, ("blue-green", 10)),  # kubernetes-blue-green
        (0, False, True, ("blue-green", 10)),  # "Setting canaryAnalysis.iterations: 10"
        (3, True, True, ("blue-green", 3)),  # "A/B testing is not supported when using the kubernetes provider"
        (0, True, True, ("blue-green", 10)),
    ],
)
def test_advance_canary_picks_the_strategy(iterations: int, match: bool, kubernetes: bool,
                                           picked: tuple[str, int]) -> None:
    assert flagger_strategy(iterations, match=match, kubernetes=kubernetes) == picked


@pytest.mark.parametrize(("strategy", "iterations", "count"), [("ab", 10, 10), ("ab", 1, 1), ("blue-green", 10, 11),
                                                               ("blue-green", 5, 6)])
def test_run_ab_checks_iterations_times_run_blue_green_once_more(strategy: str, iterations: int, count: int) -> None:
    assert iteration_analyses(strategy, iterations) == count


@pytest.mark.parametrize(
    ("strategy", "kwargs", "tick"),
    [
        # tick 1 first weight, ticks 2-5 the next four, tick 6 promotes, 7 back to primary, 8 Succeeded
        ("canary", dict(weights=[10, 20, 30, 40, 50]), 8),
        ("canary", dict(weights=[5, 10, 25, 50]), 7),
        ("canary", dict(weights=[10, 20, 30, 40, 50], step_weight_promotion=20), 10),  # 50% back in 3 ticks
        ("ab", dict(iterations=10), 13),  # iteration 1 at tick 1, checks at 2-11, promote at 11
        ("ab", dict(iterations=10, step_weight_promotion=25), 16),  # 100% back in 4 ticks
        ("blue-green", dict(iterations=10), 14),  # all traffic to the canary at 11, promote at 12
        ("blue-green", dict(iterations=10, kubernetes=True), 14),
        ("blue-green", dict(iterations=10, kubernetes=True, step_weight_promotion=25), 14),  # nothing to shift
    ],
)
def test_the_tick_a_healthy_canary_succeeds(strategy: str, kwargs: dict, tick: int) -> None:
    assert success_tick(strategy, **kwargs) == tick


@pytest.mark.parametrize(("weight", "step", "ticks"), [(50, 0, 2), (50, 20, 4), (100, 25, 5), (100, 100, 2),
                                                       (5, 10, 2)])
def test_run_promotion_traffic_shift_ticks(weight: int, step: int, ticks: int) -> None:
    assert promotion_ticks(weight, step) == ticks


# --- the plans read from the tutorials' canaries ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "strategy", "kinds", "counts"),
    [
        (ISTIO_PROGRESSIVE, "canary", None, [1] * 5),
        (ISTIO_AB, "blue-green", ["scale_candidate", "pause", "analyze", "promote_primary", "pause",
                                  "scale_candidate"], [10]),
        (KUBERNETES_BLUE_GREEN, "blue-green", ["scale_candidate", "pause", "analyze", "promote_primary", "pause",
                                               "scale_candidate"], [11]),
        (ISTIO_AB.replace("    iterations: 10\n", "    iterations: 10\n    mirror: true\n").replace(
            "    match:\n      - headers:\n          user-agent: {regex: \".*Firefox.*\"}\n      - headers:\n"
            "          cookie: {regex: \"^(.*?;)?(type=insider)(;.*)?$\"}\n", ""),
         "blue-green", ["scale_candidate", "pause", "analyze", "switch_traffic", "analyze", "promote_primary",
                        "pause", "scale_candidate"], [10, 1]),  # istio blue/green with traffic mirroring
        (LINKERD, "canary", None, [1] * 10),
        (GATEWAY_API.replace("{analysis}\n", GATEWAY_PROGRESSIVE), "canary", None, [1] * 5),
        (GATEWAY_API.replace("{analysis}\n", GATEWAY_AB), "blue-green", ["scale_candidate", "pause", "analyze",
                                                                 "promote_primary", "pause", "scale_candidate"],
         [10]),
    ],
    ids=["istio-progressive", "istio-ab", "kubernetes-blue-green", "istio-mirror", "linkerd", "gatewayapi",
         "gatewayapi-ab"],
)
def test_tutorial_canaries_compile_to_the_ticks_flagger_runs(tmp_path: Path, text: str, strategy: str,
                                                               kinds: list[str] | None, counts: list[int]) -> None:
    _, plan = load(tmp_path, text)
    assert plan.strategy == strategy
    if kinds is not None:
        assert [s.kind for s in plan.steps] == kinds
    assert analyses(plan) == counts
    specs = [s.analysis for s in plan.steps if isinstance(s, Analyze)]
    interval = specs[0].interval
    # every check one tick after the move it judges; a rollback at the tick after the failing one
    assert {(a.measure_at_start, a.abort_delay, a.failure_budget) for a in specs} == {(False, interval, "flagger")}


def test_istio_progressive_weights_and_promotion_ticks(tmp_path: Path) -> None:
    _, plan = load(tmp_path, ISTIO_PROGRESSIVE)
    assert [s.weight for s in plan.steps if isinstance(s, SetWeight)] == [10, 20, 30, 40, 50]
    # Promoting (the primary rolls; IsPrimaryReady at a tick), back to the primary, Finalising
    assert plan.steps[-3:] == (PromotePrimary(60.0), Pause(60.0), ScaleCandidate(plan.replicas))
    assert {a.analysis.failure_limit for a in plan.steps if isinstance(a, Analyze)} == {4}  # threshold 5


def test_ab_with_step_weight_promotion_shifts_back_from_the_whole_of_the_traffic(tmp_path: Path) -> None:
    _, plan = load(tmp_path, ISTIO_AB.replace("    iterations: 10\n", "    iterations: 10\n"
                                                                        "    stepWeightPromotion: 25\n"))
    # Promote, 100% back in 25% steps (the last with Finalising), then the canary to zero
    assert plan.steps[-3:] == (PromotePrimary(60.0), Pause(60.0 * 4), ScaleCandidate(plan.replicas))


def test_match_with_iterations_0_is_a_progressive_canary(tmp_path: Path) -> None:
    text = ISTIO_AB.replace("    iterations: 10\n", "    iterations: 0\n    maxWeight: 50\n    stepWeight: 25\n")
    _, plan = load(tmp_path, text)
    assert plan.strategy == "canary" and plan.routing == "router"
    assert [s.weight for s in plan.steps if isinstance(s, SetWeight)] == [25, 50]
    assert any(isinstance(s, PromotePrimary) for s in plan.steps)
    assert not any(isinstance(s, SwitchTraffic) for s in plan.steps)
    assert any("progressive canary on the requests that match" in w for w in warned(plan, "spec.analysis.match"))


def test_kubernetes_provider_drops_match_and_runs_blue_green(tmp_path: Path) -> None:
    text = ISTIO_AB.replace("spec:\n  targetRef", "spec:\n  provider: kubernetes\n  targetRef")
    _, plan = load(tmp_path, text)
    assert analyses(plan) == [11]  # runBlueGreen: iterations + the promoting check
    assert any("not supported with the kubernetes provider" in w for w in warned(plan, "spec.analysis.match"))


def test_ab_names_what_the_rehearsal_does_not_simulate(tmp_path: Path) -> None:
    text = ISTIO_AB.replace("    threshold: 2\n", "    threshold: 2\n    stepWeight: 10\n")
    _, plan = load(tmp_path, text)
    assert any("share of users matched is not simulated" in w for w in warned(plan, "spec.analysis.match"))
    assert any("not used: with iterations Flagger runs A/B testing" in w
               for w in warned(plan, "spec.analysis.stepWeight"))


# --- fields the rehearsal does not simulate, named by path ---------------------------------------


def test_service_retries_and_traffic_policy_are_named(tmp_path: Path) -> None:
    _, plan = load(tmp_path, ISTIO_PROGRESSIVE)
    assert any("3 attempts" in w and "does not retry" in w for w in warned(plan, "spec.service.retries"))
    assert any("outlier detection" in w for w in warned(plan, "spec.service.trafficPolicy"))
    for plumbing in ("port", "targetPort", "gateways", "hosts"):  # names and ports: nothing to simulate
        assert warned(plan, f"spec.service.{plumbing}") == []


@pytest.mark.parametrize(
    ("service", "path", "message"),
    [
        ("    timeout: 5s\n", "spec.service.timeout", "requests slower than 5s fail at the route"),
        ("    match:\n      - uri: {prefix: /api}\n", "spec.service.match", "takes only the requests that match"),
        ("    rewrite: {uri: /}\n", "spec.service.rewrite", "URI rewriting is not simulated"),
        ("    headers:\n      request:\n        add: {x-some-header: value}\n", "spec.service.headers",
         "header operations are not simulated"),
        ("    corsPolicy: {allowOrigins: [{exact: example.com}]}\n", "spec.service.corsPolicy",
         "CORS policy is not simulated"),
        ("    loadBalancer: round-robin\n", "spec.service.loadBalancer", "not simulated; the rehearsal ignores it"),
    ],
)
def test_service_fields_that_shape_requests_are_named(tmp_path: Path, service: str, path: str, message: str) -> None:
    text = KUBERNETES_BLUE_GREEN.replace("    portDiscovery: true\n", "    portDiscovery: true\n" + service)
    _, plan = load(tmp_path, text)
    assert any(message in w for w in warned(plan, path)), plan.warnings
    assert warned(plan, "spec.service.portDiscovery") == []


@pytest.mark.parametrize(
    ("field", "path", "message"),
    [
        ("    sessionAffinity: {cookieName: flagger-cookie, maxAge: 21600}\n", "spec.analysis.sessionAffinity",
         "sticky sessions are not simulated"),
        ("    canaryReadyThreshold: 50\n", "spec.analysis.canaryReadyThreshold", "with 50% of its pods available"),
        ("    primaryReadyThreshold: 80\n", "spec.analysis.primaryReadyThreshold", "with 80% of its pods available"),
        ("    mirror: true\n", "spec.analysis.mirror", "one tick before the first weight"),
    ],
)
def test_analysis_fields_not_simulated_are_named(tmp_path: Path, field: str, path: str, message: str) -> None:
    _, plan = load(tmp_path, ISTIO_PROGRESSIVE.replace("    threshold: 5\n", "    threshold: 5\n" + field))
    assert any(message in w for w in warned(plan, path)), plan.warnings


# --- confirm-* webhooks are gates ---------------------------------------------------------------

GATES = """      - name: {name}
        type: {kind}
        url: http://flagger-loadtester.test/gate/check
"""


def with_hook(text: str, kind: str, name: str = "gate") -> str:
    return text.replace("    webhooks:\n", "    webhooks:\n" + GATES.format(name=name, kind=kind))


@pytest.mark.parametrize(
    ("text", "kind", "gates_at"),
    [
        # before the canary is scaled up
        (ISTIO_PROGRESSIVE, "confirm-rollout", [0]),
        # before every weight, and before promotion (nextStepWeight > 0 at maxWeight too)
        (ISTIO_PROGRESSIVE, "confirm-traffic-increase", [2, 6, 10, 14, 18, 22]),
        (ISTIO_PROGRESSIVE, "confirm-promotion", [12]),
        # runAB asks after the last check, before Promote
        (ISTIO_AB, "confirm-promotion", [3]),
        # runBlueGreen asks after the iterations-th check: before the switch, or before the promoting check
        (ISTIO_AB.replace("    match:\n      - headers:\n          user-agent: {regex: \".*Firefox.*\"}\n"
                          "      - headers:\n          cookie: {regex: \"^(.*?;)?(type=insider)(;.*)?$\"}\n", ""),
         "confirm-promotion", [3]),
        (KUBERNETES_BLUE_GREEN, "confirm-promotion", [3]),
    ],
    ids=["rollout", "traffic-increase", "promotion", "ab-promotion", "mesh-bg-promotion", "k8s-bg-promotion"],
)
def test_confirm_webhooks_are_manual_gates_where_flagger_asks(tmp_path: Path, text: str, kind: str,
                                                              gates_at: list[int]) -> None:
    _, plan = load(tmp_path, with_hook(text, kind))
    assert [i for i, s in enumerate(plan.steps) if s == Pause(None)] == gates_at
    # each acted on at the first tick after its approval
    interval = next(a.analysis.interval for a in plan.steps if isinstance(a, Analyze))
    assert all(plan.steps[i + 1] == Pause(0.0, tick=interval) for i in gates_at)
    gate = warned(plan, "spec.analysis.webhooks[0]")
    assert len(gate) == 1 and f"'gate' ({kind}) is a manual gate" in gate[0] and "approve" in gate[0]


def test_kubernetes_blue_green_gate_splits_the_checks_where_flagger_asks(tmp_path: Path) -> None:
    _, plan = load(tmp_path, with_hook(KUBERNETES_BLUE_GREEN, "confirm-promotion"))
    assert [s.kind for s in plan.steps] == ["scale_candidate", "pause", "analyze", "pause", "pause", "analyze",
                                            "promote_primary", "pause", "scale_candidate"]
    assert analyses(plan) == [10, 1]


@pytest.mark.parametrize(("kind", "checks_while_waiting"), [("confirm-promotion", True),
                                                            ("confirm-traffic-increase", True),
                                                            ("confirm-rollout", False)])
def test_gates_say_whether_flagger_keeps_checking_while_they_wait(tmp_path: Path, kind: str,
                                                                 checks_while_waiting: bool) -> None:
    # the checks run before the gate is asked at a tick; confirm-rollout is asked before any traffic
    _, plan = load(tmp_path, with_hook(ISTIO_PROGRESSIVE, kind))
    note = warned(plan, "spec.analysis.webhooks[0]")[0]
    assert ("keeps running the metric checks while it waits" in note) is checks_while_waiting


def test_confirm_traffic_increase_is_never_asked_with_iterations(tmp_path: Path) -> None:
    _, plan = load(tmp_path, with_hook(ISTIO_AB, "confirm-traffic-increase"))
    assert Pause(None) not in plan.steps
    assert "is never called" in warned(plan, "spec.analysis.webhooks[0]")[0]


@pytest.mark.parametrize(("kind", "message"), [("rollback", "never asks for a rollback"),
                                               ("post-rollout", "after the rollout ends"),
                                               ("event", "only receives Flagger's events"),
                                               ("pre-rollout", "a failing one counts a failed check at every tick until it passes")])
def test_other_webhooks_are_named_as_not_simulated(tmp_path: Path, kind: str, message: str) -> None:
    _, plan = load(tmp_path, with_hook(ISTIO_PROGRESSIVE, kind, name="hook"))
    assert message in warned(plan, "spec.analysis.webhooks[0]")[0]
    assert Pause(None) not in plan.steps


def test_a_gate_waits_for_approval_and_a_closed_one_holds_the_rollout(tmp_path: Path) -> None:
    text = with_hook(ISTIO_AB.replace("    iterations: 10\n", "    iterations: 2\n"), "confirm-promotion")
    scenario, plan = load(tmp_path, text, overrides=[*HEALTHY, "approve=never"])
    assert rehearse(scenario, plan).summary["outcome"] == "paused"
    scenario, plan = load(tmp_path, text, overrides=[*HEALTHY, "approve=150s"])
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    checks_done = measures(rec)[-1]["at"]  # a tick; approved 150 s later, acted on at the next tick
    assert first(rec, "promote_primary")["start"] == pytest.approx(checks_done + 180.0)


# --- end to end: ticks, analyses and the rollback tick in the rehearsal -------------------------


def test_progressive_canary_ticks_end_to_end(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, ISTIO_PROGRESSIVE, overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    interval, weights = 60.0, [10, 20, 30, 40, 50]
    start = rec.steps[0]["start"]  # tick 0: the new revision is seen, the canary scaled up
    starts = [s["start"] for s in rec.steps if s["kind"] == "set_weight"]
    assert starts == pytest.approx([start + interval * (1 + i) for i in range(len(weights))])
    promote = first(rec, "promote_primary")  # Promote at tick 6, the primary ready at tick 7
    assert (promote["start"], promote["end"]) == pytest.approx((start + interval * 6, start + interval * 7))
    assert [d["at"] for d in measures(rec)] == pytest.approx([start + interval * (2 + i) for i in range(5)])
    assert decided(rec, "promote") == pytest.approx(start + interval * success_tick("canary", weights=weights))


@pytest.mark.parametrize(("threshold", "interval"), [(5, 60.0), (2, 60.0), (1, 30.0)])
def test_progressive_canary_rolls_back_at_the_tick_after_the_threshold(tmp_path: Path, threshold: int,
                                                                        interval: float) -> None:
    text = ISTIO_PROGRESSIVE.replace("    threshold: 5\n", f"    threshold: {threshold}\n").replace(
        "    interval: 1m\n    threshold", f"    interval: {interval:g}s\n    threshold")
    scenario, plan = load(tmp_path, text)  # the default candidate fails its checks
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    checks = measures(rec)
    assert len(checks) == threshold and all("Failed" in d["reason"] for d in checks)
    abort = decided(rec, "abort")
    assert abort - checks[-1]["at"] == pytest.approx(interval)  # k + 1: the tick after the failing one
    first_weight = first(rec, "set_weight")["start"]
    assert checks[0]["at"] - first_weight == pytest.approx(interval)
    # time to detect: the first request (tick 1) to the rollback (tick threshold + 2)
    assert rec.summary["time_to_detect_seconds"] == pytest.approx(interval * (threshold + 1), abs=1.0)
    assert [s["describe"] for s in rec.steps if s["kind"] == "set_weight"] == ["set weight to 10%"]


def test_ab_runs_exactly_iterations_analyses_end_to_end(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, ISTIO_AB, overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    interval, iterations = 60.0, 10
    start = rec.steps[0]["start"]  # tick 0
    checks = measures(rec)
    assert len(checks) == iterations
    assert [d["at"] for d in checks] == pytest.approx([start + interval * (2 + i) for i in range(iterations)])
    promote = first(rec, "promote_primary")
    assert promote["start"] == pytest.approx(start + interval * (iterations + 1))  # at the last check's tick
    assert decided(rec, "promote") == pytest.approx(start + interval * success_tick("ab", iterations=iterations))
    before = rec.timeline[rec.timeline["time"] <= promote["start"]]
    assert before["requests_candidate"].sum() == 0 and before["requests_preview"].sum() > 0
    assert_users_meet_the_new_version_as_the_primary_rolls(rec, promote, replicas=4)


def assert_users_meet_the_new_version_as_the_primary_rolls(rec, promote: dict, replicas: int) -> None:  # noqa: ANN001
    """During ``Promote`` the primary rolls within its surge (Kubernetes' default 25%/25% of 4:
    one pod more, one less), beside the canary's full-size set, and the users on the primary
    meet the new version in proportion to its new ready pods: some of them, then all."""
    t = rec.timeline
    during = t[(t["start"] >= promote["start"]) & (t["time"] <= promote["end"])]
    share = during["requests_candidate"] / (during["requests_candidate"] + during["requests_stable"])
    assert share.iloc[0] == 0.0 and ((share > 0.05) & (share < 0.95)).any()  # none, then some
    assert (share.diff().dropna() > -0.02).all()  # never back (requests are drawn: a bin's share is noisy)
    after = t[(t["start"] >= promote["end"]) & (t["requests_stable"] + t["requests_candidate"] > 0)]
    assert after["requests_stable"].sum() == 0  # then all
    primary_new = during["pods_candidate"] - replicas  # the canary keeps its pods
    primary_old = during["pods_stable"]
    assert (primary_new + primary_old).max() <= replicas + 1  # maxSurge 25% of 4
    assert (during["available_stable"] + during["available_candidate"] - replicas).min() >= replicas - 1
    assert (primary_old.iloc[-1], primary_new.iloc[-1]) == (0, replicas)


def test_ab_rolls_back_at_the_tick_after_the_threshold(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, ISTIO_AB)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    checks = measures(rec)
    assert len(checks) == 2  # threshold 2: "Halt ... Halt ... Rolling back" as the tutorial's events
    start = first(rec, "analyze")["start"]  # tick 1
    assert decided(rec, "abort") - start == pytest.approx(60.0 * 3)
    assert rec.timeline["requests_candidate"].sum() == 0


def test_kubernetes_blue_green_runs_iterations_plus_one_end_to_end(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, KUBERNETES_BLUE_GREEN, overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    interval, iterations = 30.0, 10
    start = rec.steps[0]["start"]  # tick 0
    assert len(measures(rec)) == iterations + 1
    promote = first(rec, "promote_primary")
    assert promote["start"] == pytest.approx(start + interval * (iterations + 2))
    # 4 pods at 25%/25% roll in more than one 30 s interval: IsPrimaryReady holds Promoting for
    # whole ticks, then Finalising (success_tick counts a roll within one interval)
    ticks = (promote["end"] - promote["start"]) / interval
    assert ticks == pytest.approx(round(ticks)) and round(ticks) >= 1
    tick = success_tick("blue-green", iterations=iterations, kubernetes=True) + round(ticks) - 1
    assert decided(rec, "promote") == pytest.approx(start + interval * tick)
    # the Service has selected the primary all along: its users meet the new version as it rolls
    assert_users_meet_the_new_version_as_the_primary_rolls(rec, promote, replicas=4)


def test_mesh_blue_green_promotes_the_primary_with_every_user_on_the_canary(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, ISTIO_AB.replace("    match:\n      - headers:\n          user-agent: "
                                                     "{regex: \".*Firefox.*\"}\n      - headers:\n          cookie: "
                                                     "{regex: \"^(.*?;)?(type=insider)(;.*)?$\"}\n", ""),
                          overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    switch, promote = first(rec, "switch_traffic"), first(rec, "promote_primary")
    assert promote["start"] - switch["start"] == pytest.approx(60.0)  # one check on all the traffic
    t = rec.timeline
    during = t[(t["start"] >= switch["start"]) & (t["time"] <= promote["end"])]
    assert during["requests_stable"].sum() == 0 and during["requests_candidate"].min() > 0
    assert during["pods_candidate"].max() == 8  # the canary's 4 and the primary's 4 new pods


@pytest.mark.parametrize(("startup", "tick1"), [("20s", 60.0), ("90s", 120.0), ("150s", 180.0)])
def test_tick_1_is_the_first_tick_at_which_the_canary_is_ready(tmp_path: Path, startup: str, tick1: float) -> None:
    # IsCanaryReady is asked at every tick and holds the tick until the canary is ready
    text = ISTIO_PROGRESSIVE.replace("progressDeadlineSeconds: 60", "progressDeadlineSeconds: 600")
    scenario, plan = load(tmp_path, text, overrides=[*HEALTHY, f"pod.startup={startup}", "pod.startup_jitter=0s"])
    rec = rehearse(scenario, plan)
    start = rec.steps[0]["start"]
    assert first(rec, "set_weight")["start"] - start == pytest.approx(tick1)
    assert all((d["at"] - start) % 60.0 == pytest.approx(0.0, abs=1e-6) for d in measures(rec))


def test_kubernetes_blue_green_rolls_back_at_the_tick_after_the_threshold(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, KUBERNETES_BLUE_GREEN)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    checks = measures(rec)
    assert len(checks) == 2
    assert decided(rec, "abort") - checks[-1]["at"] == pytest.approx(30.0)
    assert decided(rec, "abort") - first(rec, "analyze")["start"] == pytest.approx(30.0 * 3)


def test_match_with_iterations_0_moves_the_weights_end_to_end(tmp_path: Path) -> None:
    text = ISTIO_AB.replace("    iterations: 10\n", "    maxWeight: 50\n    stepWeight: 25\n")
    scenario, plan = load(tmp_path, text, overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    start = rec.steps[0]["start"]  # tick 0
    assert len(measures(rec)) == 2
    assert decided(rec, "promote") == pytest.approx(start + 60.0 * success_tick("canary", weights=[25, 50]))
