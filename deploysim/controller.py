"""The controller: one pure reconcile function that walks any plan, in either world.

``reconcile(plan, status, observation)`` has no clock and no I/O: the time comes in the
observation, what to do goes out as actions, and the status is plain JSON-able data that
the driver keeps on the cluster, so a run that died half-way resumes where it stopped.

>>> from deploysim.plan import Plan, Pause
>>> plan = Plan(strategy="canary", replicas=2, steps=(Pause(30.0),))
>>> r = reconcile(plan, initial_status(), Observation(now=0.0))
>>> r.status["step"], r.requeue_at
(0, 30.0)
"""

from __future__ import annotations

import math
from typing import Any

from deploysim.analysis.judges import ERROR, FAILED, INCONCLUSIVE, SUCCESSFUL
from deploysim.analysis.run import (
    acted_on_at,
    background_done,
    is_due,
    record_measurement,
    start_run,
    window_for,
)
from deploysim.observation import Action, Decision, Observation, Reconciled, VersionState  # noqa: F401 - the API
from deploysim.plan import (
    AnalysisSpec,
    Analyze,
    Pause,
    Plan,
    PromotePrimary,
    Recreate,
    RollingUpdate,
    ScaleCandidate,
    ScaleDownStable,
    SetCanaryScale,
    SetWeight,
    SwitchTraffic,
)
from deploysim.rules.primary import primary_roll_move, primary_share_weight
from deploysim.strategies.canary import (
    basic_canary_move,
    canary_scale_replicas,
    is_basic_canary,
    planned_canary_replicas,
)

#: A step that sets a router's weight completes only once the router reports that weight,
#: as Argo Rollouts' ``reconcileTrafficRouting`` (rollout/trafficrouting.go) asks the
#: router to ``VerifyWeight`` and requeues the rollout until it is verified; within this
#: many points counts as verified (a router may round).
WEIGHT_TOLERANCE = 0.5
#: Argo's ``GetRolloutVerifyRetryInterval`` default: look again this long after a weight
#: that is not verified yet.
VERIFY_RETRY_SECONDS = 10.0

# status phases
PROGRESSING = "Progressing"
PAUSED = "Paused"
ABORTING = "Aborting"
PROMOTED = "Promoted"
ABORTED = "Aborted"
TERMINAL_PHASES = (PROMOTED, ABORTED)

# outcomes (the record's words)
OUTCOME_PROMOTED = "promoted"
OUTCOME_ROLLED_BACK = "rolled_back"
OUTCOME_FAILED = "failed"
OUTCOME_PAUSED = "paused"
OUTCOME_INCONCLUSIVE = "inconclusive"  # paused on an inconclusive analysis: a person decides
OUTCOME_INCOMPLETE = "incomplete"


def initial_status() -> dict[str, Any]:
    return {
        "phase": PROGRESSING,
        "step": -1,
        "step_started_at": None,
        "step_acted": False,
        "started_at": None,
        "weight": 0,
        "analysis": None,
        "background": None,
        "paused_reason": None,
        "abort": None,
        "outcome": None,
        "completed_at": None,
        "steps": [],
    }


class _Ctx:
    """Collects what one reconcile pass decides."""

    def __init__(self, plan: Plan, status: dict[str, Any], obs: Observation) -> None:
        self.plan = plan
        self.s = status
        self.obs = obs
        self.actions: list[Action] = []
        self.decisions: list[Decision] = []
        self.wake: list[float] = []

    def act(self, kind: str, **args: Any) -> None:
        self.actions.append(Action(kind, args))

    def decide(self, kind: str, reason: str, **values: Any) -> None:
        self.decisions.append(Decision(self.obs.now, self.s["step"], kind, reason, values))


