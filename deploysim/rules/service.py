"""The service model: what a version's pods do with the requests offered to them.

One model for every world that makes up traffic: the simulator accounts its expected
requests with it (:meth:`deploysim.sim.world.SimWorld.flush`), the traffic exporter draws a
cluster's requests with it (``deploysim traffic``), and a record can say from it what the
stable version alone would have failed.

Per pod, requests spread evenly over a version's ready pods:

- load ``rho = offered rps / (ready pods × capacity_rps)``;
- above capacity the excess is shed: ``shed = 1 - 1/rho`` for ``rho > 1`` (answered 503);
- of the rest, the version's ``error_rate`` and any dependency outage fail independently
  (answered 500), so a request fails with ``1 - (1 - shed)(1 - error_rate)(1 - outage)``;
- with no ready pod every request fails (no endpoint);
- latency is log-normal with median ``latency_ms / sqrt(1 - min(rho, 0.9))`` (queueing
  slows a busy pod; the cap keeps an overloaded one finite) and sigma ``latency_sigma``.

Worked through: 120 rps on 3 pods of 50 rps is rho 0.8: nothing shed, a 1% error rate
fails 1%, and a 50 ms median becomes 50 / sqrt(0.2) = 111.8 ms. 300 rps on the same pods is
rho 2: half is shed, so 1 - 0.5 × 0.99 = 50.5% fail, at 50 / sqrt(0.1) = 158.1 ms.

>>> s = serve(120.0, 3, 50.0, error_rate=0.01, latency_ms=50.0)
>>> round(s.p_fail, 4), round(s.median_ms, 1)
(0.01, 111.8)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri

#: The load above which latency stops growing (an overloaded pod sheds instead).
LATENCY_LOAD_CAP = 0.9


def pod_load(offered_rps: float, ready_pods: int, capacity_rps: float) -> float:
    """rho: the requests offered to each ready pod over what one pod serves.
    120 rps on 3 pods of 50 rps: 0.8.

    >>> pod_load(120.0, 3, 50.0)
    0.8
    """
    return offered_rps / (ready_pods * capacity_rps)


def shed_fraction(rho: float) -> float:
    """Share of requests an overloaded pod sheds: ``1 - 1/rho`` above capacity, else 0.
    Twice the capacity sheds half; four times, three quarters.

    >>> shed_fraction(0.8), shed_fraction(2.0), shed_fraction(4.0)
    (0.0, 0.5, 0.75)
    """
    return max(0.0, 1.0 - 1.0 / rho) if rho > 1 else 0.0


def latency_factor(rho: float) -> float:
    """How much slower a pod at load ``rho`` answers than an idle one:
    ``1 / sqrt(1 - min(rho, 0.9))``. At 0.75 twice as slow; from 0.9 on, 3.16 times.

    >>> latency_factor(0.0), latency_factor(0.75), round(latency_factor(3.0), 2)
    (1.0, 2.0, 3.16)
    """
    return 1.0 / math.sqrt(1.0 - min(rho, LATENCY_LOAD_CAP))


@dataclass(frozen=True)
class Served:
    """What one version's pods do with the requests offered to them.

    ``p_shed`` fail unanswered (shed, or no ready endpoint: 503); ``p_error`` are answered
    with an error (500); ``p_fail`` is every failure, ``1 - (1 - shed)(1 - error_rate)
    (1 - outage)``; ``median_ms`` is the median latency of the answered ones.
    """

    p_shed: float
    p_error: float
    p_fail: float
    median_ms: float


def serve(
    offered_rps: float,
    ready_pods: int,
    capacity_rps: float,
    error_rate: float,
    outage: float = 0.0,
    latency_ms: float = 0.0,
) -> Served:
    """The service model for ``offered_rps`` spread over ``ready_pods``.

    3 pods of 50 rps offered 300 rps (rho 2) with a 1% error rate: half shed, 0.5 × 1% =
    0.5% answered with an error, 50.5% failed. No ready pod: everything fails, at the
    idle median (nothing is answered, so the latency is moot).

    >>> s = serve(300.0, 3, 50.0, error_rate=0.01, latency_ms=50.0)
    >>> s.p_shed, round(s.p_error, 4), round(s.p_fail, 4), round(s.median_ms, 1)
    (0.5, 0.005, 0.505, 158.1)
    >>> serve(300.0, 0, 50.0, error_rate=0.01, latency_ms=50.0)
    Served(p_shed=1.0, p_error=0.0, p_fail=1.0, median_ms=50.0)
    """
    if ready_pods <= 0:
        return Served(1.0, 0.0, 1.0, latency_ms)
    rho = pod_load(offered_rps, ready_pods, capacity_rps)
    shed = shed_fraction(rho)
    p_fail = 1.0 - (1.0 - shed) * (1.0 - error_rate) * (1.0 - outage)
    p_error = (1.0 - shed) * (1.0 - (1.0 - error_rate) * (1.0 - outage))
    return Served(shed, p_error, p_fail, latency_ms * latency_factor(rho))


def failure_probability(
    offered_rps: float, ready_pods: int, capacity_rps: float, error_rate: float, outage: float = 0.0
) -> float:
    """Share of requests that fail: :func:`serve`'s ``p_fail``. The stable version's 10 pods
    of 50 rps at 400 rps with a 0.1% error rate fail 0.1%; at 1,000 rps (rho 2) 50.05%.

    >>> round(failure_probability(400.0, 10, 50.0, 0.001), 4), round(failure_probability(1000.0, 10, 50.0, 0.001), 4)
    (0.001, 0.5005)
    """
    return serve(offered_rps, ready_pods, capacity_rps, error_rate, outage).p_fail


def combined_outage(rates: Iterable[float]) -> float:
    """Share of requests failing from dependency outages active together: each fails a
    request independently, so two of 50% fail 75%; none fail nothing.

    >>> combined_outage([0.5, 0.5]), combined_outage([0.5]), combined_outage([])
    (0.75, 0.5, 0.0)
    """
    failing = 0.0
    for rate in rates:
        # 1 - (1 - failing)(1 - rate), written so that one outage alone is its own rate
        failing = failing + rate - failing * rate
    return failing


# --- the latency distribution: log-normal, on arrays --------------------------------------


def latency_quantile(u: ArrayLike, log_median: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """The latency at cumulative probability ``u``: ``median × exp(sigma × Φ⁻¹(u))``.
    A 100 ms median with sigma 0.5 has its p99 at 100 × exp(0.5 × 2.326) = 320.0 ms.

    >>> float(np.round(latency_quantile(np.array(0.99), np.log(100.0), np.array(0.5)), 1))
    320.0
    """
    return np.exp(np.asarray(log_median) + np.asarray(sigma) * ndtri(u))


def latency_cdf(log_x: ArrayLike, log_median: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """Share of answered requests faster than ``exp(log_x)``: ``Φ((ln x - ln median) / sigma)``.
    Half are faster than the median.

    >>> float(latency_cdf(np.log(100.0), np.log(100.0), np.array(0.5)))
    0.5
    """
    return ndtr((np.asarray(log_x) - log_median) / np.asarray(sigma))


def latency_mean(log_median: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """The mean latency: ``median × exp(sigma² / 2)``; a 100 ms median with sigma 0.5
    averages 113.3 ms.

    >>> float(np.round(latency_mean(np.log(100.0), np.array(0.5)), 1))
    113.3
    """
    return np.exp(np.asarray(log_median) + np.asarray(sigma) ** 2 / 2)
