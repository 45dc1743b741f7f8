"""Replica ratio (no traffic router): the weight is the candidate's share of ready endpoints.

The Service selects every pod of both versions and spreads requests over its ready
endpoints, so the weight follows the replica counts the plan's scale actions set;
``set_weight`` changes nothing. The observed weight is read from the Service's
EndpointSlices as stored: endpoints whose ``conditions.ready`` is true (or unset, which the
API says to read as ready), each counted for the version of the pod it targets (the
candidate when its first container runs the candidate's image), and turned into a weight by
:func:`deploysim.rules.canary.replica_ratio_weight`, the rule the simulator follows too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.routers.names import Note, RouteNames, ignore
from deploysim.rules.canary import replica_ratio_weight

SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # set by the EndpointSlice controller


def ready_pods(slices: Iterable[Any]) -> set[str]:
    """Names of the pods behind the ready endpoints of EndpointSlices (``V1EndpointSlice``)."""
    names = set()
    for eps in slices:
        for ep in eps.endpoints or []:
            ready = ep.conditions.ready if ep.conditions is not None else None
            ref = ep.target_ref
            if ready is not False and ref is not None and ref.kind == "Pod":
                names.add(ref.name)
    return names


def ready_by_version(ready: set[str], images: Mapping[str, str], candidate_image: str) -> dict[str, int]:
    """Ready endpoints per version, from the pods' first-container images.

    >>> ready_by_version({"a", "b", "c"}, {"a": "v1", "b": "v1", "c": "v2", "d": "v2"}, "v2")
    {'stable': 2, 'candidate': 1}
    """
    counts = {"stable": 0, "candidate": 0}
    for pod in ready:
        if pod in images:  # an endpoint of a pod already gone is no one's
            counts["candidate" if images[pod] == candidate_image else "stable"] += 1
    return counts


class ReplicaRatioRouter:
    """No router: the weight is what the ready endpoints of the Service make it."""

    name = "replica-ratio"
    exact = False

    def __init__(
        self,
        core: client.CoreV1Api,
        discovery: client.DiscoveryV1Api,
        namespace: str,
        service: str,
        candidate_image: str,
    ) -> None:
        self.core = core
        self.discovery = discovery
        self.namespace = namespace
        self.service = service
        self.candidate_image = candidate_image

    @classmethod
    def build(cls, api: client.ApiClient, names: RouteNames, note: Note = ignore) -> ReplicaRatioRouter:
        return cls(client.CoreV1Api(api), client.DiscoveryV1Api(api), names.namespace, names.service,
                   names.candidate_image)

    def needs(self) -> list[tuple[str, str]]:
        return [("Service", self.service)]

    def set_weight(self, weight: float) -> None:
        """Nothing to route: the plan's scale actions set the ready endpoints."""

    def ready_endpoints(self) -> dict[str, int]:
        """Ready endpoints of the Service per version."""
        try:
            svc = self.core.read_namespaced_service(self.service, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise ClusterError(
                    f"Service {self.namespace}/{self.service} does not exist; without a traffic router "
                    "the weight is the candidate's share of its ready endpoints") from None
            raise
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"{SERVICE_NAME_LABEL}={self.service}").items
        ready = ready_pods(slices)
        selector = (svc.spec and svc.spec.selector) or {}
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=n.label_selector(selector)).items \
            if selector and ready else []
        images = {p.metadata.name: p.spec.containers[0].image for p in pods if p.spec and p.spec.containers}
        return ready_by_version(ready, images, self.candidate_image)

    def observed_weight(self) -> float:
        ready = self.ready_endpoints()
        return replica_ratio_weight(ready["stable"], ready["candidate"])

    def reset(self) -> None:
        """Nothing to route back: the abort's scale actions restore the replica counts."""
