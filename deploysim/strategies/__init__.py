"""Strategies compiled to plans: one file per strategy, one entry point.

>>> from deploysim.scenario import load_scenario
>>> compile_plan(load_scenario(overrides=["strategy.kind=rolling"])).strategy
'rolling'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from deploysim.plan import AnalysisSpec, Check, Plan, Step
from deploysim.scenario import Analysis, Scenario


def analysis_spec(analysis: Analysis, name: str = "analysis", count: int | None = None) -> AnalysisSpec:
    """The scenario's analysis block as the plan's AnalysisSpec."""
    return AnalysisSpec(
        name=name,
        interval=analysis.interval,
        count=analysis.count if count is None else count,
        initial_delay=analysis.initial_delay,
        failure_limit=analysis.failure_limit,
        inconclusive_limit=analysis.inconclusive_limit,
        consecutive_error_limit=analysis.consecutive_error_limit,
        min_requests=analysis.min_requests,
        judge=analysis.judge,
        dry_run=analysis.dry_run,
        **_checks(analysis, name),
    )


def _checks(analysis: Analysis, name: str) -> dict[str, Any]:
    """The checks of an analysis block: built-in ones, and for each team metric its
    definition with the simulated check that stands in for it (or a note why none does)."""
    from deploysim.analysis.metrics import metric_from_mapping
    from deploysim.manifests.queries import stand_in_for

    checks: list[Check] = []
    metrics = []
    notes = []
    for i, c in enumerate(analysis.checks):
        if not c.own:
            checks.append(Check(metric=str(c.metric), max=c.max, min=c.min))
            continue
        fields = c.model_dump(exclude_none=True, exclude={"metric"})
        metric = metric_from_mapping(fields, f"analysis.checks[{i}]")
        stand_in, why = stand_in_for(metric, c.metric)
        if stand_in is None:
            notes.append(f"metric {metric.name}: {why}")
        else:
            checks.append(stand_in)
        metrics.append(replace(metric, stand_in=stand_in.describe() if stand_in else f"nothing: {why}"))
    return {"checks": tuple(checks), "metrics": tuple(metrics), "not_simulated": tuple(notes)}


def background_analysis(scenario: Scenario) -> AnalysisSpec:
    """Analysis that runs alongside a rolling or recreate update, until it ends."""
    return analysis_spec(scenario.analysis, name="background", count=None)


def deployment_plan(scenario: Scenario, strategy: str, step: Step, **settings: Any) -> Plan:
    """The plan of a strategy the Deployment carries out itself (rolling, recreate): its one
    step, routing by ready replicas, and background analysis until it ends."""
    s = scenario.strategy
    return Plan(
        strategy=strategy,
        replicas=scenario.replicas,
        steps=(step,),
        routing="replica_ratio",
        min_ready_seconds=s.min_ready_seconds,
        progress_deadline_seconds=s.progress_deadline_seconds,
        background=background_analysis(scenario) if s.background_analysis else None,
        **settings,
    )


def _compilers() -> dict[str, Callable[[Scenario], Plan]]:
    from deploysim.strategies.bluegreen import compile_blue_green
    from deploysim.strategies.canary import compile_canary
    from deploysim.strategies.recreate import compile_recreate
    from deploysim.strategies.rolling import compile_rolling

    return {
        "rolling": compile_rolling,
        "canary": compile_canary,
        "blue-green": compile_blue_green,
        "recreate": compile_recreate,
    }


def compile_plan(scenario: Scenario) -> Plan:
    """The plan for the scenario's strategy."""
    return with_assumptions(_compilers()[scenario.strategy.kind](scenario), scenario.analysis.assume)


def with_assumptions(plan: Plan, assume: dict[str, str]) -> Plan:
    """The plan with the verdicts chosen for its unsimulated metrics (``analysis.assume``,
    ``--assume NAME=pass|fail``) in every analysis that names them. A name no analysis has
    unsimulated is refused, with the names it could be.

    >>> from deploysim.plan import Analyze
    >>> spec = AnalysisSpec(name="a", foreign_metrics=("conversion (datadog)",))
    >>> p = with_assumptions(Plan(strategy="canary", replicas=2, steps=(Analyze(spec),)), {"conversion": "pass"})
    >>> p.steps[0].analysis.assumed
    (('conversion', 'pass'),)
    """
    if not assume:
        return plan
    from deploysim.errors import ScenarioError
    from deploysim.plan import Analyze

    known = sorted({n for spec in plan.analyses() for n in spec.unsimulated})
    for name, verdict in assume.items():
        if name not in known:
            allowed = ", ".join(known) if known else "none: every metric of this plan is simulated"
            raise ScenarioError(f"analysis.assume.{name}", verdict, f"names an unsimulated metric ({allowed})")

    def assumed(spec: AnalysisSpec) -> AnalysisSpec:
        chosen = tuple((n, assume[n]) for n in spec.unsimulated if n in assume)
        return replace(spec, assumed=chosen) if chosen else spec

    steps = tuple(Analyze(assumed(s.analysis)) if isinstance(s, Analyze) else s for s in plan.steps)
    background = assumed(plan.background) if plan.background is not None else None
    return replace(plan, steps=steps, background=background)
