"""Rules on how a plan rolls out, and the fixed plan each one is rehearsed against.

The rules read the compiled :class:`~deploysim.plan.Plan`, whatever wrote it (a scenario, an
Argo Rollout, a Flagger Canary, a Deployment), so a rule means the same for every source:

* **rollback path**: before the step where the candidate takes all traffic (a weight of 100,
  the rolling or recreate update itself, the blue-green switch, Flagger's promotion), an
  analysis that judges something (not a dry run) or a manual gate; a background analysis
  running by then counts, and so does a blue-green post-promotion analysis while the old colour
  is still up (Argo rolls back to it);
* **big bang**: ``maxUnavailable`` that takes every pod out at once (resolved as the
  Deployment controller does, ``MaxUnavailable``), a canary whose first weight is 100, a
  recreate update.

>>> from deploysim.plan import Plan, RollingUpdate, SetWeight, Pause
>>> has_rollback_path(Plan(strategy="rolling", replicas=4, steps=(RollingUpdate(),)))
False
>>> has_rollback_path(Plan(strategy="canary", replicas=4, steps=(SetWeight(20), Pause(None), SetWeight(100))))
True
>>> all_unavailable(Plan(strategy="rolling", replicas=4, steps=(RollingUpdate(),), max_unavailable="100%"))
True
"""

from __future__ import annotations

from dataclasses import replace

from deploysim.plan import (
    AnalysisSpec,
    Analyze,
    Pause,
    Plan,
    PromotePrimary,
    Recreate,
    RollingUpdate,
    ScaleCandidate,
    ScaleDownStable,
    SetWeight,
    SwitchTraffic,
)
from deploysim.rules.deployment import max_unavailable
from deploysim.scenario import Fault, Scenario

#: the fixes' numbers: Kubernetes' default fenceposts, a first canary step, two replicas
FIXED_MAX_UNAVAILABLE = "25%"
FIXED_MAX_SURGE = "25%"
FIXED_FIRST_WEIGHT = 10
FIXED_REPLICAS = 2


def full_traffic_index(plan: Plan) -> int:
    """The index of the step from which the candidate takes all traffic (the steps' end when
    none says so).

    >>> full_traffic_index(Plan(strategy="canary", replicas=2, steps=(SetWeight(20), SetWeight(100))))
    1
    """
    for i, step in enumerate(plan.steps):
        if isinstance(step, SetWeight) and step.weight >= 100:
            return i
        if isinstance(step, RollingUpdate | Recreate | SwitchTraffic | PromotePrimary):
            return i
    return len(plan.steps)


def judges(spec: AnalysisSpec) -> bool:
    """An analysis that can stop a rollout: not a dry run, with something to measure."""
    return not spec.dry_run and bool(spec.checks or spec.metrics or spec.foreign_metrics)


def has_rollback_path(plan: Plan) -> bool:
    """Whether something can stop the rollout before (or, blue-green, just after) all traffic moved."""
    full = full_traffic_index(plan)
    for i, step in enumerate(plan.steps):
        if i < full and isinstance(step, Pause) and step.seconds is None:
            return True
        if i < full and isinstance(step, Analyze) and judges(step.analysis):
            return True
        if i > full and isinstance(step, ScaleDownStable):
            break
        if i > full and plan.strategy == "blue-green" and isinstance(step, Analyze) and judges(step.analysis):
            return True
    bg = plan.background
    return bg is not None and judges(bg) and plan.background_start <= full


def first_weight_index(plan: Plan) -> int | None:
    """The index of the first step that gives the candidate traffic by weight."""
    return next((i for i, s in enumerate(plan.steps) if isinstance(s, SetWeight) and s.weight > 0), None)


def first_step_all_traffic(plan: Plan) -> bool:
    """A canary whose first weight is 100%."""
    i = first_weight_index(plan)
    return plan.strategy == "canary" and i is not None and plan.steps[i].weight >= 100  # type: ignore[union-attr]


