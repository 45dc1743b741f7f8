"""The runbook parameters of a release's path: the environment a run deploys to, where the
evidence of its earlier environment is, and the override. Every runbook takes them (the
runbook models in :mod:`deploysim.runbooks.parameters` inherit :class:`ReleaseParameters`).

>>> ReleaseParameters(environment="production").environment_gates
{'production': 'staging'}
>>> from pydantic import ValidationError
>>> try:
...     ReleaseParameters(environment="Prod")
... except ValidationError as exc:
...     print(exc.errors()[0]["msg"][:60])
Value error, must be an environment name: a DNS label (lower
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

GROUP = "release"
GROUP_TITLE = "Staging before production: the environment, the staging evidence of the same digest, an override"
#: the default path: a production run needs a passing staging run of the same digest
DEFAULT_GATES = {"production": "staging"}
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _field(default: Any, help: str, shown: str) -> Any:
    return Field(default, description=help, json_schema_extra={"shown": shown, "group": GROUP})


def _label(value: str, what: str) -> str:
    if not _LABEL.fullmatch(value) or len(value) > 63:
        raise ValueError(f"must be {what}: a DNS label (lower-case letters, digits and '-', at most 63), "
                         "e.g. staging or production")
    return value


class ReleaseParameters(BaseModel):
    """Where a run sits on the release's path, and the evidence it brings."""

    model_config = ConfigDict(extra="forbid")

    environment: StrictStr | None = _field(
        None, "the environment this run deploys to, e.g. staging or production (kept in the record with the "
        "image digest); None: unnamed", "Optional[str]")
    staging_records: StrictStr | None = _field(
        None, "a record folder (RECORD_DIR of the staging runs) holding a passing run of this digest",
        "Optional[str]")
    staging_namespace: StrictStr | None = _field(
        None, "the staging namespace whose status ConfigMap lists the digests promoted there (read only)",
        "Optional[str]")
    staging_kubeconfig: StrictStr | None = _field(
        None, "kubeconfig of the staging cluster; None: the run's kubeconfig", "Optional[str]")
    staging_override: StrictStr | None = _field(
        None, "run without the staging evidence, for this reason (kept in the record with who ran it)",
        "Optional[str]")
    environment_gates: dict[StrictStr, StrictStr] = _field(
        dict(DEFAULT_GATES), "environment -> the environment a run of the same digest must have passed first",
        "dict")

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str | None) -> str | None:
        return None if value is None else _label(value, "an environment name")

    @field_validator("staging_namespace")
    @classmethod
    def _staging_namespace(cls, value: str | None) -> str | None:
        return None if value is None else _label(value, "a namespace")

    @field_validator("staging_records", "staging_kubeconfig")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a path, or None")
        return value

    @field_validator("staging_override")
    @classmethod
    def _override(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must say why (a ticket, an incident), or be None for no override")
        return value

    @field_validator("environment_gates")
    @classmethod
    def _gates(cls, value: dict[str, str]) -> dict[str, str]:
        for gated, required in value.items():
            _label(gated, "environment names")
            _label(required, "environment names")
            if gated == required:
                raise ValueError(f"{gated} cannot need itself; e.g. {{production: staging}}")
        for start in value:  # each environment's path must end: a cycle gates nothing
            path = [start]
            while (step := value.get(path[-1])) is not None:
                if step in path:
                    raise ValueError(f"environment_gates has a cycle: {' -> '.join([*path, step])}; "
                                     "each environment needs one before it, ending at one that needs none")
                path.append(step)
        return value
