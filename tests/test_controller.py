"""The pure reconcile function: plain-data status, steps, gates, analysis limits, aborts."""

from __future__ import annotations

import json

import pytest

from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.controller import (
    VERIFY_RETRY_SECONDS,
    Observation,
    VersionState,
    initial_status,
    reconcile,
)
from deploysim.plan import AnalysisSpec, Analyze, Check, Pause, Plan, PromotePrimary, SetWeight
from deploysim.rules.canary import basic_canary_replicas

FULL = VersionState(desired=4, current=4, ready=4, available=4)
NONE = VersionState()


def _plan(*steps, **kw):
    return Plan(strategy="canary", replicas=4, steps=steps, routing="router", **kw)


def _m(end, requests=1000, errors=0, error=None):
    return Measurement(end - 60, end, {"candidate": VersionWindow(requests=requests, errors=errors,
                                                                  latency_p99=100.0, seconds=60)}, error)


def test_status_is_plain_json_and_a_pause_asks_to_be_woken():
    r = reconcile(_plan(Pause(30.0)), initial_status(), Observation(now=10.0, stable=FULL))
    assert json.loads(json.dumps(r.status)) == r.status
    assert r.requeue_at == 40.0 and r.status["phase"] == "Progressing"
    r2 = reconcile(_plan(Pause(30.0)), r.status, Observation(now=40.0, stable=FULL, candidate=FULL))
    # the steps are done: send the candidate everything and scale the stable version down
    assert r2.status["phase"] == "Progressing" and r2.status["step"] == 1
    assert [(a.kind, a.args) for a in r2.actions] == [
        ("route", {"weight": 100}), ("scale", {"version": "stable", "replicas": 0})]


def test_reconcile_does_not_mutate_its_input():
    status = initial_status()
    before = json.dumps(status)
    reconcile(_plan(Pause(30.0)), status, Observation(now=0.0, stable=FULL))
    assert json.dumps(status) == before


def test_set_weight_scales_then_routes_once_the_canary_is_available():
    plan = _plan(SetWeight(25), Pause(None))
    r = reconcile(plan, None, Observation(now=0.0, stable=FULL))
    assert [a.kind for a in r.actions] == ["scale"] and r.actions[0].args == {"version": "candidate", "replicas": 1}
    pending = VersionState(desired=1, current=1, ready=0, available=0)
    r = reconcile(plan, r.status, Observation(now=5.0, stable=FULL, candidate=pending))
    assert r.actions == []
    ready = VersionState(desired=1, current=1, ready=1, available=1)
    r = reconcile(plan, r.status, Observation(now=9.0, stable=FULL, candidate=ready))
    assert [(a.kind, a.args) for a in r.actions] == [("route", {"weight": 25})]
    # the step completes once the router reports the weight (Argo's VerifyWeight), looking
    # again after the verify retry interval until then
    assert r.status["step"] == 0 and r.requeue_at == 9.0 + VERIFY_RETRY_SECONDS
    r = reconcile(plan, r.status, Observation(now=10.0, stable=FULL, candidate=ready, weight=0.0))
    assert r.actions == [] and r.status["step"] == 0
    r = reconcile(plan, r.status, Observation(now=11.0, stable=FULL, candidate=ready, weight=25.0))
    assert r.actions == []  # asked once, not again
    assert r.status["phase"] == "Paused" and r.status["paused_reason"] == "manual gate"
    # held until a person approves
    r = reconcile(plan, r.status, Observation(now=500.0, stable=FULL, candidate=ready, weight=25.0))
    assert r.status["phase"] == "Paused"
    r = reconcile(plan, r.status, Observation(now=501.0, stable=FULL, candidate=ready, weight=25.0,
                                              promote_requested=True))
    assert r.status["phase"] == "Progressing" and r.status["step"] == 2


def _analysis_plan(**spec):
    a = AnalysisSpec(name="a", interval=60, count=3, checks=(Check("error_rate", max=0.01),), **spec)
    return _plan(Analyze(a))


def _drive(plan, measurements):
    """Feed measurements one interval apart; return the final status and all decisions."""
    r = reconcile(plan, None, Observation(now=0.0, stable=FULL))
    decisions = list(r.decisions)
    for i, m in enumerate(measurements, start=1):
        now = 60.0 * i
        r = reconcile(plan, r.status, Observation(now=now, stable=FULL))
        assert any(a.kind == "measure" for a in r.actions), "a measurement was due"
        r = reconcile(plan, r.status, Observation(now=now, stable=FULL, measurements={"a": m(now)}))
        decisions += r.decisions
        if r.status["phase"] != "Progressing":
            break
    return r, decisions


