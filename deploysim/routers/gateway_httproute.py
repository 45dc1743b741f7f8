"""Gateway API HTTPRoute: the candidate's weight is its Service's ``backendRefs[].weight``.

Follows the Argo Rollouts Gateway API plugin (``setHTTPRouteWeight`` in
``rollouts-plugin-trafficrouter-gatewayapi``): in every rule, each backendRef naming the
candidate's Service gets the weight and each naming the stable Service ``100 - weight``;
other backendRefs are left as they are. The observed weight is the candidate's share of the
first rule that names either Service, read back from the HTTPRoute as stored (a backendRef
without a weight weighs 1, the Gateway API default).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.routers.names import Note, RouteNames, ignore
from deploysim.rules.routes import candidate_share, rule_weights  # noqa: F401 - part of this router's API


def set_weights(rules: list[dict[str, Any]], stable: str, candidate: str, weight: int) -> list[dict[str, Any]]:
    """The rules with the two Services' backendRefs weighted ``100 - weight`` and ``weight``.

    >>> rules = [{"backendRefs": [{"name": "s-blue", "weight": 100}, {"name": "s-green", "weight": 0}]}]
    >>> set_weights(rules, "s-blue", "s-green", 25)
    [{'backendRefs': [{'name': 's-blue', 'weight': 75}, {'name': 's-green', 'weight': 25}]}]
    """
    out = []
    for rule in rules:
        refs = []
        for ref in rule.get("backendRefs") or []:
            ref = dict(ref)
            if ref.get("name") == candidate:
                ref["weight"] = weight
            elif ref.get("name") == stable:
                ref["weight"] = 100 - weight
            refs.append(ref)
        out.append({**rule, "backendRefs": refs} if "backendRefs" in rule else dict(rule))
    return out


class GatewayHTTPRouteRouter:
    """Exact weights through one HTTPRoute (``gateway.networking.k8s.io/v1``)."""

    name = "gateway-httproute"
    exact = True

    def __init__(
        self,
        custom: client.CustomObjectsApi,
        namespace: str,
        route: str,
        stable_service: str,
        candidate_service: str,
        run_metadata: dict[str, Any] | None = None,
        note: Note = ignore,
    ) -> None:
        self.custom = custom
        self.namespace = namespace
        self.route = route
        self.stable_service = stable_service
        self.candidate_service = candidate_service
        self.run_metadata = run_metadata or {}
        self.note = note

    @classmethod
    def build(cls, api: client.ApiClient, names: RouteNames, note: Note = ignore) -> GatewayHTTPRouteRouter:
        return cls(client.CustomObjectsApi(api), names.namespace, names.route, names.stable_backend,
                   names.candidate_backend, names.run_annotation(), note)

    def needs(self) -> list[tuple[str, str]]:
        return [("Service", self.stable_service), ("Service", self.candidate_service),
                ("HTTPRoute", self.route)]

    def _read(self) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, self.namespace, n.HTTPROUTE_PLURAL, self.route)

    def _rules(self, route: dict[str, Any]) -> list[dict[str, Any]]:
        rules = list((route.get("spec") or {}).get("rules") or [])
        if rule_weights(rules, (self.stable_service, self.candidate_service)) is None:
            raise ClusterError(
                f"HTTPRoute {self.namespace}/{self.route}: no rule has a backendRef naming Service "
                f"{self.stable_service} or {self.candidate_service}; add both to its rule's backendRefs")
        return rules

    def set_weight(self, weight: float) -> None:
        if not 0 <= weight <= 100:
            raise ValueError(f"weight: got {weight!r}; must be within 0-100")
        w = int(round(weight))
        rules = self._rules(self._read())
        new_rules = set_weights(rules, self.stable_service, self.candidate_service, w)
        names = (self.stable_service, self.candidate_service)
        # a merge patch replaces a list whole: send every rule, changed or not
        body: dict[str, Any] = {"spec": {"rules": new_rules}}
        if self.run_metadata:
            body["metadata"] = self.run_metadata
        self.custom.patch_namespaced_custom_object(
            n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, self.namespace, n.HTTPROUTE_PLURAL, self.route, body)
        self.note(f"HTTPRoute/{self.route}", "spec.rules[].backendRefs[].weight",
                  rule_weights(rules, names), rule_weights(new_rules, names))

    def observed_weight(self) -> float:
        share = candidate_share(self._rules(self._read()), self.stable_service, self.candidate_service)
        return 0.0 if share is None else share

    def reset(self) -> None:
        """Every request to the stable Service, as before the rollout."""
        self.set_weight(0)
