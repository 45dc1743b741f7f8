"""Judges beyond thresholds: Kayenta-style Mann-Whitney and the anytime-valid sequential test.

The key property of the sequential judge is shown by simulation: with a healthy candidate
and a look after every interval, its false-alarm rate stays at or below α, while a
z-test repeated at every look inflates it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from deploysim.analysis.judges import FAILED, INCONCLUSIVE, JUDGES, SUCCESSFUL, get_judge
from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.analysis.statistical import (
    ALPHA,
    HIGH,
    LOW,
    NODATA,
    PASS,
    classify,
    log_likelihood_ratio,
    mann_whitney_judge,
    score_phase,
    sequential_judge,
)
from deploysim.plan import AnalysisSpec, Check
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse
from deploysim.sweep import run_sweep, summarize_sweep

SPEC = AnalysisSpec(checks=(Check("error_rate", max=0.01), Check("latency_p99", max=500.0)))


def window(requests: list[int], errors: list[int], p99: list[float] | None = None) -> VersionWindow:
    p99 = p99 if p99 is not None else [100.0] * len(requests)
    return VersionWindow(requests=sum(requests), errors=sum(errors), latency_p99=max(p99, default=math.nan),
                         seconds=10.0 * len(requests), series_requests=tuple(requests), series_errors=tuple(errors),
                         series_latency_p99=tuple(p99))


def measurement(candidate: VersionWindow, stable: VersionWindow) -> Measurement:
    return Measurement(0.0, candidate.seconds, {"candidate": candidate, "stable": stable})


def test_both_judges_register_on_first_use() -> None:
    assert get_judge("mann_whitney") is mann_whitney_judge
    assert get_judge("sequential") is sequential_judge
    assert {"threshold", "mann_whitney", "sequential"} <= set(JUDGES)


# --- Mann-Whitney ------------------------------------------------------------------------------

BASE = np.array([0.0010, 0.0012, 0.0009, 0.0011, 0.0010, 0.0013])


@pytest.mark.parametrize(
    ("candidate", "baseline", "label"),
    [
        (BASE * 20, BASE, HIGH),  # significant, and 20× the baseline
        (BASE / 20, BASE, LOW),
        (BASE * 1.02 + 1e-6, BASE, PASS),  # indistinguishable
        (BASE * 1.3, BASE + np.linspace(0, 1e-6, 6), PASS),  # significant, but inside the effect band
        (BASE[:2] * 20, BASE, NODATA),  # too few bins
        (np.zeros(6), np.zeros(6), PASS),  # nothing failed on either side
    ],
)
def test_mann_whitney_classes(candidate: np.ndarray, baseline: np.ndarray, label: str) -> None:
    assert classify(candidate, baseline)[0] == label


def test_mann_whitney_uses_confidence_098() -> None:
    base = np.linspace(0.0010, 0.0015, 6)  # no ties: scipy's exact distribution
    # 6 vs 6 fully separated: two-sided p = 2 / C(12, 6) = 0.0022 < 0.02
    label, p, _ = classify(base * 3, base)
    assert label == HIGH and p == pytest.approx(2 / math.comb(12, 6), rel=1e-6)
    # 3 vs 3 fully separated: p = 2 / C(6, 3) = 0.1, not significant at 0.98
    label, p, _ = classify(base[:3] * 3, base[:3])
    assert label == PASS and p == pytest.approx(0.1)


@pytest.mark.parametrize(("score", "phase"), [(100, SUCCESSFUL), (95, SUCCESSFUL), (94.9, INCONCLUSIVE),
                                              (75, INCONCLUSIVE), (74.9, FAILED), (50, FAILED), (0, FAILED)])
def test_kayenta_score_thresholds(score: float, phase: str) -> None:
    assert score_phase(score) == phase


def test_mann_whitney_judge_scores_metric_classes() -> None:
    stable = window([3000] * 6, [3, 4, 2, 3, 3, 4], [120, 118, 125, 121, 119, 122])
    bad = window([150] * 6, [4, 3, 5, 2, 4, 3], [121, 119, 124, 120, 118, 123])
    v = mann_whitney_judge(SPEC, measurement(bad, stable), {})
    assert v.phase == FAILED and v.values["score"] == 50.0  # error rate High, latency Pass
    slow = window([150] * 6, [0, 0, 0, 0, 1, 0], [300, 310, 290, 305, 298, 320])
    assert mann_whitney_judge(SPEC, measurement(slow, stable), {}).phase == FAILED
    fast = window([150] * 6, [0, 0, 0, 0, 0, 0], [60, 61, 59, 62, 58, 60])
    v = mann_whitney_judge(SPEC, measurement(fast, stable), {})
    assert v.phase == SUCCESSFUL and "latency Low" in v.reason  # lower latency is no regression
    assert mann_whitney_judge(SPEC, measurement(window([], []), stable), {}).phase == INCONCLUSIVE
    few = window([150, 150], [0, 1])
    assert mann_whitney_judge(SPEC, measurement(few, stable), {}).phase == INCONCLUSIVE  # NoData on both


# --- sequential --------------------------------------------------------------------------------


def test_likelihood_ratio_is_zero_at_the_null_and_favours_the_truth() -> None:
    n_c, n_b = np.array([1000.0]), np.array([9000.0])
    theta = np.array([1.0, 2.0, 10.0])
    assert log_likelihood_ratio(theta, 1.0, n_c, np.array([1.0]), n_b, np.array([9.0]))[0] == pytest.approx(0.0)
    # 10 candidate failures where 1 was expected: θ = 10 explains it best
    llr = log_likelihood_ratio(theta, 1.0, n_c, np.array([10.0]), n_b, np.array([9.0]))
    assert llr[2] > llr[1] > 0
    assert not log_likelihood_ratio(theta, 1.0, n_c, np.array([0.0]), n_b, np.array([0.0])).any()


def _draw(rng: np.random.Generator, rate: float, p: float, bins: int = 3) -> VersionWindow:
    n = rng.poisson(rate / bins, size=bins)
    x = rng.binomial(n, p)
    return window([int(v) for v in n], [int(v) for v in x])


def _false_alarms(rng: np.random.Generator, reps: int, looks: int, p_c: float, p_b: float,
                  n_c: float = 600, n_b: float = 5400) -> tuple[float, float]:
    """(sequential, naive z-test) share of runs that ever reject, looking after every interval.

    Each look is one interval of 3 bins; requests are Poisson, failures binomial."""
    spec = AnalysisSpec(checks=(Check("error_rate", max=0.01),))
    shape = (reps, looks, 3)
    req_c, req_b = rng.poisson(n_c / 3, shape), rng.poisson(n_b / 3, shape)
    err_c, err_b = rng.binomial(req_c, p_c), rng.binomial(req_b, p_b)
    # the naive test: a one-sided two-proportion z-test on the totals so far, at every look
    tot = [np.cumsum(a.sum(axis=2), axis=1) for a in (err_c, req_c, err_b, req_b)]
    pooled = (tot[0] + tot[2]) / (tot[1] + tot[3])
    se = np.sqrt(pooled * (1 - pooled) * (1 / tot[1] + 1 / tot[3]))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, (tot[0] / tot[1] - tot[2] / tot[3]) / se, 0.0)
    naive = float(np.mean((z > norm.ppf(1 - ALPHA)).any(axis=1)))
    seq = 0
    for r in range(reps):
        state: dict = {}
        for k in range(looks):
            cand = window(req_c[r, k].tolist(), err_c[r, k].tolist())
            stab = window(req_b[r, k].tolist(), err_b[r, k].tolist())
            verdict = sequential_judge(spec, measurement(cand, stab), state)
            state = verdict.state
            if verdict.phase == FAILED:
                seq += 1
                break
    return seq / reps, naive


def test_sequential_false_alarms_stay_below_alpha_where_a_repeated_z_test_inflates() -> None:
    """A healthy candidate (same error rate as the stable version), 600 runs of 20 looks:
    the sequential judge rejects in at most α of them (+3 standard errors); a one-sided
    z-test at the same α, repeated at every look, rejects several times as often."""
    rng = np.random.default_rng(20220814)
    reps = 600
    seq, naive = _false_alarms(rng, reps, looks=20, p_c=0.002, p_b=0.002)
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)
    assert seq <= bound
    assert naive > 2 * ALPHA
    assert naive > seq + 0.05


def test_sequential_is_valid_at_the_edge_of_its_null() -> None:
    """H0 is "candidate error rate <= 1.1 × the stable version's"; at exactly 1.1 × the
    false-alarm rate is still at most α."""
    rng = np.random.default_rng(7)
    reps = 400
    seq, _ = _false_alarms(rng, reps, looks=20, p_c=0.0022, p_b=0.002)
    assert seq <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)


def test_sequential_catches_a_regression_and_keeps_its_evidence_as_plain_data() -> None:
    rng = np.random.default_rng(3)
    spec = AnalysisSpec(checks=(Check("error_rate", max=0.01),))
    caught_at = []
    for _ in range(100):
        state: dict = {}
        for look in range(1, 21):
            verdict = sequential_judge(spec, measurement(_draw(rng, 600, 0.01), _draw(rng, 5400, 0.002)), state)
            state = json.loads(json.dumps(verdict.state))  # what a status annotation would hold
            if verdict.phase == FAILED:
                caught_at.append(look)
                break
    assert len(caught_at) >= 95  # 5× the error rate, 600 canary requests a look
    assert np.median(caught_at) <= 5
    assert state["looks"] >= 1 and len(state["llr"]) == 48


def test_sequential_checks_latency_by_threshold_and_waits_for_data() -> None:
    stable = window([3000] * 3, [3, 3, 3])
    slow = window([300] * 3, [0, 0, 1], [700, 690, 710])
    verdict = sequential_judge(SPEC, measurement(slow, stable), {})
    assert verdict.phase == FAILED and "latency_p99" in verdict.reason
    assert sequential_judge(SPEC, measurement(window([], []), stable), {}).phase == INCONCLUSIVE


# --- in the rehearsal and the sweep ------------------------------------------------------------

SHORT = ["duration=35m", "traffic.shape=constant"]


@pytest.mark.parametrize("judge", ["mann_whitney", "sequential"])
def test_statistical_judges_roll_back_the_default_regression(judge: str) -> None:
    rec = rehearse(load_scenario(overrides=[*SHORT, f"analysis.judge={judge}"]))
    assert rec.summary["outcome"] == "rolled_back"
    # within the first analysis: the pause (120 s), then 3 measurements a minute apart
    assert rec.summary["time_to_detect_seconds"] <= 120.0 + 2 * 60.0 + 1e-6
    json.dumps(rec.status)  # judge state stays plain data in the controller's status


def test_sweep_reports_each_judge() -> None:
    df = run_sweep(load_scenario(overrides=SHORT), runs=2, judges=["threshold", "mann_whitney", "sequential"],
                   workers=1, progress=False)
    summary = summarize_sweep(df)
    assert list(summary) == ["threshold", "mann_whitney", "sequential"]
    for entry in summary.values():
        assert entry["detection_rate"] == 1.0 and entry["runs"] == 2
    for judge, entry in summary.items():
        healthy = df[(df["judge"] == judge) & (df["candidate"] == "healthy")]
        assert len(healthy) == 2
        assert entry["false_rollback_rate"] == round(float(healthy["rolled_back"].mean()), 4)
        assert entry["time_to_detect_seconds"]["p50"] <= 300.0  # within the first two analyses
    assert summary["threshold"]["time_to_detect_seconds"]["p50"] == 120.0  # the first measurement
