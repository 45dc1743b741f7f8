"""One summarize for every world: the glossary's numbers worked out from samples by hand."""

from __future__ import annotations

import math

import pytest

from deploysim.controller import Decision
from deploysim.plan import Plan, RollingUpdate
from deploysim.record import (
    SUMMARY_KEYS,
    TIMELINE_COLUMNS,
    Samples,
    StateSample,
    TrafficBin,
    summarize,
)


def state(t, pods, ready, weight, terminating=0, available=None):  # noqa: ANN001, ANN201
    return StateSample(t=t, pods=pods, ready=ready, available=available or ready,
                       terminating=terminating, weight=weight)


def traffic(start, end, users=(100, 0), failed=(0, 0), expected=0.0, preview=0):  # noqa: ANN001, ANN201
    return TrafficBin(start=start, end=end, requests=(users[0], users[1], preview), failed=(failed[0], failed[1], 0),
                      expected_stable_only_failed=expected)


PLAN = Plan(strategy="rolling", replicas=4, steps=(RollingUpdate(),))

# A rolling update of 4 replicas that starts at 10 s: one surge pod (5 pods from 10 to 20 s),
# one stable pod terminating 20-25 s, the candidate taking half the ready endpoints from
# 20 s and everything from 30 s; done at 30 s.
ROLLING = [
    state(0, (4, 0), (4, 0), 0),
    state(10, (4, 1), (4, 0), 0),  # surge: 5 pods, min available still 4
    state(20, (3, 1), (3, 1), 25.0, terminating=1),  # 3 + 1 ready serve; 5 pods exist
    state(25, (2, 2), (2, 1), 100 / 3),  # a stable pod gone, a candidate pod not ready: 3 serve
    state(30, (0, 4), (0, 4), 100.0),
]
STATUS = {"phase": "Promoted", "outcome": "promoted", "started_at": 10.0, "completed_at": 30.0,
          "abort": None, "steps": [{"kind": "rolling_update", "start": 10.0, "end": 30.0}]}


def test_pod_figures_over_the_rollout_window(scenario_of) -> None:
    sc = scenario_of("replicas=4", "strategy.kind=rolling")
    samples = Samples(states=list(ROLLING), bins=[traffic(0, 20), traffic(20, 40)])
    s, _ = summarize(samples, PLAN, sc, STATUS, [], world="sim", wall_seconds=0.1, simulated_seconds=40.0)
    assert s["max_pods"] == 5
    assert s["min_available"] == 3
    # above 4 pods: 10-20 s one extra (5 pods), 20-25 s one extra (4 + 1 terminating), 25-30 s none
    assert s["extra_pod_seconds"] == 15.0
    assert s["rollout_seconds"] == 20.0


def test_min_available_counts_only_versions_that_get_requests(scenario_of) -> None:
    """Blue-green before the switch: the idle colour's ready pods serve no user."""
    sc = scenario_of("replicas=4", "strategy.kind=blue-green")
    plan = Plan(strategy="blue-green", replicas=4, steps=(), routing="active")
    states = [state(0, (4, 0), (4, 0), 0), state(5, (3, 4), (3, 4), 0), state(9, (3, 4), (3, 4), 100.0),
              state(12, (0, 4), (0, 4), 100.0)]
    status = {**STATUS, "started_at": 0.0, "completed_at": 12.0}
    s, _ = summarize(Samples(states, [traffic(0, 20)]), plan, sc, status, [], world="kubernetes",
                     wall_seconds=1.0)
    assert s["min_available"] == 3  # 3 stable ready before the switch; 4 candidate after


def test_detect_and_recover_from_an_abort(scenario_of) -> None:
    sc = scenario_of("replicas=4", "strategy.kind=canary", "strategy.preview_rps=0")
    plan = Plan(strategy="canary", replicas=4, steps=(), routing="router")
    states = [state(0, (4, 0), (4, 0), 0), state(5, (4, 1), (4, 1), 0), state(8, (4, 1), (4, 1), 20.0),
              state(50, (4, 1), (4, 1), 0.0), state(52, (4, 0), (4, 0), 0.0)]
    status = {"phase": "Aborted", "outcome": "rolled_back", "started_at": 0.0, "completed_at": 52.0,
              "abort": {"at": 48.0, "reason": "analysis failed"}, "steps": []}
    s, _ = summarize(Samples(states, [traffic(0, 60)]), plan, sc, status, [], world="kubernetes",
                     wall_seconds=1.0)
    assert s["time_to_detect_seconds"] == 40.0  # first user request to the candidate at 8 s
    assert s["time_to_recover_seconds"] == 2.0  # its weight back to 0 at 50 s
    assert s["rolled_back"] is True and s["outcome"] == "rolled_back"