def test_failure_limit_counts_failed_measurements():
    bad = lambda end: _m(end, errors=50)  # noqa: E731
    good = lambda end: _m(end, errors=1)  # noqa: E731
    r, _ = _drive(_analysis_plan(failure_limit=1), [bad, good, bad])
    assert r.status["phase"] in ("Aborting", "Aborted") and "2 failed measurements (limit 1)" in r.status["abort"]["reason"]
    r, _ = _drive(_analysis_plan(failure_limit=1), [bad, good, good])
    assert r.status["analysis"] is None and r.status["step"] >= 1  # analysis passed, moved on


def test_consecutive_errors_beyond_the_limit_abort():
    err = lambda end: _m(end, error="connection refused")  # noqa: E731
    good = lambda end: _m(end)  # noqa: E731
    r, _ = _drive(_analysis_plan(consecutive_error_limit=2), [err, err, good, err, err, err])
    assert r.status["phase"] in ("Aborting", "Aborted")
    assert "3 consecutive provider errors (limit 2)" in r.status["abort"]["reason"]


def test_inconclusive_pauses_for_a_person():
    few = lambda end: _m(end, requests=5)  # noqa: E731 - fewer than min_requests
    r, decisions = _drive(_analysis_plan(min_requests=100), [few])
    assert r.status["phase"] == "Paused" and "inconclusive" in r.status["paused_reason"]
    assert decisions[-1].kind == "pause"


def test_a_window_without_candidate_requests_is_no_data_an_error_measured_again():
    """The query a check stands for has no series (Argo's Prometheus provider: an Error):
    it neither passes nor pauses; the fifth in a row errs the run (consecutiveErrorLimit 4)."""
    empty = lambda end: _m(end, requests=0)  # noqa: E731
    r, decisions = _drive(_analysis_plan(), [empty] * 4)
    run = r.status["analysis"]
    assert (run["phase"], run["errors"], run["taken"]) == ("Running", 4, 0)
    assert all("no data" in m["reason"] for m in run["measurements"])
    r, decisions = _drive(_analysis_plan(), [empty] * 5)
    assert r.status["phase"] in ("Aborting", "Aborted") and "consecutive provider errors" in r.status["abort"]["reason"]


def test_dry_run_never_fails():
    bad = lambda end: _m(end, errors=500)  # noqa: E731
    r, _ = _drive(_analysis_plan(dry_run=True), [bad, bad, bad])
    assert r.status["abort"] is None


def test_progress_deadline_aborts_as_failed_and_rolls_back():
    plan = _plan(SetWeight(50))
    r = reconcile(plan, None, Observation(now=0.0, stable=FULL))
    stuck = VersionState(desired=2, current=2, ready=0, available=0)
    r = reconcile(plan, r.status, Observation(now=700.0, stable=FULL, candidate=stuck,
                                              progress_deadline_exceeded=True))
    assert r.status["phase"] == "Aborting" and r.status["abort"]["outcome"] == "failed"
    kinds = [(a.kind, a.args) for a in r.actions]
    assert ("route", {"weight": 0}) in kinds and ("scale", {"version": "candidate", "replicas": 0}) in kinds
    r = reconcile(plan, r.status, Observation(now=701.0, stable=FULL, candidate=NONE))
    assert r.status["phase"] == "Aborted" and r.status["outcome"] == "failed"


def test_a_resumed_status_continues_where_it_stopped():
    """The status survives a JSON round trip (as stored on a cluster) and the run goes on."""
    plan = _plan(Pause(30.0), Pause(30.0))
    r = reconcile(plan, None, Observation(now=0.0, stable=FULL))
    r = reconcile(plan, r.status, Observation(now=30.0, stable=FULL))
    stored = json.loads(json.dumps(r.status))
    r2 = reconcile(plan, stored, Observation(now=45.0, stable=FULL))
    assert r2.status["step"] == 1 and r2.requeue_at == 60.0


# --- a canary without a router moves its pods within maxSurge and maxUnavailable --------------


class PodWorld:
    """Two versions' pods: pods asked for start at once and are available one pass later, pods
    asked to go (starting ones first) go at once. Every change is checked by ``watch``."""

    def __init__(self, replicas: int, watch) -> None:  # noqa: ANN001
        self.spec = {"stable": replicas, "candidate": 0}
        self.starting = {"stable": 0, "candidate": 0}
        self.available = {"stable": replicas, "candidate": 0}
        self.watch = watch

    def observe(self, now: float, **kw) -> Observation:  # noqa: ANN003
        states = {v: VersionState(self.spec[v], self.available[v] + self.starting[v],
                                  self.available[v], self.available[v]) for v in self.spec}
        return Observation(now=now, stable=states["stable"], candidate=states["candidate"],
                           weight=100 * self.available["candidate"] / max(sum(self.available.values()), 1), **kw)

    def apply(self, action) -> None:  # noqa: ANN001
        if action.kind != "scale":
            return
        v, n = action.args["version"], action.args["replicas"]
        self.spec[v] = n
        extra = self.available[v] + self.starting[v] - n
        if extra < 0:
            self.starting[v] -= extra
        else:
            gone = min(extra, self.starting[v])
            self.starting[v] -= gone
            self.available[v] -= extra - gone
        self.watch(self)

    def tick(self) -> None:
        for v in self.spec:
            self.available[v] += self.starting[v]
            self.starting[v] = 0
        self.watch(self)


