"""What a router is told about the objects it routes through, resolved by the world.

Kept apart from the package's ``__init__`` so each router module and the registry that
imports them share it without an import circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deploysim.kube import naming as n

#: How a router reports an API change it made: (object, field, old, new), for the audit trail.
Note = Callable[[str, str, Any, Any], None]


def ignore(obj: str, fld: str, old: Any, new: Any) -> None:
    """A :data:`Note` that keeps nothing."""


@dataclass(frozen=True)
class RouteNames:
    """One service's routing objects in one namespace, as :mod:`deploysim.kube.naming` lays
    them out; the world resolves which colour is stable before building a router.

    >>> names = RouteNames("shop", "checkout", "checkout", "blue", "green", "checkout:2")
    >>> names.stable_backend, names.candidate_backend, names.preview_service
    ('checkout-blue', 'checkout-green', 'checkout-preview')
    """

    namespace: str
    service: str  # the Service users reach
    route: str  # the HTTPRoute that splits requests between the colours' Services
    stable_slot: str
    candidate_slot: str
    candidate_image: str  # a pod whose first container runs it is the candidate
    run_id: str = ""  # written on every object a router changes

    @property
    def stable_backend(self) -> str:
        return n.slot_service(self.service, self.stable_slot)

    @property
    def candidate_backend(self) -> str:
        return n.slot_service(self.service, self.candidate_slot)

    @property
    def preview_service(self) -> str:
        return n.preview_service(self.service)

    def run_annotation(self) -> dict[str, Any]:
        """The metadata a router's patch carries: the run that changed the object."""
        return {"annotations": {n.RUN_ANNOTATION: self.run_id}} if self.run_id else {}
