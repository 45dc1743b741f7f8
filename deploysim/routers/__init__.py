"""Traffic routers: how the candidate's share of requests is set and read on a cluster.

A router is one module behind :class:`TrafficRouter`, as Argo Rollouts keeps one folder per
traffic router behind its ``TrafficRoutingReconciler`` (``SetWeight``, ``VerifyWeight``):

- ``service-selector`` (:mod:`.service_selector`): blue-green, the active Service's selector;
- ``replica-ratio`` (:mod:`.replica_ratio`): no router, the share of ready endpoints;
- ``gateway-httproute`` (:mod:`.gateway_httproute`): a Gateway API HTTPRoute's weights;
- ``nginx-ingress`` (:mod:`.nginx_ingress`): a canary Ingress's ``canary-weight`` beside the
  stable Ingress (NGINX Ingress canary annotations).

:data:`ROUTERS` holds them by name; :data:`ROUTING` says which serves each of the plan's
routing modes (:data:`deploysim.plan.RoutingMode`). A new router is one module, a line in
each table and its table tests. A plan with exact weights names its router (``Plan.router``);
without one it is the Gateway API HTTPRoute.

>>> sorted(ROUTING.items())
[('active', 'service-selector'), ('replica_ratio', 'replica-ratio'), ('router', 'gateway-httproute')]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from deploysim.routers.gateway_httproute import GatewayHTTPRouteRouter
from deploysim.routers.names import Note, RouteNames, ignore
from deploysim.routers.nginx_ingress import NginxIngressRouter
from deploysim.routers.replica_ratio import ReplicaRatioRouter
from deploysim.routers.service_selector import ServiceSelectorRouter

__all__ = [
    "ROUTERS",
    "ROUTING",
    "GatewayHTTPRouteRouter",
    "NginxIngressRouter",
    "Note",
    "ReplicaRatioRouter",
    "RouteNames",
    "ServiceSelectorRouter",
    "TrafficRouter",
    "router_for",
]


class TrafficRouter(Protocol):
    """What the cluster world needs of a router.

    ``exact``: the observed weight is the weight set (a router), so the drive loop waits for
    it before the next step; False when it follows readiness (replica ratio).
    """

    name: str
    exact: bool

    def set_weight(self, weight: float) -> None:
        """Send ``weight`` percent (0-100) of requests to the candidate."""
        ...

    def observed_weight(self) -> float:
        """The candidate's share (0-100) as the cluster stores it now, read back from it."""
        ...

    def reset(self) -> None:
        """Every request to the stable version, as before the rollout."""
        ...

    def needs(self) -> list[tuple[str, str]]:
        """(kind, name) of the objects it reads and writes, for a check before the run."""
        ...


#: router name -> how to build it from an API client, the objects' names and a change note
ROUTERS: dict[str, Callable[[Any, RouteNames, Note], TrafficRouter]] = {
    ServiceSelectorRouter.name: ServiceSelectorRouter.build,
    ReplicaRatioRouter.name: ReplicaRatioRouter.build,
    GatewayHTTPRouteRouter.name: GatewayHTTPRouteRouter.build,
    NginxIngressRouter.name: NginxIngressRouter.build,
}

#: the plan's routing mode -> the router that carries it out on a cluster
ROUTING: dict[str, str] = {
    "active": ServiceSelectorRouter.name,
    "replica_ratio": ReplicaRatioRouter.name,
    "router": GatewayHTTPRouteRouter.name,
}


def router_for(routing: str, api: Any, names: RouteNames, note: Note = ignore) -> TrafficRouter:
    """The router for the plan's routing mode ``routing`` (or a router's own name)."""
    name = ROUTING.get(routing, routing)
    try:
        build = ROUTERS[name]
    except KeyError:
        raise ValueError(
            f"routing: got {routing!r}; allowed: {', '.join(sorted(set(ROUTING) | set(ROUTERS)))}") from None
    return build(api, names, note)
