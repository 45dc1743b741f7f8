"""Flagger's promotion as pure rules: the primary rolls to the canary's template.

When a canary passes its last check, Flagger's ``runCanary`` (pkg/controller/scheduler.go)
calls ``Promote``: the primary Deployment takes the canary's pod template, so Kubernetes
rolls the primary's pods to the new version under the primary's own maxSurge /
maxUnavailable, while the routes stay as they are (a progressive canary keeps its weight;
A/B testing its matched users; a mesh's blue/green all of them). At each later tick ``IsPrimaryReady``
(pkg/canary/deployment_ready.go) holds the promotion until that roll is done; then traffic
goes back to the primary and the canary is scaled to zero.

A plan speaks of versions, not Deployments: during the roll the candidate version has the
canary's pods plus the primary's new ones, the stable version the primary's old ones. The
primary's new pods are counted above ``base``, the canary's pods when the promotion began.
"""

from __future__ import annotations

from deploysim.rules.deployment import IntOrPercent, new_rs_new_replicas, old_rs_new_replicas


def primary_roll_move(
    replicas: int,
    surge: IntOrPercent,
    unavailable: IntOrPercent,
    base: int,
    candidate: tuple[int, int, int],
    stable: tuple[int, int, int],
) -> tuple[str, int] | bool:
    """One pass of the primary's rolling update, as the Deployment controller makes it
    (``reconcileNewReplicaSet`` then ``reconcileOldReplicaSets``, with
    :func:`~deploysim.rules.deployment.new_rs_new_replicas` and
    :func:`~deploysim.rules.deployment.old_rs_new_replicas`): a ``(version, replicas)`` to ask
    for now, False to wait for pods, True once the primary runs the new version only.

    ``candidate`` and ``stable`` are (desired, current, available). As for a canary without a
    router, one version is scaled per pass, and the new pods are added only once the old
    ones are down to their spec, so the peak does not depend on which controller acts first.

    4 replicas at surge 1 / unavailable 0 beside a canary of 4: the primary adds one new pod
    (candidate 5), then, once it is available, lets one old pod go (stable 3), and so on.

    >>> primary_roll_move(4, 1, 0, 4, (4, 4, 4), (4, 4, 4))
    ('candidate', 5)
    >>> primary_roll_move(4, 1, 0, 4, (5, 5, 4), (4, 4, 4))  # the new pod is not available yet
    False
    >>> primary_roll_move(4, 1, 0, 4, (5, 5, 5), (4, 4, 4))
    ('stable', 3)
    >>> primary_roll_move(4, 1, 0, 4, (8, 8, 8), (0, 0, 0))
    True
    """
    new_desired, new_available = candidate[0] - base, max(candidate[2] - base, 0)
    old_desired, old_current, old_available = stable
    want_new = new_rs_new_replicas(replicas, surge, unavailable, new_desired + old_desired, new_desired)
    if want_new > new_desired:
        if not 0 <= old_current <= old_desired:
            return False
        return "candidate", base + want_new
    if old_desired > 0:
        want_old = old_rs_new_replicas(replicas, surge, unavailable, new_desired, new_available,
                                       old_desired, old_available)
        return ("stable", want_old) if want_old != old_desired else False
    return new_available >= replicas and old_current == 0


def primary_share_weight(canary_weight: float, base: int, candidate_ready: int, stable_ready: int) -> float:
    """The candidate version's share of requests while the primary rolls: the canary's
    weight, plus the primary's share split over its ready pods by version (a Service sends
    each ready endpoint its part).

    A canary at 50% and a primary with 1 new of 4 ready pods: 50 + 50 × 1/4 = 62.5.

    >>> primary_share_weight(50, 4, 5, 3), primary_share_weight(50, 4, 8, 0), primary_share_weight(50, 4, 4, 0)
    (62.5, 100.0, 50.0)
    """
    new_ready = max(candidate_ready - base, 0)
    serving = new_ready + stable_ready
    if serving == 0:
        return float(canary_weight)
    return canary_weight + (100.0 - canary_weight) * new_ready / serving