def _run_basic_canary(weights, abort_at=None):
    """Drive reconcile over a PodWorld: 10 replicas at 25%/25%; returns the final status, the
    fewest available and the most pods seen after any change, and the counts at each step's end."""
    steps = []
    for w in weights:
        steps += [SetWeight(w), Pause(60.0)]
    plan = Plan(strategy="canary", replicas=10, steps=tuple(steps), routing="replica_ratio",
                max_surge="25%", max_unavailable="25%")
    seen = {"available": [], "pods": []}

    def watch(world) -> None:  # noqa: ANN001
        seen["available"].append(sum(world.available.values()))
        seen["pods"].append(sum(world.available.values()) + sum(world.starting.values()))

    world = PodWorld(10, watch)
    status, now, ends = None, 0.0, {}
    for _ in range(500):
        r = reconcile(plan, status, world.observe(now, abort_requested=abort_at is not None and now >= abort_at))
        status = r.status
        for a in r.actions:
            world.apply(a)
        for d in r.decisions:
            if d.kind == "step" and d.step > 0 and isinstance(plan.steps[d.step - 1], SetWeight):
                ends[plan.steps[d.step - 1].weight] = (world.spec["candidate"], world.spec["stable"])
        if status["phase"] in ("Promoted", "Aborted"):
            break
        if not r.actions:
            world.tick()
            now = r.requeue_at if r.requeue_at is not None else now + 1.0
    return status, min(seen["available"]), max(seen["pods"]), ends


@pytest.mark.parametrize("weights", [[20, 100], [25, 50, 75, 100], [5, 100]])
def test_basic_canary_never_drops_below_8_available_nor_runs_more_than_13_pods(weights):
    status, least, most, ends = _run_basic_canary(weights)
    assert status["outcome"] == "promoted"
    assert least == 8  # min available is spent, never overdrawn
    assert 10 < most <= 13  # the surge is used, never exceeded
    assert ends == {w: basic_canary_replicas(10, w, 3) for w in weights}


def test_basic_canary_abort_goes_back_within_the_same_limits():
    status, least, most, _ = _run_basic_canary([50, 100], abort_at=61.0)
    assert status["outcome"] == "rolled_back" and status["phase"] == "Aborted"
    assert least >= 8 and most <= 13


def test_promote_primary_rolls_within_the_surge_and_ends_at_the_first_tick_after_the_roll():
    """Flagger's Promote: the primary (stable) rolls to the new version beside the canary's 4
    pods, one version per pass; the candidate's share grows with the primary's new ready pods;
    the step ends at the tick after the roll is done, even when the world wakes the loop a
    little late (IsPrimaryReady is asked at ticks, not chased past them)."""
    plan = _plan(PromotePrimary(10.0), max_surge=1, max_unavailable=0)
    status = {**initial_status(), "started_at": 0.0, "step": 0, "step_started_at": 0.0, "weight": 50}
    r = reconcile(plan, status, Observation(now=0.0, stable=FULL, candidate=FULL))
    assert [(a.kind, a.args) for a in r.actions] == [("scale", {"version": "candidate", "replicas": 5})]
    grown = VersionState(desired=5, current=5, ready=5, available=5)
    r = reconcile(plan, r.status, Observation(now=1.0, stable=FULL, candidate=grown))
    assert [(a.kind, a.args) for a in r.actions] == [("route", {"weight": 60}),  # 50 + 50 x 1 new of 5 ready
                                                      ("scale", {"version": "stable", "replicas": 3})]
    done = VersionState(desired=8, current=8, ready=8, available=8)
    r = reconcile(plan, r.status, Observation(now=4.0, stable=NONE, candidate=done))
    assert ("route", {"weight": 100}) in [(a.kind, a.args) for a in r.actions]
    assert r.status["step"] == 0 and r.requeue_at == 10.0  # the first tick after the roll
    r = reconcile(plan, r.status, Observation(now=10.3, stable=NONE, candidate=done))  # woken late
    assert r.status["step"] == 1
