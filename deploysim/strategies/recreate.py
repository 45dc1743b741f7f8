"""Recreate: every stable pod goes, then the candidate's start (downtime by design)."""

from __future__ import annotations

from deploysim.plan import Plan, Recreate


def compile_recreate(scenario) -> Plan:  # noqa: ANN001
    from deploysim.strategies import background_analysis

    s = scenario.strategy
    return Plan(
        strategy="recreate",
        replicas=scenario.replicas,
        steps=(Recreate(),),
        routing="replica_ratio",
        min_ready_seconds=s.min_ready_seconds,
        progress_deadline_seconds=s.progress_deadline_seconds,
        background=background_analysis(scenario) if s.background_analysis else None,
    )
