"""The record: timeline, decisions, steps and summary, whichever world ran the plan.

Every number means what the glossary in ARCHITECTURE.md says:

- failed requests: answered with an error or not answered (no ready endpoint, shed);
- rollout-attributable failures: failed requests above what the stable version alone,
  with all its replicas, would have produced over the same window (expected value); the
  window runs from the rollout's start to the end of the run, so a bad release that was
  promoted keeps counting;
- requests and failed requests are users' requests; test traffic sent to a blue-green
  preview is kept apart (``requests_preview`` in the timeline);
- time to detect: first request routed to the candidate -> the abort decision (from the
  rollout's start when the candidate never got a request);
- time to recover: the abort decision -> the candidate gets no more requests;
- rollout duration: first action -> candidate serves everything and the stable version is
  scaled down, or the abort completes;
- extra pod-seconds: pod-seconds above the steady replica count during the rollout;
- min available: the lowest count of ready pods serving the service during the rollout.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from deploysim.controller import OUTCOME_INCOMPLETE, OUTCOME_PAUSED, Decision
from deploysim.plan import Plan
from deploysim.scenario import Scenario

if TYPE_CHECKING:
    from deploysim.sim.world import SimWorld

RECORD_VERSION = 1
SUMMARY_KEYS = (
    "strategy", "outcome", "rolled_back", "simulated_seconds", "wall_seconds", "rollout_seconds",
    "time_to_detect_seconds", "time_to_recover_seconds", "requests", "failed_requests",
    "rollout_attributable_failures", "max_pods", "min_available", "extra_pod_seconds",
    "error_budget_consumed", "time_paused_seconds", "time_in_analysis_seconds", "seed",
)


@dataclass
class Record:
    """What a run leaves: the same shape from the simulator and from a real cluster."""

    summary: dict[str, Any]
    timeline: pd.DataFrame
    decisions: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    plan: dict[str, Any]
    scenario: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    pod_trace: pd.DataFrame | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)  # API changes on a real cluster

    def to_dict(self) -> dict[str, Any]:
        data = {
            "version": RECORD_VERSION,
            "summary": self.summary,
            "decisions": self.decisions,
            "steps": self.steps,
            "plan": self.plan,
            "scenario": self.scenario,
        }
        if self.changes:
            data["changes"] = self.changes
        return data

    def save(self, out: str | Path) -> Path:
        """timeline.csv, summary.json and record.json into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.timeline.to_csv(out / "timeline.csv", index=False)
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2, sort_keys=True) + "\n")
        (out / "record.json").write_text(json.dumps(_jsonable(self.to_dict()), indent=2) + "\n")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> Record:
        folder = Path(folder)
        data = json.loads((folder / "record.json").read_text())
        timeline = pd.read_csv(folder / "timeline.csv") if (folder / "timeline.csv").exists() else pd.DataFrame()
        return cls(summary=data["summary"], timeline=timeline, decisions=data.get("decisions", []),
                   steps=data.get("steps", []), plan=data.get("plan", {}), scenario=data.get("scenario", {}),
                   changes=data.get("changes", []))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)


def step_times(steps: list[dict[str, Any]], end: float | None) -> tuple[float, float]:
    """(seconds paused, seconds in analysis) over the steps taken."""
    paused = analysis = 0.0
    for s in steps:
        stop = s["end"] if s["end"] is not None else end
        if stop is None:
            continue
        if s["kind"] == "pause":
            paused += stop - s["start"]
        elif s["kind"] == "analyze":
            analysis += stop - s["start"]
    return paused, analysis


TIMELINE_DECISIONS = ("start", "step", "abort", "promote", "pause", "resume", "complete")


def outcome_of(status: dict[str, Any]) -> str:
    """The record's outcome: the controller's, or paused / incomplete when it has none yet."""
    if status.get("outcome") is not None:
        return status["outcome"]
    return OUTCOME_PAUSED if status.get("phase") == "Paused" else OUTCOME_INCOMPLETE


def detect_and_recover(
    status: dict[str, Any], first_candidate_at: float | None, recovered_at: float | None
) -> tuple[float | None, float | None]:
    """(time to detect, time to recover) as the glossary defines them, None without an abort."""
    abort_at = (status.get("abort") or {}).get("at")
    if abort_at is None:
        return None, None
    first = first_candidate_at if first_candidate_at is not None and first_candidate_at <= abort_at else None
    detect = abort_at - (first if first is not None else status.get("started_at"))
    recover = None if recovered_at is None else recovered_at - abort_at
    return detect, recover


