"""Judges: one measurement (and what the judge kept from earlier ones) in, a verdict out.

A judge is a pure function ``judge(spec, measurement, state) -> Verdict``; ``state`` is
plain data the controller stores in its status between measurements (sequential tests
need it). Verdict phases are Argo Rollouts' measurement phases: Successful, Failed,
Inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deploysim.analysis.measurement import Measurement
from deploysim.errors import ScenarioError
from deploysim.plan import AnalysisSpec
from deploysim.rules.checks import violations

SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = "Successful", "Failed", "Inconclusive", "Error"


@dataclass(frozen=True)
class Verdict:
    phase: str
    reason: str
    values: dict[str, float] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


Judge = Callable[[AnalysisSpec, Measurement, dict[str, Any]], Verdict]


def threshold_judge(spec: AnalysisSpec, m: Measurement, state: dict[str, Any]) -> Verdict:
    """Each check's candidate value must lie within its bounds, and each team metric
    measured on a cluster must pass as its controller judges it.

    A check standing in for a team metric that was measured is left to that metric. No value
    for a check (no candidate requests, or fewer than ``min_requests``) is Inconclusive; so
    is a team metric whose verdict is Inconclusive. A failed team metric fails the
    measurement with its own message (the metric, the value and the condition); a dry-run
    one never does.
    """
    measured = {r.name for r in m.metrics}
    checks = [c for c in spec.checks if c.stands_for is None or c.stands_for not in measured]
    values: dict[str, float] = {}
    for r in m.metrics:
        values[r.name] = math.nan if r.number is None else float(r.number)
    broken: list[str] = []
    unsure: list[str] = []
    for r in m.metrics:
        if r.dry_run:
            continue
        if r.phase == FAILED:
            broken.append(f"{r.name}: {r.message}")
        elif r.phase in (INCONCLUSIVE, ERROR):
            unsure.append(f"{r.name}: {r.message}")
    if checks:
        cand = m.candidate
        values.update({c.metric: cand.value(c.metric) for c in checks})
        values["requests"] = float(cand.requests)
        if cand.requests < max(spec.min_requests, 1):
            unsure.append(f"{cand.requests} candidate requests, too few to judge")
        else:
            for check in checks:
                value = values[check.metric]
                if math.isnan(value):
                    unsure.append(f"no value for {check.metric}")
                else:
                    broken += violations(check.metric, value, check.min, check.max)
    if broken:
        return Verdict(FAILED, "; ".join(broken), values)
    if unsure:
        return Verdict(INCONCLUSIVE, "; ".join(unsure), values)
    if m.metrics and not checks:
        return Verdict(SUCCESSFUL, "; ".join(f"{r.name}: {r.message}" for r in m.metrics), values)
    return Verdict(SUCCESSFUL, "all checks within bounds", values)


JUDGES: dict[str, Judge] = {"threshold": threshold_judge}


def get_judge(name: str) -> Judge:
    if name not in JUDGES:
        # judges with heavier imports register themselves on first use
        from deploysim.analysis import statistical  # noqa: F401
    try:
        return JUDGES[name]
    except KeyError:
        raise ScenarioError("analysis.judge", name, f"one of {', '.join(sorted(JUDGES))}") from None
