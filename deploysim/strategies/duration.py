"""Expected rollout duration before anything runs: pauses, analyses and pod start-up waves.

An estimate for a healthy candidate; a sweep gives its spread. Pods start in waves: a
rolling update of R replicas that may add ``surge`` and lose ``unavailable`` pods at once
replaces them in about ceil(R / (surge + unavailable)) waves, each one pod start-up long.
"""

from __future__ import annotations

import math
from typing import Any

from deploysim import plan as steps
from deploysim.plan import Plan
from deploysim.rules.deployment import resolve_fenceposts
from deploysim.scenario import Scenario
from deploysim.strategies.canary import canary_scale_replicas, planned_canary_replicas


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
    for index, step in enumerate(plan.steps):
        if isinstance(step, steps.Pause):
            if step.seconds is None:
                gates += 1
            else:
                paused += step.seconds
        elif isinstance(step, steps.Analyze):
            analysis += step.analysis.expected_seconds or 0.0
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
    if plan.strategy == "canary" and candidate < plan.replicas:
        pods += wave  # the rollout ends by scaling the candidate to full size
    return {
        "total_seconds": paused + analysis + pods + delay,
        "paused_seconds": paused,
        "analysis_seconds": analysis,
        "pods_seconds": pods,
        "scale_down_delay_seconds": delay,
        "manual_gates": gates,
    }
