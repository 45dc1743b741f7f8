"""Metric providers: where a measurement of the two versions comes from.

Every provider offers ``measure(start, end, spec=None) -> Measurement``, with ``start`` and
``end`` in the provider's clock (epoch seconds for a cluster, simulated seconds for the
simulator), for the analysis ``spec``. A window source measures the standard window:
requests, failed requests and latency percentiles per version, with per-bin series; on a
cluster, :class:`~deploysim.providers.evaluate.AnalysisSources` adds the team's own metrics
of the spec, each run against its source and judged as its controller would. A provider that cannot answer
returns a Measurement with ``error`` set instead of raising, so the analysis run counts it
toward ``consecutive_error_limit`` as Argo Rollouts does.

One module per source, each registered in :data:`PROVIDERS` by its kind:

- ``simulated`` (:mod:`.simulated`): the rehearsal world measures itself;
- ``prometheus`` (:mod:`.prometheus`): PromQL over ``httpx``;
- ``http`` (:mod:`.http`): GETs to each version's URL;
- ``none``: no source; every measurement is an error saying so.

:func:`provider_for` builds the one a :class:`ProviderConfig` names:

>>> provider_for(ProviderConfig("none", reason="no Prometheus given")).measure(0, 60).error
'no Prometheus given'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from deploysim.analysis.measurement import Measurement
from deploysim.providers.http import HttpProbeProvider
from deploysim.providers.prometheus import PrometheusProvider
from deploysim.providers.simulated import SimulatedProvider
from deploysim.providers.spec import KINDS, ProviderConfig

__all__ = [
    "KINDS",
    "PROVIDERS",
    "HttpProbeProvider",
    "MetricProvider",
    "NoMetricsProvider",
    "PrometheusProvider",
    "ProviderConfig",
    "SimulatedProvider",
    "provider_for",
]


class MetricProvider(Protocol):
    """What the drive loop and the analysis need of a metrics source."""

    def measure(self, start: float, end: float, spec: Any = None) -> Measurement:
        """Both versions over ``[start, end]`` for the analysis ``spec``."""
        ...

    def close(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...


class NoMetricsProvider:
    """No metrics source: every measurement is a provider error saying ``reason``."""

    kind = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    @classmethod
    def from_config(cls, config: ProviderConfig, world: Any = None) -> NoMetricsProvider:
        return cls(config.reason)

    def measure(self, start: float, end: float, spec: Any = None) -> Measurement:
        return Measurement(start, end, error=self.reason)

    def close(self) -> None:
        """Nothing to release."""


#: kind -> how to build that provider from its configuration (and the world, for ``simulated``)
PROVIDERS: dict[str, Callable[[ProviderConfig, Any], MetricProvider]] = {
    "simulated": SimulatedProvider.from_config,
    "prometheus": PrometheusProvider.from_config,
    "http": HttpProbeProvider.from_config,
    "none": NoMetricsProvider.from_config,
}


def provider_for(config: ProviderConfig, world: Any = None) -> MetricProvider:
    """The provider ``config.kind`` names, built from the configuration's settings.

    ``world`` is the simulated world, for ``kind: simulated``; other kinds ignore it.
    """
    return PROVIDERS[config.kind](config, world)
