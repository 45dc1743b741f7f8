"""Argo Rollouts' canary counts: pods per weight with and without a traffic router, how far a
canary without a router may scale in one pass, the pods a ``setCanaryScale`` asks for, and the
weight a canary without a router gets from its pods.

The functions follow ``utils/replicaset/canary.go`` in ``argoproj/argo-rollouts``:
``approximateWeightedCanaryStableReplicaCounts`` (a basic canary, no router, where it ends),
``CalculateReplicaCountsForBasicCanary`` with ``GetReplicasForScaleDown``,
``calculateScaleDownReplicaCount`` and ``adjustReplicaWithinLimits`` (how it gets there within
maxSurge and maxUnavailable), ``CalculateReplicaCountsForTrafficRoutedCanary`` and
``trafficWeightToReplicas`` (with a router), ``GetCanaryReplicasOrWeight`` (what a
``setCanaryScale`` step holds). The weight of a canary without a router is kube-proxy's even
spread over ready endpoints.

>>> basic_canary_replicas(10, 41), router_canary_replicas(10, 5)
((4, 6), (1, 10))
"""

from __future__ import annotations

import math

from deploysim.rules.deployment import IntOrPercent, max_surge, max_unavailable


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


def replicas_for_scale_down(spec: int, available: int, ignore_availability: bool) -> int:
    """Pods of one version that count as serving when deciding how many may go (Argo's
    ``GetReplicasForScaleDown``).

    A version already scaled below its available pods counts its spec (the extra pods are on
    their way out and must not be counted on): spec 7 with 8 available counts 7. Otherwise its
    available pods, or its spec when availability is ignored (the version being drained: its
    pods may never become available, as a crash-looping stable, and must not block the rollout).

    >>> replicas_for_scale_down(7, 8, False), replicas_for_scale_down(4, 1, False), replicas_for_scale_down(4, 1, True)
    (7, 1, 4)
    """
    if spec < available:
        return spec
    return spec if ignore_availability else available


def _within_limits(
    drain: int, drain_available: int, adjust: int, adjust_available: int, max_total: int, min_available: int
) -> tuple[int, int]:
    """(drained, adjusted) counts brought back within maxSurge and maxUnavailable after a scale
    down (Argo's ``adjustReplicaWithinLimits``): the version whose availability counts
    (``adjust``) gives up what exceeds replicas + surge, takes back as many of its available pods
    as min available still needs, and whatever that leaves above replicas + surge comes off the
    drained version.

    10 replicas, surge 1, unavailable 0 at 100%: the stable drained to 2 (2 available) beside a
    canary of 10 (8 available) is 1 over 11, so the canary goes to 9; 2 + 8 available still
    makes min available 10.

    >>> _within_limits(2, 2, 10, 8, max_total=11, min_available=10)
    (2, 9)
    """
    over = max(0, adjust + drain - max_total)
    available = min(drain_available, drain)
    adjust -= over
    available += min(adjust_available, adjust)
    lost = max(0, adjust_available - adjust)
    adjust += min(lost, max(0, min_available - available))
    drain -= max(0, adjust + drain - max_total)
    return drain, adjust


def basic_canary_scale(
    replicas: int,
    weight: int,
    *,
    candidate_spec: int,
    stable_spec: int,
    candidate_available: int,
    stable_available: int,
    surge: IntOrPercent,
    unavailable: IntOrPercent,
) -> tuple[int, int]:
    """(candidate, stable) replicas a canary without a traffic router moves to in one pass,
    from the versions' spec replicas and available pods (Argo's
    ``CalculateReplicaCountsForBasicCanary``).

    The target is :func:`basic_canary_replicas` at the weight. First scale up, within replicas +
    maxSurge less the spec replicas of both versions, the stable before the candidate. Then scale
    down, within the serving pods (:func:`replicas_for_scale_down`) less min available (replicas
    less maxUnavailable): while the candidate grows (its target not below its spec), only the
    stable goes and the candidate's availability counts; while it shrinks (a lower weight, an
    abort), only the candidate goes and the stable's availability counts. Last, both are brought
    back within the limits (:func:`_within_limits`). maxSurge and maxUnavailable resolve as a
    Deployment's do (Argo's ``MaxSurge`` / ``MaxUnavailable`` call the same ``resolveFenceposts``):
    surge up, unavailable down, both 0 makes unavailable 1.

    This is Argo since v1.2. Older versions (``CalculateReplicaCountsForCanary``) rounded both
    counts up and allowed one pod above the surge for it (``extraReplicaAdded``, until v1.2), and
    scaled the candidate down before the stable whatever the direction (until v1.1's
    ``adjustReplicaWithinLimits``); the nearest-weight target never needs the extra pod.

    10 replicas at 25%/25% (surge 3, unavailable 2, min available 8), going to 25% (3 candidate,
    8 stable): from 0 and 10, the candidate may take the 3 surge pods and 2 stable pods may go
    (10 available less 8), so (3, 8). Going to 100% from 8 candidate and 3 stable, all available:
    13 less 11 specs lets the candidate add its last 2, and 11 available less 8 lets the 3 stable
    pods go, so (10, 0), the 8 available candidate pods serving until the 2 new ones are up.

    >>> kw = dict(surge="25%", unavailable="25%")
    >>> basic_canary_scale(10, 25, candidate_spec=0, stable_spec=10, candidate_available=0, stable_available=10, **kw)
    (3, 8)
    >>> basic_canary_scale(10, 100, candidate_spec=8, stable_spec=3, candidate_available=8, stable_available=3, **kw)
    (10, 0)

    Argo's own examples: 10 replicas at 10%, surge 1, unavailable 1: (1, 9); at 30% with surge 3
    and unavailable 0: (3, 10), the stable waits for the candidate; at 30% with surge 0 and
    unavailable 5: (0, 7), the candidate waits for room.

    >>> basic_canary_scale(10, 10, candidate_spec=0, stable_spec=10, candidate_available=0, stable_available=10,
    ...                    surge=1, unavailable=1)
    (1, 9)
    >>> basic_canary_scale(10, 30, candidate_spec=0, stable_spec=10, candidate_available=0, stable_available=10,
    ...                    surge=3, unavailable=0)
    (3, 10)
    >>> basic_canary_scale(10, 30, candidate_spec=0, stable_spec=10, candidate_available=0, stable_available=10,
    ...                    surge=0, unavailable=5)
    (0, 7)
    """
    surge_ = max_surge(surge, unavailable, replicas)
    want_candidate, want_stable = basic_canary_replicas(replicas, weight, surge_)
    candidate, stable = candidate_spec, stable_spec
    max_total = replicas + surge_
    room = max_total - (candidate_spec + stable_spec)
    if stable_spec < want_stable and room > 0:
        stable = min(want_stable, stable_spec + room)
        room -= stable - stable_spec
    if candidate_spec < want_candidate and room > 0:
        candidate = min(want_candidate, candidate_spec + room)
    min_avail = replicas - max_unavailable(surge, unavailable, replicas)
    increasing = want_candidate >= candidate_spec
    serving = (replicas_for_scale_down(candidate_spec, candidate_available, not increasing)
               + replicas_for_scale_down(stable_spec, stable_available, increasing))
    if serving <= min_avail:
        return candidate, stable
    may_go = serving - min_avail
    if not increasing:
        if candidate_spec > want_candidate:
            candidate = max(want_candidate, candidate_spec - may_go)
        candidate, stable = _within_limits(candidate, candidate_available, stable, stable_available,
                                           max_total, min_avail)
    else:
        if stable_spec > want_stable:
            stable = max(want_stable, stable_spec - may_go)
        stable, candidate = _within_limits(stable, stable_available, candidate, candidate_available,
                                           max_total, min_avail)
    return candidate, stable


