"""The simulated world as a metrics source: it accounts its own traffic.

>>> class World:
...     def measure(self, start, end):
...         return Measurement(start, end)
>>> SimulatedProvider(World()).measure(0.0, 60.0).end
60.0
"""

from __future__ import annotations

from typing import Protocol

from deploysim.analysis.measurement import Measurement
from deploysim.errors import MetricsConfigError
from deploysim.providers.spec import Metric, ProviderConfig, unsupported


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

    def measure(self, start: float, end: float, metric: Metric | None = None) -> Measurement:
        if metric is not None and metric.query is not None:
            return unsupported("simulated world", metric, start, end)
        return self.world.measure(start, end)

    def close(self) -> None:
        """Nothing to release; every provider can be closed."""
