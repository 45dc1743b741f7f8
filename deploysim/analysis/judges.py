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
    """Each check's candidate value must lie within its bounds.

    No value (no candidate requests, or fewer than ``min_requests``) is Inconclusive.
    """
    cand = m.candidate
    values = {c.metric: cand.value(c.metric) for c in spec.checks}
    values["requests"] = float(cand.requests)
    if cand.requests < max(spec.min_requests, 1):
        return Verdict(INCONCLUSIVE, f"{cand.requests} candidate requests, too few to judge", values)
    broken = []
    for check in spec.checks:
        value = values[check.metric]
        if math.isnan(value):
            return Verdict(INCONCLUSIVE, f"no value for {check.metric}", values)
        broken += violations(check.metric, value, check.min, check.max)
    if broken:
        return Verdict(FAILED, "; ".join(broken), values)
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
