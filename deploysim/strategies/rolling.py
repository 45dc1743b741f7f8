"""The Deployment controller's rolling-update rules, as Kubernetes resolves them.

Each rule is a small pure function named for what it computes, mirroring
``pkg/controller/deployment/util/deployment_util.go``. The simulated world calls them; the
real world leaves the work to the real Deployment controller, which follows the same rules.
"""

from __future__ import annotations

import math

from deploysim.plan import Plan, RollingUpdate

DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """An int-or-percent resolved against ``total``.

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


def resolve_fenceposts(max_surge: int | str, max_unavailable: int | str, replicas: int) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable rounds down; 0/0 becomes 0/1.

    Worked through (replicas 10): 25%/25% -> 3/2; 0/0 -> 0/1; 1%/1% -> 1/0.
    Replicas 3: 0/1% -> 0/1 (1% of 3 floors to 0, and both zero turns unavailable to 1).

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


def max_unavailable(max_surge: int | str, max_unavailable_: int | str, replicas: int) -> int:
    """Pods that may be unavailable during the update, never more than replicas."""
    if replicas == 0:
        return 0
    _, unavailable = resolve_fenceposts(max_surge, max_unavailable_, replicas)
    return min(unavailable, replicas)


def new_rs_new_replicas(
    replicas: int, max_surge: int | str, max_unavailable_: int | str, all_rs_replicas: int, new_rs_replicas: int
) -> int:
    """Replicas the new ReplicaSet may have now (``NewRSNewReplicas``).

    Total pods (spec replicas of every ReplicaSet) may reach replicas + surge; the new
    ReplicaSet never exceeds replicas. With 10 replicas, surge 3, all at 10 and new at 0:
    3. With all at 13 already: unchanged.

    >>> new_rs_new_replicas(10, "25%", "25%", 10, 0)
    3
    >>> new_rs_new_replicas(10, "25%", "25%", 13, 3)
    3
    """
    surge, _ = resolve_fenceposts(max_surge, max_unavailable_, replicas)
    max_total = replicas + surge
    if all_rs_replicas >= max_total:
        return new_rs_replicas
    scale_up = min(max_total - all_rs_replicas, replicas - new_rs_replicas)
    return new_rs_replicas + max(scale_up, 0)


def old_rs_scale_down_budget(
    replicas: int,
    max_surge: int | str,
    max_unavailable_: int | str,
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
    min_available = replicas - max_unavailable(max_surge, max_unavailable_, replicas)
    new_unavailable = new_rs_replicas - new_rs_available
    return all_rs_replicas - min_available - new_unavailable


def healthy_scale_down(replicas: int, max_surge: int | str, max_unavailable_: int | str, available: int) -> int:
    """Old pods that may go given the available pods (``scaleDownOldReplicaSetsForRollingUpdate``).

    >>> healthy_scale_down(10, "25%", "25%", 10)
    2
    """
    min_available = replicas - max_unavailable(max_surge, max_unavailable_, replicas)
    return max(available - min_available, 0)


def compile_rolling(scenario) -> Plan:  # noqa: ANN001 - Scenario, imported lazily to avoid a cycle
    from deploysim.strategies import background_analysis

    s = scenario.strategy
    return Plan(
        strategy="rolling",
        replicas=scenario.replicas,
        steps=(RollingUpdate(),),
        routing="replica_ratio",
        max_surge=s.max_surge,
        max_unavailable=s.max_unavailable,
        min_ready_seconds=s.min_ready_seconds,
        progress_deadline_seconds=s.progress_deadline_seconds,
        background=background_analysis(scenario) if s.background_analysis else None,
    )
