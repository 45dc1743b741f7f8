"""Requests sampled per interval, not one by one: the cost of a run does not grow with rps.

Between two events the world's state is fixed, so each version's requests in an interval
are a Poisson count and its failures a thinned Poisson count. A latency percentile of N
requests is the k-th order statistic of N draws: the k-th order statistic of N uniforms is
Beta(k, N + 1 - k), mapped through the latency distribution's inverse CDF, so one draw gives
an exactly distributed sample percentile whatever N is. The latency distribution is the
service model's log-normal (:mod:`deploysim.rules.service`).
"""

from __future__ import annotations

import math

import numpy as np

from deploysim.rules.service import latency_cdf, latency_quantile

PERCENTILES = (0.50, 0.95, 0.99)


def sample_counts(rng: np.random.Generator, expected: np.ndarray, expected_failed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(requests, failed) with failed ~ Poisson(mu) and ok ~ Poisson(lambda - mu)."""
    ok = rng.poisson(np.maximum(expected - expected_failed, 0.0))
    failed = rng.poisson(np.maximum(expected_failed, 0.0))
    return ok + failed, failed


def sample_percentiles(
    rng: np.random.Generator, n: np.ndarray, log_median: np.ndarray, sigma: np.ndarray, q: float
) -> np.ndarray:
    """Sample q-percentile of n log-normal latencies (NaN where n == 0)."""
    n = np.asarray(n, dtype=float)
    out = np.full(n.shape, np.nan)
    has = n > 0
    if not np.any(has):
        return out
    k = np.maximum(np.ceil(q * n[has]), 1.0)
    u = rng.beta(k, n[has] + 1.0 - k)
    out[has] = latency_quantile(u, log_median[has], sigma[has])
    return out


def mixture_percentiles(
    rng: np.random.Generator,
    weights: np.ndarray,
    log_medians: np.ndarray,
    sigmas: np.ndarray,
    n: int,
    qs: tuple[float, ...] = PERCENTILES,
) -> list[float]:
    """Sample percentiles of n requests whose latency is a mixture of log-normals.

    All percentiles are found together by bisection on log latency (30 halvings of a
    16-sigma bracket, within 0.001% of the latency).
    """
    if n <= 0 or weights.sum() <= 0:
        return [math.nan] * len(qs)
    keep = weights > 0
    w = (weights[keep] / weights[keep].sum())[None, :]
    mu, sd = log_medians[keep][None, :], sigmas[keep][None, :]
    k = np.maximum(np.ceil(np.asarray(qs) * n), 1.0)
    u = rng.beta(k, n + 1 - k)
    if float(mu.max() - mu.min()) < 0.005 and float(sd.max() - sd.min()) < 1e-12:
        # components within 0.5% of one another: one log-normal, inverted in closed form
        return [float(x) for x in latency_quantile(u, float((w * mu).sum()), sd[0, 0])]
    lo = np.full(len(qs), float(np.min(mu - 8 * sd)))
    hi = np.full(len(qs), float(np.max(mu + 8 * sd)))
    for _ in range(30):
        mid = (lo + hi) / 2
        below = (w * latency_cdf(mid[:, None], mu, sd)).sum(axis=1) < u
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return [float(x) for x in np.exp((lo + hi) / 2)]
