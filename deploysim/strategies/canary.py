"""Canary: shift weight to the candidate step by step, holding and analysing between steps.

The counts follow :mod:`deploysim.rules.canary` (Argo Rollouts); this module reads a plan
for them (which routing, which ``SetCanaryScale`` holds, the surge) and compiles the plan.
"""

from __future__ import annotations

from deploysim.plan import Analyze, Pause, Plan, SetCanaryScale, SetWeight, Step
from deploysim.rules.canary import (
    basic_canary_replicas,
    router_canary_replicas,
    set_canary_scale_replicas,
    traffic_weight_to_replicas,
)
from deploysim.rules.deployment import max_surge


def held_canary_scale(steps: tuple[Step, ...]) -> int | None:
    """The latest SetCanaryScale among ``steps`` (Argo's ``UseSetCanaryScale``: it holds over
    later weights until a matchTrafficWeight, here ``SetCanaryScale(None)``); None when the
    weight decides."""
    for step in reversed(steps):
        if isinstance(step, SetCanaryScale):
            return step.percent
    return None


def planned_canary_replicas(plan: Plan, weight: int, index: int) -> tuple[int, int]:
    """(candidate, stable) replicas the plan asks for at weight ``weight`` at step ``index``.

    With a router, a SetCanaryScale before ``index`` decides the candidate's size below
    100%; without one, Argo's replica-ratio rounding, with the plan's surge.
    """
    if plan.routing == "router":
        candidate, stable = router_canary_replicas(plan.replicas, weight)
        scale = held_canary_scale(plan.steps[:index])
        if scale is not None and weight < 100:
            candidate = traffic_weight_to_replicas(plan.replicas, scale)
        return candidate, stable
    surge = max_surge(plan.max_surge, plan.max_unavailable, plan.replicas)
    return basic_canary_replicas(plan.replicas, weight, surge)


def canary_scale_replicas(plan: Plan, step: SetCanaryScale, weight: int, index: int) -> int:
    """Candidate pods the SetCanaryScale ``step`` at ``index`` asks for while the traffic
    weight is ``weight``: its share of replicas, or (matchTrafficWeight) what the weight
    asks for once this step has ended any held scale."""
    matched = planned_canary_replicas(plan, weight, index + 1)[0]
    return set_canary_scale_replicas(plan.replicas, step.percent, matched)


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
        router=s.router if s.traffic_router else None,
        max_surge=s.max_surge,
        max_unavailable=s.max_unavailable,
        min_ready_seconds=s.min_ready_seconds,
        progress_deadline_seconds=s.progress_deadline_seconds,
    )
