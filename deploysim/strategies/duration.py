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
    for index, step in enumerate(plan.steps):
        if isinstance(step, steps.Pause):
            if step.seconds is None:
                gates += 1
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
        elif isinstance(step, steps.ScaleDownStable):
            delay += step.delay
    if walk is not None:
        pods += walk.to(100) * wave  # the rollout ends at 100%, within the same limits
    elif plan.strategy == "canary" and candidate < plan.replicas:
        pods += wave  # the rollout ends by scaling the candidate to full size
    return {
        "total_seconds": paused + analysis + pods + delay,
        "paused_seconds": paused,
        "analysis_seconds": analysis,
        "pods_seconds": pods,
        "scale_down_delay_seconds": delay,
        "manual_gates": gates,
    }


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
