"""A canary without a traffic router moves its pods within maxSurge and maxUnavailable, as Argo
Rollouts' ``CalculateReplicaCountsForBasicCanary`` (utils/replicaset/canary.go) does, one version
a pass (rollout/canary.go ``reconcileCanaryReplicaSets``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploysim.controller import VersionState
from deploysim.plan import Plan, SetWeight
from deploysim.rules.canary import (
    basic_canary_at_target,
    basic_canary_replicas,
    basic_canary_scale,
    basic_canary_waves,
    replicas_for_scale_down,
)
from deploysim.rules.deployment import max_surge, max_unavailable
from deploysim.strategies.canary import basic_canary_move, is_basic_canary

# Argo's TestCalculateReplicaCountsForCanary, the cases without a traffic router and without
# older ReplicaSets (a rollout here has two versions only): replicas, weight, surge,
# unavailable, (stable spec, available), (canary spec, available) -> (canary, stable)
ARGO_TABLE = [
    # "Do not add extra RSs in scaleDownCount when .Spec.Replica < AvailableReplicas"
    (10, 100, 3, 0, (7, 8), (6, 3), (6, 7)),
    # "Use max surge int to scale up canary" / "... percentage ..."
    (10, 20, 2, 0, (10, 10), (0, 0), (2, 10)),
    (10, 20, "20%", 0, (10, 10), (0, 0), (2, 10)),
    # "Scale down extra stable replicas"
    (10, 20, "20%", 0, (10, 10), (2, 2), (2, 8)),
    # "Do not go past max surge"
    (10, 30, 2, 0, (10, 10), (0, 0), (2, 10)),
    # "Use max unavailable int to scale down stableRS" / "... percentage ..."
    (10, 20, 0, 2, (10, 10), (0, 0), (0, 8)),
    (10, 20, 0, "20%", (10, 10), (0, 0), (0, 8)),
    # "Do not go past max unavailable"
    (10, 30, 0, 2, (10, 10), (0, 0), (0, 8)),
    # "Use Max Surge and Max Unavailable"
    (10, 50, 2, 1, (10, 10), (0, 0), (2, 9)),
    # "Scale canaryRS to zero on setWeight of 0%"
    (10, 0, 1, 1, (10, 10), (1, 1), (0, 10)),
    # "Scale stable to zero on setWeight of 100%"
    (10, 100, 1, 1, (1, 1), (10, 10), (10, 0)),
    # "Do not scale newRS down to zero on non-zero weight" / "... canaryRS ... non-100 weight"
    (1, 20, 1, 0, (1, 1), (0, 0), (1, 1)),
    (1, 90, 1, 0, (1, 1), (0, 0), (1, 1)),
    # "Scale down newRS and stable"
    (10, 30, 0, 3, (8, 5), (4, 4), (3, 7)),
    # "Scale down stable and canary available": the canary gives a pod back to stay within surge
    (10, 100, 1, 0, (10, 2), (10, 8), (9, 2)),
    # "Do not round past maxSurge with uneven setWeight divisor" (parts 1 and 2)
    (10, 5, 0, 1, (10, 10), (0, 0), (0, 9)),
    (10, 5, 0, 1, (9, 9), (0, 0), (1, 9)),
    # "Use maxUnavailable of 1 when percentage of maxUnavailable and maxSurge result in 0 replicas"
    (10, 10, "0%", "0%", (10, 10), (0, 0), (0, 9)),
    # "Ignore setCanaryScale when trafficRouting is missing and use setWeight for replicas"
    (10, 20, "20%", 0, (10, 10), (0, 0), (2, 10)),
    # "honor maxSurge during scale up when stableRS unavailable"
    (4, 100, 1, 0, (4, 1), (0, 0), (1, 4)),
    # "scale down to maxunavailable without exceeding maxSurge" (parts 1 and 2)
    (3, 99, 0, 2, (3, 3), (0, 0), (0, 1)),
    (3, 99, 0, 2, (1, 1), (0, 0), (2, 1)),
    # "honor maxUnavailable during scale down stableRS unavailable"
    (4, 100, 1, 0, (4, 1), (1, 1), (1, 3)),
    # "honor maxUnavailable when aborting or reducing weight" (parts 1, 2 and 3)
    (4, 0, 1, 0, (0, 0), (4, 4), (4, 1)),
    (4, 0, 1, 0, (1, 0), (4, 4), (4, 1)),
    (4, 0, 1, 0, (1, 1), (4, 4), (3, 1)),
    # "promote full does not consider weight" / "promote full still honors maxSurge/maxUnavailable"
    (4, 100, 4, 4, (4, 4), (0, 0), (4, 0)),
    (4, 100, 3, 0, (4, 4), (0, 0), (3, 4)),
]


def _scale(replicas, weight, surge, unavailable, stable, canary):
    return basic_canary_scale(replicas, weight, candidate_spec=canary[0], stable_spec=stable[0],
                              candidate_available=canary[1], stable_available=stable[1],
                              surge=surge, unavailable=unavailable)


@pytest.mark.parametrize(("replicas", "weight", "surge", "unavailable", "stable", "canary", "expected"), ARGO_TABLE)
def test_argos_table(replicas, weight, surge, unavailable, stable, canary, expected):
    assert _scale(replicas, weight, surge, unavailable, stable, canary) == expected


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "unavailable", "expected"),
    [
        (10, 10, 1, 1, (1, 9)),
        (10, 30, 3, 0, (3, 10)),
        (10, 30, 0, 5, (0, 7)),
        (1, 5, 1, 0, (1, 1)),
        (1, 95, 1, 0, (1, 1)),
        # the comment says (1, 9) here, from before approximateWeightedCanaryStableReplicaCounts:
        # 1 of 11 pods (9.1%) is now nearer 5% than 1 of 10, so the stable keeps its 10
        (10, 5, 1, 1, (1, 10)),
    ],
)
def test_argos_worked_examples_from_a_full_stable(replicas, weight, surge, unavailable, expected):
    assert _scale(replicas, weight, surge, unavailable, (replicas, replicas), (0, 0)) == expected


@pytest.mark.parametrize(
    ("canary", "stable", "expected"),
    [
        ((2, 2), (8, 8), (5, 6)),  # 3 surge pods, 2 stable pods may go: the stable is scaled first
        ((2, 2), (6, 6), (7, 6)),  # ... and the candidate takes the surge the next pass
        ((7, 2), (6, 6), (7, 6)),  # 8 available: nothing more may go until the new pods are up
        ((7, 7), (6, 6), (7, 1)),
        ((7, 7), (1, 1), (10, 1)),
        ((10, 7), (1, 1), (10, 1)),
        ((10, 10), (1, 1), (10, 0)),
    ],
)
def test_the_issues_example_goes_to_100_within_8_available_and_13_pods(canary, stable, expected):
    """10 replicas at 25%/25% from 20% (2 candidate, 8 stable) to 100%, as the passes come:
    at once this would leave the 2 candidate pods serving alone."""
    assert _scale(10, 100, "25%", "25%", stable, canary) == expected


@pytest.mark.parametrize(
    ("spec", "available", "ignore", "expected"),
    [(7, 8, False, 7), (7, 8, True, 7), (4, 1, False, 1), (4, 1, True, 4), (5, 5, False, 5), (0, 0, True, 0)],
)
def test_replicas_for_scale_down(spec, available, ignore, expected):
    assert replicas_for_scale_down(spec, available, ignore) == expected


def test_at_target_needs_the_candidate_available_and_the_stable_created():
    args = (10, 50, "25%", "25%")
    assert basic_canary_replicas(10, 50, 3) == (5, 5)
    assert basic_canary_at_target(*args, candidate=(5, 5, 5), stable=(5, 5))
    assert not basic_canary_at_target(*args, candidate=(5, 5, 4), stable=(5, 5))
    assert not basic_canary_at_target(*args, candidate=(5, 5, 5), stable=(5, 6))  # a pod to go
    assert not basic_canary_at_target(*args, candidate=(4, 4, 4), stable=(5, 5))
    assert not basic_canary_at_target(*args, candidate=(5, -1, 5), stable=(5, 5))  # not counted yet


def _walk(replicas, weights, surge, unavailable):
    """Walk the weights one scale a pass, stable first; pods going go at once, pods asked for
    are available a wave later. Yields (specs total, available total) after every change."""
    cand, stab, cand_av, stab_av = 0, replicas, 0, replicas
    for weight in weights:
        for _ in range(8 * (replicas + 2)):
            to_c, to_s = _scale(replicas, weight, surge, unavailable, (stab, stab_av), (cand, cand_av))
            if to_s != stab:
                stab, stab_av = to_s, min(stab_av, to_s)
            elif to_c != cand:
                cand, cand_av = to_c, min(cand_av, to_c)
            elif (cand_av, stab_av) == (cand, stab):
                break
            else:
                cand_av, stab_av = cand, stab
            yield cand + stab, cand_av + stab_av
        else:
            raise AssertionError(f"stuck on the way to {weight}%: {cand}/{cand_av} and {stab}/{stab_av}")
        assert (cand, stab) == basic_canary_replicas(replicas, weight, max_surge(surge, unavailable, replicas))


FENCEPOST = st.one_of(st.integers(0, 3), st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


@given(replicas=st.integers(1, 30), weights=st.lists(st.integers(0, 100), min_size=1, max_size=5),
       surge=FENCEPOST, unavailable=FENCEPOST)
def test_every_weight_is_reached_within_surge_and_unavailable(replicas, weights, surge, unavailable):
    most = replicas + max_surge(surge, unavailable, replicas)
    least = replicas - max_unavailable(surge, unavailable, replicas)
    for specs, available in _walk(replicas, weights, surge, unavailable):
        assert specs <= most
        assert available >= least


@pytest.mark.parametrize(
    ("replicas", "weight", "start", "surge", "unavailable", "waves"),
    [
        (10, 25, (0, 10), "25%", "25%", 1),
        (10, 100, (3, 8), "25%", "25%", 2),  # 3 surge pods, then the last 4
        (4, 50, (0, 4), 1, 0, 2),  # one pod at a time
        (4, 100, (2, 2), 1, 0, 2),
        (4, 0, (2, 2), 1, 0, 2),  # an abort: the stable comes back a pod at a time too
        (10, 100, (10, 0), 1, 0, 0),  # already there
    ],
)
def test_waves_to_a_weight(replicas, weight, start, surge, unavailable, waves):
    assert basic_canary_waves(replicas, weight, *start, surge, unavailable) == waves


# --- one pass asks for one scale: strategies/canary.py ------------------------------------------


PLAN = Plan(strategy="canary", replicas=10, steps=(SetWeight(25), SetWeight(100)), routing="replica_ratio",
            max_surge="25%", max_unavailable="25%")


def V(desired, current=None, available=None):  # noqa: N802 - reads as a state
    current = desired if current is None else current
    return VersionState(desired, current, current, current if available is None else available)


def test_the_stable_is_scaled_first_then_the_candidate():
    assert basic_canary_move(PLAN, 25, V(0), V(10)) == ("stable", 8)
    assert basic_canary_move(PLAN, 25, V(0), V(8)) == ("candidate", 3)
    assert basic_canary_move(PLAN, 25, V(3, 3, 0), V(8)) is False  # the new pods are starting
    assert basic_canary_move(PLAN, 25, V(3), V(8)) is True


def test_a_version_grows_only_once_the_others_pods_are_down_to_its_spec():
    assert basic_canary_move(PLAN, 25, V(0), V(8, 10, 10)) is False  # 2 stable pods still going
    assert basic_canary_move(PLAN, 25, V(0), V(8, -1, 10)) is False  # not counted since the change
    assert basic_canary_move(PLAN, 25, V(0), V(8, 8, 8)) == ("candidate", 3)
    # going back (an abort): the stable grows once the candidate's pods are down
    assert basic_canary_move(PLAN, 0, V(3), V(8)) == ("stable", 10)
    assert basic_canary_move(PLAN, 0, V(3, 5, 5), V(8)) is False  # 2 candidate pods still going
    # a version that shrinks never waits
    assert basic_canary_move(PLAN, 0, V(3, 3, 3), V(10, 10, 10)) == ("candidate", 0)


def test_only_a_canary_without_a_router_is_basic():
    assert is_basic_canary(PLAN)
    assert not is_basic_canary(Plan(strategy="canary", replicas=10, steps=(), routing="router"))
    assert not is_basic_canary(Plan(strategy="rolling", replicas=10, steps=(), routing="replica_ratio"))
