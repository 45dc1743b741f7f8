"""Flagger's ``Canary`` as a plan: its weight progression, its ticks and its failed-checks rule.

Flagger advances a canary on a timer, one tick every ``analysis.interval``
(``pkg/controller/scheduler.go``):

- tick 0: a new revision is seen; the canary Deployment is scaled up (to full size);
- tick 1: no traffic yet, so no metrics: pre-rollout checks, then the first weight;
- each later tick: the metric checks run over the last interval. A failure adds one to
  ``failedChecks`` and halts advancement (the weight stays); a pass advances the weight by
  ``stepWeight`` (or to the next of ``stepWeights``) while it is below ``maxWeight``, and at
  or past it promotes. ``failedChecks`` never resets during a run; reaching ``threshold``
  rolls back (100% to the primary, canary scaled to zero);
- promotion: the primary takes the canary's template, traffic goes back to the primary
  (``stepWeightPromotion`` per tick, or all at once), and the canary is scaled to zero.

So a healthy canary promotes in about ``interval × (steps + 3)`` (the documented
``interval × maxWeight / stepWeight``, plus the first tick and the two ticks of
promotion), and a failing one rolls back ``interval × threshold`` after its first request.

The plan says this in the shared vocabulary: ``SetCanaryScale(100)`` (full-size canary),
``Pause(interval)`` for tick 1, then per weight ``SetWeight(w)`` and an ``Analyze`` that
needs one passing measurement (``count_successes``), whose failed checks come out of one
budget shared over the rollout (``failure_budget``, limit ``threshold - 1``).

Flagger checks the threshold at the start of the tick after the failure that reaches it,
so a real rollback comes about one interval later than here; the documented
``interval × threshold`` is what the rehearsal reproduces.

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
    (``ceil(weight / stepWeightPromotion)`` ticks, one if unset) and the final scale-down.

    >>> promotion_ticks(60, 0), promotion_ticks(50, 20)
    (2, 4)
    """
    shift = 1 if step_weight_promotion <= 0 else math.ceil(last_weight / step_weight_promotion)
    return shift + 1


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
    gates: Sequence[str] = (),
    name: str = "canary",
    judge: str = "threshold",
    progress_deadline_seconds: float = DEFAULT_PROGRESS_DEADLINE_SECONDS,
    min_ready_seconds: float = DEFAULT_MIN_READY_SECONDS,
    max_surge: int | str = DEFAULT_MAX_SURGE,
    max_unavailable: int | str = DEFAULT_MAX_UNAVAILABLE,
    skip_analysis: bool = False,
) -> Plan:
    """The plan for one Flagger canary: progressive weights, or blue/green ``iterations``.

    >>> p = flagger_plan(10, interval=60, threshold=2, weights=[20, 40, 60])
    >>> [s.describe() for s in p.steps][:4]
    ['scale candidate to 100% of replicas', 'pause 1m', 'set weight to 20%', "threshold analysis 'canary at 20%' until 1 pass every 1m on no checks, rollback at 2 failed checks over the rollout"]
    """
    common: dict[str, Any] = dict(replicas=replicas, progress_deadline_seconds=progress_deadline_seconds,
                                  progress_deadline_abort=True, min_ready_seconds=min_ready_seconds)
    if skip_analysis:
        # promoted at tick 1 without analysis: the primary rolls to the new template
        return Plan(strategy="rolling", steps=(steps.Pause(interval), steps.RollingUpdate()), routing="replica_ratio",
                    max_surge=max_surge, max_unavailable=max_unavailable, **common)
    spec = AnalysisSpec(name=name, interval=interval, count=1, failure_limit=max(threshold, 1) - 1,
                        consecutive_error_limit=max(threshold, 1), judge=judge, checks=tuple(checks),
                        not_simulated=tuple(not_simulated), count_successes=True, failure_budget=BUDGET,
                        metrics=tuple(metrics), foreign_metrics=tuple(foreign_metrics))
    sequence: list[steps.Step] = []
    if "confirm-rollout" in gates:
        sequence.append(steps.Pause(None))
    if iterations > 0:
        sequence += [steps.ScaleCandidate(replicas), steps.Pause(interval)]
        if kubernetes:
            # no traffic shifting: every iteration and the promoting check see test traffic only
            sequence.append(steps.Analyze(replace(spec, name=f"{name} iterations", count=iterations + 1)))
            if "confirm-promotion" in gates:
                sequence.append(steps.Pause(None))
            sequence.append(steps.SwitchTraffic())  # the primary, now running the new template
        else:
            sequence.append(steps.Analyze(replace(spec, name=f"{name} iterations", count=iterations)))
            if "confirm-promotion" in gates:
                sequence.append(steps.Pause(None))  # Flagger asks before it routes all traffic to the canary
            sequence.append(steps.SwitchTraffic())
            sequence.append(steps.Analyze(replace(spec, name=f"{name} after switch")))
        sequence += [steps.Pause(interval), steps.ScaleDownStable(interval)]
        return Plan(strategy="blue-green", steps=tuple(sequence), routing="active", scale_down_delay=interval,
                    **common)
    sequence += [steps.SetCanaryScale(100), steps.Pause(interval)]
    for weight in weights:
        if "confirm-traffic-increase" in gates:
            sequence.append(steps.Pause(None))
        sequence.append(steps.SetWeight(weight))
        sequence.append(steps.Analyze(replace(spec, name=f"{name} at {weight}%")))
    if "confirm-promotion" in gates:
        sequence.append(steps.Pause(None))
    ticks = promotion_ticks(weights[-1] if weights else TOTAL_WEIGHT, step_weight_promotion)
    sequence += [steps.Pause(interval), steps.SetWeight(TOTAL_WEIGHT), steps.Pause(interval * (ticks - 1))]
    return Plan(strategy="canary", steps=tuple(sequence), routing="router", max_surge=max_surge,
                max_unavailable=max_unavailable, **common)
