"""Canary: shift weight to the candidate step by step, holding and analysing between steps."""

from __future__ import annotations

import math

from deploysim.plan import Analyze, Pause, Plan, SetCanaryScale, SetWeight, Step


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def basic_canary_replicas(replicas: int, weight: int) -> tuple[int, int]:
    """(candidate, stable) replicas for a weight without a traffic router (Argo Rollouts).

    Both counts round up; when that adds a pod, the candidate's rounds to nearest instead
    (ties up). 10 replicas at 41%: 5 + 6 = 11 > 10, so the candidate gets round(4.1) = 4
    and the stable 6. 5 replicas at 10%: round(0.5) = 1 candidate, 4 stable, so the
    smallest non-zero weight with 5 replicas is 20%.

    >>> basic_canary_replicas(10, 41)
    (4, 6)
    >>> basic_canary_replicas(5, 10)
    (1, 4)
    """
    if weight <= 0:
        return 0, replicas
    if weight >= 100:
        return replicas, 0
    candidate = math.ceil(replicas * weight / 100)
    stable = math.ceil(replicas * (100 - weight) / 100)
    if candidate + stable > replicas:
        candidate = _round_half_up(replicas * weight / 100)
        stable = replicas - candidate
    return candidate, stable


def router_canary_replicas(replicas: int, weight: int) -> tuple[int, int]:
    """(candidate, stable) with a traffic router: candidate weight × replicas, stable full.

    >>> router_canary_replicas(10, 5)
    (1, 10)
    """
    if weight >= 100:
        return replicas, replicas
    return math.ceil(replicas * weight / 100), replicas


def canary_steps(scenario) -> tuple[Step, ...]:  # noqa: ANN001
    from deploysim.strategies import analysis_spec

    steps: list[Step] = []
    for step in scenario.strategy.steps:
        if step.set_weight is not None:
            steps.append(SetWeight(step.set_weight))
        elif step.set_canary_scale is not None:
            steps.append(SetCanaryScale(step.set_canary_scale))
        elif step.analysis:
            steps.append(Analyze(analysis_spec(scenario.analysis, name=f"step-{len(steps) + 1}")))
        else:
            steps.append(Pause(step.pause))
    if not any(isinstance(s, SetWeight) and s.weight == 100 for s in steps):
        steps.append(SetWeight(100))
    return tuple(steps)


def compile_canary(scenario) -> Plan:  # noqa: ANN001
    s = scenario.strategy
    return Plan(
        strategy="canary",
        replicas=scenario.replicas,
        steps=canary_steps(scenario),
        routing="router" if s.traffic_router else "replica_ratio",
        max_surge=s.max_surge,
        max_unavailable=s.max_unavailable,
        min_ready_seconds=s.min_ready_seconds,
        progress_deadline_seconds=s.progress_deadline_seconds,
    )
