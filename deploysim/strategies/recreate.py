"""Recreate: every stable pod goes, then the candidate's start (downtime by design)."""

from __future__ import annotations

from deploysim.plan import Plan, Recreate


def compile_recreate(scenario) -> Plan:  # noqa: ANN001
    from deploysim.strategies import deployment_plan

    return deployment_plan(scenario, "recreate", Recreate())