def reconcile(plan: Plan, status: dict[str, Any] | None, obs: Observation) -> Reconciled:
    """One level-triggered pass: status and observation in, new status and actions out."""
    s = _copy_status(status or initial_status())
    c = _Ctx(plan, s, obs)
    if s["phase"] in TERMINAL_PHASES:
        return Reconciled(s, [], [], None)
    if s["started_at"] is None:
        s["started_at"] = obs.now
        c.decide("start", f"{plan.strategy} rollout of {plan.replicas} replicas, {len(plan.steps)} steps")
        _enter_step(c, 0)

    if s["phase"] == ABORTING:
        _continue_abort(c)
        return _done(c)

    _take_measurements(c)
    if s["phase"] != ABORTING and obs.abort_requested:
        _abort(c, obs.abort_reason, OUTCOME_ROLLED_BACK)
    if s["phase"] != ABORTING and obs.progress_deadline_exceeded and plan.progress_deadline_abort:
        if s["phase"] != PAUSED:  # Kubernetes does not check the deadline while paused
            _abort(c, "ProgressDeadlineExceeded: the rollout made no progress in time", OUTCOME_FAILED)
    if s["phase"] == ABORTING:
        _continue_abort(c)
        return _done(c)

    if s["phase"] == PAUSED:
        if not obs.promote_requested:
            return _done(c)
        c.decide("resume", f"approved ({s['paused_reason']})")
        background_pause = (s["paused_reason"] or "").startswith("analysis background")
        s["phase"] = PROGRESSING
        s["paused_reason"] = None
        if not background_pause:
            _finish_step(c)

    _background(c)
    # walk as many steps as complete now (a pause of 0 s, an immediate switch, ...)
    for _ in range(len(plan.steps) + 2):
        if s["phase"] != PROGRESSING:
            break
        if s["step"] >= len(plan.steps):
            _complete(c)
            break
        if not _run_step(c):
            break
    if s["phase"] == ABORTING:
        _continue_abort(c)
    return _done(c)


def _copy_status(status: dict[str, Any]) -> dict[str, Any]:
    s = dict(status)
    s["steps"] = [dict(x) for x in status.get("steps", [])]
    return s


def _done(c: _Ctx) -> Reconciled:
    wake = [w for w in c.wake if w is not None and math.isfinite(w)]
    return Reconciled(c.s, c.actions, c.decisions, min(wake) if wake else None)


# --- steps -----------------------------------------------------------------------------------


def _enter_step(c: _Ctx, index: int) -> None:
    c.s["step"] = index
    c.s["step_started_at"] = c.obs.now
    c.s["step_acted"] = False
    if index < len(c.plan.steps):
        step = c.plan.steps[index]
        c.s["steps"].append({"index": index, "kind": step.kind, "describe": step.describe(),
                             "start": c.obs.now, "end": None, "result": None})
        c.decide("step", f"step {index + 1}: {step.describe()}")


def _finish_step(c: _Ctx, result: str = "done") -> None:
    if c.s["steps"] and c.s["steps"][-1]["end"] is None:
        c.s["steps"][-1]["end"] = c.obs.now
        c.s["steps"][-1]["result"] = result
    c.s["analysis"] = None
    _enter_step(c, c.s["step"] + 1)


def _once(c: _Ctx) -> bool:
    """True the first time a step runs (to issue its actions once)."""
    if c.s["step_acted"]:
        return False
    c.s["step_acted"] = True
    return True


