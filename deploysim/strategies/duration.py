"""Expected rollout duration before anything runs: pauses, analyses and pod start-up waves.

An estimate for a healthy candidate; a sweep gives its spread. Pods start in waves: a
rolling update of R replicas that may add ``surge`` and lose ``unavailable`` pods at once
replaces them in about ceil(R / (surge + unavailable)) waves, each one pod start-up long.
"""

from __future__ import annotations

import math
from typing import Any

from deploysim.plan import (
    Analyze,
    Pause,
    Plan,
    Recreate,
    RollingUpdate,
    ScaleCandidate,
    ScaleDownStable,
    SetCanaryScale,
    SetWeight,
)
from deploysim.scenario import Scenario
from deploysim.strategies.rolling import resolve_fenceposts


def expected_duration(plan: Plan, scenario: Scenario) -> dict[str, Any]:
    """Seconds expected in pauses, analyses and waiting for pods, and their total."""
    pod = scenario.pod
    wave = pod.startup + pod.startup_jitter / 2 + plan.min_ready_seconds
    paused = analysis = pods = 0.0
    gates = 0
    for step in plan.steps:
        if isinstance(step, Pause):
            if step.seconds is None:
                gates += 1
            else:
                paused += step.seconds
        elif isinstance(step, Analyze):
            analysis += step.analysis.expected_seconds or 0.0
        elif isinstance(step, SetWeight | SetCanaryScale | ScaleCandidate):
            pods += wave
        elif isinstance(step, RollingUpdate):
            surge, unavailable = resolve_fenceposts(plan.max_surge, plan.max_unavailable, plan.replicas)
            pods += math.ceil(plan.replicas / max(surge + unavailable, 1)) * wave
        elif isinstance(step, Recreate):
            pods += pod.termination + wave
        elif isinstance(step, ScaleDownStable):
            paused += step.delay
    return {
        "total_seconds": paused + analysis + pods,
        "paused_seconds": paused,
        "analysis_seconds": analysis,
        "pods_seconds": pods,
        "manual_gates": gates,
    }
