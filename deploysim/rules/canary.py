"""Argo Rollouts' canary counts: pods per weight with and without a traffic router, the pods a
``setCanaryScale`` asks for, and the weight a canary without a router gets from its pods.

The functions follow ``utils/replicaset/canary.go`` in ``argoproj/argo-rollouts``:
``approximateWeightedCanaryStableReplicaCounts`` (a basic canary, no router),
``CalculateReplicaCountsForTrafficRoutedCanary`` and ``trafficWeightToReplicas`` (with one),
``GetCanaryReplicasOrWeight`` (what a ``setCanaryScale`` step holds). The weight of a canary
without a router is kube-proxy's even spread over ready endpoints.

>>> basic_canary_replicas(10, 41), router_canary_replicas(10, 5)
((4, 6), (1, 10))
"""

from __future__ import annotations

import math


def _tied(weight: int, total: int) -> bool:
    """True when ``total`` pods at ``weight`` % fall exactly half-way (3 pods at 50%: 1.5)
    (Argo's ``floorCeilingTied``)."""
    return (total * weight) % 100 == 50


def basic_canary_replicas(replicas: int, weight: int, max_surge: int = 0) -> tuple[int, int]:
    """(candidate, stable) replicas for a weight without a traffic router (Argo's
    ``approximateWeightedCanaryStableReplicaCounts``, called by
    ``CalculateReplicaCountsForBasicCanary``).

    Argo picks, among the candidate counts just below and just above ``replicas × weight``,
    the split whose share of pods is nearest the weight; a tie (exactly half-way) goes to
    the larger candidate. Between 1% and 99% neither version drops to 0 pods. With
    ``max_surge`` > 0 it may also run one pod more than ``replicas`` if that gets nearer.

    10 replicas at 41%: 4/10 = 40% beats 5/10 = 50% (and 4/11, 5/11), so 4 candidate and
    6 stable. 5 replicas at 10% (0.5 pods): 0 is not allowed, so 1 candidate and 4 stable
    (20%): without surge, 5 replicas cannot go below 20%. With surge, 1 candidate and 5
    stable (16.7%) is nearer. 10 replicas at 99%, no surge: 9 and 1, never 10 and 0.

    >>> basic_canary_replicas(10, 41)
    (4, 6)
    >>> basic_canary_replicas(5, 10), basic_canary_replicas(5, 10, max_surge=1)
    ((1, 4), (1, 5))
    >>> basic_canary_replicas(10, 99)
    (9, 1)
    """
    if replicas <= 0:
        return 0, 0
    if weight <= 0:
        return 0, replicas
    if weight >= 100:
        return replicas, 0
    ceil_c = -(-replicas * weight // 100)
    floor_c = replicas * weight // 100
    zero_ok = replicas == 1 and max_surge == 0
    options: list[tuple[int, int]] = []
    if ceil_c < replicas or zero_ok:
        options.append((ceil_c, replicas))
    if not _tied(weight, replicas) and (floor_c > 0 or zero_ok):
        options.append((floor_c, replicas))
    if max_surge > 0:
        options.append((ceil_c, replicas + 1))
        if not _tied(weight, replicas + 1) and (floor_c > 0 or zero_ok):
            options.append((floor_c, replicas + 1))
    if not options:
        return 0, replicas
    # min keeps the first of equally near options, as Argo does
    candidate, total = min(options, key=lambda o: abs(o[0] * 100 / o[1] - weight))
    return candidate, total - candidate


def traffic_weight_to_replicas(replicas: int, weight: float) -> int:
    """Pods for a weight (or a ``setCanaryScale`` percentage) of ``replicas``, rounding up
    (Argo's ``trafficWeightToReplicas``): 5% of 10 is 0.5, so 1; 50% of 3 is 2; 0% is 0.

    >>> traffic_weight_to_replicas(10, 5), traffic_weight_to_replicas(3, 50), traffic_weight_to_replicas(10, 0)
    (1, 2, 0)
    """
    return math.ceil(replicas * weight / 100)


def router_canary_replicas(replicas: int, weight: int) -> tuple[int, int]:
    """(candidate, stable) with a traffic router: candidate weight × replicas rounded up, the
    stable left at full size until the rollout ends (Argo's
    ``CalculateReplicaCountsForTrafficRoutedCanary`` without ``dynamicStableScale``).

    >>> router_canary_replicas(10, 5), router_canary_replicas(10, 100)
    ((1, 10), (10, 10))
    """
    if weight >= 100:
        return replicas, replicas
    return traffic_weight_to_replicas(replicas, weight), replicas


def set_canary_scale_replicas(replicas: int, percent: int | None, matched: int) -> int:
    """Candidate pods a ``setCanaryScale`` step asks for (Argo's ``GetCanaryReplicasOrWeight``):
    ``weight: percent`` gives that share of ``replicas``, rounded up (20% of 10 -> 2, 33% of
    10 -> 4); ``matchTrafficWeight`` (``percent`` None) gives ``matched``, the count the
    current traffic weight asks for. (``replicas: n`` reaches the plan as the percentage that
    gives back n: see :func:`percent_for_replicas`.)

    >>> set_canary_scale_replicas(10, 20, matched=1), set_canary_scale_replicas(10, 33, matched=1)
    (2, 4)
    >>> set_canary_scale_replicas(10, None, matched=1)
    1
    """
    if percent is None:
        return matched
    return traffic_weight_to_replicas(replicas, percent)


def percent_for_replicas(count: int, replicas: int) -> int:
    """The whole percentage of ``replicas`` that :func:`set_canary_scale_replicas` turns back
    into ``count`` pods: ``setCanaryScale.replicas`` said as a share. 1 of 3 is 33% (0.99 up
    to 1); 2 of 3 is 66%. Above 100 replicas one percent is more than one pod, so the
    percentage rounds up to cover ``count`` and gives a little more (1 of 250: 1%, 3 pods).

    >>> percent_for_replicas(1, 3), percent_for_replicas(2, 3), percent_for_replicas(1, 250)
    (33, 66, 1)
    """
    if replicas <= 100:
        return count * 100 // replicas
    return -(-count * 100 // replicas)


def replica_ratio_shares(stable_ready: int, candidate_ready: int) -> tuple[float, float]:
    """(stable, candidate) share of requests without a traffic router: kube-proxy spreads
    them evenly over the Service's ready endpoints, so each version gets its share of ready
    pods. 6 stable and 4 candidate ready: (0.6, 0.4). No ready pod at all: the stable
    version is charged with every request, which fails.

    >>> replica_ratio_shares(6, 4), replica_ratio_shares(0, 0)
    ((0.6, 0.4), (1.0, 0.0))
    """
    total = stable_ready + candidate_ready
    if total == 0:
        return 1.0, 0.0
    return stable_ready / total, candidate_ready / total


def replica_ratio_weight(stable_ready: int, candidate_ready: int) -> float:
    """The candidate's weight (0-100) without a traffic router: its share of ready endpoints
    × 100. 6 stable and 4 candidate ready: 40; 9 and 1: 10; none ready: 0.

    >>> replica_ratio_weight(6, 4), replica_ratio_weight(9, 1), replica_ratio_weight(0, 0)
    (40.0, 10.0, 0.0)
    """
    return replica_ratio_shares(stable_ready, candidate_ready)[1] * 100
