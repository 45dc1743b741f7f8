"""Probes: the kubelet's rules (deploysim/rules/probes.py) and what they cost in a rehearsal.

The rules follow kubernetes/kubernetes pkg/kubelet/prober (``worker.doProbe``,
``manager.UpdatePodStatus``) and the restart back-off of pkg/kubelet/kuberuntime
``doBackOff``; the cases below are the kubelet's, worked by hand.
"""

from __future__ import annotations

import math

import pytest
import simcapture

from deploysim.errors import ScenarioError
from deploysim.rules.probes import (
    BACKOFF_MAX,
    BackOff,
    Timing,
    back_off_delays,
    failure_detected,
    first_probe,
    next_tick,
    readiness_passes,
    restart_after,
    startup_result,
    with_silent_endpoints,
)
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse

world = simcapture.world  # the fixture: the world of the last rehearsal
_scenario = simcapture.rolling_scenario
REPLICAS, RPS = simcapture.REPLICAS, simcapture.RPS


# --- the rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "period", "origin", "tick"), [
    (0.0, 10.0, 0.0, 0.0), (0.1, 10.0, 0.0, 10.0), (20.0, 10.0, 0.0, 20.0), (-3.0, 10.0, 0.0, 0.0),
    (7.0, 5.0, 1.0, 11.0), (6.0, 5.0, 1.0, 6.0),
])
def test_ticks_run_every_period_from_the_workers_start(t, period, origin, tick):
    assert next_tick(t, period, origin) == tick


@pytest.mark.parametrize(("initial", "container", "origin", "first"), [
    (0, 0.0, 0.0, 0.0),    # probed as the worker starts
    (5, 0.0, 0.0, 10.0),   # doProbe returns early before initialDelaySeconds: the next tick
    (10, 0.0, 0.0, 10.0),  # a delay on the grid is probed at that tick
    (5, 23.0, 0.0, 30.0),  # a restarted container: its own delay, the worker's grid
])
def test_the_first_probe_waits_for_the_initial_delay_on_the_workers_grid(initial, container, origin, first):
    assert first_probe(container, Timing(initial_delay=initial), container, origin) == first


@pytest.mark.parametrize(("app_up", "probe", "started", "ready"), [
    (20.0, Timing(initial_delay=5), 0.0, 20.0),    # up on a tick: ready at it
    (21.0, Timing(initial_delay=5), 0.0, 30.0),    # just after: the next tick
    (3.0, Timing(initial_delay=15), 0.0, 20.0),    # up early: the initial delay decides
    (21.0, Timing(initial_delay=5, success_threshold=3), 0.0, 50.0),  # two more successes
    (11.0, Timing(initial_delay=5), 12.0, 12.0),   # a startup probe passed at 12: probed at once
    (11.0, Timing(initial_delay=15), 12.0, 20.0),  # ... but not before the readiness delay
    (0.0, Timing(), 0.0, 0.0),                     # up at once, no delay: ready at once
    (math.inf, Timing(), 0.0, math.inf),           # never answers: never ready
])
def test_readiness_passes_at_the_first_probe_once_the_application_answers(app_up, probe, started, ready):
    assert readiness_passes(app_up, probe, started, container=0.0, origin=0.0) == ready


@pytest.mark.parametrize(("app_up", "started"), [(0.0, (True, 0.0)), (8.0, (True, 10.0)), (10.0, (True, 10.0)),
                                                 (10.5, (False, 10.0)), (math.inf, (False, 10.0))])
def test_the_startup_probe_passes_or_kills_at_its_failure_threshold(app_up, started):
    # probes at 0, 5, 10 with 3 failures allowed
    assert startup_result(app_up, Timing(period=5), container=0.0, origin=0.0) == started


def test_failures_are_counted_in_a_row_and_a_hung_probe_waits_its_timeout():
    t = Timing(period=10, failure_threshold=3, timeout=2)
    assert failure_detected(33.0, t, container=0.0, origin=0.0) == 62.0  # 40, 50, 60 fail; + 2 s
    assert failure_detected(40.0, t, container=0.0, origin=0.0) == 62.0
    assert failure_detected(33.0, Timing(period=10, failure_threshold=1), 0.0, 0.0) == 41.0
    # a container not yet listening fails at once; up at 25, only 0, 10, 20 fail: killed at 20
    assert failure_detected(0.0, t, 0.0, 0.0, until=25.0, timed_out=False) == 20.0
    assert failure_detected(0.0, t, 0.0, 0.0, until=20.0, timed_out=False) is None


def test_restarts_back_off_as_crashloopbackoff():
    assert back_off_delays(9) == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
    at, entry = restart_after(1000.0, BackOff(BACKOFF_MAX, 300.0))  # 700 s since it last moved: expired
    assert (at, entry) == (1000.0, BackOff(10.0, 1000.0))
    at, entry = restart_after(800.0, BackOff(40.0, 300.0))  # 500 s: still remembered
    assert (at, entry) == (840.0, BackOff(80.0, 840.0))


