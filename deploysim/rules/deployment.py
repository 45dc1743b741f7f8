"""The Deployment controller's rules: fenceposts, how far each ReplicaSet may scale, when a
pod counts as available and when a rollout has run out of time.

Each function follows one of Kubernetes' ``pkg/controller/deployment`` (the shared rules in
``util/deployment_util.go``, the strategies in ``rolling.go`` and ``recreate.go``, the deadline
in ``progress.go``) and works its rule through a few numbers. The simulator runs them as its
Deployment controller; the cluster world counts the progress deadline with them beside the
real controller's own condition, so both worlds fail a stuck rollout at the same moment.

>>> resolve_fenceposts("25%", "25%", 10)
(3, 2)
"""

from __future__ import annotations

import math

#: ``spec.strategy.rollingUpdate`` defaults (``pkg/apis/apps/v1/defaults.go``)
DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
#: ``spec.progressDeadlineSeconds`` default
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600.0
#: ``spec.minReadySeconds`` default
DEFAULT_MIN_READY_SECONDS = 0.0

# A time reached "now" in a simulation lands a float's rounding away from its timer: counted
# as reached, so a timer set for the instant sees what it was set for.
_TIME_TOLERANCE = 1e-9

IntOrPercent = int | str


# --- fenceposts (util/deployment_util.go) -----------------------------------------------------


