"""Where the traffic goes: pods, Services and the HTTPRoute read into flows (pure functions).

The layout is :mod:`deploysim.kube.naming`'s. Users' requests follow the HTTPRoute ``S``'s
first rule with ``backendRefs`` (split by ``weight``, as the Gateway API's
``HTTPBackendRef.weight`` says: proportional, default 1, 0 gets nothing), else the Service
``S``; each backend Service spreads its share evenly over the ready pods its selector picks,
as kube-proxy does. Blue-green smoke tests go to Service ``S-preview`` while no user request
reaches the candidate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deploysim.kube import naming
from deploysim.rules.routes import backend_weight, route_refs

VERSIONS = ("stable", "candidate")
ROUTES = ("user", "preview")


@dataclass(frozen=True)
class PodView:
    """What the model needs of a pod."""

    name: str
    labels: Mapping[str, str]
    image: str
    ready: bool


@dataclass(frozen=True)
class Backend:
    """A share of one route's requests, spread evenly over ``pods`` (ready pod names).

    With no ready pod the share is answered 503 and counted against ``version``: the
    version of the pods the backend selects, the stable one if it selects none.
    """

    name: str
    share: float
    pods: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class Flow:
    """Requests per second from one route to one pod (``pod`` None: no ready endpoint)."""

    pod: str | None
    version: str
    route: str
    rps: float


def pod_view(pod: Any) -> PodView:
    """A ``V1Pod`` as the model sees it: ready while its Ready condition is True and it is not
    being deleted (the EndpointSlice controller drops a terminating pod from ``ready``)."""
    meta, spec, status = pod.metadata, pod.spec, pod.status
    image = spec.containers[0].image if spec and spec.containers else ""
    ready = meta.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in ((status and status.conditions) or [])
    )
    return PodView(meta.name, dict(meta.labels or {}), image or "", ready)


def version_of(image: str, candidate_image: str) -> str:
    """A pod's version by its first container's image (naming.py)."""
    return "candidate" if image == candidate_image else "stable"


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service selector picks a pod when every key matches; no selector picks nothing."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def _backend(
    name: str,
    share: float,
    selector: Mapping[str, str] | None,
    pods: Iterable[PodView],
    candidate_image: str,
) -> Backend:
    chosen = [p for p in pods if selects(selector, p.labels)]
    ready = tuple(sorted(p.name for p in chosen if p.ready))
    versions = Counter(version_of(p.image, candidate_image) for p in chosen)
    version = max(VERSIONS, key=lambda v: (versions[v], v == "stable")) if chosen else "stable"
    return Backend(name, share, ready, version)


def user_backends(
    service: str,
    pods: Iterable[PodView],
    services: Mapping[str, Mapping[str, str] | None],
    httproute: Mapping[str, Any] | None,
    candidate_image: str,
) -> list[Backend]:
    """Where users' requests go: the HTTPRoute's weighted backends, else Service ``S``.

    ``services`` maps each Service name in the namespace to its selector (None: no selector).

    >>> pods = [PodView("a", {"app.kubernetes.io/name": "s", "deploysim.io/slot": "blue"}, "v1", True),
    ...         PodView("b", {"app.kubernetes.io/name": "s", "deploysim.io/slot": "green"}, "v2", True)]
    >>> svcs = {"s-blue": {"deploysim.io/slot": "blue"}, "s-green": {"deploysim.io/slot": "green"}}
    >>> route = {"spec": {"rules": [{"backendRefs": [{"name": "s-blue", "weight": 80},
    ...                                              {"name": "s-green", "weight": 20}]}]}}
    >>> [(b.name, b.share, b.pods, b.version) for b in user_backends("s", pods, svcs, route, "v2")]
    [('s-blue', 0.8, ('a',), 'stable'), ('s-green', 0.2, ('b',), 'candidate')]
    """
    pods = list(pods)
    if httproute is not None:
        rules = (httproute.get("spec") or {}).get("rules") or []
        colours = tuple(naming.slot_service(service, slot) for slot in naming.SLOTS)
        refs = route_refs(rules, colours) or []
        refs = [r for r in refs if (r.get("kind") or "Service") == "Service"]
        weights = [backend_weight(r) for r in refs]
        total = sum(weights)
        if total == 0:
            return [Backend("", 1.0, (), "stable")]  # nothing to send to: every request fails
        return [
            _backend(r["name"], w / total, services.get(r["name"]), pods, candidate_image)
            for r, w in zip(refs, weights, strict=True)
            if w > 0
        ]
    if service not in services:
        return [Backend("", 1.0, (), "stable")]
    return [_backend(service, 1.0, services[service], pods, candidate_image)]


def preview_backend(
    service: str,
    pods: Iterable[PodView],
    services: Mapping[str, Mapping[str, str] | None],
    candidate_image: str,
) -> Backend | None:
    """Service ``S-preview``'s ready pods, or None when there is no such Service."""
    name = naming.preview_service(service)
    if name not in services:
        return None
    return _backend(name, 1.0, services[name], pods, candidate_image)


def plan_flows(
    backends: list[Backend],
    preview: Backend | None,
    user_rps: float,
    preview_rps: float,
    versions: Mapping[str, str],
) -> list[Flow]:
    """Requests per second per (route, pod); ``versions`` maps a pod name to its version.

    Preview traffic flows only to ready preview pods and only while no user request reaches
    the candidate, as in the simulator (smoke tests before the switch).
    """
    flows: list[Flow] = []
    for b in backends:
        rps = user_rps * b.share
        if not b.pods:
            flows.append(Flow(None, b.version, "user", rps))
            continue
        for pod in b.pods:
            flows.append(Flow(pod, versions[pod], "user", rps / len(b.pods)))
    to_candidate = sum(f.rps for f in flows if f.version == "candidate")
    if preview is not None and preview.pods and preview_rps > 0 and to_candidate == 0:
        for pod in preview.pods:
            flows.append(Flow(pod, versions[pod], "preview", preview_rps / len(preview.pods)))
    return flows


def candidate_weight(flows: list[Flow]) -> float:
    """The share of user requests routed to the candidate, 0-100."""
    users = [f for f in flows if f.route == "user"]
    total = sum(f.rps for f in users)
    return 100.0 * sum(f.rps for f in users if f.version == "candidate") / total if total else 0.0


def ready_pods(pods: Iterable[PodView], versions: Mapping[str, str]) -> dict[str, int]:
    """Ready pods per version; ``versions`` maps a pod name to its version."""
    counts = dict.fromkeys(VERSIONS, 0)
    for p in pods:
        if p.ready:
            counts[versions[p.name]] += 1
    return counts