def replaces_pods_by_fenceposts(plan: Plan) -> bool:
    """Whether maxSurge / maxUnavailable govern the rollout: a rolling update, Flagger's
    primary rolling at promotion, a basic canary (no traffic router) scaling the stable down."""
    if any(isinstance(s, RollingUpdate | PromotePrimary) for s in plan.steps):
        return True
    return plan.strategy == "canary" and plan.routing == "replica_ratio"


def all_unavailable(plan: Plan) -> bool:
    """maxUnavailable resolves to every replica: the update may take all pods out together."""
    if plan.replicas < 1 or not replaces_pods_by_fenceposts(plan):
        return False
    return max_unavailable(plan.max_surge, plan.max_unavailable, plan.replicas) >= plan.replicas


def is_recreate(plan: Plan) -> bool:
    return plan.strategy == "recreate" or any(isinstance(s, Recreate) for s in plan.steps)


# --- the fixed variants --------------------------------------------------------------------


def _spec(scenario: Scenario, name: str, count: int | None) -> AnalysisSpec:
    from deploysim.strategies import analysis_spec

    return replace(analysis_spec(scenario.analysis, name=name, count=count), dry_run=False)


def with_rollback_path(plan: Plan, scenario: Scenario) -> Plan:
    """The plan with the scenario's analysis: before the switch (blue-green), else in the
    background from the first step, as Argo's background analysis runs."""
    if any(isinstance(s, SwitchTraffic) for s in plan.steps):
        i = next(i for i, s in enumerate(plan.steps) if isinstance(s, SwitchTraffic))
        steps = (*plan.steps[:i], Analyze(_spec(scenario, "pre-promotion", scenario.analysis.count)),
                 *plan.steps[i:])
        return replace(plan, steps=steps)
    return replace(plan, background=_spec(scenario, "background", None), background_start=0)


def with_first_step(plan: Plan, scenario: Scenario) -> Plan:
    """The plan with a first canary step of 10% judged by an analysis (the plan's first that
    judges and ends, else the scenario's) before the weight of 100."""
    i = first_weight_index(plan)
    assert i is not None
    spec = next((s.analysis for s in plan.steps if isinstance(s, Analyze) and judges(s.analysis)
                 and s.analysis.count is not None), None) or _spec(scenario, "first-step", scenario.analysis.count)
    steps = (*plan.steps[:i], SetWeight(FIXED_FIRST_WEIGHT), Analyze(spec), *plan.steps[i:])
    return replace(plan, steps=steps)


def with_fenceposts(plan: Plan) -> Plan:
    """The plan with Kubernetes' default maxUnavailable, 25%."""
    return replace(plan, max_unavailable=FIXED_MAX_UNAVAILABLE)


def as_rolling(plan: Plan) -> Plan:
    """A recreate plan as a rolling update with Kubernetes' default fenceposts."""
    steps = tuple(RollingUpdate() if isinstance(s, Recreate) else s for s in plan.steps)
    return replace(plan, strategy="rolling", steps=steps, max_surge=FIXED_MAX_SURGE,
                   max_unavailable=FIXED_MAX_UNAVAILABLE)


def with_replicas(plan: Plan, scenario: Scenario, replicas: int = FIXED_REPLICAS) -> tuple[Scenario, Plan]:
    """Scenario and plan with ``replicas`` pods, the traffic as it was (the cost compares the
    same requests on one pod and on two)."""
    scale = replicas / max(plan.replicas, 1)
    steps = tuple(ScaleCandidate(min(replicas, round(s.replicas * scale))) if isinstance(s, ScaleCandidate) else s
                  for s in plan.steps)
    return scenario.model_copy(update={"replicas": replicas}), replace(plan, replicas=replicas, steps=steps)


def node_lost_at_start(scenario: Scenario) -> tuple[Scenario, str]:
    """The scenario with the first node lost a second after the rollout starts, and the words
    for it: what one replica risks on any day (a node failure, a drain, a crash)."""
    at = scenario.start_at + 1.0
    fault = Fault(kind="node_failure", at=at, node=0)
    return (scenario.model_copy(update={"faults": [*scenario.faults, fault]}),
            "node 0 (where the first pod runs) lost 1 s after the rollout starts")
