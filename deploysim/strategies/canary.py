"""Canary: shift weight to the candidate step by step, holding and analysing between steps.

The counts follow :mod:`deploysim.rules.canary` (Argo Rollouts); this module reads a plan
for them (which routing, which ``SetCanaryScale`` holds, the surge), picks the next scale a
canary without a router asks for, and compiles the plan.
"""

from __future__ import annotations

from typing import Protocol

from deploysim.plan import Analyze, Pause, Plan, SetCanaryScale, SetWeight, Step
from deploysim.rules.canary import (
    basic_canary_at_target,
    basic_canary_replicas,
    basic_canary_scale,
    router_canary_replicas,
    set_canary_scale_replicas,
    traffic_weight_to_replicas,
)
from deploysim.rules.deployment import max_surge


class Pods(Protocol):
    """One version's pods as a world reports them (the controller's ``VersionState``)."""

    @property
    def desired(self) -> int: ...  # spec replicas

    @property
    def current(self) -> int: ...  # pods that exist and are not terminating; -1: not counted yet

    @property
    def available(self) -> int: ...


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


def is_basic_canary(plan: Plan) -> bool:
    """A canary without a traffic router ("basic" in Argo's words): its weight is its share of
    pods, so every change of weight, the end at 100% and an abort move pods within maxSurge and
    maxUnavailable (:func:`basic_canary_move`)."""
    return plan.strategy == "canary" and plan.routing == "replica_ratio"


def basic_canary_move(plan: Plan, weight: int, candidate: Pods, stable: Pods) -> tuple[str, int] | bool:
    """The next scale a canary without a router asks for on its way to ``weight``: a
    ``(version, replicas)`` to ask for now, False to wait for pods, True once the versions are at
    the weight's counts. One pass of Argo's ``reconcileCanaryReplicaSets`` (rollout/canary.go)
    with :func:`~deploysim.rules.canary.basic_canary_scale` for the counts and
    :func:`~deploysim.rules.canary.basic_canary_at_target` for the end.

    As Argo, one version is scaled in a pass, the stable first (``reconcileCanaryStableReplicaSet``
    returns once it scaled), and the next pass counts again from what the world then shows. A
    version grows only once the other one's pods are down to its spec (its ``current`` counted
    and not above ``desired``): the surge then bounds the pods that exist, not only the specs as
    in Argo, so the peak is the same whichever Deployment controller acts first.

    10 replicas at 25%/25% going to 25%: the stable goes to 8 first; once its pods are down to 8
    the candidate goes to 3; once those 3 are available it is there.

    >>> from deploysim.controller import VersionState as V
    >>> plan = Plan(strategy="canary", replicas=10, steps=(SetWeight(25),), max_surge="25%",
    ...             max_unavailable="25%")
    >>> basic_canary_move(plan, 25, V(0, 0, 0, 0), V(10, 10, 10, 10))
    ('stable', 8)
    >>> basic_canary_move(plan, 25, V(0, 0, 0, 0), V(8, 10, 10, 10))  # 2 stable pods still to go
    False
    >>> basic_canary_move(plan, 25, V(0, 0, 0, 0), V(8, 8, 8, 8))
    ('candidate', 3)
    >>> basic_canary_move(plan, 25, V(3, 3, 0, 0), V(8, 8, 8, 8)), basic_canary_move(plan, 25, V(3, 3, 3, 3), V(8, 8, 8, 8))
    (False, True)
    """
    want_candidate, want_stable = basic_canary_scale(
        plan.replicas, weight,
        candidate_spec=candidate.desired, stable_spec=stable.desired,
        candidate_available=candidate.available, stable_available=stable.available,
        surge=plan.max_surge, unavailable=plan.max_unavailable,
    )
    for version, replicas, state, other in (("stable", want_stable, stable, candidate),
                                            ("candidate", want_candidate, candidate, stable)):
        if replicas == state.desired:
            continue
        if replicas > state.desired and not 0 <= other.current <= other.desired:
            return False
        return version, replicas
    return basic_canary_at_target(
        plan.replicas, weight, plan.max_surge, plan.max_unavailable,
        candidate=(candidate.desired, candidate.current, candidate.available),
        stable=(stable.desired, stable.current),
    )


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
        scale_down_delay=s.scale_down_delay_seconds if s.traffic_router else 0.0,
        abort_scale_down_delay=s.abort_scale_down_delay_seconds if s.traffic_router else 0.0,
        max_surge=s.max_surge,
        max_unavailable=s.max_unavailable,
        min_ready_seconds=s.min_ready_seconds,
        progress_deadline_seconds=s.progress_deadline_seconds,
    )
