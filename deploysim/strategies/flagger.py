"""Flagger's ``Canary`` as a plan: its weight progression, its ticks and its failed-checks rule.

Flagger advances a canary on a timer, one tick every ``analysis.interval``
(``advanceCanary`` in ``pkg/controller/scheduler.go``, fluxcd/flagger). Each tick reads the
status, does one thing and returns:

- tick 0 (``checkCanaryStatus``): a new revision is seen; ``confirm-rollout`` gates are asked,
  the canary Deployment is scaled up (to full size), the phase becomes Progressing;
- tick 1: no traffic yet, so no metrics (``canaryWeight == 0 && Iterations == 0``):
  pre-rollout hooks, then the strategy's first move (the first weight, or iteration 1);
- each later tick first compares ``failedChecks`` with ``threshold``: at or above it the
  canary is rolled back (100% to the primary, canary scaled to zero). Otherwise the checks
  run over the last interval: a failure adds one to ``failedChecks`` and returns (the weight
  or iteration stays), a pass advances. ``failedChecks`` never resets during a run.

So the check that reaches ``threshold`` rolls the canary back at the *next* tick: time to
detect is the failing tick plus one interval, ``interval × (threshold + 1)`` after the first
request for a canary failing from its first check (the docs' ``interval × threshold`` counts
the failing checks only). The plan says so with ``AnalysisSpec.abort_delay = interval``, and
``measure_at_start = False``: Flagger's first check is one tick after the traffic moved.

Which strategy runs is chosen in ``advanceCanary`` (:func:`flagger_strategy`): A/B testing
(``match`` and ``iterations``, ``runAB``), blue/green (``iterations``, ``runBlueGreen``; the
kubernetes provider always, with 10 iterations when none are set), or the progressive canary
(``stepWeight(s)``, ``runCanary``; ``match`` with ``iterations: 0`` is one too). Promotion
follows the same ticks whatever the strategy (:func:`success_tick`): at the last analysing
tick ``Promote`` copies the canary's template to the primary (phase Promoting); the next tick
waits while ``IsPrimaryReady`` sees the primary's rolling update under way, then routes traffic
back to the primary (``stepWeightPromotion`` per tick, or all at once; the kubernetes provider
has nothing to route) and sets Finalising; the tick after scales the canary to zero (Succeeded).

The plan says this in the shared vocabulary: ``SetCanaryScale(100)`` (full-size canary) or
``ScaleCandidate``, ``Pause(interval, tick=interval)`` for tick 1, an ``Analyze`` that needs one passing
measurement per weight (``count_successes``) or ``iterations`` of them, whose failed checks
come out of one budget shared over the rollout (``failure_budget``, limit ``threshold - 1``),
and the promotion ticks. ``Promote`` is ``PromotePrimary`` in every strategy: the primary
rolls to the new version within its maxSurge/maxUnavailable while the routes stay as they
are (:mod:`deploysim.rules.primary`), and the step ends at the first tick the primary is
ready, as ``IsPrimaryReady`` holds it; a slow roll takes more ticks. Users on the primary
meet the new version as its pods roll: all of them with the kubernetes provider and in A/B
testing (the matched users stay on the canary), none with a mesh's blue/green, which has
routed them all to the canary first.

Flagger acts only at its ticks, so the plan keeps its timer (``Pause(..., tick=interval)``,
ticks counted from the rollout's start, the tick that saw the new revision): tick 1 is the
first tick after the scale-up at which ``IsCanaryReady`` holds (a canary slower than an
interval starts its analysis at a later tick, not one interval after it is ready), and a
``confirm-*`` gate approved between ticks is acted on at the next tick.

The ``Canary`` manifest itself is read by :mod:`deploysim.manifests.flagger`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from deploysim import plan as steps
from deploysim.analysis.metrics import MetricDef
from deploysim.plan import AnalysisSpec, Check, Plan
from deploysim.rules.deployment import (
    DEFAULT_MAX_SURGE,
    DEFAULT_MAX_UNAVAILABLE,
    DEFAULT_MIN_READY_SECONDS,
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
)

TOTAL_WEIGHT = 100
CANARY, AB, BLUE_GREEN = "canary", "ab", "blue-green"  # Flagger's strategies, as advanceCanary picks them
DEFAULT_ITERATIONS_KUBERNETES = 10
BUDGET = "flagger"  # the failed-checks budget every analysis of one Flagger canary shares


def max_weight(max_weight_: int = 0, step_weights: Sequence[int] = ()) -> int:
    """Flagger's maxWeight: the last of stepWeights (at most 100), else maxWeight, else 100."""
    if step_weights:
        return min(TOTAL_WEIGHT, step_weights[-1])
    return max_weight_ if max_weight_ > 0 else TOTAL_WEIGHT