def _run_step(c: _Ctx) -> bool:
    """Advance the current step; True when it completed and the next may start now."""
    step = c.plan.steps[c.s["step"]]
    obs, plan = c.obs, c.plan
    if isinstance(step, SetWeight):
        if plan.routing == "replica_ratio":
            if not _scale_basic_canary(c, step.weight):
                return False
        else:
            cand, _ = planned_canary_replicas(plan, step.weight, c.s["step"])
            if _once(c):
                c.act("scale", version="candidate", replicas=cand)
            if not (obs.candidate.settled and obs.candidate.desired == cand):
                return False
            if plan.routing == "router" and c.s["weight"] != step.weight:
                c.act("route", weight=step.weight)
                c.s["weight"] = step.weight
            if plan.routing == "router" and abs(obs.weight - step.weight) > WEIGHT_TOLERANCE:
                # the router has not reported the weight yet: look again (VerifyWeight)
                c.wake.append(obs.now + VERIFY_RETRY_SECONDS)
                return False
        c.s["weight"] = step.weight
    elif isinstance(step, SetCanaryScale):
        replicas = canary_scale_replicas(plan, step, c.s["weight"], c.s["step"])
        if _once(c):
            c.act("scale", version="candidate", replicas=replicas)
        if not (obs.candidate.settled and obs.candidate.desired == replicas):
            return False
    elif isinstance(step, Pause):
        if step.seconds is None:
            c.s["phase"] = PAUSED
            c.s["paused_reason"] = "manual gate"
            c.decide("pause", "manual gate: waiting for approval")
            return False
        until = step.ends_at(c.s["step_started_at"], c.s["started_at"])
        if obs.now + 1e-9 < until:
            c.wake.append(until)
            return False
    elif isinstance(step, Analyze):
        if c.s["analysis"] is None:
            c.s["analysis"] = start_run(step.analysis, obs.now, _budget_used(c, step.analysis))
        run = c.s["analysis"]
        if run["phase"] == SUCCESSFUL:
            c.decide("analysis", f"{run['name']}: Successful ({run['message']})")
        elif run["phase"] in (FAILED, ERROR, INCONCLUSIVE):
            due = acted_on_at(step.analysis, run)
            if run["phase"] != INCONCLUSIVE and obs.now + 1e-9 < due:
                c.wake.append(due)  # Flagger rolls back at the tick after the failed check
                return False
            _analysis_ended(c, run)
            return False
        else:
            _request_measure(c, step.analysis, run)
            return False
    elif isinstance(step, RollingUpdate):
        if _once(c):
            c.act("rolling_update", version="candidate")
        if not _rolled_to(obs, "candidate", plan.replicas):
            return False
        c.s["weight"] = 100
    elif isinstance(step, Recreate):
        if _once(c):
            c.act("recreate", version="candidate")
        if not _rolled_to(obs, "candidate", plan.replicas):
            return False
        c.s["weight"] = 100
    elif isinstance(step, ScaleCandidate):
        if _once(c):
            c.act("scale", version="candidate", replicas=step.replicas)
        if not (obs.candidate.settled and obs.candidate.desired == step.replicas):
            return False
    elif isinstance(step, SwitchTraffic):
        c.act("route", weight=100)
        c.s["weight"] = 100
    elif isinstance(step, PromotePrimary):
        if not _promote_primary(c, step):
            return False
    elif isinstance(step, ScaleDownStable):
        until = c.s["step_started_at"] + step.delay
        if obs.now + 1e-9 < until:
            c.wake.append(until)
            return False
        if _once(c):
            c.act("scale", version="stable", replicas=0)
        if not (obs.stable.current == 0 and obs.stable.desired == 0):
            return False
    _finish_step(c)
    return True


def _promote_primary(c: _Ctx, step: PromotePrimary) -> bool:
    """A pass of Flagger's promotion (:mod:`deploysim.rules.primary`): the primary's roll,
    the candidate's share of requests as it goes, and the end at the first tick it is done."""
    s, obs, plan = c.s, c.obs, c.plan
    if _once(c):
        s["promote"] = {"base": obs.candidate.desired, "weight": s["weight"]}
    base, weight = s["promote"]["base"], s["promote"]["weight"]
    share = round(primary_share_weight(weight, base, obs.candidate.ready, obs.stable.ready))
    if share != s["weight"]:
        c.act("route", weight=share)
        s["weight"] = share
    move = primary_roll_move(plan.replicas, plan.max_surge, plan.max_unavailable, base,
                             (obs.candidate.desired, obs.candidate.current, obs.candidate.available),
                             (obs.stable.desired, obs.stable.current, obs.stable.available))
    if isinstance(move, tuple):
        c.act("scale", version=move[0], replicas=move[1])
    if move is not True:
        return False
    s["promote"] = {"ready_at": obs.now, **s["promote"]}  # IsPrimaryReady is asked at a tick
    done, start = s["promote"]["ready_at"], s["step_started_at"]
    until = start + max(1, math.ceil((done - start) / step.tick - 1e-9)) * step.tick
    if obs.now + 1e-9 < until:
        c.wake.append(until)
        return False
    return True


