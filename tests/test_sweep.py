"""Sweeps: detection rate agrees with the probability computed from the distributions."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from deploysim.scenario import load_scenario
from deploysim.sweep import run_sweep, summarize_sweep

RPS, WEIGHT, INTERVAL, THRESHOLD = 100.0, 20, 60.0, 0.02


def _one_check_canary(candidate_error_rate: float):
    return load_scenario(data={
        "replicas": 10, "duration": "8m", "start_at": 0, "seed": 1000,
        "traffic": {"rps": RPS, "shape": "constant"},
        "pod": {"startup": "1s", "startup_jitter": 0, "capacity_rps": 1000},
        "stable": {"error_rate": 0.001},
        "candidate": {"error_rate": candidate_error_rate},
        "strategy": {"kind": "canary", "traffic_router": True,
                     # the measurement is taken as the analysis starts and looks back one
                     # interval: the pause gives it INTERVAL seconds at WEIGHT
                     "steps": [{"set_weight": WEIGHT}, {"pause": INTERVAL}, {"analysis": True},
                               {"set_weight": 100}]},
        "analysis": {"interval": INTERVAL, "count": 1, "failure_limit": 0,
                     "checks": [{"metric": "error_rate", "max": THRESHOLD}]},
    })


def detection_probability(p: float) -> float:
    """P(the one measurement fails) computed directly.

    The candidate gets WEIGHT% of RPS for INTERVAL seconds: N ~ Poisson(lam) requests with
    lam = RPS * WEIGHT/100 * INTERVAL = 1200, of which failures E | N ~ Binomial(N, p). The
    check fails when E / N > THRESHOLD, so
        P = sum_n Poisson(n; lam) * P(Binomial(n, p) > floor(THRESHOLD * n)).
    """
    lam = RPS * WEIGHT / 100 * INTERVAL
    ns = np.arange(int(lam - 8 * math.sqrt(lam)), int(lam + 8 * math.sqrt(lam)))
    fail = stats.binom.sf(np.floor(THRESHOLD * ns + 1e-9), ns, p)
    return float(np.sum(stats.poisson.pmf(ns, lam) * fail))


def test_threshold_detection_rate_matches_binomial_poisson():
    runs = 400
    for p in (0.02, 0.025):
        expected = detection_probability(p)
        df = run_sweep(_one_check_canary(p), runs, variants=("bad",), workers=2, progress=False)
        observed = df["rolled_back"].mean()
        sigma = math.sqrt(expected * (1 - expected) / runs)
        assert abs(observed - expected) < 4 * sigma, (p, observed, expected)
    # and the formula itself is not trivially flat
    assert detection_probability(0.025) > detection_probability(0.02) + 0.2


def test_sweep_summary_reports_detection_and_false_rollbacks():
    df = run_sweep(_one_check_canary(0.05), 10, workers=1, progress=False)
    assert set(df["candidate"]) == {"bad", "healthy"} and len(df) == 20
    assert sorted(df[df["candidate"] == "bad"]["seed"]) == list(range(1000, 1010))
    summary = summarize_sweep(df)["threshold"]
    assert summary["detection_rate"] == 1.0  # 5% against a 2% threshold is always caught
    assert summary["false_rollback_rate"] == 0.0  # 0.1% never crosses 2% with 1200 requests
    assert summary["rollout_seconds_healthy"]["p50"] > INTERVAL
