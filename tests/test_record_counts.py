"""The record counts what the probes, the saturation model and graceful shutdown cost:
``restarts`` (container restarts over the run) and ``failed_in_shutdown`` (users' requests
routed to a deleted pod that no longer answered), in rehearsal and on a cluster."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import pytest
import simcapture
from kubernetes import client

from deploysim.kube.restarts import note_restarts, pod_restart_counts, restarts_between
from deploysim.kube.world import KubeWorld
from deploysim.plan import Plan, RollingUpdate
from deploysim.record import SUMMARY_KEYS, Samples, StateSample, TrafficBin, summarize
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse

world = simcapture.world  # the fixture: the world of the last rehearsal
_rolling = simcapture.rolling_scenario
REPLICAS, RPS = simcapture.REPLICAS, simcapture.RPS

LAG = 3.0


def _lagged(pre_stop: float | None = None, **pod: Any):
    """Deleted pods stay routed for 3 s and stop answering at SIGTERM (as tests/test_shutdown.py)."""
    shutdown = {"startup": "10s", "endpoint_lag": f"{LAG:g}s", "drain": 0, **pod}
    if pre_stop is not None:
        shutdown["pre_stop"] = pre_stop
    return _rolling(seed=11, **shutdown)


# --- the defaults ------------------------------------------------------------------------------


def test_a_scenario_without_probes_limits_or_lag_counts_nothing():
    for sc in (load_scenario(), _rolling()):
        s = rehearse(sc).summary
        assert (s["restarts"], s["failed_in_shutdown"]) == (0, 0)
        assert "restarts" not in s["unknown"] and "failed_in_shutdown" not in s["unknown"]
        assert list(s) == list(SUMMARY_KEYS)


# --- restarts in rehearsal ---------------------------------------------------------------------


def test_a_liveness_restart_storm_is_counted_in_the_record(world):
    hang = ["candidate.hang_rate_per_hour=30", "duration=30m"]
    storm = rehearse(_rolling(*hang, probes={"readiness": {"period": "5s"},
                                             "liveness": {"period": "10s", "initial_delay": "30s"}}))
    w = world()
    per_pod = sum(p.probe.restarts for p in w.pods.values() if p.probe is not None)
    print(f"\nliveness storm: {storm.summary['restarts']} restarts in the record")
    assert storm.summary["restarts"] == w.restarts == per_pod
    assert storm.summary["restarts"] >= 2 * REPLICAS
    stuck = rehearse(_rolling(*hang, probes={"readiness": {"period": "5s"}}))  # no liveness: nothing restarts
    assert stuck.summary["restarts"] == 0 and world().restarts == 0


def test_a_liveness_probe_killing_a_slow_start_is_counted_and_a_startup_probe_saves_it(world):
    early = {"liveness": {"period": "5s", "failure_threshold": 2}, "readiness": {"period": "5s"}}
    looped = rehearse(_rolling("strategy.progress_deadline_seconds=3m", f"candidate.probes={early}"))
    assert looped.summary["restarts"] == world().restarts >= REPLICAS
    guarded = {**early, "startup": {"period": "5s", "failure_threshold": 10}}
    assert rehearse(_rolling(f"candidate.probes={guarded}")).summary["restarts"] == 0


def _oom(memory_per_rps: str):
    """A canary whose candidate uses 100Mi + ``memory_per_rps`` per rps against a 256Mi limit
    (as tests/test_saturation_sim.py): 8Mi is 260Mi at a pod's 20 rps, past it; 4Mi is 180Mi."""
    return load_scenario(data={
        "service": "checkout", "replicas": 10, "duration": "1h", "start_at": "1m", "seed": 3,
        "traffic": {"rps": 200, "shape": "constant"},
        "pod": {"capacity_rps": 50, "startup": "10s", "startup_jitter": "2s",
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}},
        "stable": {"image": "app:1.0.0", "error_rate": 0.001, "memory_base": "100Mi", "memory_per_rps": "4Mi"},
        "candidate": {"image": "app:1.1.0", "error_rate": 0.001, "memory_base": "100Mi",
                      "memory_per_rps": memory_per_rps},
        "analysis": {"interval": "1m", "count": 3, "checks": [{"metric": "error_rate", "max": 0.01}]},
        "strategy": {"kind": "canary", "traffic_router": True,
                     "steps": [{"set_weight": 50}, {"pause": "20m"}, {"analysis": True}, {"set_weight": 100}]},
    })