def _scale_basic_canary(c: _Ctx, weight: int) -> bool:
    """A pass of Argo's ``reconcileCanaryReplicaSets``: :func:`basic_canary_move`; True at ``weight``."""
    move = basic_canary_move(c.plan, weight, c.obs.candidate, c.obs.stable)
    if isinstance(move, tuple):
        c.act("scale", version=move[0], replicas=move[1])
        return False
    return move


def _rolled_to(obs: Observation, version: str, replicas: int) -> bool:
    new = obs.candidate if version == "candidate" else obs.stable
    old = obs.stable if version == "candidate" else obs.candidate
    return new.available >= replicas and new.settled and old.current == 0 and old.desired == 0


def _budget_used(c: _Ctx, spec: AnalysisSpec) -> int:
    """Failed checks already spent from the spec's failure budget (Flagger's failedChecks)."""
    if spec.failure_budget is None:
        return 0
    return int((c.s.get("failed_checks") or {}).get(spec.failure_budget, 0))


def _complete(c: _Ctx) -> None:
    """Past the last step: all traffic to the candidate, the stable version scaled down (a
    canary with a router keeps it ``scale_down_delay`` seconds, as Argo's
    ``GetScaleDownDelaySecondsOrDefault`` gives the old ReplicaSet a scale-down deadline), and
    the background analysis done (:func:`~deploysim.analysis.run.background_done`)."""
    obs, plan = c.obs, c.plan
    c.s.setdefault("steps_done_at", obs.now)
    if is_basic_canary(plan):  # past the last step Argo's GetCurrentSetWeight is 100
        if not _scale_basic_canary(c, 100):
            return
        c.s["weight"] = 100
    elif not (obs.candidate.available >= plan.replicas and obs.stable.current == 0):
        delay = plan.scale_down_delay if plan.routing == "router" else 0.0
        if not c.s.get("final_acted"):
            c.s["final_acted"] = True
            c.s["final_at"] = obs.now
            if obs.candidate.desired < plan.replicas:
                c.act("scale", version="candidate", replicas=plan.replicas)
            if c.s["weight"] < 100:
                c.act("route", weight=100)
                c.s["weight"] = 100
        if obs.stable.desired > 0:
            until = float(c.s.get("final_at") or obs.now) + delay
            if obs.now + 1e-9 < until:
                c.wake.append(until)
                return
            c.act("scale", version="stable", replicas=0)
        return
    if not background_done(plan.background, c.s["background"], float(c.s["steps_done_at"])):
        return
    c.s["phase"] = PROMOTED
    c.s["outcome"] = OUTCOME_PROMOTED
    c.s["completed_at"] = obs.now
    c.s["background"] = _stop_run(c.s["background"])
    c.decide("promote", "every step passed; the candidate serves all traffic")


# --- analysis --------------------------------------------------------------------------------


def _request_measure(c: _Ctx, spec: AnalysisSpec, run: dict[str, Any]) -> None:
    if is_due(run, c.obs.now):
        start, end = window_for(spec, c.obs.now)
        c.act("measure", analysis=spec.name, start=start, end=end)
    c.wake.append(run["next_at"])


def _take_measurements(c: _Ctx) -> None:
    """Fold the measurements the world took for us into the analysis runs."""
    for name, m in c.obs.measurements.items():
        for key, spec in _active_specs(c):
            run = c.s[key]
            if run is None or run["name"] != name or run["phase"] != "Running":
                continue
            run = record_measurement(spec, run, m)
            c.s[key] = run
            if spec.failure_budget is not None:
                c.s["failed_checks"] = {**(c.s.get("failed_checks") or {}), spec.failure_budget: run["failed"]}
            last = run["measurements"][-1]
            # the team metrics measured (query as sent, raw answer, value, verdict) go with it
            extra = {"metrics": last["metrics"]} if last.get("metrics") else {}
            c.decide("measure", f"{name}: {last['phase']} ({last['reason']})", **last["values"], **extra)
            if key == "background" and run["phase"] in (FAILED, ERROR, INCONCLUSIVE):
                _analysis_ended(c, run)


