"""HTTP probes as a metrics source: GETs to each version's endpoint at measure time.

For a cluster without Prometheus: the probes go to a preview or canary URL per version
(``probe_urls``), and a probe fails when it answers status >= 500, cannot connect or times
out, the glossary's failed request. The probes are taken when the analysis asks, so they
measure the versions as they are then, not the window before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.providers.spec import QUANTILES, VERSIONS, ProviderConfig


class HttpProbeProvider:
    """``probes_per_measure`` GETs to each version's URL, ``concurrency`` at a time.

    Latency percentiles are of every probe answered. The probes are split into ``bins``
    equal batches so comparing judges get a per-bin series, as from Prometheus.
    """

    kind = "http"

    def __init__(
        self,
        urls_by_version: dict[str, str],
        probes_per_measure: int = 20,
        timeout: float = 2.0,
        concurrency: int = 4,
        bins: int = 5,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if probes_per_measure < 1:
            raise ValueError(f"probes_per_measure: got {probes_per_measure!r}; must be at least 1")
        unknown = sorted(set(urls_by_version) - set(VERSIONS))
        if unknown:
            raise ValueError(f"urls_by_version: got {unknown}; versions are {list(VERSIONS)}")
        self.urls = dict(urls_by_version)
        self.probes = probes_per_measure
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.bins = max(1, min(bins, probes_per_measure))
        self._clock = clock
        self._client = client or httpx.Client(timeout=timeout)
        self._own_client = client is None

    @classmethod
    def from_config(cls, config: ProviderConfig, world: Any = None) -> HttpProbeProvider:
        timeout = {} if config.timeout is None else {"timeout": config.timeout}
        return cls(dict(config.probe_urls), probes_per_measure=config.probes, **timeout)

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> HttpProbeProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def probe(self, url: str) -> tuple[bool, float]:
        """One GET: (failed, seconds taken; NaN when nothing answered)."""
        t0 = self._clock()
        try:
            resp = self._client.get(url, timeout=self.timeout)
        except httpx.HTTPError:
            return True, math.nan
        return resp.status_code >= 500, self._clock() - t0

    def measure(self, start: float, end: float, spec: Any = None) -> Measurement:
        versions = {}
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for version, url in self.urls.items():
                results = list(pool.map(self.probe, [url] * self.probes))
                versions[version] = _probe_window(results, self.bins, end - start)
        return Measurement(start, end, versions)


def _probe_window(results: Sequence[tuple[bool, float]], bins: int, seconds: float) -> VersionWindow:
    lat_ms = [s * 1000.0 for _, s in results if not math.isnan(s)]
    pct = percentiles(lat_ms, QUANTILES)
    size = len(results) / bins
    batches = [results[round(i * size): round((i + 1) * size)] for i in range(bins)]
    return VersionWindow(
        requests=len(results),
        errors=sum(1 for failed, _ in results if failed),
        latency_p50=pct[0],
        latency_p95=pct[1],
        latency_p99=pct[2],
        seconds=max(seconds, 0.0),
        series_requests=tuple(len(b) for b in batches),
        series_errors=tuple(sum(1 for f, _ in b if f) for b in batches),
        series_latency_p99=tuple(
            percentiles([s * 1000.0 for _, s in b if not math.isnan(s)], (0.99,))[0] for b in batches
        ),
    )


def percentiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    """Nearest-rank percentiles (the k-th smallest, k = ceil(q n)); NaN for no values.

    >>> percentiles([10.0, 20.0, 30.0, 40.0], (0.5, 0.95, 0.99))
    [20.0, 40.0, 40.0]
    """
    if not values:
        return [math.nan] * len(qs)
    ordered = sorted(values)
    n = len(ordered)
    return [ordered[max(1, math.ceil(q * n)) - 1] for q in qs]