def test_oom_kills_are_counted_as_restarts(world):
    leak = rehearse(_oom("8Mi"))
    kills = world().usage.kills
    print(f"\nOOM kill loop: {leak.summary['restarts']} restarts in the record, {len(kills)} kills")
    assert leak.summary["restarts"] == len(kills) > 0
    assert world().restarts == 0  # no probe killed anything: every restart is an OOM kill
    assert rehearse(_oom("4Mi")).summary["restarts"] == 0


def test_crashes_are_counted_as_restarts(world):
    rec = rehearse(_rolling("candidate.crash_rate_per_hour=20"))
    assert rec.summary["restarts"] == world().crashes > 0


# --- requests failed at shutdown -----------------------------------------------------------------


def test_a_prestop_shorter_than_the_lag_fails_requests_at_shutdown_one_that_covers_it_none():
    none, short, covers = (rehearse(_lagged(p)).summary for p in (None, 1.0, 5.0))
    print(f"\nendpoint lag {LAG:g} s: failed in shutdown with no preStop {none['failed_in_shutdown']}, "
          f"preStop 1 s {short['failed_in_shutdown']}, 5 s {covers['failed_in_shutdown']}")
    for s in (none, short):
        assert 0 < s["failed_in_shutdown"] <= s["failed_requests"]
        # the healthy candidate fails nothing else above the stable version's own errors
        assert s["failed_in_shutdown"] == pytest.approx(s["rollout_attributable_failures"], rel=0.1)
    assert short["failed_in_shutdown"] == pytest.approx(none["failed_in_shutdown"] * (LAG - 1) / LAG, rel=0.15)
    assert covers["failed_in_shutdown"] == 0 < covers["failed_requests"]
    # no lag, or an application that drains past it: nothing fails at shutdown
    assert rehearse(_lagged(endpoint_lag=0)).summary["failed_in_shutdown"] == 0
    assert rehearse(_lagged(drain="5s")).summary["failed_in_shutdown"] == 0


def test_a_longer_prestop_never_fails_more_at_shutdown():
    counts = [rehearse(_lagged(p)).summary["failed_in_shutdown"] for p in (0.0, 0.5, 1.0, 2.0, 2.9, 3.0, 5.0)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1] == 0


def test_the_count_splits_the_drawn_failures_and_leaves_the_rest_of_the_record_alone():
    """The split draws from its own stream: the same seed gives the same failed requests and
    timeline whatever the shutdown counts, and the same count again."""
    a, b = rehearse(_lagged()), rehearse(_lagged())
    assert a.summary["failed_in_shutdown"] == b.summary["failed_in_shutdown"]
    assert a.timeline.equals(b.timeline)
    assert a.summary["failed_in_shutdown"] <= int(a.timeline.failed_stable.sum() + a.timeline.failed_candidate.sum())


# --- the record's rules ----------------------------------------------------------------------------

PLAN = Plan(strategy="rolling", replicas=4, steps=(RollingUpdate(),))
STATUS = {"phase": "Promoted", "outcome": "promoted", "started_at": 10.0, "completed_at": 30.0,
          "abort": None, "steps": []}


def _state(t: float, ready: tuple[int, int], weight: float, restarts: int = 0) -> StateSample:
    return StateSample(t=t, pods=ready, ready=ready, available=ready, terminating=0, weight=weight,
                       restarts=restarts)


def _bin(start: float, end: float, failed: int, in_shutdown: int | None) -> TrafficBin:
    return TrafficBin(start=start, end=end, requests=(100, 100, 0), failed=(failed, 0, 0),
                      failed_in_shutdown=in_shutdown)


def test_summarize_counts_restarts_and_failures_at_shutdown(scenario_of):
    sc = scenario_of("replicas=4")
    states = [_state(0, (4, 0), 0), _state(10, (4, 1), 20.0), _state(20, (0, 4), 100.0, restarts=3)]
    bins = [_bin(0, 20, 5, 2), _bin(20, 40, 1, 1)]
    s, table = summarize(Samples(states, bins), PLAN, sc, STATUS, [], world="sim", wall_seconds=0.1)
    assert (s["restarts"], s["failed_in_shutdown"], s["failed_requests"]) == (3, 3, 6)
    # a world that does not see shutdown (a cluster's metrics) gives no count, and says why
    s, _ = summarize(Samples(states, [_bin(0, 20, 5, None), _bin(20, 40, 1, 1)]), PLAN, sc, STATUS, [],
                     world="kubernetes", wall_seconds=0.1)
    assert s["failed_in_shutdown"] is None and "terminating pod" in s["unknown"]["failed_in_shutdown"]
    s, _ = summarize(Samples([], []), PLAN, sc, STATUS, [], world="kubernetes", wall_seconds=0.1)
    assert s["restarts"] is None and s["unknown"]["restarts"] == "the world reported no pods"