def _active_specs(c: _Ctx) -> list[tuple[str, AnalysisSpec]]:
    specs: list[tuple[str, AnalysisSpec]] = []
    if 0 <= c.s["step"] < len(c.plan.steps):
        step = c.plan.steps[c.s["step"]]
        if isinstance(step, Analyze):
            specs.append(("analysis", step.analysis))
    if c.plan.background is not None:
        specs.append(("background", c.plan.background))
    return specs


def _analysis_ended(c: _Ctx, run: dict[str, Any]) -> None:
    if run["phase"] == INCONCLUSIVE:
        if c.s["phase"] != PAUSED:
            c.s["phase"] = PAUSED
            c.s["paused_reason"] = f"analysis {run['name']} inconclusive"
            c.decide("pause", f"{run['name']}: Inconclusive, waiting for a person ({run['message']})")
        return
    _abort(c, f"analysis {run['name']} {run['phase']}: {run['message']}", OUTCOME_ROLLED_BACK)


def _background(c: _Ctx) -> None:
    spec = c.plan.background
    if spec is None or c.s["step"] < c.plan.background_start:
        return
    if c.s["background"] is None:
        c.s["background"] = start_run(spec, c.obs.now, _budget_used(c, spec))
    run = c.s["background"]
    if run["phase"] == "Running":
        _request_measure(c, spec, run)
    elif run["phase"] == SUCCESSFUL and spec.count is not None:
        return


def _stop_run(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None or run["phase"] != "Running":
        return run
    return {**run, "phase": SUCCESSFUL, "message": run["message"] or "stopped when the rollout ended"}


# --- abort -----------------------------------------------------------------------------------


def _abort(c: _Ctx, reason: str, outcome: str) -> None:
    s = c.s
    s["phase"] = ABORTING
    s["abort"] = {"reason": reason, "at": c.obs.now, "outcome": outcome, "acted": False}
    if s["steps"] and s["steps"][-1]["end"] is None:
        s["steps"][-1]["end"] = c.obs.now
        s["steps"][-1]["result"] = "aborted"
    c.decide("abort", reason)


def _continue_abort(c: _Ctx) -> None:
    """Send traffic back to the stable version and scale the candidate down; a canary without
    a router goes to weight 0 as it came (Argo's ``GetCurrentSetWeight`` is 0 once aborted).
    A canary with a router keeps the aborted candidate ``abort_scale_down_delay`` seconds
    after traffic went back (Argo's ``GetAbortScaleDownDelaySecondsOrDefault``)."""
    s, plan, obs = c.s, c.plan, c.obs
    keep = plan.abort_scale_down_delay if plan.routing == "router" and plan.strategy == "canary" else 0.0
    if is_basic_canary(plan):
        s["abort"] = {**s["abort"], "acted": True}
        s["weight"] = 0
        if not _scale_basic_canary(c, 0):
            return
    elif not s["abort"]["acted"]:
        s["abort"] = {**s["abort"], "acted": True}
        if plan.strategy == "rolling":
            c.act("rolling_update", version="stable")
        elif plan.strategy == "recreate":
            c.act("recreate", version="stable")
        else:
            c.act("scale", version="stable", replicas=plan.replicas)
            c.act("route", weight=0)
            s["abort"] = {**s["abort"], "acted_at": obs.now}
            if not keep:
                c.act("scale", version="candidate", replicas=0)
        s["weight"] = 0
    if keep and obs.candidate.desired > 0:
        until = float(s["abort"].get("acted_at", obs.now)) + keep
        if obs.now + 1e-9 < until:
            c.wake.append(until)
            return
        c.act("scale", version="candidate", replicas=0)
        return
    if not _rolled_to(obs, "stable", plan.replicas):
        return
    s["phase"] = ABORTED
    s["outcome"] = s["abort"]["outcome"]
    s["completed_at"] = obs.now
    s["background"] = _stop_run(s["background"])
    c.decide("complete", f"rolled back: the stable version serves all traffic ({s['abort']['reason']})")