def basic_canary_at_target(
    replicas: int,
    weight: int,
    surge: IntOrPercent,
    unavailable: IntOrPercent,
    *,
    candidate: tuple[int, int, int],
    stable: tuple[int, int],
) -> bool:
    """The weight's counts are reached (Argo's ``AtDesiredReplicaCountsForCanary`` without a
    router): the candidate's spec, pods and available pods all at its target, the stable's spec
    and pods at its own (its pods need not all be available: Argo's ``allDesiredAreCreated``).
    ``candidate`` is (spec, pods, available), ``stable`` (spec, pods); pods not counted yet (-1,
    a status older than the last change) are not there. Argo reads the candidate's spec and
    available pods only; its pods too here, so a step ends on a counted status.

    10 replicas at 25%/25% and 25%: 3 candidate pods all available beside 8 stable ones is
    there; with one candidate pod still starting, or a stable pod still to go, it is not.

    >>> basic_canary_at_target(10, 25, "25%", "25%", candidate=(3, 3, 3), stable=(8, 8))
    True
    >>> basic_canary_at_target(10, 25, "25%", "25%", candidate=(3, 3, 2), stable=(8, 8))
    False
    >>> basic_canary_at_target(10, 25, "25%", "25%", candidate=(3, 3, 3), stable=(8, 9))
    False
    """
    want_candidate, want_stable = basic_canary_replicas(replicas, weight, max_surge(surge, unavailable, replicas))
    return candidate == (want_candidate,) * 3 and stable == (want_stable,) * 2


def basic_canary_waves(
    replicas: int,
    weight: int,
    candidate: int,
    stable: int,
    surge: IntOrPercent,
    unavailable: IntOrPercent,
) -> int:
    """Pod start-up waves a canary without a router takes from ``candidate`` and ``stable``
    pods, all available, to ``weight``'s counts, scaling one version a pass as the controller
    does with :func:`basic_canary_scale`, when pods going go at once and pods asked for are all
    available one wave later.

    10 replicas at 25%/25% from 0 to 25%: the stable goes to 8 and the candidate to 3 in the same
    wave, so 1. 4 replicas with surge 1 and unavailable 0 from 0 to 50%: one candidate pod at a
    time, a stable pod going as each is up, so 2; back to 0 (an abort) from there, 2 again.

    >>> basic_canary_waves(10, 25, 0, 10, "25%", "25%"), basic_canary_waves(4, 50, 0, 4, 1, 0)
    (1, 2)
    >>> basic_canary_waves(4, 0, 2, 2, 1, 0)
    2
    """
    waves = 0
    candidate_available, stable_available = candidate, stable
    for _ in range(8 * (replicas + 2)):  # a wave brings at least one pod, a pass scales one version
        to_candidate, to_stable = basic_canary_scale(
            replicas, weight, candidate_spec=candidate, stable_spec=stable,
            candidate_available=candidate_available, stable_available=stable_available,
            surge=surge, unavailable=unavailable,
        )
        if to_stable != stable:
            stable, stable_available = to_stable, min(stable_available, to_stable)
        elif to_candidate != candidate:
            candidate, candidate_available = to_candidate, min(candidate_available, to_candidate)
        elif (candidate_available, stable_available) == (candidate, stable):
            break
        else:
            waves += 1
            candidate_available, stable_available = candidate, stable
    return waves


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
