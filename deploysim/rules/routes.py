"""HTTPRoute weights as the Gateway API defines them, read the same way by whoever reads them.

The traffic router (:mod:`deploysim.routers.gateway_httproute`) reads back the weight it
set, and the traffic emulator (:mod:`deploysim.kube.traffic.routing`) splits users'
requests by it: both take the first rule that names the service's colour Services, and a
backendRef without a weight weighs 1 (the Gateway API default; a negative one counts as 0).
With 95 and 5 the candidate gets 5%; with no weights at all, half.

>>> candidate_share([{"backendRefs": [{"name": "s-blue"}, {"name": "s-green"}]}], "s-blue", "s-green")
50.0
"""

from __future__ import annotations

from typing import Any


def backend_weight(ref: dict[str, Any]) -> int:
    """A backendRef's weight: its own, 1 when it has none, never below 0.

    >>> backend_weight({}), backend_weight({"weight": 7}), backend_weight({"weight": -2})
    (1, 7, 0)
    """
    value = ref.get("weight")
    return 1 if value is None else max(int(value), 0)


def route_refs(rules: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """The backendRefs of the first rule naming any of ``names`` (None: no rule does).

    >>> route_refs([{"backendRefs": [{"name": "x"}]}, {"backendRefs": [{"name": "b"}]}], ("b",))
    [{'name': 'b'}]
    """
    for rule in rules:
        refs = rule.get("backendRefs") or []
        if any(ref.get("name") in names for ref in refs):
            return list(refs)
    return None


def rule_weights(rules: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, int] | None:
    """backendRef name -> weight in the first rule naming any of ``names`` (None: no rule does).

    >>> rule_weights([{"backendRefs": [{"name": "a"}, {"name": "b", "weight": 3}]}], ("b",))
    {'a': 1, 'b': 3}
    """
    refs = route_refs(rules, names)
    return None if refs is None else {ref.get("name", ""): backend_weight(ref) for ref in refs}


def candidate_share(rules: list[dict[str, Any]], stable: str, candidate: str) -> float | None:
    """The candidate's share (0-100) of the first rule naming either Service.

    >>> candidate_share([{"backendRefs": [{"name": "s-blue", "weight": 95}, {"name": "s-green", "weight": 5}]}],
    ...                 "s-blue", "s-green")
    5.0
    """
    weights = rule_weights(rules, (stable, candidate))
    if weights is None:
        return None
    total = sum(weights.values())
    return 100.0 * weights.get(candidate, 0) / total if total else 0.0
