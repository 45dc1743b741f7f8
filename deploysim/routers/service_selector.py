"""Service selector (blue-green): the active Service selects one colour, the preview the other.

All requests go to the colour the active Service's selector names: the candidate's from a
weight of 100, the stable one's below it, as Argo Rollouts' blue-green switches the active
Service's selector at promotion. The preview Service selects the other colour, so
pre-promotion checks reach the candidate while users do not. The observed weight is read
back from the active Service's selector as stored: 100 when it names the candidate's colour,
else 0.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.kube import naming as n
from deploysim.routers.names import Note, RouteNames, ignore


def active_slot(weight: float, stable_slot: str, candidate_slot: str) -> str:
    """The colour users reach at ``weight``: all or nothing, the candidate's from any weight
    above 0.

    A blue-green switch asks for 100 and an abort for 0. Between them only a Flagger
    promotion asks (the primary rolling under its Service, the candidate's share growing with
    its new ready pods, as the simulator draws it); a selector cannot split, and the colour
    being scaled down is the stable one, so users move to the candidate's colour, which holds
    the canary's full set of ready pods, at the first share above 0.

    >>> [active_slot(w, "blue", "green") for w in (0, 25, 99.9, 100)]
    ['blue', 'green', 'green', 'green']
    """
    return candidate_slot if weight > 0 else stable_slot


class ServiceSelectorRouter:
    """All-or-nothing routing through the active and preview Services' selectors."""

    name = "service-selector"
    exact = True

    def __init__(
        self,
        core: client.CoreV1Api,
        namespace: str,
        service: str,
        preview_service: str,
        stable_slot: str,
        candidate_slot: str,
        run_metadata: dict[str, Any] | None = None,
        note: Note = ignore,
    ) -> None:
        self.core = core
        self.namespace = namespace
        self.service = service
        self.preview_service = preview_service
        self.stable_slot = stable_slot
        self.candidate_slot = candidate_slot
        self.run_metadata = run_metadata or {}
        self.note = note

    @classmethod
    def build(cls, api: client.ApiClient, names: RouteNames, note: Note = ignore) -> ServiceSelectorRouter:
        return cls(client.CoreV1Api(api), names.namespace, names.service, names.preview_service,
                   names.stable_slot, names.candidate_slot, names.run_annotation(), note)

    def needs(self) -> list[tuple[str, str]]:
        return [("Service", self.service), ("Service", self.preview_service)]

    def _selected_slot(self) -> str | None:
        svc = self.core.read_namespaced_service(self.service, self.namespace)
        return ((svc.spec and svc.spec.selector) or {}).get(n.SLOT_LABEL)

    def _patch(self, name: str, slot: str) -> None:
        body: dict[str, Any] = {"spec": {"selector": n.selector(self.service, slot)}}
        if self.run_metadata:
            body["metadata"] = self.run_metadata
        self.core.patch_namespaced_service(name, self.namespace, body)

    def set_weight(self, weight: float) -> None:
        active = active_slot(weight, self.stable_slot, self.candidate_slot)
        old = self._selected_slot()
        if old != active:
            self._patch(self.service, active)
            self.note(f"Service/{self.service}", f"spec.selector[{n.SLOT_LABEL}]", old, active)
        idle = self.stable_slot if active == self.candidate_slot else self.candidate_slot
        try:
            self._patch(self.preview_service, idle)
        except ApiException as exc:
            if exc.status != 404:  # no preview Service: nothing to keep pointing at the idle colour
                raise

    def observed_weight(self) -> float:
        return 100.0 if self._selected_slot() == self.candidate_slot else 0.0

    def reset(self) -> None:
        """Users to the stable colour, the preview to the candidate's."""
        self.set_weight(0)
