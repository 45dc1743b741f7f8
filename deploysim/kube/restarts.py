"""Container restarts on a cluster: the rise of the pods' ``restartCount`` over a run.

The kubelet counts each container's restarts in ``status.containerStatuses[].restartCount``
(k8s.io/api core/v1 ``ContainerStatus``); a pod deleted and replaced starts again from 0 under
a new uid. So a run's restarts are, per pod uid, its count at the last list minus its count at
the run's first list (0 for a pod created since), kept for a pod after it is gone.
Kept here, apart from :mod:`deploysim.kube.world`, as pure functions over the pods listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def pod_restart_counts(pods: Iterable[Any]) -> dict[str, int]:
    """Each pod's restarts as the API lists them: pod uid (its name when it has none) -> the
    sum of its containers' ``restartCount`` (init containers are not the service's).

    >>> from types import SimpleNamespace as NS
    >>> pod = NS(metadata=NS(uid="u1", name="web-1"), status=NS(container_statuses=[
    ...     NS(restart_count=2), NS(restart_count=1)]))
    >>> pod_restart_counts([pod, NS(metadata=NS(uid=None, name="web-2"), status=None)])
    {'u1': 3, 'web-2': 0}
    """
    counts: dict[str, int] = {}
    for pod in pods:
        statuses = getattr(pod.status, "container_statuses", None) or []
        counts[pod.metadata.uid or pod.metadata.name] = sum(s.restart_count or 0 for s in statuses)
    return counts


def restarts_between(before: Mapping[str, int], after: Mapping[str, int]) -> int:
    """Container restarts from one list of pods (``before``) to a later one (``after``), both
    pod uid -> restarts: the rise of a pod in both, and every restart of a pod created since.
    A count that fell (no kubelet lowers one) is taken as no restart.

    Pod ``a`` restarted twice, ``b`` was deleted and replaced by ``c``, which restarted once:

    >>> restarts_between({"a": 1, "b": 4}, {"a": 3, "c": 1})
    3
    >>> restarts_between({"a": 1}, {"a": 1}), restarts_between({}, {})
    (0, 0)
    """
    return sum(max(n - before.get(uid, 0), 0) for uid, n in after.items())


def note_restarts(first: dict[str, int] | None, seen: dict[str, int],
                  listed: Mapping[str, int]) -> tuple[dict[str, int], int]:
    """After one more list of the pods: the run's first list (``first``, taken now when there
    was none), and the restarts since it. ``seen`` keeps each pod's last count (updated in
    place), so the restarts of a pod deleted since it was last listed still count.

    >>> seen = {}
    >>> first, n = note_restarts(None, seen, {"a": 5})  # a pod that restarted before the run
    >>> n, note_restarts(first, seen, {"a": 6, "b": 0})[1], note_restarts(first, seen, {"b": 2})[1]
    (0, 1, 3)
    """
    if first is None:
        first = dict(listed)
    seen.update(listed)
    return first, restarts_between(first, seen)
