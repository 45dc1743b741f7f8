"""The simulated world as a metrics source: it accounts its own traffic.

>>> class World:
...     def measure(self, start, end):
...         return Measurement(start, end)
>>> SimulatedProvider(World()).measure(0.0, 60.0).end
60.0
"""

from __future__ import annotations

from typing import Any, Protocol

from deploysim.analysis.measurement import Measurement
from deploysim.errors import MetricsConfigError
from deploysim.providers.spec import ProviderConfig


class MeasuringWorld(Protocol):
    """A world that measures itself (:meth:`deploysim.sim.world.SimWorld.measure`)."""

    def measure(self, start: float, end: float) -> Measurement: ...


class SimulatedProvider:
    """Both versions over ``[start, end]`` of simulated time, as the world served them.

    An injected metrics outage reaches the analysis as a provider error, as a real
    backend's would.
    """

    kind = "simulated"

    def __init__(self, world: MeasuringWorld) -> None:
        self.world = world

    @classmethod
    def from_config(cls, config: ProviderConfig, world: MeasuringWorld | None = None) -> SimulatedProvider:
        if world is None:
            raise MetricsConfigError("metrics.kind: got 'simulated'; only a rehearsal has a simulated world to measure")
        return cls(world)

    def measure(self, start: float, end: float, spec: Any = None) -> Measurement:
        """The world's own accounting of ``[start, end]``; team metrics are judged by their
        stand-ins in rehearsal, so ``spec`` asks nothing more."""
        return self.world.measure(start, end)

    def close(self) -> None:
        """Nothing to release; every provider can be closed."""
