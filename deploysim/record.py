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
- min available: the lowest count of ready pods serving the service during the rollout;
- restarts: container restarts of the service's pods over the run (probe, OOM and crash kills);
- failed in shutdown: users' requests routed to a deleted pod that no longer answered (the
  endpoint lag past its preStop hook and drain), a part of failed requests.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deploysim.controller import (
    ABORTING,
    OUTCOME_INCOMPLETE,
    OUTCOME_INCONCLUSIVE,
    OUTCOME_PAUSED,
    Decision,
)
from deploysim.plan import Plan
from deploysim.scenario import Scenario

RECORD_VERSION = 1
SUMMARY_KEYS = (
    "strategy", "outcome", "rolled_back", "simulated_seconds", "wall_seconds", "rollout_seconds",
    "time_to_detect_seconds", "time_to_recover_seconds", "requests", "failed_requests", "failed_in_shutdown",
    "rollout_attributable_failures", "max_pods", "min_available", "extra_pod_seconds", "restarts",
    "error_budget_consumed", "time_paused_seconds", "time_in_analysis_seconds", "measurements_taken", "seed",
    "world", "unknown",
)
#: The timeline's columns, in order, whichever world ran the plan.
TIMELINE_COLUMNS = (
    "time", "start", "seconds", "weight", "pods_stable", "pods_candidate", "ready_stable",
    "ready_candidate", "available_stable", "available_candidate", "requests_stable",
    "requests_candidate", "failed_stable", "failed_candidate", "requests_preview", "failed_preview",
    "expected_stable_only_failed", "latency_p50_stable", "latency_p99_stable",
    "latency_p50_candidate", "latency_p99_candidate", "decision",
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
        (out / "record.json").write_text(json.dumps(jsonable(self.to_dict()), indent=2) + "\n")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> Record:
        folder = Path(folder)
        data = json.loads((folder / "record.json").read_text())
        timeline = pd.read_csv(folder / "timeline.csv") if (folder / "timeline.csv").exists() else pd.DataFrame()
        return cls(summary=data["summary"], timeline=timeline, decisions=data.get("decisions", []),
                   steps=data.get("steps", []), plan=data.get("plan", {}), scenario=data.get("scenario", {}),
                   changes=data.get("changes", []))


def jsonable(value: Any) -> Any:
    """Plain JSON: NaN/inf become null, numpy scalars become numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return jsonable(value.item())
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


OUTCOME_ROLLING_BACK = "rolling_back"  # an abort decided, still under way when the run ended
# the outcomes of a candidate caught: an abort decided, whether or not the stable version was
# back when the time ran out
CAUGHT = ("rolled_back", "failed", OUTCOME_ROLLING_BACK)


def outcome_of(status: dict[str, Any]) -> str:
    """The record's outcome: the controller's, or paused / inconclusive (paused on an
    inconclusive analysis) / rolling_back (an abort still under way) when it has none yet;
    incomplete only when time ran out before any verdict.

    >>> outcome_of({"phase": "Paused", "paused_reason": "analysis step-3 inconclusive"})
    'inconclusive'
    >>> outcome_of({"phase": "Aborting", "abort": {"at": 90.0}}), outcome_of({"phase": "Progressing"})
    ('rolling_back', 'incomplete')
    """
    if status.get("outcome") is not None:
        return status["outcome"]
    if status.get("phase") == ABORTING:
        return OUTCOME_ROLLING_BACK
    if status.get("phase") != "Paused":
        return OUTCOME_INCOMPLETE
    return OUTCOME_INCONCLUSIVE if "inconclusive" in (status.get("paused_reason") or "") else OUTCOME_PAUSED


def detect_and_recover(
    status: dict[str, Any], first_candidate_at: float | None, recovered_at: float | None
) -> tuple[float | None, float | None]:
    """(time to detect, time to recover) as the glossary defines them, None without an abort."""
    abort_at = (status.get("abort") or {}).get("at")
    if abort_at is None:
        return None, None
    first = first_candidate_at if first_candidate_at is not None and first_candidate_at <= abort_at else None
    origin = first if first is not None else status.get("started_at")
    detect = None if origin is None else abort_at - origin
    recover = None if recovered_at is None else recovered_at - abort_at
    return detect, recover


# --- samples: what both worlds emit ----------------------------------------------------------


@dataclass(frozen=True)
class StateSample:
    """The service's pods and routing from time ``t`` on, until the next sample.

    ``pods`` are pods that exist and are not terminating; ``weight`` is the candidate's share
    of users' requests (0-100) as the routing in the world says; ``restarts`` counts the
    container restarts of the service's pods since the run began.
    """

    t: float
    pods: tuple[int, int]  # stable, candidate
    ready: tuple[int, int]
    available: tuple[int, int]
    terminating: int
    weight: float
    restarts: int = 0


@dataclass(frozen=True)
class TrafficBin:
    """The requests served over [start, end): per channel stable users, candidate users, and
    test traffic to a blue-green preview; ``expected_stable_only_failed`` is what the stable
    version alone, with all its replicas, would have failed of the same users' requests;
    ``failed_in_shutdown``: of those failed, the ones routed to a deleted pod no longer answering."""

    start: float
    end: float
    requests: tuple[int, int, int]
    failed: tuple[int, int, int]
    latency_p50: tuple[float, float] = (math.nan, math.nan)  # stable, candidate (ms)
    latency_p99: tuple[float, float] = (math.nan, math.nan)
    expected_stable_only_failed: float = 0.0
    failed_in_shutdown: int | None = None


@dataclass
class Samples:
    """Everything a world saw: state changes and the traffic per timeline bin."""

    states: list[StateSample] = field(default_factory=list)
    bins: list[TrafficBin] = field(default_factory=list)

    def add_state(self, sample: StateSample) -> None:
        """Keep a sample when anything in it changed (a world may report the same state often)."""
        if self.states:
            last = self.states[-1]
            if replace(last, t=sample.t) == sample:
                return
        self.states.append(sample)


def _states_array(states: list[StateSample]) -> np.ndarray:
    """Columns: t, pods s/c, ready s/c, available s/c, terminating, weight (a sample in which
    only the restarts changed is not a change of state)."""
    if not states:
        return np.zeros((0, 9))
    rows = [(s.t, *s.pods, *s.ready, *s.available, s.terminating, s.weight) for s in states]
    return np.array([r for i, r in enumerate(rows) if i == 0 or r[1:] != rows[i - 1][1:]], dtype=float)


def _at(arr: np.ndarray, t: float) -> int:
    """Index of the state in effect at time ``t`` (the last sample at or before it; the first)."""
    i = int(np.searchsorted(arr[:, 0], t + 1e-9, side="right")) - 1
    return max(i, 0)


def candidate_serves(weight: float, ready_candidate: float, plan: Plan, scenario: Scenario) -> bool:
    """True while the candidate answers requests: users' (weight above 0) or a blue-green
    preview's smoke tests (``strategy.preview_rps`` to a ready idle colour)."""
    if weight > 0:
        return True
    return plan.routing == "active" and ready_candidate > 0 and scenario.strategy.preview_rps > 0


def _pod_figures(arr: np.ndarray, window: tuple[float, float], replicas: int) -> dict[str, Any]:
    """max pods, min available and extra pod-seconds over the rollout's window."""
    if not len(arr):
        return {"max_pods": 0, "min_available": None, "extra_pod_seconds": 0.0}
    a, b = window
    i0 = _at(arr, a)
    inside = arr[i0:]
    inside = inside[inside[:, 0] <= b + 1e-9]
    # ready pods of the versions that get users' requests
    w = inside[:, 8]
    serving = inside[:, 3] * (w < 100) + inside[:, 4] * (w > 0)
    starts = np.maximum(inside[:, 0], a)
    ends = np.append(inside[1:, 0], b)
    existing = inside[:, 1] + inside[:, 2] + inside[:, 7]
    extra = float(np.sum(np.maximum(existing - replicas, 0) * np.maximum(ends - starts, 0)))
    return {"max_pods": int((arr[:, 1] + arr[:, 2]).max()),
            "min_available": int(serving.min()) if len(serving) else None,
            "extra_pod_seconds": extra}


def _first_candidate_request(arr: np.ndarray, plan: Plan, scenario: Scenario) -> float | None:
    for row in arr:
        if candidate_serves(row[8], row[4], plan, scenario):
            return float(row[0])
    return None


def _recovered(arr: np.ndarray, abort_at: float | None) -> float | None:
    """When the candidate stopped getting users' requests after the abort decision."""
    if abort_at is None or not len(arr):
        return None
    i = _at(arr, abort_at)
    if arr[i, 0] <= abort_at + 1e-9 and arr[i, 8] == 0:
        return abort_at
    later = arr[(arr[:, 0] > abort_at) & (arr[:, 8] == 0)]
    return float(later[0, 0]) if len(later) else None


def timeline(samples: Samples, decisions: list[Decision]) -> pd.DataFrame:
    """One row per traffic bin: the state at the bin's end, the mean weight over it, the
    requests, failures and latency in it, and the decisions taken in it."""
    arr = _states_array(samples.states)
    bins = samples.bins
    by_bin: dict[int, list[str]] = {}
    j = 0
    for d in decisions:
        while j < len(bins) - 1 and d.at >= bins[j].end:
            j += 1
        if d.kind in TIMELINE_DECISIONS:
            by_bin.setdefault(j, []).append(d.kind)
    rows = []
    for i, b in enumerate(bins):
        dur = b.end - b.start
        if len(arr):
            # the state the bin ended in: changes at its very end belong to the next bin
            k = max(int(np.searchsorted(arr[:, 0], b.end, side="left")) - 1, 0) if dur > 0 else _at(arr, b.end)
            state = arr[k]
            lo, hi = _at(arr, b.start), k
            seg = arr[lo:hi + 1]
            if dur > 0 and len(seg):
                starts = np.clip(seg[:, 0], b.start, b.end)
                ends = np.clip(np.append(seg[1:, 0], b.end), b.start, b.end)
                weight = float(np.sum(seg[:, 8] * (ends - starts)) / dur)
            else:
                weight = float(state[8])
        else:
            state, weight = np.zeros(9), 0.0
        rows.append({
            "time": b.end, "start": b.start, "seconds": dur, "weight": weight,
            "pods_stable": int(state[1]), "pods_candidate": int(state[2]),
            "ready_stable": int(state[3]), "ready_candidate": int(state[4]),
            "available_stable": int(state[5]), "available_candidate": int(state[6]),
            "requests_stable": b.requests[0], "requests_candidate": b.requests[1],
            "failed_stable": b.failed[0], "failed_candidate": b.failed[1],
            "requests_preview": b.requests[2], "failed_preview": b.failed[2],
            "expected_stable_only_failed": b.expected_stable_only_failed,
            "latency_p50_stable": b.latency_p50[0], "latency_p99_stable": b.latency_p99[0],
            "latency_p50_candidate": b.latency_p50[1], "latency_p99_candidate": b.latency_p99[1],
            "decision": ";".join(by_bin.get(i, [])),
        })
    return pd.DataFrame(rows, columns=list(TIMELINE_COLUMNS))


def summarize(
    samples: Samples,
    plan: Plan,
    scenario: Scenario,
    status: dict[str, Any],
    decisions: list[Decision],
    *,
    world: str,
    wall_seconds: float,
    simulated_seconds: float | None = None,
    unknown: dict[str, str] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The summary and timeline of a run, from its samples, whatever world emitted them.

    Every key of :data:`SUMMARY_KEYS` is present; a value that is ``None`` has its reason in
    ``summary["unknown"]`` (e.g. no time to detect without an abort).
    """
    reasons = dict(unknown or {})
    table = timeline(samples, decisions)
    arr = _states_array(samples.states)
    started, completed = status.get("started_at"), status.get("completed_at")
    abort_at = (status.get("abort") or {}).get("at")
    ends = ([samples.bins[-1].end] if samples.bins else []) + ([float(arr[-1, 0])] if len(arr) else [])
    last_t = max(ends, default=0.0)
    window_end = completed if completed is not None else last_t
    pods = _pod_figures(arr, (started if started is not None else 0.0, window_end), plan.replicas)
    detect, recover = detect_and_recover(
        status, _first_candidate_request(arr, plan, scenario), _recovered(arr, abort_at))

    # no traffic samples at all (a metrics source that never answered) is unknown, not zero
    counted = bool(samples.bins)
    total_requests = int(sum(b.requests[0] + b.requests[1] for b in samples.bins)) if counted else None
    failed = int(sum(b.failed[0] + b.failed[1] for b in samples.bins)) if counted else None
    in_shutdown = [b.failed_in_shutdown for b in samples.bins]
    if not counted:
        for key in ("requests", "failed_requests", "failed_in_shutdown", "rollout_attributable_failures",
                    "error_budget_consumed"):
            reasons.setdefault(key, "no traffic was counted for the run")
    elif None in in_shutdown:
        reasons.setdefault("failed_in_shutdown", "not counted by this world: its metrics do not tell which "
                           "failed requests reached a terminating pod")
    attributable: float | None = None
    if started is not None and counted:
        # from the rollout's start to the end of the run: a bad release that was promoted
        # goes on failing requests after its rollout ended
        attributable = sum(b.failed[0] + b.failed[1] - b.expected_stable_only_failed
                           for b in samples.bins if b.start >= started - 1e-9)
    span = (samples.bins[-1].end - samples.bins[0].start) if samples.bins else 0.0
    mean_rps = (total_requests or 0) / span if span > 0 else 0.0
    budget = (1 - scenario.slo.target) * mean_rps * scenario.slo.window
    budget_used = None
    if attributable is not None and budget > 0:
        budget_used = max(attributable, 0.0) / budget
    paused, in_analysis = step_times(status.get("steps", []), window_end)
    summary = {
        "strategy": plan.strategy,
        "outcome": outcome_of(status),
        "rolled_back": abort_at is not None and status.get("phase") == "Aborted",
        "simulated_seconds": _r(simulated_seconds),
        "wall_seconds": _r(wall_seconds, 4),
        "rollout_seconds": _r(completed - started) if completed is not None and started is not None else None,
        "time_to_detect_seconds": _r(detect),
        "time_to_recover_seconds": _r(recover),
        "requests": total_requests,
        "failed_requests": failed,
        "failed_in_shutdown": None if not counted or None in in_shutdown else int(sum(in_shutdown)),
        "rollout_attributable_failures": _r(attributable, 1),
        "max_pods": pods["max_pods"],
        "min_available": pods["min_available"],
        "extra_pod_seconds": _r(pods["extra_pod_seconds"], 1),
        "restarts": max((s.restarts for s in samples.states), default=None),
        "error_budget_consumed": _r(budget_used, 6),
        "time_paused_seconds": _r(paused),
        "time_in_analysis_seconds": _r(in_analysis),
        "measurements_taken": measurements_taken(decisions),
        "seed": scenario.seed,
        "world": world,
    }
    if summary["rollout_seconds"] is None:
        reasons.setdefault("rollout_seconds", "the rollout did not complete" if started is not None
                           else "the rollout never started")
    if abort_at is None:
        reasons.setdefault("time_to_detect_seconds", "no abort")
        reasons.setdefault("time_to_recover_seconds", "no abort")
    elif summary["time_to_recover_seconds"] is None:
        reasons.setdefault("time_to_recover_seconds", "the candidate still had users' requests at the end")
    if summary["rollout_attributable_failures"] is None:
        reasons.setdefault("rollout_attributable_failures", "the rollout never started")
    if summary["error_budget_consumed"] is None:
        reasons.setdefault("error_budget_consumed", "the rollout never started" if started is None
                           else "no requests, so no error budget")
    for key in ("min_available", "restarts"):
        if summary[key] is None:
            reasons.setdefault(key, "the world reported no pods")
    if summary["simulated_seconds"] is None:
        reasons.setdefault("simulated_seconds", "not a simulation")
    summary["unknown"] = {k: v for k, v in reasons.items() if summary.get(k) is None}
    return summary, table


def build_record(
    samples: Samples,
    plan: Plan,
    scenario: Scenario,
    status: dict[str, Any],
    decisions: list[Decision],
    **how: Any,
) -> Record:
    """The record of a run in any world: :func:`summarize` over its samples (``how``: the
    world's name, wall and simulated seconds, reasons for what it cannot know)."""
    summary, table = summarize(samples, plan, scenario, status, decisions, **how)
    return Record(
        summary=summary,
        timeline=table,
        decisions=[d.to_dict() for d in decisions],
        steps=status.get("steps", []),
        plan=plan.to_dict(),
        scenario=scenario.to_data(),
        status=status,
    )


def measurements_taken(decisions: list[Decision] | list[dict[str, Any]]) -> int:
    """The judged measurements the run's verdict rests on (a provider error or a window
    without data is not one).

    >>> measurements_taken([{"kind": "measure", "reason": "a: Successful (ok)"},
    ...                     {"kind": "measure", "reason": "a: Error (no data)"}, {"kind": "step", "reason": ""}])
    1
    """
    rows = [d if isinstance(d, dict) else d.to_dict() for d in decisions]
    return sum(1 for d in rows if d["kind"] == "measure" and ": Error (" not in d["reason"])


#: what a table of team-metric measurements shows, one row per metric per measurement
MEASUREMENT_COLUMNS = ("at", "step", "analysis", "metric", "phase", "value", "query", "raw", "message")


def measurement_rows(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every team metric measured in a run, from its ``measure`` decisions: when, which
    analysis, the query as sent (substituted, redacted), the raw answer, the value and the
    verdict. Empty for a run whose analyses judged only built-in checks (and in rehearsal,
    where stand-ins are judged).

    >>> d = {"at": 30.0, "step": 2, "kind": "measure", "reason": "step-3: Failed (...)",
    ...      "values": {"metrics": [{"name": "success-rate", "phase": "Failed", "value": "[0.7]",
    ...                              "query": "sum(x)", "raw": "{}", "message": "fails"}]}}
    >>> [(r["analysis"], r["metric"], r["value"]) for r in measurement_rows([d])]
    [('step-3', 'success-rate', '[0.7]')]
    """
    rows = []
    for d in decisions:
        metrics = (d.get("values") or {}).get("metrics") if d.get("kind") == "measure" else None
        for m in metrics or []:
            rows.append({"at": d["at"], "step": d["step"] + 1 if d["step"] >= 0 else None,
                         "analysis": d["reason"].split(":", 1)[0], "metric": m.get("name"),
                         "phase": m.get("phase"), "value": m.get("value"), "query": m.get("query"),
                         "raw": m.get("raw"), "message": m.get("message")})
    return rows
