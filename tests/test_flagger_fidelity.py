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
from flagger_canaries import (
    GATEWAY_AB,
    GATEWAY_API,
    GATEWAY_PROGRESSIVE,
    HEALTHY,
    ISTIO_AB,
    ISTIO_PROGRESSIVE,
    KUBERNETES_BLUE_GREEN,
    LINKERD,
    analyses,
    first,
    load,
    measures,
    warned,
    with_hook,
)

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
