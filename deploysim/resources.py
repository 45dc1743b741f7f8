"""Validated pod resources: a container's requests and limits in Kubernetes quantities.

A scenario's ``pod.resources`` is written as a pod spec writes it (``requests`` and ``limits``,
each with ``cpu`` and ``memory``); the quantities are read by
:func:`deploysim.rules.saturation.parse_quantity` and kept as written, so a scenario saved and
loaded again says the same. Nothing set means no CPU throttling and no OOM kill, as a pod
without limits has none.

>>> r = Resources(requests={"cpu": "250m"}, limits={"cpu": 1, "memory": "256Mi"})
>>> r.limits.cpu, r.parsed().cpu_request, r.parsed().memory_limit
('1', 0.25, 268435456.0)
>>> try:
...     Resources(requests={"cpu": "2"}, limits={"cpu": "1"})
... except ValueError as exc:
...     print(exc.errors()[0]["msg"])
Value error, requests.cpu 2 is above limits.cpu 1; a request must be at most its limit
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from deploysim.errors import ScenarioError
from deploysim.rules.saturation import (
    Costs,
    PodResources,
    parse_quantity,
    parse_resources,
    request_above_limit,
    undefined_metric,
)


def _quantity_text(value: Any) -> Any:
    """A Kubernetes quantity (``500m``, ``256Mi``, a number), kept as written."""
    if value is None:
        return None
    parse_quantity(value)
    return value if isinstance(value, str) else repr(value)


#: a quantity as a number: cores (``50m`` is 0.05) or bytes (``128Mi``)
Quantity = Annotated[float, BeforeValidator(parse_quantity)]
#: a quantity as written (a number becomes its text)
QuantityText = Annotated[str | None, BeforeValidator(_quantity_text)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ResourceList(_Model):
    """One side of ``resources``: ``cpu`` (cores: 500m, 0.5, 2) and ``memory`` (bytes: 256Mi, 1Gi)."""

    cpu: QuantityText = Field(None, description="cores: 500m, 0.5, 2")
    memory: QuantityText = Field(None, description="bytes: 256Mi, 1Gi, 5e8")


class Resources(_Model):
    """A container's ``resources`` as a pod spec writes them; none set: no throttling, no OOM."""

    requests: ResourceList = Field(default_factory=ResourceList)
    limits: ResourceList = Field(default_factory=ResourceList)

    @model_validator(mode="after")
    def _request_within_limit(self) -> Resources:
        name = request_above_limit(self.parsed())
        if name is not None:
            raise ValueError(f"requests.{name} {getattr(self.requests, name)} is above limits.{name} "
                             f"{getattr(self.limits, name)}; a request must be at most its limit")
        return self

    def parsed(self) -> PodResources:
        """The requests and limits as cores and bytes (a limit alone is the request too)."""
        return parse_resources(self.requests.model_dump(), self.limits.model_dump())


class _Checked(Protocol):
    metric: Any


def costs_of(version: Any) -> Costs:
    """What a pod of a scenario's version (``stable`` or ``candidate``) costs.

    >>> costs_of(type("V", (), {"cpu_per_request": 0.002, "cpu_base": 0.05, "memory_base": 0.0,
    ...                         "memory_per_rps": 0.0})())
    Costs(cpu_per_request=0.002, cpu_base=0.05, memory_base=0.0, memory_per_rps=0.0)
    """
    return Costs(version.cpu_per_request, version.cpu_base, version.memory_base, version.memory_per_rps)


def refuse_undefined_checks(checks: Sequence[_Checked], resources: Resources, versions: Iterable[Any]) -> None:
    """A check on saturation with no CPU limit or request, or on cpu / memory that no version
    costs, is refused before anything runs, naming the check and what to set.

    >>> class C:
    ...     metric = "saturation"
    >>> refuse_undefined_checks([C()], Resources(), [])
    Traceback (most recent call last):
    ...
    deploysim.errors.ScenarioError: analysis.checks.0.metric: got 'saturation'; saturation is CPU used over pod.resources.limits.cpu (or requests.cpu): set one of them above 0
    """
    parsed, costs = resources.parsed(), [costs_of(v) for v in versions]
    for i, check in enumerate(checks):
        why = check.metric and undefined_metric(check.metric, parsed, costs)
        if why:
            raise ScenarioError(f"analysis.checks.{i}.metric", check.metric, why)
