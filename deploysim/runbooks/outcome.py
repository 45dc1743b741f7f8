"""A runbook's verdict on a record: how the run ended, and whether that is its success.

Promoted is success, except for the rollback runbook, whose success is the previous version
serving again with metrics that meet the analysis checks for ``verify`` after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deploysim.durations import format_duration, parse_duration
from deploysim.errors import EXIT_NOT_PROMOTED, EXIT_OK
from deploysim.rules.checks import violations
from deploysim.runbooks.parameters import RollbackParameters, RunbookParameters
from deploysim.scenario import Scenario
from deploysim.trail import jsonable

if TYPE_CHECKING:
    from deploysim.record import Record

Decision = dict[str, Any]


@dataclass
class Outcome:
    """How a run ended, in the record's words, and whether that is the runbook's success."""

    outcome: str  # promoted, rolled_back, failed, paused, inconclusive, rolling_back, incomplete, error
    ok: bool
    status: str  # one line a person reads
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when the runbook succeeded, 1 otherwise (the convention of deploysim.errors)."""
        return EXIT_OK if self.ok else EXIT_NOT_PROMOTED


def _last(record: Record, kind: str) -> Decision | None:
    return next((d for d in reversed(record.decisions) if d["kind"] == kind), None)


def _step_text(record: Record, index: int) -> str:
    step = next((s for s in record.steps if s["index"] == index), None)
    return f"step {index + 1}: {step['describe']}" if step else f"step {index + 1}"


def judge_outcome(params: RunbookParameters, scenario: Scenario, record: Record) -> Outcome:
    """The runbook's verdict on ``record``, run with ``params`` on ``scenario``."""
    s = record.summary
    outcome = s["outcome"]
    if outcome in ("rolled_back", "failed"):
        abort = _last(record, "abort")
        why = abort["reason"] if abort else "aborted"
        if isinstance(params, RollbackParameters):
            return Outcome("failed", False, f"rollback failed: {why}")
        word = "rolled back" if outcome == "rolled_back" else "failed"
        return Outcome(outcome, False, f"{word}: {why}",
                       {"time_to_detect_seconds": s.get("time_to_detect_seconds")})
    if outcome == "inconclusive":
        pause = _last(record, "pause")
        return Outcome("inconclusive", False, f"inconclusive: {pause['reason'] if pause else 'an analysis'}; "
                                              "a person decides (deploysim promote or abort)")
    if outcome == "paused":
        pause = _last(record, "pause")
        if pause and pause["reason"].startswith("manual gate"):
            status = f"paused at manual gate ({_step_text(record, pause['step'])}); approve is {params.approve!r}"
        else:
            status = f"paused: {pause['reason'] if pause else 'waiting for a person'}"
        return Outcome("paused", False, status)
    if outcome == "rolling_back":
        abort = _last(record, "abort")
        return Outcome(outcome, False, f"rolling back ({abort['reason'] if abort else 'aborted'}): the stable "
                                       "version did not yet serve all traffic when the "
                                       f"{'simulation' if params.target == 'sim' else 'run'} ended at "
                                       f"{format_duration(s.get('simulated_seconds'))}")
    if outcome != "promoted":
        return Outcome(outcome, False, f"{outcome}: the rollout had not finished when the "
                                       f"{'simulation' if params.target == 'sim' else 'run'} ended at "
                                       f"{format_duration(s.get('simulated_seconds'))}")
    took = format_duration(round(s["rollout_seconds"])) if s.get("rollout_seconds") is not None else "?"
    if isinstance(params, RollbackParameters):
        return verify_rollback(params, scenario, record, took)
    return Outcome("promoted", True, f"promoted: {scenario.candidate.image} serves all traffic "
                                     f"({s['strategy']} rollout, {took})")


def verify_rollback(params: RollbackParameters, scenario: Scenario, record: Record, took: str) -> Outcome:
    """After the rollback, do the metrics meet the analysis checks for ``verify``?

    The window starts at the promote decision (the previous version serves everything) and
    must be observed whole: a run that ends inside it is ``incomplete``, not verified.
    """
    verify = parse_duration(params.verify)
    done = _last(record, "promote")
    at = done["at"] if done else None
    t = record.timeline
    rows = t[(t["time"] > at) & (t["start"] < at + verify)] if at is not None else t[:0]
    covered = min(float(rows["time"].max()), at + verify) - at if not rows.empty and at is not None else 0.0
    back, bad = scenario.candidate.image, scenario.stable.image
    if covered + 1e-6 < verify:
        return Outcome("incomplete", False, f"rolled back to {back} in {took}, but only "
                                            f"{format_duration(covered)} of the {format_duration(verify)} "
                                            "verification window was observed")
    requests = float(rows["requests_stable"].sum() + rows["requests_candidate"].sum())
    failed = float(rows["failed_stable"].sum() + rows["failed_candidate"].sum())
    values = {"error_rate": failed / requests if requests else float("nan"),
              "latency_p99": float(rows["latency_p99_candidate"].max())}
    broken = []
    for check in scenario.analysis.checks:
        value = values.get(check.metric)
        if value is None:
            continue
        broken += violations(check.metric, value, check.min, check.max)
    details = {"verification": {"window_seconds": verify, "from": at, "values": jsonable(values),
                                "broken": broken, "passed": not broken}}
    if broken:
        return Outcome("failed", False, f"rolled back to {back} in {took}, but the metrics are not normal "
                                        f"after it: {'; '.join(broken)}", details)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
    return Outcome("rolled_back", True, f"rolled back: {back} serves all traffic again, {bad} none "
                                        f"({took}); metrics normal for {format_duration(verify)} ({shown})",
                   details)
