"""Check bounds as tables (deploysim/rules/checks.py), and the judges that apply them."""

from __future__ import annotations

import math

import pytest

from deploysim.analysis.judges import FAILED, SUCCESSFUL, threshold_judge
from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.analysis.statistical import sequential_judge
from deploysim.plan import AnalysisSpec, Check
from deploysim.rules.checks import describe_bounds, error_rate_bounds, violations, within_bounds


@pytest.mark.parametrize(
    ("metric", "value", "lo", "hi", "broken"),
    [
        ("error_rate", 0.01, None, 0.01, []),  # the bound itself passes
        ("error_rate", 0.012, None, 0.01, ["error_rate 0.012 > 0.01"]),
        ("latency_p99", 251.0, None, 250.0, ["latency_p99 251 > 250"]),
        ("request_rate", 4.5, 5.0, None, ["request_rate 4.5 < 5"]),
        ("request_rate", 5.0, 5.0, None, []),
        ("success_rate", 0.95, 0.99, 1.0, ["success_rate 0.95 < 0.99"]),
        ("error_rate", 0.123456, None, 0.1, ["error_rate 0.1235 > 0.1"]),  # four significant digits
        ("latency_p99", math.nan, 10.0, 250.0, []),  # nothing measured breaks nothing
        ("error_rate", 0.5, None, None, []),  # no bound
    ],
)
def test_violations(metric, value, lo, hi, broken):
    assert violations(metric, value, lo, hi) == broken
    assert within_bounds(value, lo, hi) is (not broken)


@pytest.mark.parametrize(
    ("lo", "hi", "words"),
    [(None, 0.01, "<= 0.01"), (10.0, None, ">= 10"), (10.0, 250.0, ">= 10 and <= 250")],
)
def test_describe_bounds(lo, hi, words):
    assert describe_bounds(lo, hi) == words
    assert Check("latency_p99", max=hi, min=lo).describe() == f"latency_p99 {words}"


@pytest.mark.parametrize(
    ("success_lo", "success_hi", "error_lo", "error_hi"),
    [(0.95, None, None, 0.05), (None, 0.999, 0.001, None), (0.9, 0.99, 0.01, 0.1), (None, None, None, None)],
)
def test_a_success_rate_bound_is_an_error_rate_bound(success_lo, success_hi, error_lo, error_hi):
    lo, hi = error_rate_bounds(success_lo, success_hi)
    assert (lo, hi) == (pytest.approx(error_lo) if error_lo is not None else None,
                        pytest.approx(error_hi) if error_hi is not None else None)


def _measurement(errors: int, p99: float) -> Measurement:
    cand = VersionWindow(requests=1000, errors=errors, latency_p99=p99, seconds=60.0,
                         series_requests=(500, 500), series_errors=(errors // 2, errors - errors // 2))
    base = VersionWindow(requests=1000, errors=errors, latency_p99=p99, seconds=60.0,
                         series_requests=(500, 500), series_errors=(errors // 2, errors - errors // 2))
    return Measurement(0.0, 60.0, {"stable": base, "candidate": cand})


@pytest.mark.parametrize(
    ("errors", "p99", "phase", "reason"),
    [
        (10, 250.0, SUCCESSFUL, "all checks within bounds"),  # both exactly at their bounds
        (11, 250.0, FAILED, "error_rate 0.011 > 0.01"),
        (5, 300.0, FAILED, "latency_p99 300 > 250"),
        (20, 300.0, FAILED, "error_rate 0.02 > 0.01; latency_p99 300 > 250"),
    ],
)
def test_the_threshold_judge_applies_each_checks_bounds(errors, p99, phase, reason):
    spec = AnalysisSpec(checks=(Check("error_rate", max=0.01), Check("latency_p99", max=250.0)))
    verdict = threshold_judge(spec, _measurement(errors, p99), {})
    assert (verdict.phase, verdict.reason) == (phase, reason)


def test_the_sequential_judge_applies_the_same_bounds_to_latency():
    spec = AnalysisSpec(judge="sequential", checks=(Check("error_rate", max=0.01), Check("latency_p99", max=250.0)))
    verdict = sequential_judge(spec, _measurement(5, 300.0), {})
    assert (verdict.phase, verdict.reason) == (FAILED, "latency_p99 300 > 250")