def test_a_sample_where_only_the_restarts_changed_changes_no_state(scenario_of):
    sc = scenario_of("replicas=4")
    states = [_state(0, (4, 0), 0), _state(10, (4, 1), 20.0), _state(20, (0, 4), 100.0)]
    more = [states[0], _state(5, (4, 0), 0, restarts=1), states[1], _state(15, (4, 1), 20.0, restarts=2),
            _state(20, (0, 4), 100.0, restarts=2)]
    bins = [_bin(0, 12, 0, 0), _bin(12, 40, 0, 0)]
    plain, t0 = summarize(Samples(states, bins), PLAN, sc, STATUS, [], world="sim", wall_seconds=0.1)
    counted, t1 = summarize(Samples(more, bins), PLAN, sc, STATUS, [], world="sim", wall_seconds=0.1)
    assert t0.equals(t1)
    assert {**counted, "restarts": 0} == plain and counted["restarts"] == 2
    kept = Samples()
    for sample in more:
        kept.add_state(sample)
    assert len(kept.states) == len(more)  # a rise of restarts alone is kept


# --- restarts on a cluster -------------------------------------------------------------------------


def _pod(uid: str, *restarts: int, deleting: bool = False) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=f"web-{uid}", uid=uid, labels={"app": "web"},
                                     deletion_timestamp="2026-01-01T00:00:00Z" if deleting else None),
        status=client.V1PodStatus(container_statuses=[
            client.V1ContainerStatus(name=f"c{i}", image="web:1", image_id="", ready=True, restart_count=n)
            for i, n in enumerate(restarts)]))


def test_a_pods_restarts_are_its_containers_restart_counts():
    pending = client.V1Pod(metadata=client.V1ObjectMeta(name="web-new"), status=client.V1PodStatus())
    assert pod_restart_counts([_pod("a", 2, 1), _pod("b"), pending]) == {"a": 3, "b": 0, "web-new": 0}


@pytest.mark.parametrize(("before", "after", "restarts"), [
    ({"a": 1, "b": 0}, {"a": 1, "b": 0}, 0),   # nothing restarted
    ({"a": 1, "b": 0}, {"a": 4, "b": 0}, 3),   # a's restartCount rose by 3
    ({"a": 1, "b": 2}, {"a": 1, "c": 0}, 0),   # b deleted and replaced by c: not a restart
    ({"a": 1, "b": 2}, {"a": 1, "c": 2}, 2),   # ... whose container restarted twice since
    ({}, {"a": 5}, 5),                          # a pod created since the first list
    ({"a": 3}, {"a": 1}, 0),                    # a count never falls: no restart
])
def test_restarts_between_two_lists_of_pods(before, after, restarts):
    assert restarts_between(before, after) == restarts


def test_restarts_of_a_deleted_pod_stay_counted():
    seen: dict[str, int] = {}
    first, n0 = note_restarts(None, seen, {"a": 7, "b": 0})  # a restarted 7 times before the run
    first, n1 = note_restarts(first, seen, {"a": 7, "b": 2})
    first, n2 = note_restarts(first, seen, {"a": 8, "c": 1})  # b deleted, c its replacement
    assert (n0, n1, n2) == (0, 2, 4) and first == {"a": 7, "b": 0}


def test_the_cluster_world_reads_restarts_where_it_lists_the_pods():
    lists = iter([[_pod("a", 1), _pod("b", 0)], [_pod("a", 3), _pod("b", 0, deleting=True), _pod("c", 0)],
                  [_pod("a", 3), _pod("c", 1)]])
    calls: list[str] = []

    def list_namespaced_pod(namespace: str, label_selector: str = "") -> Any:
        calls.append(label_selector)
        return NS(items=next(lists))

    sc = load_scenario(overrides=["replicas=2"])
    kube = KubeWorld(client.ApiClient(), "shop", sc, PLAN, "run-1")
    kube.core = NS(list_namespaced_pod=list_namespaced_pod)
    assert [kube._pod_counts([{"app": "web"}]) for _ in range(3)] == [(0, 0), (1, 2), (0, 3)]
    assert calls == ["app=web"] * 3  # one list a pass, as before
