"""Strategies compiled to plans: one file per strategy, one entry point.

>>> from deploysim.scenario import load_scenario
>>> compile_plan(load_scenario(overrides=["strategy.kind=rolling"])).strategy
'rolling'
"""

from __future__ import annotations

from collections.abc import Callable
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
        checks=tuple(Check(metric=c.metric, max=c.max, min=c.min) for c in analysis.checks),
    )


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
    return _compilers()[scenario.strategy.kind](scenario)