@pytest.mark.parametrize(("p_fail", "endpoints", "silent", "share"), [
    (0.01, 10, 0, 0.01), (0.01, 10, 2, 0.208), (0.0, 4, 4, 1.0), (0.5, 4, 1, 0.625), (0.2, 0, 0, 0.2),
])
def test_requests_to_silent_endpoints_fail(p_fail, endpoints, silent, share):
    assert with_silent_endpoints(p_fail, endpoints, silent) == pytest.approx(share)


# --- the scenario keys ---------------------------------------------------------------------


@pytest.mark.parametrize(("override", "key", "says"), [
    ("pod.probes.liveness.success_threshold=2", "pod.probes.liveness", "must be 1 for a liveness probe"),
    ("pod.probes.startup.success_threshold=2", "pod.probes.startup", "must be 1 for a startup probe"),
    ("pod.probes.readiness.period=0.5s", "pod.probes.readiness.period", "at least 1"),
    ("pod.probes.readiness.failure_threshold=0", "pod.probes.readiness.failure_threshold", "at least 1"),
    ("candidate.probes.startup.dependency=true", "candidate.probes.startup", "only a readiness probe"),
    ("candidate.hang_rate_per_hour=-1", "candidate.hang_rate_per_hour", "at least 0"),
])
def test_bad_probe_keys_name_the_key_and_what_is_allowed(override, key, says):
    with pytest.raises(ScenarioError) as err:
        load_scenario(overrides=[override])
    assert str(err.value).startswith(key) or f" {key}" in str(err.value), str(err.value)
    assert says in str(err.value)


def test_probes_read_as_kubernetes_defaults():
    s = load_scenario(overrides=["pod.probes={readiness: {}}", "candidate.probes={}"])
    r = s.pod.probes.readiness
    assert (r.initial_delay, r.period, r.timeout, r.failure_threshold, r.success_threshold) == (0, 10, 1, 3, 1)
    assert s.pod.probes.liveness is None and s.candidate.probes.readiness is None
    assert load_scenario().pod.probes is None  # unset: ready exactly when the application serves


# --- what they cost -----------------------------------------------------------------------


def test_a_rolling_update_without_a_readiness_probe_fails_requests_the_probe_saves():
    ideal = rehearse(_scenario()).summary
    without = rehearse(_scenario(probes={})).summary
    probed = rehearse(_scenario(probes={"readiness": {"period": "5s"}})).summary
    print(f"\nrolling update, {REPLICAS} pods starting in 20 s at {RPS:g} rps: rollout-attributable failures "
          f"without a readiness probe {without['rollout_attributable_failures']:g}, with one "
          f"{probed['rollout_attributable_failures']:g} (no probe timing: {ideal['rollout_attributable_failures']:g})")
    # without one every new pod is ready as its container starts: the Deployment replaces all
    # ten at once and every request of the next 20 s reaches an application not yet up
    assert without["rollout_attributable_failures"] == pytest.approx(RPS * 20 * 0.999, rel=0.05)
    assert without["min_available"] == REPLICAS  # what the Deployment sees is fine throughout
    assert abs(probed["rollout_attributable_failures"]) < 0.01 * without["rollout_attributable_failures"]
    assert probed["outcome"] == without["outcome"] == "promoted"
    assert probed["rollout_seconds"] > without["rollout_seconds"]  # the probe holds the rollout back


def test_pods_become_ready_on_the_probes_grid(world):
    # initial delay 5 s, every 10 s: an application up at 21 s is ready at 30, at 20 s at 20
    for startup, expected in (("21s", 30.0), ("20s", 20.0), ("3s", 10.0)):
        rehearse(_scenario(startup=startup, probes={"readiness": {"initial_delay": "5s", "period": "10s"}}))
        new = [p for p in world().pods.values() if p.version == "candidate" and p.ready_since is not None]
        assert len(new) == REPLICAS
        assert {round(p.ready_since - p.probe.container, 6) for p in new} == {expected}


def test_a_candidate_that_never_answers_is_promoted_without_a_readiness_probe():
    kw = {"probes": {}}
    rec = rehearse(_scenario("candidate.never_ready=true", **kw))
    print(f"\na never-ready candidate without a readiness probe: {rec.summary['outcome']}, "
          f"{rec.summary['failed_requests']} failed requests")
    assert rec.summary["outcome"] == "promoted"  # ready as its container runs, so the rollout completes
    after = rec.timeline[rec.timeline.time > 120]
    assert after.failed_candidate.sum() == after.requests_candidate.sum() > 0  # and it answers nothing
    probed = rehearse(_scenario("candidate.never_ready=true", "strategy.progress_deadline_seconds=2m",
                                probes={"readiness": {"period": "5s"}}))
    assert probed.summary["outcome"] == "failed"  # the probe stops it at the progress deadline


