"""Canary: shift weight to the candidate step by step, holding and analysing between steps."""

from __future__ import annotations

import math

from deploysim.plan import Analyze, Pause, Plan, SetCanaryScale, SetWeight, Step
from deploysim.strategies.rolling import resolve_fenceposts


def _tied(weight: int, total: int) -> bool:
    """True when ``total`` pods at ``weight`` % fall exactly half-way (3 pods at 50%: 1.5)."""
    return (total * weight) % 100 == 50


def basic_canary_replicas(replicas: int, weight: int, max_surge: int = 0) -> tuple[int, int]:
    """(candidate, stable) replicas for a weight without a traffic router (Argo Rollouts).

    Argo picks, among the candidate counts just below and just above ``replicas × weight``,
    the split whose share of pods is nearest the weight; a tie (exactly half-way) goes to
    the larger candidate. Between 1% and 99% neither version drops to 0 pods. With
    ``max_surge`` > 0 it may also run one pod more than ``replicas`` if that gets nearer.

    10 replicas at 41%: 4/10 = 40% beats 5/10 = 50% (and 4/11, 5/11), so 4 candidate and
    6 stable. 5 replicas at 10% (0.5 pods): 0 is not allowed, so 1 candidate and 4 stable
    (20%): without surge, 5 replicas cannot go below 20%. With surge, 1 candidate and 5
    stable (16.7%) is nearer. 10 replicas at 99%, no surge: 9 and 1, never 10 and 0.

    >>> basic_canary_replicas(10, 41)
    (4, 6)
    >>> basic_canary_replicas(5, 10), basic_canary_replicas(5, 10, max_surge=1)
    ((1, 4), (1, 5))
    >>> basic_canary_replicas(10, 99)
    (9, 1)
    """
    if replicas <= 0:
        return 0, 0
    if weight <= 0:
        return 0, replicas
    if weight >= 100:
        return replicas, 0
    ceil_c = -(-replicas * weight // 100)
    floor_c = replicas * weight // 100
    zero_ok = replicas == 1 and max_surge == 0
    options: list[tuple[int, int]] = []
    if ceil_c < replicas or zero_ok:
        options.append((ceil_c, replicas))
    if not _tied(weight, replicas) and (floor_c > 0 or zero_ok):
        options.append((floor_c, replicas))
    if max_surge > 0:
        options.append((ceil_c, replicas + 1))
        if not _tied(weight, replicas + 1) and (floor_c > 0 or zero_ok):
            options.append((floor_c, replicas + 1))
    if not options:
        return 0, replicas
    # min keeps the first of equally near options, as Argo does
    candidate, total = min(options, key=lambda o: abs(o[0] * 100 / o[1] - weight))
    return candidate, total - candidate


def router_canary_replicas(replicas: int, weight: int) -> tuple[int, int]:
    """(candidate, stable) with a traffic router: candidate weight × replicas, stable full.

    >>> router_canary_replicas(10, 5)
    (1, 10)
    """
    if weight >= 100:
        return replicas, replicas
    return math.ceil(replicas * weight / 100), replicas


def held_canary_scale(steps: tuple[Step, ...]) -> int | None:
    """The latest SetCanaryScale among ``steps`` (Argo: it holds over later weights until a
    matchTrafficWeight, here ``SetCanaryScale(None)``); None when the weight decides."""
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
            candidate = math.ceil(plan.replicas * scale / 100)
        return candidate, stable
    surge, _ = resolve_fenceposts(plan.max_surge, plan.max_unavailable, plan.replicas)
    return basic_canary_replicas(plan.replicas, weight, surge)


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