def next_step_weight(weight: int, step_weight: int = 0, step_weights: Sequence[int] = ()) -> int:
    """How much Flagger adds to the canary weight at the next passing tick.

    ``stepWeight`` wins when set; with ``stepWeights`` the step leads to the next listed
    weight (never past 100). From 20 with stepWeights [10, 20, 50]: 30.
    """
    if step_weight > 0 or not step_weights:
        return step_weight
    room = TOTAL_WEIGHT - weight
    if room == 0:
        return 1  # at 100 any step promotes
    if weight == 0:
        return min(room, step_weights[0])
    for here, there in zip(step_weights, step_weights[1:], strict=False):
        if here == weight:
            return min(room, there - weight)
    return room


def flagger_weights(max_weight_: int = 0, step_weight: int = 0, step_weights: Sequence[int] = ()) -> list[int]:
    """The canary weights Flagger sets, in order, before it promotes.

    The weight grows while it is below maxWeight, so a step can overshoot it:

    >>> flagger_weights(50, 20)
    [20, 40, 60]
    >>> flagger_weights(100, 30)
    [30, 60, 90, 100]
    >>> flagger_weights(step_weights=[1, 5, 10, 20, 50])
    [1, 5, 10, 20, 50]
    >>> flagger_weights(50, 10)
    [10, 20, 30, 40, 50]
    """
    top = max_weight(max_weight_, step_weights)
    weights: list[int] = []
    weight = 0
    while weight < top:
        step = next_step_weight(weight, step_weight, step_weights)
        if step <= 0:
            raise ValueError("the canary weight never grows: set stepWeight or stepWeights")
        weight = min(weight + step, TOTAL_WEIGHT)
        weights.append(weight)
    return weights


def promotion_ticks(last_weight: int, step_weight_promotion: int) -> int:
    """Ticks from promotion to Succeeded: the traffic shift back to the primary
    (``ceil(weight / stepWeightPromotion)`` ticks, one if unset; ``runPromotionTrafficShift``)
    and the final scale-down (phase Finalising).

    >>> promotion_ticks(60, 0), promotion_ticks(50, 20), promotion_ticks(100, 30)
    (2, 4, 5)
    """
    shift = 1 if step_weight_promotion <= 0 else math.ceil(last_weight / step_weight_promotion)
    return shift + 1


def flagger_strategy(iterations: int, match: bool = False, kubernetes: bool = False) -> tuple[str, int]:
    """The strategy Flagger runs and its iterations, in ``advanceCanary``'s order: the
    kubernetes provider drops ``match`` ("A/B testing is not supported") and sets 10 iterations
    when fewer than one is set; then ``match`` with iterations is A/B (``runAB``), iterations
    alone blue/green (``runBlueGreen``), and anything else the progressive canary
    (``runCanary``), ``match`` with ``iterations: 0`` included.

    >>> flagger_strategy(10, match=True), flagger_strategy(0, match=True), flagger_strategy(5)
    (('ab', 10), ('canary', 0), ('blue-green', 5))
    >>> flagger_strategy(0, kubernetes=True), flagger_strategy(3, match=True, kubernetes=True)
    (('blue-green', 10), ('blue-green', 3))
    """
    if kubernetes:
        return BLUE_GREEN, iterations if iterations >= 1 else DEFAULT_ITERATIONS_KUBERNETES
    if iterations > 0:
        return (AB if match else BLUE_GREEN), iterations
    return CANARY, 0


def iteration_analyses(strategy: str, iterations: int) -> int:
    """Analyses a healthy A/B or blue/green canary runs. ``runAB`` promotes at the tick whose
    check finds ``status.iterations == iterations``: ``iterations`` analyses (ticks 2 to
    ``iterations + 1``). ``runBlueGreen`` at that tick routes all traffic to the canary and
    counts one more iteration, and promotes at the next tick, after one more analysis.

    >>> iteration_analyses("ab", 10), iteration_analyses("blue-green", 10)
    (10, 11)
    """
    return iterations + (1 if strategy == BLUE_GREEN else 0)