def build_record(
    scenario: Scenario,
    plan: Plan,
    world: SimWorld,
    status: dict[str, Any],
    decisions: list[Decision],
    wall_seconds: float,
) -> Record:
    """The record of a simulated run."""
    bins = world.bins
    dec_by_bin: dict[int, list[str]] = {}
    j = 0
    for d in decisions:
        while j < len(bins) - 1 and d.at >= bins[j].end:
            j += 1
        if d.kind in TIMELINE_DECISIONS:
            dec_by_bin.setdefault(j, []).append(d.kind)
    rows = []
    for i, b in enumerate(bins):
        dur = b.end - b.start
        req = b.requests or (0, 0, 0)
        rows.append({
            "time": b.end,
            "start": b.start,
            "seconds": dur,
            "weight": b.weight_time / dur if dur else 0.0,
            "pods_stable": b.pods[0],
            "pods_candidate": b.pods[1],
            "ready_stable": b.ready[0],
            "ready_candidate": b.ready[1],
            "requests_stable": req[0],
            "requests_candidate": req[1],
            "failed_stable": b.failed[0],
            "failed_candidate": b.failed[1],
            "requests_preview": req[2],
            "failed_preview": b.failed[2],
            "latency_p50_stable": b.latency[0][0] if b.latency[0] else math.nan,
            "latency_p99_stable": b.latency[0][2] if b.latency[0] else math.nan,
            "latency_p50_candidate": b.latency[1][0] if b.latency[1] else math.nan,
            "latency_p99_candidate": b.latency[1][2] if b.latency[1] else math.nan,
            "decision": ";".join(dec_by_bin.get(i, [])),
        })
    timeline = pd.DataFrame(rows)

    started = status.get("started_at")
    completed = status.get("completed_at")
    outcome = outcome_of(status)
    abort_at = (status.get("abort") or {}).get("at")
    detect, recover = detect_and_recover(status, world.first_candidate_request_at, world.recovered_at)

    window_end = completed if completed is not None else scenario.duration
    attributable = 0.0
    if started is not None:
        # from the rollout's start to the end of the run: a bad release that was promoted
        # goes on failing requests after its rollout ended
        for b in bins:
            if b.start >= started - 1e-9:
                users = (b.requests or (0, 0, 0))[:2]
                expected = b.lam[0] + b.lam[1]
                attributable += sum(b.failed[:2]) - b.baseline_mu * (sum(users) / expected if expected else 0.0)
    total_requests = int(timeline[["requests_stable", "requests_candidate"]].to_numpy().sum()) if rows else 0
    failed = int(timeline[["failed_stable", "failed_candidate"]].to_numpy().sum()) if rows else 0
    mean_rps = total_requests / max(scenario.duration, 1e-9)
    budget = (1 - scenario.slo.target) * mean_rps * scenario.slo.window
    paused, in_analysis = step_times(status.get("steps", []), window_end)
    summary = {
        "strategy": plan.strategy,
        "outcome": outcome,
        "rolled_back": abort_at is not None and status.get("phase") == "Aborted",
        "simulated_seconds": _r(world.env.now),
        "wall_seconds": _r(wall_seconds, 4),
        "rollout_seconds": _r(completed - started) if completed is not None and started is not None else None,
        "time_to_detect_seconds": _r(detect),
        "time_to_recover_seconds": _r(recover),
        "requests": total_requests,
        "failed_requests": failed,
        "rollout_attributable_failures": _r(attributable, 1),
        "max_pods": world.max_pods,
        "min_available": world.min_available,
        "extra_pod_seconds": _r(world.extra_pod_seconds, 1),
        "error_budget_consumed": _r(max(attributable, 0.0) / budget if budget > 0 else None, 6),
        "time_paused_seconds": _r(paused),
        "time_in_analysis_seconds": _r(in_analysis),
        "seed": scenario.seed,
    }
    return Record(
        summary=summary,
        timeline=timeline,
        decisions=[d.to_dict() for d in decisions],
        steps=status.get("steps", []),
        plan=plan.to_dict(),
        scenario=scenario.to_data(),
        status=status,
        pod_trace=None if world.pod_trace is None else pd.DataFrame(
            world.pod_trace, columns=["time", "pods_stable", "pods_candidate", "ready_stable",
                                      "ready_candidate", "available_stable", "available_candidate"]),
    )
