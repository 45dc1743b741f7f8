"""One tick of requests: the flows' counts drawn per status code and latency bucket.

Each pod serves by the service model the simulator uses (:mod:`deploysim.rules.service`),
at the load all its flows offer it: shed requests and flows with no ready endpoint answer
503, the other failures 500, and answered requests take log-normal latencies. Requests are
drawn per tick (Poisson counts, multinomial codes and latency buckets), so the cost of a
tick does not grow with rps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from deploysim.kube.traffic.routing import Flow
from deploysim.resources import costs_of
from deploysim.rules import service
from deploysim.rules.saturation import cpu_demand, throttle_factor
from deploysim.scenario import Scenario

CODES = ("200", "500", "503")
#: Histogram bounds in seconds: from 5 ms, each 2^(1/5) (~15%) above the last, up to the last
#: below 20 s (17.8 s), rounded to 3 significant digits; histogram_quantile interpolates
#: within a bucket, so a p99 between 20 ms and 2 s reads within a few percent.
BUCKETS: tuple[float, ...] = tuple(
    float(f"{0.005 * 2 ** (i / 5):.3g}") for i in range(int(5 * math.log2(20 / 0.005)) + 1)
)


@dataclass
class TickCounts:
    """Requests drawn for one tick, per (version, route)."""

    codes: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # counts of CODES
    #: len(BUCKETS) + 1 counts; the last is above every bound
    buckets: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    latency_sum: dict[tuple[str, str], float] = field(default_factory=dict)
    seconds: float = 0.0  # of traffic drawn


def outage_rate(scenario: Scenario, elapsed: float) -> float:
    """Share of requests failing from dependency outages active ``elapsed`` s after start."""
    return service.combined_outage(
        fault.error_rate
        for fault in scenario.faults
        if fault.kind == "dependency_outage" and fault.at <= elapsed < fault.at + fault.duration
    )


def sample_tick(
    rng: np.random.Generator,
    scenario: Scenario,
    flows: list[Flow],
    seconds: float,
    outage: float = 0.0,
    cpu_limits: Mapping[str, float | None] | None = None,
) -> TickCounts:
    """Draw ``seconds`` worth of the flows' requests: codes and latency buckets.

    Failure and latency follow the service model per pod (see the module docstring); a pod
    past its CPU limit (``cpu_limits`` by pod name, else the scenario's ``pod.resources``)
    answers ``demand / limit`` times slower (:mod:`deploysim.rules.saturation`).
    """
    out = TickCounts(seconds=max(seconds, 0.0))
    if not flows or seconds <= 0:
        return out
    spec = {"stable": scenario.stable, "candidate": scenario.candidate}
    load: dict[str, float] = {}
    for f in flows:
        if f.pod is not None:
            load[f.pod] = load.get(f.pod, 0.0) + f.rps
    model = [
        service.serve(
            load[f.pod] if f.pod is not None else f.rps,
            0 if f.pod is None else 1,  # one pod at its whole load, or no ready endpoint
            scenario.pod.capacity_rps,
            spec[f.version].error_rate,
            outage,
            spec[f.version].latency_ms or scenario.pod.latency_ms,
        )
        for f in flows
    ]
    p503 = np.array([m.p_shed for m in model])
    p500 = np.array([m.p_error for m in model])
    p200 = np.clip(1.0 - p503 - p500, 0.0, 1.0)
    n = rng.poisson(np.array([f.rps * seconds for f in flows]))
    codes = rng.multinomial(n, np.stack([p200, p500, p503], axis=1))  # order of CODES
    # latency of the requests a pod took (a request with no endpoint has none)
    default_limit = scenario.pod.resources.parsed().cpu_limit
    slow = np.array([
        1.0 if f.pod is None else throttle_factor(
            cpu_demand(load[f.pod], costs_of(spec[f.version])),
            (cpu_limits or {}).get(f.pod, default_limit))
        for f in flows
    ])
    log_median = np.log(np.array([m.median_ms for m in model]) * slow / 1000.0)
    sigma = np.array([spec[f.version].latency_sigma for f in flows])
    cdf = service.latency_cdf(
        np.log(np.array(BUCKETS))[None, :], log_median[:, None], sigma[:, None]
    )
    probs = np.diff(
        np.concatenate([np.zeros((len(flows), 1)), cdf, np.ones((len(flows), 1))], axis=1), axis=1
    )
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum(axis=1, keepdims=True)
    served = np.where([f.pod is not None for f in flows], n, 0)
    buckets = rng.multinomial(served, probs)
    mean = service.latency_mean(log_median, sigma)
    for key in {(f.version, f.route) for f in flows}:
        mask = np.array([(f.version, f.route) == key for f in flows])
        out.codes[key] = codes[mask].sum(axis=0)
        out.buckets[key] = buckets[mask].sum(axis=0)
        out.latency_sum[key] = float((served[mask] * mean[mask]).sum())
    return out