def success_tick(strategy: str, *, weights: Sequence[int] = (), iterations: int = 0,
                 step_weight_promotion: int = 0, kubernetes: bool = False) -> int:
    """The tick at which a healthy canary is Succeeded, tick 0 being the one that saw the new
    revision, when the primary's rolling update ends within the interval after ``Promote``.

    Progressive, ``n`` weights: ticks 1 to ``n`` set them, tick ``n + 1`` passes the last check
    and promotes, then :func:`promotion_ticks`. A/B and mesh blue/green shift back from the
    canary's 100% (``GetRoutes`` reads the route that holds the canary); the kubernetes
    provider has no traffic to shift and goes straight to Finalising.

    >>> success_tick("canary", weights=[10, 20, 30, 40, 50])  # istio-progressive-delivery
    8
    >>> success_tick("ab", iterations=10), success_tick("blue-green", iterations=10, kubernetes=True)
    (13, 14)
    >>> success_tick("canary", weights=[25, 50], step_weight_promotion=20)  # 50% back in 3 ticks
    7
    >>> success_tick("ab", iterations=2, step_weight_promotion=50)  # 100% back in 2 ticks
    6
    """
    if strategy == CANARY:
        return len(weights) + 1 + promotion_ticks(weights[-1] if weights else TOTAL_WEIGHT, step_weight_promotion)
    promote = 1 + iteration_analyses(strategy, iterations)
    if kubernetes:
        return promote + 2
    return promote + promotion_ticks(TOTAL_WEIGHT, step_weight_promotion)


def flagger_plan(
    replicas: int,
    *,
    interval: float,
    threshold: int,
    weights: Sequence[int] = (),
    iterations: int = 0,
    step_weight_promotion: int = 0,
    checks: Sequence[Check] = (),
    not_simulated: Sequence[str] = (),
    metrics: Sequence[MetricDef] = (),
    foreign_metrics: Sequence[str] = (),
    kubernetes: bool = False,
    ab: bool = False,
    gates: Sequence[str] = (),
    name: str = "canary",
    judge: str = "threshold",
    progress_deadline_seconds: float = DEFAULT_PROGRESS_DEADLINE_SECONDS,
    min_ready_seconds: float = DEFAULT_MIN_READY_SECONDS,
    max_surge: int | str = DEFAULT_MAX_SURGE,
    max_unavailable: int | str = DEFAULT_MAX_UNAVAILABLE,
    skip_analysis: bool = False,
) -> Plan:
    """The plan for one Flagger canary: progressive weights, or ``iterations`` of blue/green
    (or of A/B testing, ``ab``: ``match`` with iterations).

    >>> p = flagger_plan(10, interval=60, threshold=2, weights=[20, 40, 60])
    >>> [s.describe() for s in p.steps][:4]
    ['scale candidate to 100% of replicas', 'pause until the next tick (one every 1m)', 'set weight to 20%', "threshold analysis 'canary at 20%' until 1 pass every 1m on no checks, rollback at 2 failed checks over the rollout"]
    >>> a = p.steps[3].analysis
    >>> a.measure_at_start, a.abort_delay  # checked at the next tick; rolled back at the one after
    (False, 60)
    >>> [s.kind for s in flagger_plan(10, interval=60, threshold=2, iterations=3, ab=True).steps]
    ['scale_candidate', 'pause', 'analyze', 'promote_primary', 'pause', 'scale_candidate']
    """
    common: dict[str, Any] = dict(replicas=replicas, progress_deadline_seconds=progress_deadline_seconds,
                                  progress_deadline_abort=True, min_ready_seconds=min_ready_seconds)
    if skip_analysis:
        # promoted at tick 1 without analysis: the primary rolls to the new template
        return Plan(strategy="rolling", steps=(steps.Pause(interval, tick=interval), steps.RollingUpdate()),
                    routing="replica_ratio",
                    max_surge=max_surge, max_unavailable=max_unavailable, **common)
    spec = AnalysisSpec(name=name, interval=interval, count=1, failure_limit=max(threshold, 1) - 1,
                        consecutive_error_limit=max(threshold, 1), judge=judge, checks=tuple(checks),
                        not_simulated=tuple(not_simulated), count_successes=True, failure_budget=BUDGET,
                        metrics=tuple(metrics), foreign_metrics=tuple(foreign_metrics),
                        measure_at_start=False, abort_delay=interval)
    rollout = _gate(interval) if "confirm-rollout" in gates else []
    if iterations > 0:
        strategy = BLUE_GREEN if kubernetes or not ab else AB
        sequence = _iteration_steps(spec, replicas, interval, iterations, strategy, kubernetes,
                                    step_weight_promotion, "confirm-promotion" in gates)
        return Plan(strategy="blue-green", steps=(*rollout, *sequence), routing="active", scale_down_delay=interval,
                    max_surge=max_surge, max_unavailable=max_unavailable, **common)
    sequence = _progressive_steps(spec, replicas, interval, weights, step_weight_promotion, gates)
    return Plan(strategy="canary", steps=(*rollout, *sequence), routing="router", max_surge=max_surge,
                max_unavailable=max_unavailable, **common)


