"""The service model as tables: load, shedding, failures, latency (deploysim/rules/service.py),
and the simulator and the traffic exporter serving by it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import lognorm

from deploysim.kube.traffic import Flow, sample_tick
from deploysim.rules.service import (
    Served,
    combined_outage,
    failure_probability,
    latency_cdf,
    latency_factor,
    latency_mean,
    latency_quantile,
    pod_load,
    serve,
    shed_fraction,
)
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse


@pytest.mark.parametrize(
    ("offered", "pods", "capacity", "rho"),
    [(120.0, 3, 50.0, 0.8), (300.0, 3, 50.0, 2.0), (0.0, 4, 50.0, 0.0), (50.0, 1, 50.0, 1.0)],
)
def test_pod_load(offered, pods, capacity, rho):
    assert pod_load(offered, pods, capacity) == pytest.approx(rho)


@pytest.mark.parametrize(
    ("rho", "shed"), [(0.0, 0.0), (0.8, 0.0), (1.0, 0.0), (1.25, 0.2), (2.0, 0.5), (4.0, 0.75)]
)
def test_shed_fraction_is_the_excess_over_capacity(rho, shed):
    assert shed_fraction(rho) == pytest.approx(shed)


@pytest.mark.parametrize(
    ("rho", "factor"),
    [(0.0, 1.0), (0.5, 1 / math.sqrt(0.5)), (0.75, 2.0), (0.9, 1 / math.sqrt(0.1)), (3.0, 1 / math.sqrt(0.1))],
)
def test_latency_factor_grows_with_load_up_to_the_cap(rho, factor):
    assert latency_factor(rho) == pytest.approx(factor)


@pytest.mark.parametrize(
    ("offered", "pods", "error_rate", "outage", "expected"),
    [
        # (p_shed, p_error, p_fail, median_ms) on pods of 50 rps with a 50 ms idle median
        (120.0, 3, 0.01, 0.0, (0.0, 0.01, 0.01, 50 / math.sqrt(0.2))),
        (300.0, 3, 0.01, 0.0, (0.5, 0.005, 0.505, 50 / math.sqrt(0.1))),  # half shed
        (300.0, 3, 0.01, 0.1, (0.5, 0.5 * (1 - 0.99 * 0.9), 1 - 0.5 * 0.99 * 0.9, 50 / math.sqrt(0.1))),
        (100.0, 4, 0.0, 1.0, (0.0, 1.0, 1.0, 50 / math.sqrt(0.5))),  # the dependency fails every answer
        (100.0, 0, 0.01, 0.0, (1.0, 0.0, 1.0, 50.0)),  # no ready endpoint: all fail, none answered
        (0.0, 2, 0.2, 0.0, (0.0, 0.2, 0.2, 50.0)),  # idle pods answer at their idle median
    ],
)
def test_serve(offered, pods, error_rate, outage, expected):
    served = serve(offered, pods, 50.0, error_rate, outage, latency_ms=50.0)
    assert (served.p_shed, served.p_error, served.p_fail, served.median_ms) == pytest.approx(expected)
    # every failure is either unanswered or answered with an error
    assert served.p_fail == pytest.approx(served.p_shed + served.p_error)
    assert failure_probability(offered, pods, 50.0, error_rate, outage) == served.p_fail


def test_served_is_plain_data():
    assert serve(0.0, 0, 50.0, 0.0) == Served(1.0, 0.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("rates", "combined"), [([], 0.0), ([0.3], 0.3), ([0.5, 0.5], 0.75), ([0.1, 0.2, 0.5], 1 - 0.9 * 0.8 * 0.5)]
)
def test_outages_together_fail_requests_independently(rates, combined):
    assert combined_outage(rates) == pytest.approx(combined)


def test_one_outage_is_exactly_its_own_rate():
    assert combined_outage([0.3]) == 0.3  # the simulator's numbers with one outage are unchanged


def test_latency_is_the_log_normal_scipy_knows():
    median, sigma = 80.0, 0.4
    dist = lognorm(s=sigma, scale=median)
    qs = np.array([0.5, 0.95, 0.99])
    assert latency_quantile(qs, math.log(median), np.full(3, sigma)) == pytest.approx(dist.ppf(qs))
    xs = np.array([40.0, 80.0, 200.0])
    assert latency_cdf(np.log(xs), math.log(median), np.full(3, sigma)) == pytest.approx(dist.cdf(xs))
    assert float(latency_mean(math.log(median), np.array(sigma))) == pytest.approx(dist.mean())


# --- both worlds serve by it --------------------------------------------------------------------


def test_the_simulator_fails_an_overloaded_stable_version_as_the_model_says():
    sc = load_scenario(overrides=[
        "traffic.shape=constant", "traffic.rps=600", "replicas=4", "pod.capacity_rps=100",
        "stable.error_rate=0.01", "candidate.error_rate=0.01", "start_at=30m", "duration=31m",
        "strategy.kind=rolling", "strategy.background_analysis=false",
    ])
    rec = rehearse(sc)
    before = rec.timeline[rec.timeline["time"] <= 30 * 60]
    rate = before["failed_stable"].sum() / before["requests_stable"].sum()
    # 600 rps on 4 pods of 100: rho 1.5, a third shed, then 1% of the rest
    assert rate == pytest.approx(failure_probability(600.0, 4, 100.0, 0.01), rel=0.02)
    assert failure_probability(600.0, 4, 100.0, 0.01) == pytest.approx(1 - (2 / 3) * 0.99)


def test_the_traffic_exporter_fails_an_overloaded_pod_as_the_model_says():
    sc = load_scenario(overrides=["stable.error_rate=0.01", "pod.capacity_rps=100"])
    tick = sample_tick(np.random.default_rng(5), sc, [Flow("a", "stable", "user", 150.0)], 200.0)
    codes = tick.codes[("stable", "user")]  # 200, 500, 503
    served = serve(150.0, 1, 100.0, 0.01)
    assert codes[2] / codes.sum() == pytest.approx(served.p_shed, rel=0.03)
    assert codes[1] / codes.sum() == pytest.approx(served.p_error, rel=0.15)
