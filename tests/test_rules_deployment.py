"""The Deployment controller's rules as tables, with Kubernetes' own worked cases
(pkg/controller/deployment: util/deployment_util.go and its tests, rolling_test.go)."""

from __future__ import annotations

import pytest

from deploysim.rules.deployment import (
    DEFAULT_MAX_SURGE,
    DEFAULT_MAX_UNAVAILABLE,
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
    cleanup_unhealthy,
    deadline_outlasts_min_ready,
    healthy_scale_down,
    is_available,
    max_surge,
    max_unavailable,
    min_available,
    new_rs_new_replicas,
    old_rs_new_replicas,
    old_rs_scale_down_budget,
    progress_deadline_at,
    progress_deadline_exceeded,
    recreate_new_replicas,
    replicas_settled,
    resolve_fenceposts,
    scaled_value,
)


def test_defaults_are_kubernetes_defaults():
    assert (DEFAULT_MAX_SURGE, DEFAULT_MAX_UNAVAILABLE, DEFAULT_PROGRESS_DEADLINE_SECONDS) == ("25%", "25%", 600.0)


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # surge rounds up (2.5 -> 3), unavailable down (2.5 -> 2)
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 1, (1, 0)),
        (0, 0, 10, (0, 1)),  # both zero: unavailable becomes 1
        ("1%", "1%", 10, (1, 0)),
        (0, "1%", 3, (0, 1)),  # 3 replicas, maxSurge 0: unavailable 1
        ("0%", "0%", 5, (0, 1)),
        (2, 3, 10, (2, 3)),
        ("50%", "50%", 3, (2, 1)),
        ("100%", "0%", 7, (7, 0)),
        # ResolveFenceposts' comment: (desired, maxUnavailable, maxSurge)
        ("0%", "1%", 2, (0, 1)),  # old -1, then new +1
        ("0%", "1%", 1, (0, 1)),
        ("1%", "25%", 2, (1, 0)),  # new +1, then old -1
        ("1%", "25%", 1, (1, 0)),
        ("1%", "0%", 2, (1, 0)),
        ("1%", "0%", 1, (1, 0)),
    ],
)
def test_resolve_fenceposts(surge, unavailable, replicas, expected):
    assert resolve_fenceposts(surge, unavailable, replicas) == expected
    assert (max_surge(surge, unavailable, replicas), max_unavailable(surge, unavailable, replicas)) == (
        expected[0], min(expected[1], replicas))


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [("25%", 10, True, 3), ("25%", 10, False, 2), ("33%", 3, True, 1), ("33%", 3, False, 0), (4, 10, True, 4)],
)
def test_scaled_value(value, total, up, expected):
    assert scaled_value(value, total, up) == expected


@pytest.mark.parametrize(
    ("replicas", "unavailable", "expected"),
    [  # TestMaxUnavailable (maxSurge 1)
        (10, 5, 5),
        (10, 10, 10),
        (5, 10, 5),  # never more than replicas
        (0, 10, 0),
        (10, "50%", 5),
        (10, "100%", 10),
        (5, "100%", 5),
    ],
)
def test_max_unavailable(replicas, unavailable, expected):
    assert max_unavailable(1, unavailable, replicas) == expected
    assert min_available(1, unavailable, replicas) == replicas - expected


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "all_rs", "new_rs", "expected"),
    [
        (10, "25%", "25%", 10, 0, 3),  # up to replicas + surge pods in all
        (10, "25%", "25%", 13, 3, 3),  # at the limit: unchanged
        (10, "25%", "25%", 12, 3, 4),
        (10, "25%", "25%", 10, 8, 10),  # never above replicas
        (10, "25%", "25%", 11, 10, 10),
        # TestDeploymentController_reconcileNewReplicaSet (maxSurge 2, maxUnavailable 0)
        (10, 0, 0, 10, 0, 0),  # surge 0: no scale up
        (10, 2, 0, 10, 0, 2),
        (10, 2, 0, 5, 0, 7),
        (10, 2, 0, 12, 2, 2),
        (10, 2, 0, 13, 11, 10),  # above replicas: down to replicas
    ],
)
def test_new_rs_new_replicas(replicas, surge, unavailable, all_rs, new_rs, expected):
    assert new_rs_new_replicas(replicas, surge, unavailable, all_rs, new_rs) == expected


@pytest.mark.parametrize(
    ("all_rs", "new_rs", "new_available", "expected"),
    [(13, 3, 0, 2), (13, 3, 3, 5), (10, 0, 0, 2), (11, 3, 1, 1)],
)
def test_old_rs_scale_down_budget(all_rs, new_rs, new_available, expected):
    # 10 replicas at 25%/25%: min available 8, minus the new pods not yet available
    assert old_rs_scale_down_budget(10, "25%", "25%", all_rs, new_rs, new_available) == expected


