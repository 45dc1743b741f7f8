"""Rolling update: the Deployment controller replaces pods in turn, within maxSurge and
maxUnavailable.

The rules it follows are :mod:`deploysim.rules.deployment` (Kubernetes' own); the simulated
world runs them, the real world leaves the work to the real Deployment controller.
"""

from __future__ import annotations

from deploysim.plan import Plan, RollingUpdate


def compile_rolling(scenario) -> Plan:  # noqa: ANN001 - Scenario, imported lazily to avoid a cycle
    from deploysim.strategies import deployment_plan

    s = scenario.strategy
    return deployment_plan(scenario, "rolling", RollingUpdate(), max_surge=s.max_surge,
                           max_unavailable=s.max_unavailable)
