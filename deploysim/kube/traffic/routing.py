"""Where the traffic goes: pods, Services, the HTTPRoute and Ingresses read into flows (pure functions).

The layout is :mod:`deploysim.kube.naming`'s. Users' requests follow the HTTPRoute ``S``'s
first rule with ``backendRefs`` (split by ``weight``, as the Gateway API's
``HTTPBackendRef.weight`` says: proportional, default 1, 0 gets nothing); with no HTTPRoute,
the stable Ingress's first path and the canary Ingress beside it, as ingress-nginx routes
(:func:`deploysim.routers.nginx_ingress.user_split`: ``weight / total`` to the canary's
Service); with neither, the Service ``S``. Each backend Service spreads its share evenly over
the ready pods its selector picks, as kube-proxy does. Blue-green smoke tests go to Service
``S-preview`` while no user request reaches the candidate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deploysim.kube import naming
from deploysim.rules.routes import backend_weight, route_refs
from deploysim.rules.saturation import PodResources, parse_resources

VERSIONS = ("stable", "candidate")
ROUTES = ("user", "preview")


@dataclass(frozen=True)
class PodView:
    """What the model needs of a pod (``workload``: its Deployment, see :func:`workload_of`;
    ``container`` and ``resources``: its first container's name and requests and limits,
    None when it declares none)."""

    name: str
    labels: Mapping[str, str]
    image: str
    ready: bool
    workload: str = ""
    service_account: str = "default"
    container: str = "app"
    resources: PodResources | None = None


@dataclass(frozen=True)
class Entry:
    """The Ingress location users' requests came in by, as ingress-nginx labels them.

    ``service``: the location's own backend; ``canary``: the canary upstream that took the
    request, "" when the location's own backend did.
    """

    ingress: str
    host: str
    path: str
    service: str
    canary: str


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
    selected: tuple[str, ...] = ()  # every pod it selects, ready or not
    entry: Entry | None = None  # the Ingress location, when users came in by one


@dataclass(frozen=True)
class Flow:
    """Requests per second from one route to one pod (``pod`` None: no ready endpoint), through
    the Service ``backend`` ("" for none) and the Ingress location ``entry`` (None: no Ingress)."""

    pod: str | None
    version: str
    route: str
    rps: float
    backend: str = ""
    entry: Entry | None = None


def pod_view(pod: Any) -> PodView:
    """A ``V1Pod`` as the model sees it: ready while its Ready condition is True and it is not
    being deleted (the EndpointSlice controller drops a terminating pod from ``ready``)."""
    meta, spec, status = pod.metadata, pod.spec, pod.status
    image = spec.containers[0].image if spec and spec.containers else ""
    ready = meta.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in ((status and status.conditions) or [])
    )
    labels = dict(meta.labels or {})
    owners = [(o.kind, o.name) for o in (meta.owner_references or []) if o.controller]
    account = (spec.service_account_name if spec else None) or "default"
    first = spec.containers[0] if spec and spec.containers else None
    return PodView(meta.name, labels, image or "", ready,
                   workload_of(meta.name, labels, owners, bool(meta.generate_name)), account,
                   (first.name if first is not None else None) or "app", container_resources(first))


def container_resources(container: Any) -> PodResources | None:
    """A ``V1Container``'s requests and limits, None when it declares none (or one the
    API server would not have taken)."""
    res = getattr(container, "resources", None)
    requests, limits = (getattr(res, "requests", None) or {}), (getattr(res, "limits", None) or {})
    if not requests and not limits:
        return None
    try:
        return parse_resources(requests, limits)
    except ValueError:
        return None


def workload_of(name: str, labels: Mapping[str, str], owners: Sequence[tuple[str, str]],
                generated: bool = True) -> str:
    """A pod's workload as Istio names it (``GetDeployMetaFromPod``, istio/istio pkg/kube/util.go):
    the controller's name, a ReplicaSet's less its ``-<pod-template-hash>`` (its Deployment);
    the pod's own name when its name was not generated or it has no controller.

    >>> workload_of("s-green-5d4b-x2", {"pod-template-hash": "5d4b"}, [("ReplicaSet", "s-green-5d4b")])
    's-green'
    >>> workload_of("web-0", {}, [("StatefulSet", "web")]), workload_of("solo", {}, [], generated=False)
    ('web', 'solo')
    """
    if not generated or not owners:
        return name
    kind, owner = owners[0]
    template = labels.get("pod-template-hash", "")
    if kind == "ReplicaSet" and template and owner.endswith(template):
        return owner.removesuffix("-" + template)
    return owner


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
    entry: Entry | None = None,
) -> Backend:
    chosen = [p for p in pods if selects(selector, p.labels)]
    ready = tuple(sorted(p.name for p in chosen if p.ready))
    versions = Counter(version_of(p.image, candidate_image) for p in chosen)
    version = max(VERSIONS, key=lambda v: (versions[v], v == "stable")) if chosen else "stable"
    return Backend(name, share, ready, version, tuple(sorted(p.name for p in chosen)), entry)


def user_backends(
    service: str,
    pods: Iterable[PodView],
    services: Mapping[str, Mapping[str, str] | None],
    httproute: Mapping[str, Any] | None,
    candidate_image: str,
    *,
    ingresses: Sequence[Mapping[str, Any]] = (),
    ingress: str | None = None,
    namespace: str = "default",
) -> list[Backend]:
    """Where users' requests go: the HTTPRoute's weighted backends, else the stable Ingress's
    first path and its canary, else Service ``S``.

    ``services`` maps each Service name in the namespace to its selector (None: no selector);
    ``ingresses`` are the namespace's Ingresses (their JSON form), the stable one named
    ``ingress`` (default ``S``). A canary Ingress at weight 0 is a backend with share 0, so its
    series exist before its first request.

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
    stable = next((i for i in ingresses if (i.get("metadata") or {}).get("name") == (ingress or service)), None)
    if stable is not None:
        # imported here: the router module brings the kubernetes client, which --help must not load
        from deploysim.routers.nginx_ingress import user_split

        splits = user_split(stable, ingresses, namespace)
        if splits is None:
            return [Backend("", 1.0, (), "stable")]  # an Ingress with no path to a Service
        return [
            _backend(s.service, s.share, services.get(s.service), pods, candidate_image,
                     Entry(s.ingress, s.host, s.path, s.location_service, s.canary))
            for s in splits
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
            flows.append(Flow(None, b.version, "user", rps, b.name, b.entry))
            continue
        for pod in b.pods:
            flows.append(Flow(pod, versions[pod], "user", rps / len(b.pods), b.name, b.entry))
    to_candidate = sum(f.rps for f in flows if f.version == "candidate")
    if preview is not None and preview.pods and preview_rps > 0 and to_candidate == 0:
        for pod in preview.pods:
            flows.append(Flow(pod, versions[pod], "preview", preview_rps / len(preview.pods), preview.name))
    return flows


def expected_flows(backends: list[Backend], preview: Backend | None, versions: Mapping[str, str]) -> list[Flow]:
    """Every flow the routing could carry, at 0 rps: each user backend to each pod it selects,
    ready or not, and to no endpoint; the preview to each pod it selects.

    The real-shaped metric families serve these series at 0 before their first request, so a
    pod that becomes ready later is counted from its first request by ``increase()``.

    >>> b = Backend("s-green", 0.3, ("g1",), "candidate", ("g1", "g2"))
    >>> [(f.pod, f.backend, f.rps) for f in expected_flows([b], None, {"g1": "candidate", "g2": "candidate"})]
    [('g1', 's-green', 0.0), ('g2', 's-green', 0.0), (None, 's-green', 0.0)]
    """
    flows = []
    for b in backends:
        flows += [Flow(p, versions[p], "user", 0.0, b.name, b.entry) for p in b.selected]
        flows.append(Flow(None, b.version, "user", 0.0, b.name, b.entry))
    if preview is not None:
        flows += [Flow(p, versions[p], "preview", 0.0, preview.name) for p in preview.selected]
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

