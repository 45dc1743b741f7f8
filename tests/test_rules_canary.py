"""Argo Rollouts' canary counts as tables (utils/replicaset/canary.go), and how a plan asks
for them (strategies/canary.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploysim.plan import Plan, SetCanaryScale, SetWeight
from deploysim.rules.canary import (
    basic_canary_replicas,
    percent_for_replicas,
    replica_ratio_shares,
    replica_ratio_weight,
    router_canary_replicas,
    set_canary_scale_replicas,
    traffic_weight_to_replicas,
)
from deploysim.strategies.canary import canary_scale_replicas, planned_canary_replicas


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "expected"),
    [
        (10, 25, 0, (3, 7)),  # 2.5 pods: exactly half-way, the larger canary
        (4, 50, 0, (2, 2)),
        (2, 50, 0, (1, 1)),
        (3, 10, 0, (1, 2)),  # 0.3 pods: never 0 between 1% and 99%
        (20, 5, 0, (1, 19)),
        (4, 10, 1, (1, 4)),  # 1 of 5 (20%, with the surge pod) is nearer 10% than 1 of 4 (25%)
        (3, 99, 0, (2, 1)),  # the stable keeps a pod below 100%
        (4, 75, 1, (3, 1)),  # exact: no surge needed
        (1, 5, 1, (1, 1)),  # Argo's examples: 1 replica, surge 1, weight 5 or 95 -> 1 and 1
        (1, 95, 1, (1, 1)),
        (0, 50, 1, (0, 0)),
    ],
)
def test_basic_canary_replicas(replicas, weight, surge, expected):
    assert basic_canary_replicas(replicas, weight, surge) == expected


@given(replicas=st.integers(2, 50), weight=st.integers(1, 99), surge=st.integers(0, 3))
def test_basic_canary_runs_at_most_one_extra_pod_and_keeps_a_stable_one(replicas, weight, surge):
    candidate, stable = basic_canary_replicas(replicas, weight, surge)
    assert stable >= 1
    assert replicas <= candidate + stable <= replicas + (1 if surge else 0)
    if surge:
        assert candidate >= 1


def test_argos_fallback_when_neither_rounding_may_be_used():
    # 2 replicas at 75% without surge: 2 canary pods would leave no stable one, and 1 is a
    # tie (1.5) that goes to the larger count, so Argo falls back to no canary pod
    assert basic_canary_replicas(2, 75, 0) == (0, 2)
    assert basic_canary_replicas(2, 75, 1) == (2, 1)


@pytest.mark.parametrize(
    ("replicas", "weight", "expected"),
    [(10, 5, 1), (10, 20, 2), (3, 50, 2), (10, 0, 0), (4, 200, 8), (10, 100, 10)],
)
def test_traffic_weight_to_replicas_rounds_up(replicas, weight, expected):
    # 4 replicas at setCanaryScale.weight 200: 8 pods (Argo's canary_test.go)
    assert traffic_weight_to_replicas(replicas, weight) == expected


@pytest.mark.parametrize(
    ("replicas", "weight", "expected"),
    [(10, 5, (1, 10)), (10, 50, (5, 10)), (3, 50, (2, 3)), (10, 100, (10, 10)), (10, 0, (0, 10))],
)
def test_router_canary_leaves_the_stable_at_full_size(replicas, weight, expected):
    assert router_canary_replicas(replicas, weight) == expected


@pytest.mark.parametrize(
    ("replicas", "percent", "matched", "expected"),
    [
        (10, 20, 5, 2),  # setCanaryScale.weight: its share of replicas, whatever the traffic weight
        (10, 33, 5, 4),
        (4, 200, 1, 8),
        (10, None, 2, 2),  # matchTrafficWeight: what the traffic weight asks for
        (10, 0, 5, 0),
    ],
)
def test_set_canary_scale_replicas(replicas, percent, matched, expected):
    assert set_canary_scale_replicas(replicas, percent, matched) == expected


@pytest.mark.parametrize(
    ("count", "replicas", "percent"),
    [(1, 3, 33), (2, 3, 66), (5, 10, 50), (9, 10, 90), (1, 100, 1), (1, 250, 1)],
)
def test_percent_for_replicas(count, replicas, percent):
    assert percent_for_replicas(count, replicas) == percent


def test_set_canary_scale_replicas_said_as_a_percent_comes_back_exactly_up_to_100_replicas():
    for replicas in range(1, 101):
        for count in range(replicas + 1):
            assert set_canary_scale_replicas(replicas, percent_for_replicas(count, replicas), 0) == count


@pytest.mark.parametrize(
    ("stable", "candidate", "shares", "weight"),
    [(6, 4, (0.6, 0.4), 40.0), (9, 1, (0.9, 0.1), 10.0), (3, 1, (0.75, 0.25), 25.0),
     (0, 3, (0.0, 1.0), 100.0), (0, 0, (1.0, 0.0), 0.0)],
)
def test_replica_ratio_weight_is_the_share_of_ready_endpoints(stable, candidate, shares, weight):
    assert replica_ratio_shares(stable, candidate) == shares
    assert replica_ratio_weight(stable, candidate) == weight


# --- a plan asks for the counts ---------------------------------------------------------------


def _plan(routing, *steps, replicas=10, surge=1):
    return Plan(strategy="canary", replicas=replicas, steps=steps, routing=routing, max_surge=surge,
                max_unavailable=0)


def test_planned_replicas_without_a_router_follow_the_weight_with_the_plans_surge():
    plan = _plan("replica_ratio", SetWeight(5), SetWeight(41))
    assert planned_canary_replicas(plan, 5, 0) == (1, 10)  # 1 of 11 is nearer 5% than 1 of 10
    assert planned_canary_replicas(plan, 41, 1) == (4, 6)
    assert planned_canary_replicas(_plan("replica_ratio", surge=0), 5, 0) == (1, 9)


def test_a_set_canary_scale_holds_over_later_weights_until_match_traffic_weight():
    steps = (SetCanaryScale(50), SetWeight(10), SetCanaryScale(None), SetWeight(20))
    plan = _plan("router", *steps)
    assert canary_scale_replicas(plan, steps[0], 0, 0) == 5
    assert planned_canary_replicas(plan, 10, 1) == (5, 10)  # held: 50% of 10 pods at 10% weight
    assert canary_scale_replicas(plan, steps[2], 10, 2) == 1  # match the weight again: 10% of 10
    assert planned_canary_replicas(plan, 20, 3) == (2, 10)
    assert planned_canary_replicas(plan, 100, 1) == (10, 10)  # at 100% the weight decides
