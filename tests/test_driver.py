"""The one drive loop (deploysim/driver.py) over a small scripted world.

The world below obeys every action at once (pods follow their spec on the next
observation) and keeps a clock the loop advances by waiting, so each case can count what
the loop did: observations, measurements, decisions and when they came.
"""

from __future__ import annotations

import math

import pytest

from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.controller import VERIFY_RETRY_SECONDS, Action, Observation, VersionState
from deploysim.driver import Drive, Requests, drive, run_blocking
from deploysim.plan import AnalysisSpec, Analyze, Check, Pause, Plan, SetWeight


class ScriptedWorld:
    """Two versions whose pods follow their spec at the next observation."""

    def __init__(self, replicas: int = 4, weight_lag: int = 0, poll: float | None = None) -> None:
        self.t = 0.0
        self.poll = poll  # a cluster's wait returns at least this often (a person may act)
        self.desired = {"stable": replicas, "candidate": 0}
        self.asked_weight = 0.0
        self.reported_weight = 0.0
        self.weight_lag = weight_lag  # observations before the router reports a new weight
        self._lag_left = 0
        self.observed = 0
        self.applied: list[Action] = []
        self.waits: list[float | None] = []
        self.marked: list[list[str]] = []

    def now(self) -> float:
        return self.t

    def observe(self) -> Observation:
        self.observed += 1
        if self._lag_left > 0:
            self._lag_left -= 1
        else:
            self.reported_weight = self.asked_weight
        states = {v: VersionState(d, d, d, d) for v, d in self.desired.items()}
        return Observation(now=self.t, stable=states["stable"], candidate=states["candidate"],
                           weight=self.reported_weight)

    def apply(self, action: Action) -> None:
        self.applied.append(action)
        if action.kind == "scale":
            self.desired[action.args["version"]] = action.args["replicas"]
        elif action.kind == "route":
            self.asked_weight = float(action.args["weight"])
            self._lag_left = self.weight_lag

    def wait_until(self, t: float | None) -> None:
        self.waits.append(t)
        t = t if t is not None else self.t + 1.0
        self.t = t if self.poll is None else min(t, self.t + self.poll)

    def mark(self, decisions) -> None:  # noqa: ANN001
        self.marked.append([d.kind for d in decisions])


class CountingProvider:
    def __init__(self, errors: int = 0) -> None:
        self.calls: list[tuple[float, float]] = []
        self.errors = errors

    def measure(self, start: float, end: float, spec=None) -> Measurement:
        self.calls.append((start, end))
        win = VersionWindow(requests=1000, errors=self.errors, latency_p99=50.0, seconds=end - start)
        return Measurement(start, end, {"stable": VersionWindow(requests=1000, seconds=end - start),
                                        "candidate": win})


class Store:
    def __init__(self, promote_at: float | None = None, abort_at: float | None = None,
                 world: ScriptedWorld | None = None) -> None:
        self.promote_at, self.abort_at, self.world = promote_at, abort_at, world
        self.saved: list[dict] = []
        self.asked: list[str] = []

    def requests(self, phase: str) -> Requests:
        now = self.world.t
        self.asked.append(phase)
        promote = self.promote_at is not None and now >= self.promote_at and phase == "Paused"
        abort = self.abort_at is not None and now >= self.abort_at
        if abort:
            self.abort_at = None
        return Requests(promote=promote, abort=abort)

    def save(self, status: dict) -> None:
        self.saved.append(status)


def canary(*steps, routing: str = "router") -> Plan:
    return Plan(strategy="canary", replicas=4, steps=tuple(steps), routing=routing)


def kinds(run: Drive) -> list[str]:
    return [d.kind for d in run.decisions]


@pytest.mark.parametrize(("approve_after", "resumed_at"), [(0.0, 0.0), (25.0, 25.0), (90.0, 90.0)])
def test_a_manual_gate_approves_itself_after_approve_after_seconds(approve_after, resumed_at) -> None:
    world = ScriptedWorld()
    run = Drive(canary(Pause(None), SetWeight(100)), approve_after=approve_after, limit=600)
    run_blocking(drive(world, run, provider=None))
    resume = next(d for d in run.decisions if d.kind == "resume")
    assert resume.at == resumed_at
    assert run.status["outcome"] == "promoted"
    assert run.timed_out is False


def test_without_approve_after_a_gate_waits_for_the_limit_and_stays_paused() -> None:
    world = ScriptedWorld()
    run = Drive(canary(Pause(None), SetWeight(100)), approve_after=None, limit=120)
    run_blocking(drive(world, run, provider=None))
    assert run.timed_out is True
    assert run.status["phase"] == "Paused"
    assert "resume" not in kinds(run)
    assert world.t == 120  # the loop woke for the limit, not before and not after
    assert world.waits[-1] == 120


def test_a_persons_promote_passes_the_gate_and_is_asked_only_while_paused() -> None:
    world = ScriptedWorld(poll=1.0)
    store = Store(promote_at=7.0, world=world)
    run = Drive(canary(Pause(None), SetWeight(100)), approve_after=None, limit=600)
    run_blocking(drive(world, run, provider=None, store=store))
    resume = next(d for d in run.decisions if d.kind == "resume")
    assert resume.at == 7.0
    assert run.status["outcome"] == "promoted"
    assert len(store.saved) == run.passes  # the status is saved after every pass
    assert "Paused" in store.asked and store.asked[0] == "Progressing"


