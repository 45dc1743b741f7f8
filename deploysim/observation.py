"""What the controller and a world pass each other: the observation in, actions and
decisions out (plain frozen data, JSON-able through ``to_dict``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from deploysim.analysis.measurement import Measurement
from deploysim.rules.deployment import replicas_settled


@dataclass(frozen=True)
class VersionState:
    """One version's pods as the world sees them (Deployment / ReplicaSet status words)."""

    desired: int = 0  # spec replicas
    current: int = 0  # pods that exist and are not terminating
    ready: int = 0
    available: int = 0  # ready for minReadySeconds

    @property
    def settled(self) -> bool:
        return replicas_settled(self.desired, self.current, self.available)


@dataclass(frozen=True)
class Observation:
    """What the world looks like now, and answers to the controller's last measure actions."""

    now: float
    stable: VersionState = field(default_factory=VersionState)
    candidate: VersionState = field(default_factory=VersionState)
    weight: float = 0.0  # share of requests the candidate gets now, 0-100
    progress_deadline_exceeded: bool = False
    measurements: dict[str, Measurement] = field(default_factory=dict)
    promote_requested: bool = False
    abort_requested: bool = False
    abort_reason: str = "abort requested by a person"  # why, when the loop itself asks


@dataclass(frozen=True)
class Action:
    """Something the world must do. Kinds:

    ``rolling_update`` / ``recreate`` {version}: set the Deployment's template to a version;
    ``scale`` {version, replicas}; ``route`` {weight}: the candidate's share (router or
    active service); ``measure`` {analysis, start, end}: take a measurement and pass it
    back in the next observation.
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """A decision and why: what the record shows a person."""

    at: float
    step: int
    kind: str  # start, step, pause, resume, analysis, promote, abort, complete
    reason: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reconciled:
    status: dict[str, Any]
    actions: list[Action]
    decisions: list[Decision]
    requeue_at: float | None  # call again no later than this, even if nothing changes