@pytest.mark.parametrize(
    ("budget", "old", "available", "expected"),
    [(1, 10, 8, 1), (3, 10, 8, 2), (0, 10, 8, 0), (3, 10, 10, 0)],  # TestDeploymentController_cleanupUnhealthyReplicas
)
def test_cleanup_unhealthy(budget, old, available, expected):
    assert cleanup_unhealthy(budget, old, available) == expected


@pytest.mark.parametrize(
    ("unavailable", "available", "expected"),
    [(0, 10, 1), (2, 10, 2), (2, 8, 0), (2, 1, 0)],  # scaleDownOldReplicaSetsForRollingUpdate, 10 replicas
)
def test_healthy_scale_down(unavailable, available, expected):
    assert healthy_scale_down(10, 0, unavailable, available) == expected


@pytest.mark.parametrize(
    ("unavailable", "old", "new", "old_ready", "new_ready", "expected_old"),
    [  # TestDeploymentController_reconcileOldReplicaSets: 10 replicas, maxSurge 0
        (0, 10, 0, 10, 0, 9),  # 0/0 resolves to unavailable 1
        (2, 10, 0, 10, 0, 8),
        (2, 10, 0, 8, 0, 8),  # the two unhealthy old pods go, the ready ones stay
        (2, 10, 0, 9, 0, 8),  # one unhealthy and one ready pod go
        (2, 8, 2, 8, 0, 8),  # the new pods not yet available leave no budget
    ],
)
def test_old_rs_new_replicas(unavailable, old, new, old_ready, new_ready, expected_old):
    assert old_rs_new_replicas(10, 0, unavailable, new, new_ready, old, old_ready) == expected_old


def test_old_rs_new_replicas_leaves_an_empty_old_replica_set_alone():
    assert old_rs_new_replicas(10, 0, 2, 10, 10, 0, 0) == 0


@pytest.mark.parametrize(
    ("new_rs", "running", "expected"),
    [(0, True, 0), (0, False, 4), (2, True, 2), (4, False, 4)],
)
def test_recreate_waits_for_every_old_pod(new_rs, running, expected):
    assert recreate_new_replicas(4, new_rs, old_pods_running=running) == expected


@pytest.mark.parametrize(
    ("ready_since", "now", "min_ready", "expected"),
    [
        (100.0, 129.0, 30.0, False),
        (100.0, 130.0, 30.0, True),  # the instant counts
        (100.0, 130.0 - 1e-12, 30.0, True),  # a timer's float rounding counts too
        (100.0, 100.0, 0.0, True),
        (None, 500.0, 30.0, False),  # never ready
        (None, 500.0, 0.0, False),
    ],
)
def test_is_available(ready_since, now, min_ready, expected):
    assert is_available(ready_since, now, min_ready) is expected


@pytest.mark.parametrize(
    ("desired", "current", "available", "expected"),
    [(3, 3, 3, True), (3, 3, 2, False), (3, 4, 3, False), (0, 0, 0, True), (2, -1, 2, False)],
)
def test_replicas_settled(desired, current, available, expected):
    assert replicas_settled(desired, current, available) is expected


@pytest.mark.parametrize(
    ("now", "last", "deadline", "settled", "expected"),
    [
        (80.0, 69.0, 10.0, False, True),  # TestDeploymentTimedOut: 00:01:20 - 00:01:09 = 11 s > 10 s
        (80.0, 71.0, 10.0, False, False),  # 9 s
        (80.0, 69.0, 10.0, True, False),  # a settled rollout has nothing to time out
        (180.0, 60.0, 120.0, False, True),  # the deadline's instant counts as passed
        (179.0, 60.0, 120.0, False, False),
        (659.0, 60.0, DEFAULT_PROGRESS_DEADLINE_SECONDS, False, False),
        (661.0, 60.0, DEFAULT_PROGRESS_DEADLINE_SECONDS, False, True),
    ],
)
def test_progress_deadline(now, last, deadline, settled, expected):
    assert progress_deadline_exceeded(now, last, deadline, settled=settled) is expected
    assert progress_deadline_at(last, deadline) == last + deadline


@pytest.mark.parametrize(
    ("deadline", "min_ready", "expected"), [(600, 0, True), (600, 30, True), (30, 30, False), (10, 30, False)]
)
def test_the_deadline_must_outlast_min_ready_seconds(deadline, min_ready, expected):
    assert deadline_outlasts_min_ready(deadline, min_ready) is expected