def _gate(interval: float) -> list[steps.Step]:
    """A ``confirm-*`` webhook: a manual gate, acted on at the first tick after its approval."""
    return [steps.Pause(None), steps.Pause(0.0, tick=interval)]


def _promotion(interval: float, replicas: int, ticks: int) -> list[steps.Step]:
    """``Promote``, then the ticks to Succeeded: the primary rolls to the new template; at the
    first tick it is ready (``IsPrimaryReady``) traffic goes back to it
    (``runPromotionTrafficShift``, ``ticks - 1`` ticks with Finalising), then the canary is
    scaled to zero."""
    return [steps.PromotePrimary(interval), steps.Pause(interval * (ticks - 1)), steps.ScaleCandidate(replicas)]


def _progressive_steps(spec: AnalysisSpec, replicas: int, interval: float, weights: Sequence[int],
                       step_weight_promotion: int, gates: Sequence[str]) -> list[steps.Step]:
    """``runCanary``'s ticks. ``confirm-traffic-increase`` is asked before every move while
    Progressing, the promoting one too (``nextStepWeight`` stays above 0 at maxWeight);
    ``confirm-promotion`` just before ``Promote``."""
    gate = _gate(interval) if "confirm-traffic-increase" in gates else []
    sequence: list[steps.Step] = [steps.SetCanaryScale(100), steps.Pause(interval, tick=interval)]
    for weight in weights:
        sequence += [*gate, steps.SetWeight(weight), steps.Analyze(replace(spec, name=f"{spec.name} at {weight}%"))]
    sequence += gate
    if "confirm-promotion" in gates:
        sequence += _gate(interval)
    ticks = promotion_ticks(weights[-1] if weights else TOTAL_WEIGHT, step_weight_promotion)
    return [*sequence, *_promotion(interval, replicas, ticks)]


def _iteration_steps(spec: AnalysisSpec, replicas: int, interval: float, iterations: int, strategy: str,
                     kubernetes: bool, step_weight_promotion: int, confirm_promotion: bool) -> list[steps.Step]:
    """``runAB`` / ``runBlueGreen``'s ticks: tick 1 counts iteration 1 without a check, each
    later tick checks and counts one more. The candidate sees the test traffic only until
    ``Promote`` (A/B: the matched users; blue/green: the load tests, or the mirror) or the switch.

    - A/B: ``iterations`` checks, then ``Promote``; the users on the primary meet the new
      version as it rolls, the matched users are routed back to it at the first tick it is
      ready, then Finalising.
    - blue/green with a mesh: ``iterations`` checks, then all traffic to the canary (the switch),
      one more check on it, ``Promote`` (the primary rolls with no users), back to the primary,
      Finalising.
    - blue/green with the kubernetes provider: ``iterations + 1`` checks on test traffic, then
      ``Promote``: the Service already selects the primary, whose users meet the new version as
      it rolls; Finalising at the first tick it is ready (nothing to route).

    ``confirm-promotion`` is asked at the tick after the ``iterations``-th check, in all three.
    """
    gate = _gate(interval) if confirm_promotion else []
    checks = replace(spec, name=f"{spec.name} iterations", count=iterations)
    after = replace(spec, name=f"{spec.name} after switch" if not kubernetes else f"{spec.name} promoting check")
    sequence: list[steps.Step] = [steps.ScaleCandidate(replicas), steps.Pause(interval, tick=interval)]
    if strategy == AB:
        sequence += [steps.Analyze(checks), *gate]
    elif not kubernetes:
        sequence += [steps.Analyze(checks), *gate, steps.SwitchTraffic(), steps.Analyze(after)]
    elif gate:
        sequence += [steps.Analyze(checks), *gate, steps.Analyze(after)]
    else:
        sequence.append(steps.Analyze(replace(checks, count=iteration_analyses(strategy, iterations))))
    ticks = 2 if kubernetes else promotion_ticks(TOTAL_WEIGHT, step_weight_promotion)
    return [*sequence, *_promotion(interval, replicas, ticks)]