def test_a_preview_request_is_the_candidates_first(scenario_of) -> None:
    sc = scenario_of("replicas=4", "strategy.kind=blue-green", "strategy.preview_rps=5")
    plan = Plan(strategy="blue-green", replicas=4, steps=(), routing="active")
    states = [state(0, (4, 0), (4, 0), 0), state(6, (4, 4), (4, 2), 0), state(30, (4, 4), (4, 0), 0)]
    status = {"phase": "Aborted", "outcome": "rolled_back", "started_at": 0.0, "completed_at": 30.0,
              "abort": {"at": 20.0, "reason": "smoke test failed"}, "steps": []}
    s, _ = summarize(Samples(states, [traffic(0, 30)]), plan, sc, status, [], world="sim",
                     wall_seconds=1.0, simulated_seconds=30.0)
    assert s["time_to_detect_seconds"] == 14.0  # smoke tests reached the idle colour at 6 s
    assert s["time_to_recover_seconds"] == 0.0  # users never reached it


def test_attributable_failures_and_error_budget(scenario_of) -> None:
    sc = scenario_of("replicas=4", "slo.target=0.999", "slo.window=1000s")
    bins = [traffic(0, 10, users=(1000, 0), failed=(1, 0), expected=1.0),
            traffic(10, 20, users=(500, 500), failed=(1, 51), expected=1.0),
            traffic(20, 30, users=(0, 1000), failed=(0, 101), expected=1.0)]
    status = {**STATUS, "started_at": 10.0, "completed_at": 30.0}
    s, table = summarize(Samples(list(ROLLING), bins), PLAN, sc, status, [], world="sim", wall_seconds=0.1,
                         simulated_seconds=30.0)
    assert s["requests"] == 3000 and s["failed_requests"] == 154
    # from the rollout's start (10 s): 52 - 1 + 101 - 1
    assert s["rollout_attributable_failures"] == 151.0
    # budget: 0.1% of 100 rps over 1000 s = 100 requests
    assert s["error_budget_consumed"] == pytest.approx(1.51)
    assert list(table.columns) == list(TIMELINE_COLUMNS)


def test_timeline_rows_hold_the_state_at_each_bins_end_and_the_mean_weight(scenario_of) -> None:
    sc = scenario_of("replicas=4")
    bins = [traffic(0, 20), traffic(20, 30), traffic(30, 40)]
    decisions = [Decision(10.0, 0, "start", ""), Decision(30.0, 1, "promote", ""),
                 Decision(30.0, 1, "measure", "not in the timeline")]
    _, table = summarize(Samples(list(ROLLING), bins), PLAN, sc, STATUS, decisions, world="sim",
                         wall_seconds=0.1, simulated_seconds=40.0)
    assert table["pods_candidate"].tolist() == [1, 2, 4]  # a change at 30 s belongs to the next bin
    assert table["weight"].tolist() == pytest.approx([0.0, (25 * 5 + 100 / 3 * 5) / 10, 100.0])
    assert table["decision"].tolist() == ["start", "", "promote"]


def test_every_world_gives_every_key_and_a_reason_for_each_none(scenario_of) -> None:
    sc = scenario_of("replicas=4")
    status = {"phase": "Progressing", "outcome": None, "started_at": 10.0, "completed_at": None,
              "abort": None, "steps": []}
    for world, simulated in (("sim", 40.0), ("kubernetes", None)):
        s, _ = summarize(Samples(list(ROLLING), []), PLAN, sc, status, [], world=world, wall_seconds=1.0,
                         simulated_seconds=simulated)
        assert list(s) == list(SUMMARY_KEYS)
        missing = {k for k, v in s.items() if v is None}
        assert missing == set(s["unknown"]), (missing, s["unknown"])
        assert s["outcome"] == "incomplete"
    assert s["unknown"]["simulated_seconds"] == "not a simulation"
    assert "rollout_seconds" in s["unknown"] and "time_to_detect_seconds" in s["unknown"]


def test_no_samples_is_a_record_too(scenario_of) -> None:
    sc = scenario_of("replicas=4")
    status = {"phase": "Progressing", "outcome": None, "started_at": None, "completed_at": None,
              "abort": None, "steps": []}
    s, table = summarize(Samples(), PLAN, sc, status, [], world="kubernetes", wall_seconds=0.0)
    assert s["max_pods"] == 0 and len(table) == 0
    # nothing counted is unknown, not zero
    assert s["requests"] is None and s["failed_requests"] is None
    assert s["unknown"]["requests"] == "no traffic was counted for the run"
    assert s["unknown"]["min_available"] == "the world reported no pods"
    assert math.isclose(s["extra_pod_seconds"], 0.0)


def test_a_rollout_without_traffic_samples_says_so_instead_of_zero(scenario_of) -> None:
    """A cluster run whose metrics source never answered: pods are known, traffic is not."""
    sc = scenario_of("replicas=4")
    status = {**STATUS, "phase": "Aborted", "outcome": "rolled_back", "abort": {"at": 20.0, "reason": "x"}}
    s, _ = summarize(Samples(list(ROLLING), []), PLAN, sc, status, [], world="kubernetes", wall_seconds=1.0,
                     unknown={"rollout_attributable_failures": "the metrics source gave no traffic for the run"})
    assert s["rollout_attributable_failures"] is None and s["error_budget_consumed"] is None
    assert s["unknown"]["rollout_attributable_failures"] == "the metrics source gave no traffic for the run"
    assert s["min_available"] == 3 and s["max_pods"] == 5  # what the world saw of its pods stands
