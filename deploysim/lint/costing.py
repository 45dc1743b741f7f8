"""What a finding costs, rehearsed: the rollout as written and with the finding fixed, on the
same scenario and seed (``deploysim.sim.rehearse``), compared on failed requests, error
budget consumed and rollout duration.

Which candidate both variants roll out depends on what the finding risks:

* a missing rollback path and a first canary step of 100% cost nothing until a release is
  bad: they are rehearsed with the scenario's candidate (the built-in one fails 2.1% of
  requests where the stable version fails 0.1%);
* ``maxUnavailable`` at every pod, a recreate update, a single replica, no readiness probe
  and a preStop shorter than the endpoint lag cost something on every release: they are
  rehearsed with a candidate as healthy as the stable version
  (``Scenario.with_healthy_candidate``), so the difference is the rollout's own; a single
  replica also loses the node under its pod as the rollout starts, what one replica risks
  on any day; the preStop is rehearsed against an endpoint lag of
  :data:`~deploysim.lint.pods.ENDPOINT_LAG_SECONDS` (or the scenario's, when longer).

Probes and graceful shutdown are rehearsed only where the scenario has their fields
(``pod.probes``; ``pod.pre_stop`` and ``pod.endpoint_lag``): :func:`can_rehearse` says.
The rest say why they are not (:data:`NOT_COSTED`): the simulator has no node drains, a
probe cannot depend on another, and tags and calendars are not a matter of requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from deploysim.lint import rollout
from deploysim.lint.findings import COST_KEYS, Cost, Finding
from deploysim.lint.pods import ENDPOINT_LAG_SECONDS
from deploysim.plan import Plan
from deploysim.scenario import Pod, Scenario

SCENARIO_CANDIDATE = "the scenario's candidate"
HEALTHY_CANDIDATE = "a candidate as healthy as the stable version"

NOT_COSTED: dict[str, str] = {
    "no-readiness-probe": "not rehearsed: this simulator has no readiness probes",
    "liveness-equals-readiness": "not rehearsed: the simulator cannot make a probe's check depend on the other's",
    "prestop-shorter-than-endpoint-lag": "not rehearsed: this simulator has no endpoint lag or preStop hook",
    "no-pod-disruption-budget": "not rehearsed: the simulator has no node drains (voluntary disruptions)",
    "image-tag-mutable": "nothing to rehearse: the risk is running an image other than the one rehearsed",
    "image-tag-missing": "nothing to rehearse: the risk is running an image other than the one rehearsed",
    "image-not-pinned-by-digest": "nothing to rehearse: the risk is running an image other than the one rehearsed",
    "change-freeze": "nothing to rehearse: a rule of the calendar",
}

World = tuple[Scenario, Plan]
#: (scenario, plan, finding) -> (the world as written, the world fixed)
Variants = Callable[[Scenario, Plan, Finding], tuple[World, World]]


def _plan_fix(fix: Callable[[Scenario, Plan], World]) -> Variants:
    def variants(s: Scenario, p: Plan, f: Finding) -> tuple[World, World]:
        return (s, p), fix(s, p)
    return variants


def _pod(s: Scenario, **update: Any) -> Scenario:
    return s.model_copy(update={"pod": s.pod.model_copy(update=update)})


def _without_version_probes(s: Scenario) -> Scenario:
    versions = {v: getattr(s, v).model_copy(update={"probes": None}) for v in ("stable", "candidate")
                if "probes" in type(getattr(s, v)).model_fields}
    return s.model_copy(update=versions)


def _readiness(s: Scenario, p: Plan, f: Finding) -> tuple[World, World]:
    """No readiness probe, and the kubelet's default one (the scenario's other probes kept)."""
    from deploysim import scenario as sc

    s = _without_version_probes(s)
    probes = s.pod.probes or sc.Probes()  # type: ignore[attr-defined]
    return ((_pod(s, probes=probes.model_copy(update={"readiness": None})), p),
            (_pod(s, probes=probes.model_copy(update={"readiness": sc.Probe()})), p))  # type: ignore[attr-defined]


def _prestop(s: Scenario, p: Plan, f: Finding) -> tuple[World, World]:
    """The manifest's preStop and grace period against the endpoint lag, and a preStop of the
    lag, for an application that stops answering at SIGTERM (no drain: the case a preStop
    sleep is for; one that drains long enough needs none)."""
    lag = max(float(getattr(s.pod, "endpoint_lag", 0.0) or 0.0), ENDPOINT_LAG_SECONDS)
    update: dict[str, Any] = {"endpoint_lag": lag}
    if "drain" in type(s.pod).model_fields:
        update["drain"] = 0.0
    if "termination_grace_period" in type(s.pod).model_fields and "grace" in f.facts:
        update["termination_grace_period"] = float(f.facts["grace"])
    base = _pod(s, **update)
    return ((_pod(base, pre_stop=float(f.facts.get("pre_stop", 0.0))), p),
            (_pod(base, pre_stop=max(ENDPOINT_LAG_SECONDS, float(f.facts.get("pre_stop", 0.0)))), p))


@dataclass(frozen=True)
class Costing:
    """How a rule is rehearsed: the two worlds, the words for the fix, whether both roll out
    a healthy candidate, whether a node is lost, and the scenario fields (of ``pod``) the
    simulator needs to express it."""

    variants: Variants
    fix: str
    healthy: bool
    node_lost: bool = False
    needs: tuple[str, ...] = ()
    as_is_is_base: bool = True


COSTED: dict[str, Costing] = {
    "no-rollback-path": Costing(_plan_fix(lambda s, p: (s, rollout.with_rollback_path(p, s))),
                                "the scenario's analysis added (in the background; before the switch for "
                                "blue-green)", healthy=False),
    "big-bang-first-step": Costing(_plan_fix(lambda s, p: (s, rollout.with_first_step(p, s))),
                                   f"a first step of {rollout.FIXED_FIRST_WEIGHT}% judged by an analysis before "
                                   "the weight of 100", healthy=False),
    "big-bang-max-unavailable": Costing(_plan_fix(lambda s, p: (s, rollout.with_fenceposts(p))),
                                        f"maxUnavailable {rollout.FIXED_MAX_UNAVAILABLE}", healthy=True),
    "big-bang-recreate": Costing(_plan_fix(lambda s, p: (s, rollout.as_rolling(p))),
                                 f"a rolling update with maxSurge {rollout.FIXED_MAX_SURGE} and maxUnavailable "
                                 f"{rollout.FIXED_MAX_UNAVAILABLE}", healthy=True),
    "single-replica": Costing(_plan_fix(lambda s, p: rollout.with_replicas(p, s)),
                              f"{rollout.FIXED_REPLICAS} replicas, the same traffic", healthy=True, node_lost=True),
    "no-readiness-probe": Costing(_readiness, "a readiness probe with the kubelet's defaults", healthy=True,
                                  needs=("probes",), as_is_is_base=False),
    "prestop-shorter-than-endpoint-lag": Costing(
        _prestop, f"preStop {ENDPOINT_LAG_SECONDS:g} s, the endpoint lag (an application that stops answering "
        "at SIGTERM)", healthy=True,
        needs=("pre_stop", "endpoint_lag"), as_is_is_base=False),
}


def can_rehearse(rule_id: str) -> bool:
    """Whether this simulator can express the rule's finding (its scenario has the fields)."""
    if rule_id not in COSTED:
        return False
    return all(name in Pod.model_fields for name in COSTED[rule_id].needs)


