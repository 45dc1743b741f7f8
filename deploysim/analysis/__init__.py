"""Analysis: what a measurement holds, how a judge reads it, how an analysis run adds up.

Providers (simulated, Prometheus, HTTP probe) produce :class:`Measurement`; judges turn one
into a verdict; :mod:`deploysim.analysis.run` applies Argo Rollouts' limits to the verdicts.
"""

from deploysim.analysis.measurement import Measurement, MetricResult, VersionWindow

__all__ = ["Measurement", "MetricResult", "VersionWindow"]
