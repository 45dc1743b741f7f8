"""Expected rollout duration before anything runs: pauses, analyses and pod start-up waves.

An estimate for a healthy candidate; a sweep gives its spread. Pods start in waves: a
rolling update of R replicas that may add ``surge`` and lose ``unavailable`` pods at once
replaces them in about ceil(R / (surge + unavailable)) waves, each one pod start-up long; a
canary without a router moves its pods within the same limits, in the waves
:func:`~deploysim.rules.canary.basic_canary_waves` counts.
"""

from __future__ import annotations

import math
from typing import Any

from deploysim import plan as steps
from deploysim.plan import Plan
from deploysim.rules.canary import basic_canary_waves
from deploysim.rules.deployment import resolve_fenceposts
from deploysim.scenario import Scenario
from deploysim.strategies.canary import (
    canary_scale_replicas,
    is_basic_canary,
    planned_canary_replicas,
)


def expected_duration(plan: Plan, scenario: Scenario) -> dict[str, Any]:
    """Seconds expected in pauses, analyses and waiting for pods, and their total.

    A step waits for pods only when it adds candidate pods: a weight step after a held
    canary scale (Flagger's full-size canary) starts none. ``scale_down_delay_seconds``
    (blue-green's old colour kept for a rollback) is part of the total, not of the pauses,
    as in the record.
    """
    pod = scenario.pod
    wave = pod.startup + pod.startup_jitter / 2 + plan.min_ready_seconds
    paused = analysis = pods = delay = 0.0
    gates = 0
    candidate = 0
    weight = 0
    walk = _BasicCanaryWalk(plan) if is_basic_canary(plan) else None
    background_from = 0.0
    last_step_pods = 0.0
    for index, step in enumerate(plan.steps):
        pods_at_start = pods
        if isinstance(step, steps.Pause):
            if step.seconds is None:
                gates += 1
            elif step.tick is not None:
                # a timer's pause overlaps the pods the step before it waited for (Pause.ends_at)
                ticks = max(math.ceil(last_step_pods / step.tick - 1e-9), math.ceil(step.seconds / step.tick - 1e-9))
                paused += max(ticks * step.tick - last_step_pods, 0.0)
            else:
                paused += step.seconds
        elif isinstance(step, steps.Analyze):
            analysis += step.analysis.expected_seconds or 0.0
        elif walk is not None and isinstance(step, steps.SetWeight):
            weight = step.weight
            pods += walk.to(weight) * wave
            candidate = walk.candidate
        elif isinstance(step, steps.SetWeight | steps.SetCanaryScale | steps.ScaleCandidate):
            if isinstance(step, steps.SetWeight):
                weight = step.weight
                wanted = planned_canary_replicas(plan, step.weight, index)[0]
            elif isinstance(step, steps.SetCanaryScale):
                wanted = canary_scale_replicas(plan, step, weight, index)
            else:
                wanted = step.replicas
            if wanted > candidate:
                pods += wave
            candidate = wanted
        elif isinstance(step, steps.RollingUpdate):
            surge, unavailable = resolve_fenceposts(plan.max_surge, plan.max_unavailable, plan.replicas)
            pods += math.ceil(plan.replicas / max(surge + unavailable, 1)) * wave
            candidate = plan.replicas
        elif isinstance(step, steps.Recreate):
            pods += pod.termination + wave
            candidate = plan.replicas
        elif isinstance(step, steps.PromotePrimary):
            # the primary's roll, in whole ticks (IsPrimaryReady is asked at a tick)
            surge, unavailable = resolve_fenceposts(plan.max_surge, plan.max_unavailable, plan.replicas)
            roll = math.ceil(plan.replicas / max(surge + unavailable, 1)) * wave
            pods += max(1, math.ceil(roll / step.tick - 1e-9)) * step.tick
        elif isinstance(step, steps.ScaleDownStable):
            delay += step.delay
        last_step_pods = pods - pods_at_start
        if index + 1 == plan.background_start:
            background_from = paused + analysis + pods + delay
    if walk is not None:
        pods += walk.to(100) * wave  # the rollout ends at 100%, within the same limits
    elif plan.strategy == "canary" and candidate < plan.replicas:
        pods += wave  # the rollout ends by scaling the candidate to full size
    if plan.strategy == "canary" and plan.routing == "router":
        delay += plan.scale_down_delay  # the old stable kept after all traffic moved
    background = _background_wait(plan, paused + analysis + pods + delay - background_from)
    return {
        "total_seconds": paused + analysis + pods + delay + background,
        "paused_seconds": paused,
        "analysis_seconds": analysis,
        "pods_seconds": pods,
        "scale_down_delay_seconds": delay,
        "background_wait_seconds": background,
        "manual_gates": gates,
    }


def _background_wait(plan: Plan, ran: float) -> float:
    """Seconds the rollout waits after its steps for the background analysis, which ``ran``
    seconds beside them (:func:`~deploysim.analysis.run.background_done`): the rest of its
    count, or one window of the finished update when it runs indefinitely.

    >>> from deploysim.plan import AnalysisSpec
    >>> bg = Plan(strategy="rolling", replicas=2, steps=(), background=AnalysisSpec(interval=60, count=None))
    >>> _background_wait(bg, 90.0)
    60.0
    >>> _background_wait(Plan(strategy="rolling", replicas=2, steps=(), background=AnalysisSpec(interval=60, count=5)), 90.0)
    150.0
    """
    spec = plan.background
    if spec is None:
        return 0.0
    if spec.count is None:
        return float(spec.lookback)
    return max(0.0, (spec.expected_seconds or 0.0) - ran)


class _BasicCanaryWalk:
    """Where a canary without a router stands between its weight steps, all pods available."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.candidate, self.stable = 0, plan.replicas

    def to(self, weight: int) -> int:
        """Waves to ``weight``'s counts from here; the walk then stands there."""
        p = self.plan
        waves = basic_canary_waves(p.replicas, weight, self.candidate, self.stable, p.max_surge, p.max_unavailable)
        self.candidate, self.stable = planned_canary_replicas(p, weight, 0)
        return waves