def test_a_persons_abort_rolls_back_and_is_recorded() -> None:
    world = ScriptedWorld(poll=1.0)
    store = Store(abort_at=30.0, world=world)
    run = Drive(canary(SetWeight(25), Pause(300.0), SetWeight(100)), approve_after=0.0, limit=600)
    run_blocking(drive(world, run, provider=None, store=store))
    abort = next(d for d in run.decisions if d.kind == "abort")
    assert abort.at == 30.0 and abort.reason == "abort requested by a person"
    assert run.status["outcome"] == "rolled_back"
    assert world.desired["candidate"] == 0 and world.asked_weight == 0.0
    assert ["abort"] in world.marked  # the world heard of the decision when it was taken


def test_measurements_are_taken_through_the_provider_and_handed_back() -> None:
    spec = AnalysisSpec(name="health", interval=30.0, count=3, checks=(Check("error_rate", max=0.01),))
    world = ScriptedWorld()
    provider = CountingProvider(errors=0)
    run = Drive(canary(SetWeight(25), Analyze(spec)), approve_after=0.0, limit=600)
    run_blocking(drive(world, run, provider))
    assert len(provider.calls) == 3
    # the first as the analysis starts (Argo), then one every interval, each looking back one
    # interval (never before time 0)
    assert [(round(a), round(b)) for a, b in provider.calls] == [(0, 0), (0, 30), (30, 60)]
    assert kinds(run).count("measure") == 3
    assert run.status["outcome"] == "promoted"
    assert run.passes > 3


def test_a_failing_measurement_aborts_at_the_measurement() -> None:
    spec = AnalysisSpec(name="health", interval=30.0, count=3, checks=(Check("error_rate", max=0.01),))
    world = ScriptedWorld()
    run = Drive(canary(SetWeight(25), Analyze(spec)), approve_after=0.0, limit=600)
    run_blocking(drive(world, run, CountingProvider(errors=100)))
    abort = next(d for d in run.decisions if d.kind == "abort")
    assert abort.at == 0.0  # the first measurement is taken as the analysis starts
    assert run.status["outcome"] == "rolled_back"


def test_without_a_provider_every_measurement_is_an_error() -> None:
    spec = AnalysisSpec(name="health", interval=10.0, count=2, consecutive_error_limit=1,
                        checks=(Check("error_rate", max=0.01),))
    run = Drive(canary(SetWeight(25), Analyze(spec)), approve_after=0.0, limit=600)
    run_blocking(drive(ScriptedWorld(), run, provider=None))
    assert run.status["outcome"] == "rolled_back"
    assert "no metrics source" in next(d for d in run.decisions if d.kind == "measure").reason


@pytest.mark.parametrize("lag", [0, 1, 4])
def test_the_next_step_waits_for_the_router_to_report_the_weight(lag) -> None:
    world = ScriptedWorld(weight_lag=lag)
    run = Drive(canary(SetWeight(5), SetWeight(50), SetWeight(100)), approve_after=0.0, limit=600)
    run_blocking(drive(world, run, provider=None))
    assert run.status["outcome"] == "promoted"
    steps = [d for d in run.decisions if d.kind == "step"]
    # each later step starts only after the router reported the previous weight: `lag`
    # more looks, each Argo's verify retry interval after the last
    gaps = [b.at - a.at for a, b in zip(steps, steps[1:], strict=False)]
    assert gaps == [VERIFY_RETRY_SECONDS * lag] * len(gaps)


def test_replica_ratio_routing_has_no_router_to_wait_for() -> None:
    world = ScriptedWorld(weight_lag=3)
    run = Drive(canary(SetWeight(50), SetWeight(100), routing="replica_ratio"), approve_after=0.0, limit=600)
    run_blocking(drive(world, run, provider=None))
    assert run.status["outcome"] == "promoted"
    assert world.waits == []  # every step completed as soon as its pods were there


def test_on_decision_hears_every_decision_in_order() -> None:
    heard: list[str] = []
    run = Drive(canary(SetWeight(50), Pause(10.0), SetWeight(100)), approve_after=0.0, limit=600,
                on_decision=lambda d: heard.append(d.kind))
    run_blocking(drive(ScriptedWorld(), run, provider=None))
    assert heard == kinds(run)
    assert heard[0] == "start" and heard[-1] == "promote"


def test_a_resumed_pause_keeps_its_gate_clock() -> None:
    """A status saved while paused carries when the pause began; a resumed loop approves at
    that time plus approve_after, not later."""
    world = ScriptedWorld()
    first = Drive(canary(Pause(None), SetWeight(100)), approve_after=None, limit=20)
    run_blocking(drive(world, first, provider=None))
    assert first.status["phase"] == "Paused" and first.status["paused_at"] == 0.0
    resumed = Drive(first.plan, status=first.status, approve_after=50.0, limit=600)
    run_blocking(drive(world, resumed, provider=None))
    assert next(d for d in resumed.decisions if d.kind == "resume").at == 50.0
    assert math.isclose(resumed.status["completed_at"], 50.0)