def test_a_liveness_probe_shorter_than_startup_restarts_the_pod_until_a_startup_probe_guards_it(world):
    early = {"liveness": {"period": "5s", "failure_threshold": 2}, "readiness": {"period": "5s"}}
    rec = rehearse(_scenario("strategy.progress_deadline_seconds=3m", f"candidate.probes={early}"))
    restarts = world().restarts
    looped = max(p.probe.restarts for p in world().pods.values() if p.version == "candidate")
    guarded = rehearse(_scenario(f"candidate.probes={ {**early, 'startup': {'period': '5s', 'failure_threshold': 10}} }"))
    print(f"\nliveness killing a 20 s startup at 5 s: {rec.summary['outcome']} after {restarts} restarts; "
          f"behind a startup probe: {guarded.summary['outcome']}, {world().restarts} restarts")
    assert rec.summary["outcome"] == "failed" and restarts >= REPLICAS
    assert looped >= 4  # one pod killed again and again, backing off (0, 10, 20, 40 s ...)
    assert max(p.probe.restarts for p in world().pods.values() if p.probe is not None) == 0  # (the guarded run)
    assert guarded.summary["outcome"] == "promoted" and world().restarts == 0


def test_a_liveness_restart_storm(world):
    """Candidate pods hang 30 times an hour each: without liveness they stay hung, with it the
    kubelet restarts them, each pod's restarts backing off (CrashLoopBackOff)."""
    hang = ["candidate.hang_rate_per_hour=30", "duration=30m"]
    readiness = {"period": "5s"}
    liveness = {"period": "10s", "initial_delay": "30s"}
    stuck = rehearse(_scenario(*hang, probes={"readiness": readiness}))
    storm = rehearse(_scenario(*hang, probes={"readiness": readiness, "liveness": liveness}))
    w = world()
    restarts = w.restarts
    blind = rehearse(_scenario(*hang, probes={"liveness": liveness}))
    tail = storm.timeline[storm.timeline.time >= 20 * 60]
    print(f"\nhangs at 30/h per pod: readiness only {stuck.summary['failed_requests']} failed requests and "
          f"{int(stuck.timeline.ready_candidate.iloc[-1])} ready at the end; readiness and liveness "
          f"{storm.summary['failed_requests']} failed, {restarts} restarts; liveness alone "
          f"{blind.summary['failed_requests']} failed")
    assert restarts >= 2 * REPLICAS  # a storm: every pod restarted, most of them more than once
    # the kubelet backs off: some pod waited 10 s or more before a restart, so not all are ready at once
    backed_off = [p.probe.backoff for p in w.pods.values() if p.probe is not None and p.probe.backoff is not None]
    assert any(b.seconds >= 20.0 for b in backed_off)
    assert tail.ready_candidate.min() < REPLICAS
    # without liveness hung pods never come back: the rollout stalls with capacity lost
    assert int(stuck.timeline.ready_candidate.iloc[-1]) < int(storm.timeline.ready_candidate.iloc[-30:].max())
    # without readiness hung pods keep their share of requests until the kubelet kills them,
    # and restarted ones take requests before they answer
    assert blind.summary["failed_requests"] > 2 * storm.summary["failed_requests"]


def test_a_readiness_check_on_a_failing_dependency_takes_pods_out_of_rotation():
    outage = ["faults.0.kind=dependency_outage", "faults.0.at=5m", "faults.0.duration=3m", "faults.0.error_rate=1",
              "start_at=14m"]  # the rollout waits until after the outage
    plain = rehearse(_scenario(*outage, probes={"readiness": {"period": "5s"}}))
    checks = rehearse(_scenario(*outage, probes={"readiness": {"period": "5s", "dependency": True,
                                                               "success_threshold": 2}}))
    during = lambda rec: rec.timeline[(rec.timeline.time >= 6 * 60) & (rec.timeline.time < 8 * 60)]  # noqa: E731
    after = lambda rec: rec.timeline[(rec.timeline.time >= 8 * 60) & (rec.timeline.time < 9 * 60)]  # noqa: E731
    print(f"\na 3-minute dependency outage: failed requests {plain.summary['failed_requests']} when readiness "
          f"ignores it, {checks.summary['failed_requests']} when it checks it")
    assert during(plain).ready_stable.min() == REPLICAS
    assert during(checks).ready_stable.max() == 0  # every pod out of rotation
    assert after(checks).ready_stable.iloc[-1] == REPLICAS  # back once it answers twice in a row
    # the outage failed everything either way; the way back costs the probe's two periods
    assert after(checks).failed_stable.sum() > after(plain).failed_stable.sum()
