"""Which PodDisruptionBudget covers a workload's pods: label selectors, as the API reads them.

A selector matches labels as ``metav1.LabelSelectorAsSelector`` reads it (kube-score's
``hasMatching`` in ``score/disruptionbudget/disruptionbudget.go`` uses the same): every
``matchLabels`` pair, and every ``matchExpressions`` requirement (``In``, ``NotIn``,
``Exists``, ``DoesNotExist``); an empty selector selects every pod of the namespace, a missing
one none (``policy/v1``).

Flagger serves from a ``<target>-primary`` Deployment whose pods carry the target's labels
with the selector label (the first of ``app``, ``name``, ``app.kubernetes.io/name`` in the
target's selector, Flagger's ``-selector-labels`` default in ``cmd/flagger/main.go``) set to
``<target>-primary`` (``makePrimaryLabels`` in ``pkg/canary/deployment_controller.go``). A
budget that selects ``app: podinfo`` covers only the canary's pods, which are scaled to zero
between releases; the pods that serve are ``app: podinfo-primary``.

>>> selector_matches({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "front"})
True
>>> selector_matches({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]}, {"app": "web"})
False
>>> selector_matches({}, {"app": "web"}), selector_matches(None, {"app": "web"})
(True, False)
>>> flagger_primary_labels({"app": "podinfo", "version": "1"}, {"app": "podinfo"}, "podinfo")
{'app': 'podinfo-primary', 'version': '1'}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Flagger's default ``-selector-labels``, in the order it tries them
FLAGGER_SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")


def selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """Whether a label selector selects a pod with ``labels``."""
    if not isinstance(selector, dict):
        return False
    match = selector.get("matchLabels") or {}
    if not isinstance(match, dict):
        return False
    if any(labels.get(str(k)) != str(v) for k, v in match.items()):
        return False
    for req in selector.get("matchExpressions") or []:
        if not isinstance(req, dict) or not _requirement(req, labels):
            return False
    return True


def _requirement(req: dict[str, Any], labels: dict[str, str]) -> bool:
    key = str(req.get("key"))
    op = req.get("operator")
    values = [str(v) for v in req.get("values") or []]
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False  # an operator the API refuses selects nothing


def flagger_primary_labels(labels: dict[str, str], selector_labels: dict[str, str], target: str) -> dict[str, str]:
    """The labels of the pods of a Flagger target's primary: the template's, with the selector
    label set to ``<target>-primary``; the template's own when no selector label is known."""
    key = next((k for k in FLAGGER_SELECTOR_LABELS if k in selector_labels), None)
    if key is None:
        return dict(labels)
    return {**labels, key: f"{target}-primary"}


def same_namespace(a: str | None, b: str | None) -> bool:
    """A manifest without a namespace goes where it is applied: it may be any namespace."""
    return not a or not b or a == b


def covering_budget(budgets: Iterable[tuple[str | None, Any]], namespace: str | None,
                    labels: dict[str, str]) -> bool:
    """Whether one of ``budgets`` ((namespace, spec.selector) pairs) selects pods with
    ``labels`` in ``namespace``.

    >>> covering_budget([("shop", {"matchLabels": {"app": "cart"}})], "shop", {"app": "cart"})
    True
    >>> covering_budget([("other", {"matchLabels": {"app": "cart"}})], "shop", {"app": "cart"})
    False
    """
    return any(same_namespace(ns, namespace) and selector_matches(sel, labels) for ns, sel in budgets)
