"""What one measurement of the two versions holds, whatever provider took it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class VersionWindow:
    """One version's requests over a window, with per-bin series for judges that compare.

    ``series_*`` hold one value per bin of the window (e.g. every 10 s), so a judge such as
    Mann-Whitney can compare the candidate's distribution against the baseline's.
    """

    requests: int = 0
    errors: int = 0
    latency_p50: float = math.nan
    latency_p95: float = math.nan
    latency_p99: float = math.nan
    seconds: float = 0.0
    series_requests: tuple[int, ...] = ()
    series_errors: tuple[int, ...] = ()
    series_latency_p99: tuple[float, ...] = ()
    # per ready pod over the window (deploysim.rules.saturation): cores used, working-set
    # bytes, and CPU used over the limit (or request); NaN when not measured
    cpu: float = math.nan
    memory: float = math.nan
    saturation: float = math.nan

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds if self.seconds else math.nan

    def value(self, metric: str) -> float:
        """A metric by its name in checks: error_rate, latency_p50/p95/p99, request_rate,
        saturation, cpu, memory."""
        return float(getattr(self, metric))


@dataclass(frozen=True)
class MetricResult:
    """One team metric measured once on a cluster, as its controller would record it.

    ``query`` is what was sent (placeholders substituted, secrets redacted), ``raw`` the
    source's answer (redacted, cut to :data:`RAW_LIMIT` characters), ``value`` the value as
    the controller shows it (Argo: ``[0.0123]``), ``number`` its first number when it has one
    (for tables and plots), ``phase`` the verdict (Successful, Failed, Inconclusive, Error) and
    ``message`` why.
    """

    name: str
    phase: str
    value: str = ""
    number: float | None = None
    query: str = ""
    raw: str = ""
    message: str = ""
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: the longest raw answer a record keeps of one measurement
RAW_LIMIT = 2000


@dataclass(frozen=True)
class Measurement:
    """Both versions over [start, end]; ``error`` set when the provider could not answer.

    ``metrics`` holds the team metrics measured on a cluster, one :class:`MetricResult` each;
    the simulator leaves it empty and judges their stand-ins.
    """

    start: float
    end: float
    versions: dict[str, VersionWindow] = field(default_factory=dict)
    error: str | None = None
    metrics: tuple[MetricResult, ...] = ()

    @property
    def candidate(self) -> VersionWindow:
        return self.versions.get("candidate", VersionWindow())

    @property
    def baseline(self) -> VersionWindow:
        return self.versions.get("stable", VersionWindow())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