def summary_of(scenario: Scenario, plan: Plan) -> dict[str, Any]:
    """One rehearsal, as a cost compares it."""
    from deploysim.sim import rehearse

    s = rehearse(scenario, plan).summary
    return {"outcome": s["outcome"], **{k: s[k] for k in COST_KEYS}}


def cost_of(f: Finding, scenario: Scenario, plan: Plan,
            cache: dict[tuple[int, bool, bool], dict[str, Any]] | None = None) -> Cost | None:
    """The cost of finding ``f`` on this scenario and plan; None when its rule is not
    rehearsed here. ``cache`` keeps a subject's as-written rehearsals (a subject with several
    findings rehearses each world once)."""
    if not can_rehearse(f.id):
        return None
    how = COSTED[f.id]
    base = scenario.with_healthy_candidate() if how.healthy else scenario
    fault = None
    if how.node_lost:
        base, fault = rollout.node_lost_at_start(base)
    (as_is_scenario, as_is_plan), (fixed_scenario, fixed_plan) = how.variants(base, plan, f)
    key = (id(plan), how.healthy, how.node_lost)
    if how.as_is_is_base and cache is not None and key in cache:
        as_is = cache[key]
    else:
        as_is = summary_of(as_is_scenario, as_is_plan)
        if how.as_is_is_base and cache is not None:
            cache[key] = as_is
    fixed = summary_of(fixed_scenario, fixed_plan)
    return Cost(fix=how.fix, candidate=HEALTHY_CANDIDATE if how.healthy else SCENARIO_CANDIDATE, fault=fault,
                as_is=as_is, fixed=fixed)


def with_costs(findings: list[Finding], scenario: Scenario | None, plan: Plan | None) -> list[Finding]:
    """The findings of one subject, each with its cost or the reason it has none."""
    cache: dict[tuple[int, bool, bool], dict[str, Any]] = {}
    out = []
    for f in findings:
        if can_rehearse(f.id) and scenario is not None and plan is not None:
            out.append(replace(f, cost=cost_of(f, scenario, plan, cache)))
        elif can_rehearse(f.id):
            out.append(replace(f, not_costed="not rehearsed: no scenario and plan to rehearse"))
        else:
            out.append(replace(f, not_costed=NOT_COSTED.get(f.id)))
    return out
