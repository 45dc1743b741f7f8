"""The scenario's probes: ``pod.probes`` and a version's ``probes``, as a pod template declares them.

Each probe has the kubelet's timing fields with Kubernetes' defaults (core/v1 ``Probe``); the
rules that use them are :mod:`deploysim.rules.probes`. A ``Probes`` section lists what the
container has: one left out is not there, so ``Probes()`` is a pod without a readiness probe,
ready as soon as its container runs.

>>> p = Probes(readiness=Probe(period="5s"))
>>> (p.readiness.period, p.readiness.failure_threshold, p.liveness)
(5.0, 3, None)
>>> Probes(liveness=Probe(success_threshold=2))
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Probes
liveness
  Value error, success_threshold must be 1 for a liveness probe (as the API server requires), not 2 ...
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from deploysim.durations import parse_duration
from deploysim.rules import probes as rules

Duration = Annotated[float, BeforeValidator(parse_duration)]


def _whole(value: Any) -> Any:
    """A count is a number, not a yes/no (as the scenario's counts)."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true/false")
    return value


Whole = Annotated[int, BeforeValidator(_whole)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class Probe(_Model):
    """One kubelet probe's timing (Kubernetes' defaults)."""

    initial_delay: Duration = Field(0.0, ge=0, description="initialDelaySeconds")
    period: Duration = Field(rules.DEFAULT_PERIOD, ge=rules.MIN_PERIOD, description="periodSeconds")
    failure_threshold: Whole = Field(rules.DEFAULT_FAILURE_THRESHOLD, ge=1)
    success_threshold: Whole = Field(rules.DEFAULT_SUCCESS_THRESHOLD, ge=1)
    timeout: Duration = Field(rules.DEFAULT_TIMEOUT, ge=rules.MIN_PERIOD, description="timeoutSeconds")
    dependency: bool = Field(False, description="readiness: the check calls the dependency, so it fails in a dependency_outage")


class Probes(_Model):
    """A container's probes as its manifest declares them; one left out is not there (no
    readiness probe: the pod is ready as soon as its container runs)."""

    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None

    @field_validator("liveness", "startup")
    @classmethod
    def _as_kubernetes_allows(cls, probe: Probe | None, info: ValidationInfo) -> Probe | None:
        if probe is not None and probe.success_threshold != 1:
            raise ValueError(f"success_threshold must be 1 for a {info.field_name} probe (as the API server "
                             f"requires), not {probe.success_threshold}")
        if probe is not None and probe.dependency:
            raise ValueError("dependency: only a readiness probe may check the dependency")
        return probe
