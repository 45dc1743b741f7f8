"""An analysis run as plain data, and the pure rules that advance it (Argo Rollouts' limits).

A run is a dict so the controller's status stays JSON and can be stored on a cluster:

>>> from deploysim.plan import AnalysisSpec, Check
>>> spec = AnalysisSpec(interval=60, count=2, checks=(Check("error_rate", max=0.01),))
>>> run = start_run(spec, now=0.0)
>>> run["next_at"], run["phase"]
(60.0, 'Running')
"""

from __future__ import annotations

import math
from typing import Any

from deploysim.analysis.judges import ERROR, FAILED, INCONCLUSIVE, SUCCESSFUL, get_judge
from deploysim.analysis.measurement import Measurement
from deploysim.plan import AnalysisSpec

RUNNING = "Running"
TERMINAL = (SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR)


def start_run(spec: AnalysisSpec, now: float, failed: int = 0) -> dict[str, Any]:
    """A new run. Each measurement covers the interval before it, so the first is taken
    one interval after ``initial_delay`` (a window of data, not an empty one). ``failed``
    carries failed checks over from earlier runs of the same failure budget."""
    return {
        "name": spec.name,
        "phase": RUNNING,
        "started_at": now,
        "next_at": now + spec.initial_delay + spec.interval,
        "window_start": now + spec.initial_delay,
        "taken": 0,
        "passed": 0,
        "failed": failed,
        "inconclusive": 0,
        "consecutive_errors": 0,
        "errors": 0,
        "measurements": [],
        "judge_state": {},
        "message": "",
    }


def is_due(run: dict[str, Any], now: float) -> bool:
    return run["phase"] == RUNNING and now + 1e-9 >= run["next_at"]


def record_measurement(spec: AnalysisSpec, run: dict[str, Any], m: Measurement) -> dict[str, Any]:
    """The run after one more measurement.

    - a provider error counts toward ``consecutive_error_limit``; more than the limit in a
      row makes the run Error (Argo's default limit is 4);
    - a failed measurement counts toward ``failure_limit``; more than the limit fails the
      run (-1 never fails);
    - an inconclusive one counts toward ``inconclusive_limit``; more makes it Inconclusive;
    - after ``count`` judged measurements with none of these, the run is Successful.
    ``dry_run`` records verdicts but never fails the run. With ``count_successes``
    (Flagger), ``count`` counts passing measurements, and an error or an inconclusive
    measurement is a failed check like a failed one.
    """
    run = {**run, "measurements": list(run["measurements"])}
    run["next_at"] = m.end + spec.interval
    run["window_start"] = m.end
    if m.error is not None and spec.count_successes:
        run["errors"] += 1
        run["failed"] += 1
        run["measurements"].append({"at": m.end, "phase": ERROR, "reason": m.error, "values": {},
                                    **_metrics(m)})
        if not spec.dry_run and spec.failure_limit >= 0:
            _beyond_limit(run, "failed", spec.failure_limit, FAILED, "failed checks", m.error)
        return run
    if m.error is not None:
        run["errors"] += 1
        run["consecutive_errors"] += 1
        entry = {"at": m.end, "phase": ERROR, "reason": m.error, "values": {}, **_metrics(m)}
        run["measurements"].append(entry)
        _beyond_limit(run, "consecutive_errors", spec.consecutive_error_limit, ERROR,
                      "consecutive provider errors", m.error)
        return run

    verdict = get_judge(spec.judge)(spec, m, run["judge_state"])
    run["judge_state"] = verdict.state
    run["consecutive_errors"] = 0
    run["taken"] += 1
    values = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in verdict.values.items()}
    run["measurements"].append(
        {"at": m.end, "start": m.start, "phase": verdict.phase, "reason": verdict.reason, "values": values,
         **_metrics(m)}
    )
    if verdict.phase == FAILED or (verdict.phase == INCONCLUSIVE and spec.count_successes):
        run["failed"] += 1
    elif verdict.phase == INCONCLUSIVE:
        run["inconclusive"] += 1
    else:
        run["passed"] = run.get("passed", 0) + 1

    if not spec.dry_run:
        if spec.failure_limit >= 0 and _beyond_limit(
                run, "failed", spec.failure_limit, FAILED, "failed measurements", verdict.reason):
            return run
        if _beyond_limit(run, "inconclusive", spec.inconclusive_limit, INCONCLUSIVE,
                         "inconclusive measurements", verdict.reason):
            return run
    done = run.get("passed", 0) if spec.count_successes else run["taken"]
    if spec.count is not None and done >= spec.count:
        run["phase"] = SUCCESSFUL
        run["message"] = f"{run['taken']} measurements, {run['failed']} failed"
    return run


def _metrics(m: Measurement) -> dict[str, Any]:
    """The team metrics of a measurement as the run keeps them: each one's query as sent,
    raw answer, value and verdict (nothing when the spec has none)."""
    return {"metrics": [r.to_dict() for r in m.metrics]} if m.metrics else {}


def _beyond_limit(run: dict[str, Any], key: str, limit: int, phase: str, what: str, reason: str) -> bool:
    """Argo Rollouts' limits: the run ends in ``phase`` once ``run[key]`` exceeds ``limit``
    (failureLimit 0 fails at the first failed measurement, 2 at the third; the default
    consecutiveErrorLimit 4 errs at the fifth error in a row). True when it ended."""
    if run[key] <= limit:
        return False
    run["phase"] = phase
    run["message"] = f"{run[key]} {what} (limit {limit}): {reason}"
    return True