def scaled_value(value: IntOrPercent, total: int, round_up: bool) -> int:
    """An int-or-percent resolved against ``total`` (``intstr.GetScaledValueFromIntOrPercent``).

    25% of 10 is 2.5: 3 rounding up, 2 rounding down; 33% of 3 (0.99) is 1 up and 0 down; a
    whole number stands as it is.

    >>> scaled_value("25%", 10, round_up=True), scaled_value("25%", 10, round_up=False)
    (3, 2)
    >>> scaled_value(2, 10, round_up=False)
    2
    """
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(
    max_surge: IntOrPercent, max_unavailable: IntOrPercent, replicas: int
) -> tuple[int, int]:
    """(surge, unavailable) pods (``ResolveFenceposts``): maxSurge rounds up, maxUnavailable
    rounds down, and if both come to 0 maxUnavailable becomes 1, so a rollout always moves.

    10 replicas at 25%/25%: surge 3 (2.5 up), unavailable 2 (2.5 down). 3 replicas with
    maxSurge 0 and maxUnavailable 1%: 0 and 0.03 down to 0, so unavailable 1. Kubernetes' own
    cases: 2 replicas, 1% unavailable and 0% surge resolve to 0/1 (old -1, then new +1);
    25% unavailable and 1% surge to 1/0 (new +1, then old -1).

    >>> resolve_fenceposts("25%", "25%", 10)
    (3, 2)
    >>> resolve_fenceposts(0, "1%", 3)
    (0, 1)
    """
    surge = scaled_value(max_surge, replicas, round_up=True)
    unavailable = scaled_value(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(max_surge_: IntOrPercent, max_unavailable: IntOrPercent, replicas: int) -> int:
    """Pods the update may add above ``replicas`` (``MaxSurge``).

    >>> max_surge("25%", "25%", 10), max_surge(0, 0, 10)
    (3, 0)
    """
    surge, _ = resolve_fenceposts(max_surge_, max_unavailable, replicas)
    return surge


def max_unavailable(max_surge_: IntOrPercent, max_unavailable_: IntOrPercent, replicas: int) -> int:
    """Pods that may be unavailable during the update, never more than ``replicas``
    (``MaxUnavailable``): 10 of 5 replicas is 5; 50% of 10 is 5; any of 0 replicas is 0.

    >>> max_unavailable(1, 10, 5), max_unavailable(1, "50%", 10), max_unavailable(1, 10, 0)
    (5, 5, 0)
    """
    if replicas == 0:
        return 0
    _, unavailable = resolve_fenceposts(max_surge_, max_unavailable_, replicas)
    return min(unavailable, replicas)


def min_available(max_surge_: IntOrPercent, max_unavailable_: IntOrPercent, replicas: int) -> int:
    """Pods that must stay available during the update (``MinAvailable``): 10 - 2 = 8 at 25%.

    >>> min_available("25%", "25%", 10)
    8
    """
    return replicas - max_unavailable(max_surge_, max_unavailable_, replicas)


# --- rolling update (util/deployment_util.go, rolling.go) ------------------------------------


def new_rs_new_replicas(
    replicas: int,
    max_surge_: IntOrPercent,
    max_unavailable_: IntOrPercent,
    all_rs_replicas: int,
    new_rs_replicas: int,
) -> int:
    """Replicas the new ReplicaSet may have now (``NewRSNewReplicas``, with
    ``reconcileNewReplicaSet``'s cap at ``replicas``).

    Total pods (spec replicas of every ReplicaSet) may reach replicas + surge; the new
    ReplicaSet never exceeds replicas. With 10 replicas, surge 3, all at 10 and new at 0: 3.
    With all at 13 already: unchanged. Kubernetes' table (surge 2): old 10 and new 0 gives 2;
    old 5 and new 0 gives 7; old 10 and new 2 stays 2; new 11 goes down to 10.

    >>> new_rs_new_replicas(10, "25%", "25%", 10, 0)
    3
    >>> new_rs_new_replicas(10, "25%", "25%", 13, 3)
    3
    """
    if new_rs_replicas > replicas:
        return replicas
    surge = max_surge(max_surge_, max_unavailable_, replicas)
    max_total = replicas + surge
    if all_rs_replicas >= max_total:
        return new_rs_replicas
    scale_up = min(max_total - all_rs_replicas, replicas - new_rs_replicas)
    return new_rs_replicas + max(scale_up, 0)


def old_rs_scale_down_budget(
    replicas: int,
    max_surge_: IntOrPercent,
    max_unavailable_: IntOrPercent,
    all_rs_replicas: int,
    new_rs_replicas: int,
    new_rs_available: int,
) -> int:
    """How many old pods may go now (``reconcileOldReplicaSets``' maxScaledDown).

    minAvailable = replicas - maxUnavailable; pods of the new ReplicaSet that are not yet
    available must not be counted on. 10 replicas, 25%/25%: all 13, new 3 none available
    -> 13 - 8 - 3 = 2 old pods may go.

    >>> old_rs_scale_down_budget(10, "25%", "25%", 13, 3, 0)
    2
    """
    new_unavailable = new_rs_replicas - new_rs_available
    return all_rs_replicas - min_available(max_surge_, max_unavailable_, replicas) - new_unavailable


def cleanup_unhealthy(budget: int, old_rs_replicas: int, old_rs_available: int) -> int:
    """Unavailable old pods removed first, within the budget (``cleanupUnhealthyReplicas``):
    they serve nobody, so removing them costs no availability. Kubernetes' table: 10 old, 8
    ready, budget 1 -> 1; budget 3 -> 2; budget 0 -> 0; all ready -> 0.

    >>> cleanup_unhealthy(1, 10, 8), cleanup_unhealthy(3, 10, 8), cleanup_unhealthy(3, 10, 10)
    (1, 2, 0)
    """
    return max(min(budget, old_rs_replicas - old_rs_available), 0)


def healthy_scale_down(
    replicas: int, max_surge_: IntOrPercent, max_unavailable_: IntOrPercent, available: int
) -> int:
    """Old pods that may go given the available pods (``scaleDownOldReplicaSetsForRollingUpdate``):
    10 available of 10 at 25%/25% (min available 8) -> 2.

    >>> healthy_scale_down(10, "25%", "25%", 10)
    2
    """
    return max(available - min_available(max_surge_, max_unavailable_, replicas), 0)


def old_rs_new_replicas(
    replicas: int,
    max_surge_: IntOrPercent,
    max_unavailable_: IntOrPercent,
    new_rs_replicas: int,
    new_rs_available: int,
    old_rs_replicas: int,
    old_rs_available: int,
) -> int:
    """Replicas the old ReplicaSet keeps after one ``reconcileOldReplicaSets``: unhealthy old
    pods go first within the budget, then healthy ones down to min available.

    Kubernetes' table (10 replicas, surge 0, new RS empty): maxUnavailable 0 resolves to 1, so
    10 ready old pods go to 9; maxUnavailable 2: to 8; with 2 of them not ready, those two go
    and the 8 ready stay; with 1 not ready, it goes and one ready one too (8). Old 8 beside
    2 new pods not yet available: the budget is 0, old stays 8.

    >>> old_rs_new_replicas(10, 0, 2, 0, 0, 10, 9)
    8
    >>> old_rs_new_replicas(10, 0, 2, 2, 0, 8, 8)
    8
    """
    budget = old_rs_scale_down_budget(
        replicas, max_surge_, max_unavailable_, new_rs_replicas + old_rs_replicas,
        new_rs_replicas, new_rs_available,
    )
    if old_rs_replicas <= 0 or budget <= 0:
        return old_rs_replicas
    old = old_rs_replicas - cleanup_unhealthy(budget, old_rs_replicas, old_rs_available)
    healthy = healthy_scale_down(replicas, max_surge_, max_unavailable_, new_rs_available + old_rs_available)
    return old - min(healthy, old)


# --- recreate (recreate.go) ------------------------------------------------------------------


def recreate_new_replicas(replicas: int, new_rs_replicas: int, old_pods_running: bool) -> int:
    """Replicas of the new ReplicaSet under Recreate (``rolloutRecreate``): the old ReplicaSets
    go to 0 first, and the new one scales to ``replicas`` only once no old pod runs (a
    terminating pod still runs), so the two versions never serve together.

    >>> recreate_new_replicas(4, 0, old_pods_running=True), recreate_new_replicas(4, 0, old_pods_running=False)
    (0, 4)
    """
    return new_rs_replicas if old_pods_running else replicas


# --- availability and progress (util/pod_util.go, progress.go) -------------------------------


def is_available(ready_since: float | None, now: float, min_ready_seconds: float) -> bool:
    """A ready pod counts as available ``minReadySeconds`` after it became ready
    (``podutil.IsPodAvailable``). With minReadySeconds 30, a pod ready at 100 s is available
    from 130 s; with 0, as soon as it is ready. The instant itself counts (Kubernetes checks
    strictly after it, a difference no whole-second status shows), so a timer set for
    ``ready_since + minReadySeconds`` finds the pod available.

    >>> is_available(100.0, 129.0, 30.0), is_available(100.0, 130.0, 30.0), is_available(100.0, 100.0, 0.0)
    (False, True, True)
    """
    if min_ready_seconds <= 0:
        return ready_since is not None
    return ready_since is not None and now + _TIME_TOLERANCE - ready_since >= min_ready_seconds


def replicas_settled(desired: int, current: int, available: int) -> bool:
    """A ReplicaSet (or a colour's Deployment) has done what it was asked: as many pods as
    desired exist and all are available. 3 desired, 3 current, 2 available: not yet.

    >>> replicas_settled(3, 3, 3), replicas_settled(3, 3, 2), replicas_settled(0, 0, 0)
    (True, False, True)
    """
    return desired == current == available


def deadline_outlasts_min_ready(progress_deadline_seconds: float, min_ready_seconds: float) -> bool:
    """The API server's rule (``ValidateDeploymentSpec``): progressDeadlineSeconds must be
    greater than minReadySeconds, or every pod would time out before it could count as
    available. 600 after 30: fine; 30 after 30: refused.

    >>> deadline_outlasts_min_ready(600, 30), deadline_outlasts_min_ready(30, 30)
    (True, False)
    """
    return progress_deadline_seconds > min_ready_seconds


def progress_deadline_at(last_progress: float, progress_deadline_seconds: float) -> float:
    """When the rollout fails if nothing progresses: the last progress plus the deadline
    (``DeploymentTimedOut`` counts from the Progressing condition's lastUpdateTime).

    >>> progress_deadline_at(60.0, 120.0)
    180.0
    """
    return last_progress + progress_deadline_seconds


def progress_deadline_exceeded(
    now: float, last_progress: float, progress_deadline_seconds: float, settled: bool = False
) -> bool:
    """The progress deadline has passed with the rollout still unsettled
    (``DeploymentTimedOut``); a settled rollout has nothing left to time out.

    Kubernetes' table (deadline 10 s): progress at 00:01:09, now 00:01:20 (11 s) -> timed
    out; progress at 00:01:11 (9 s) -> not. The instant of the deadline counts as passed, as
    in :func:`is_available`.

    >>> progress_deadline_exceeded(80.0, 69.0, 10.0), progress_deadline_exceeded(80.0, 71.0, 10.0)
    (True, False)
    >>> progress_deadline_exceeded(80.0, 69.0, 10.0, settled=True)
    False
    """
    if settled:
        return False
    return now + _TIME_TOLERANCE >= progress_deadline_at(last_progress, progress_deadline_seconds)
