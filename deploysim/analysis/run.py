"""An analysis run as plain data, and the pure rules that advance it (Argo Rollouts' limits).

A run is a dict so the controller's status stays JSON and can be stored on a cluster:

>>> from deploysim.plan import AnalysisSpec, Check
>>> spec = AnalysisSpec(interval=60, count=2, checks=(Check("error_rate", max=0.01),))
>>> run = start_run(spec, now=0.0)
>>> run["next_at"], run["phase"]
(0.0, 'Running')
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from deploysim.analysis.judges import ERROR, FAILED, INCONCLUSIVE, SUCCESSFUL, Verdict, get_judge
from deploysim.analysis.measurement import Measurement
from deploysim.plan import AnalysisSpec

RUNNING = "Running"
TERMINAL = (SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR)


def start_run(spec: AnalysisSpec, now: float, failed: int = 0) -> dict[str, Any]:
    """A new run. As Argo's ``generateMetricTasks`` (analysis/analysis.go), the first
    measurement is taken as the run starts, once ``initialDelay`` has passed; a measurement
    looks back over the query's range (``spec.lookback``), so the first one sees what the
    candidate served before the run began. Flagger (``measure_at_start`` False) checks at the
    tick one interval later. ``failed`` carries failed checks over from earlier runs of the
    same failure budget.

    >>> from deploysim.plan import AnalysisSpec
    >>> start_run(AnalysisSpec(interval=60, initial_delay=30), now=100.0)["next_at"]
    130.0
    >>> start_run(AnalysisSpec(interval=60, measure_at_start=False), now=100.0)["next_at"]
    160.0
    """
    first = spec.initial_delay + (0.0 if spec.measure_at_start else (spec.interval or 0.0))
    return {
        "name": spec.name,
        "phase": RUNNING,
        "started_at": now,
        "next_at": now + first,
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
    m = no_data_as_error(spec, m)
    run["next_at"] = next_measurement_at(spec, m)
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

    verdict = assumption_verdict(spec, m) or get_judge(spec.judge)(spec, m, run["judge_state"])
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


def no_data_as_error(spec: AnalysisSpec, m: Measurement) -> Measurement:
    """A window in which the candidate served no request has no data to judge: the query a
    check stands for returns no series, which Argo's Prometheus provider reports as an Error
    (``NoValuesFound``), so it counts toward ``consecutiveErrorLimit`` and is measured again,
    rather than passing or pausing the rollout. A measurement taken as an analysis starts right
    after a weight was set is such a window.

    >>> from deploysim.analysis.measurement import Measurement
    >>> from deploysim.plan import AnalysisSpec, Check
    >>> no_data_as_error(AnalysisSpec(checks=(Check("error_rate", max=0.01),)), Measurement(0.0, 60.0)).error
    'no data: the candidate served no request in the window'
    """
    if m.error is not None or m.metrics or not spec.checks or m.candidate.requests > 0:
        return m
    return replace(m, error="no data: the candidate served no request in the window")


def assumption_verdict(spec: AnalysisSpec, m: Measurement) -> Verdict | None:
    """The verdict the metrics nothing simulates decide, or None to let the judge decide.

    A metric assumed to fail (``--assume NAME=fail``) fails the measurement. An analysis
    whose only metrics are unsimulated and not all assumed has nothing to judge: it is
    Inconclusive (never a silent pass), naming them and how to choose. Measured team metrics
    (a cluster run) are judged as they are.

    >>> from deploysim.analysis.measurement import Measurement
    >>> from deploysim.plan import AnalysisSpec
    >>> spec = AnalysisSpec(foreign_metrics=("conversion (datadog)",))
    >>> assumption_verdict(spec, Measurement(0.0, 60.0)).reason
    'rests on conversion, which the rehearsal does not simulate: choose with --assume conversion=pass|fail'
    >>> assumption_verdict(AnalysisSpec(foreign_metrics=spec.foreign_metrics, assumed=(("conversion", "fail"),)),
    ...                    Measurement(0.0, 60.0)).phase
    'Failed'
    """
    if m.metrics:
        return None
    assumed = dict(spec.assumed)
    failing = [n for n in spec.unsimulated if assumed.get(n) == "fail"]
    if failing:
        return Verdict(FAILED, f"{', '.join(failing)} assumed to fail (--assume)", {})
    open_ = [n for n in spec.unsimulated if n not in assumed]
    if spec.checks or not spec.unsimulated:
        return None
    if open_:
        names = ", ".join(open_)
        return Verdict(INCONCLUSIVE, f"rests on {names}, which the rehearsal does not simulate: choose with "
                                     f"--assume {open_[0]}=pass|fail", {})
    return Verdict(SUCCESSFUL, f"{', '.join(spec.unsimulated)} assumed to pass (--assume)", {})


def next_measurement_at(spec: AnalysisSpec, m: Measurement) -> float:
    """When the measurement after ``m`` is due: ``interval`` after it finished, or, for a
    metric without an interval whose measurement errored, ``error_retry`` (10 s) after it,
    as Argo's ``calculateNextReconcileTime`` (analysis/analysis.go) requeues it. A metric
    without an interval that measured is done (its count is 1), so the time is never used.

    >>> from deploysim.analysis.measurement import Measurement
    >>> from deploysim.plan import AnalysisSpec
    >>> failed = Measurement(start=40.0, end=100.0, error="connection refused")
    >>> next_measurement_at(AnalysisSpec(interval=60), failed), next_measurement_at(AnalysisSpec(interval=None), failed)
    (160.0, 110.0)
    """
    if spec.interval:
        return m.end + spec.interval
    return m.end + spec.error_retry


def window_for(spec: AnalysisSpec, now: float) -> tuple[float, float]:
    """The window a measurement taken at ``now`` covers: the query's range back from now
    (Prometheus evaluates ``rate(x[5m])`` at the instant it is asked), never before time 0.

    >>> from deploysim.plan import AnalysisSpec
    >>> window_for(AnalysisSpec(interval=60), 300.0), window_for(AnalysisSpec(interval=60, window=300), 120.0)
    ((240.0, 300.0), (0.0, 120.0))
    """
    return max(0.0, now - spec.lookback), now


def acted_on_at(spec: AnalysisSpec, run: dict[str, Any]) -> float:
    """When a run that ended is acted on: at once, or ``abort_delay`` after its last
    measurement. Flagger's ``advanceCanary`` (pkg/controller/scheduler.go) compares
    ``failedChecks`` with the threshold at the start of a tick, before it runs the checks, so
    the check that reaches the threshold rolls the canary back one interval later.

    >>> from deploysim.plan import AnalysisSpec
    >>> acted_on_at(AnalysisSpec(abort_delay=60), {"measurements": [{"at": 300.0}], "started_at": 0.0})
    360.0
    """
    last = run["measurements"][-1]["at"] if run["measurements"] else run["started_at"]
    return float(last) + spec.abort_delay


def background_done(spec: AnalysisSpec | None, run: dict[str, Any] | None, steps_done_at: float) -> bool:
    """Whether a background analysis lets the rollout complete: it has its ``count`` of
    judged measurements, or, running indefinitely, one whose window began once the steps were
    done at ``steps_done_at`` (the finished update, not the stable version alone). The verdict
    never rests on no measurement of the candidate: an update that finishes before the first
    interval waits for the analysis, and a failure then still rolls it back. Argo's
    ``reconcileBackgroundAnalysisRun`` (rollout/analysis.go) starts no background run once the
    rollout is fully promoted; deploysim holds the promotion until the run has measured, and
    the record says what the verdict rests on (``measurements_taken``).

    >>> from deploysim.plan import AnalysisSpec
    >>> run = {"phase": "Running", "measurements": [{"start": 0.0, "phase": "Successful"}]}
    >>> background_done(AnalysisSpec(count=None), run, 30.0), background_done(AnalysisSpec(count=None), run, 0.0)
    (False, True)
    >>> background_done(AnalysisSpec(count=3), run, 0.0), background_done(AnalysisSpec(count=3), {**run, "phase": "Successful"}, 0.0)
    (False, True)
    """
    if spec is None or run is None or run["phase"] != RUNNING:
        return True
    if spec.count is not None:
        return False
    return any(m.get("phase") != ERROR and m.get("start", -1.0) + 1e-9 >= steps_done_at
               for m in run["measurements"])


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
