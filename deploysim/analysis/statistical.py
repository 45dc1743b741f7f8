"""Judges beyond thresholds: Kayenta's Mann-Whitney comparison and an anytime-valid test.

Both compare the candidate with a baseline, the stable version serving over the same
window, instead of with a fixed bound, so a noisy hour or a dependency outage that hits
both versions alike is not blamed on the candidate.

``mann_whitney`` (Spinnaker Kayenta's judge): per metric class, the candidate's per-bin
series against the baseline's with a two-sided Mann-Whitney U test at confidence 0.98 and
an effect-size band; each class is Pass, High, Low or NoData; the score is passes /
classified × 100, Successful from 95, Inconclusive from 75, else Failed.

``sequential`` (the anytime-valid idea of Lindon et al., Netflix, KDD 2022): a mixture
likelihood-ratio test on error counts that may be looked at after every measurement
without inflating false alarms. Conditional on the failures seen in a bin, each one is the
candidate's with probability ``rho = n_c θ / (n_c θ + n_b)``, where ``n`` are the requests
each version served and ``θ`` the ratio of their error rates. Against H0 ``θ <= θ0 = 1 +
margin``, the e-value is ``Σ_k w_k Π_bins L(θ_k) / L(θ0)`` over a grid of ``θ_k > θ0``;
under H0 it is a nonnegative supermartingale, so by Ville's inequality it ever reaches
``1 / α`` with probability at most α, however often it is checked. A grid mixture over θ
(rather than a conjugate beta over rho) keeps the test exact when the weight, and so the
exposure ratio, changes from one bin to the next.

Both register into :data:`deploysim.analysis.judges.JUDGES` on import.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from deploysim.analysis.judges import FAILED, INCONCLUSIVE, JUDGES, SUCCESSFUL, Verdict
from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.plan import AnalysisSpec
from deploysim.rules.checks import violations
from deploysim.rules.saturation import RESOURCE_METRICS

# --- Mann-Whitney (Kayenta) ----------------------------------------------------------------

CONFIDENCE = 0.98
PASS_SCORE = 95.0
MARGINAL_SCORE = 75.0
# Effect-size band on candidate mean / baseline mean. The baseline here is the stable
# version, not a same-size baseline as Kayenta advises: with a router the canary has
# weight × replicas pods while the stable keeps all of its, so at 50% a canary pod serves
# twice a stable pod's load and its p99 runs ~1.2-1.3× higher with nothing wrong in the
# code. A band of 1.5 leaves that alone and still flags a real regression.
ALLOWED_INCREASE = 1.5
ALLOWED_DECREASE = 1 / 1.5
MIN_BINS = 3  # fewer bins with data in either version is NoData

PASS, HIGH, LOW, NODATA = "Pass", "High", "Low", "NoData"


def metric_class(metric: str) -> str | None:
    """The series a check is compared on: error rate per bin, or latency (p99 per bin).
    Request rate is not compared: the two versions get different shares of traffic."""
    if metric == "error_rate":
        return "error_rate"
    if metric.startswith("latency"):
        return "latency"
    return None


def series(window: VersionWindow, cls: str) -> np.ndarray:
    """Per-bin values of a metric class; bins without requests carry no value."""
    if cls == "error_rate":
        pairs = [(e, n) for e, n in zip(window.series_errors, window.series_requests, strict=False) if n > 0]
        return np.array([e / n for e, n in pairs], dtype=float)
    values = np.asarray(window.series_latency_p99, dtype=float)
    return values[np.isfinite(values)]


def classify(candidate: np.ndarray, baseline: np.ndarray, confidence: float = CONFIDENCE,
             allowed_increase: float = ALLOWED_INCREASE, allowed_decrease: float = ALLOWED_DECREASE,
             min_bins: int = MIN_BINS) -> tuple[str, float, float]:
    """(classification, p-value, effect size) of a candidate series against a baseline.

    High: the candidate is significantly higher and its mean above the band; Low: lower
    and below it; Pass otherwise; NoData with fewer than ``min_bins`` values on a side.

    >>> classify(np.array([0.02, 0.03, 0.025, 0.02, 0.022, 0.028]), np.full(6, 0.001) + np.arange(6) * 1e-4)[0]
    'High'
    >>> classify(np.array([0.001, 0.0]), np.array([0.001, 0.002, 0.0]))[0]
    'NoData'
    """
    if len(candidate) < min_bins or len(baseline) < min_bins:
        return NODATA, math.nan, math.nan
    base_mean = float(np.mean(baseline))
    cand_mean = float(np.mean(candidate))
    effect = cand_mean / base_mean if base_mean > 0 else (math.inf if cand_mean > 0 else 1.0)
    if np.ptp(np.concatenate([candidate, baseline])) == 0:
        return PASS, 1.0, effect  # every value the same: nothing to tell apart
    p = float(mannwhitneyu(candidate, baseline, alternative="two-sided").pvalue)
    if p < 1 - confidence and effect > allowed_increase:
        return HIGH, p, effect
    if p < 1 - confidence and effect < allowed_decrease:
        return LOW, p, effect
    return PASS, p, effect


def mann_whitney_judge(spec: AnalysisSpec, m: Measurement, state: dict[str, Any]) -> Verdict:
    """Kayenta-style: classify each metric class of the checks, score, and decide.

    Error rate and latency are "increase is bad" metrics, so a significant Low counts as a
    pass (as Kayenta's directional metrics do). No candidate requests is Inconclusive.
    """
    cand, base = m.candidate, m.baseline
    values: dict[str, float] = {"requests": float(cand.requests)}
    if cand.requests < max(spec.min_requests, 1):
        return Verdict(INCONCLUSIVE, f"{cand.requests} candidate requests, too few to judge", values)
    classes = list(dict.fromkeys(c for c in (metric_class(ch.metric) for ch in spec.checks) if c))
    if not classes:
        classes = ["error_rate", "latency"]
    passed = classified = 0
    words = []
    for cls in classes:
        label, p, effect = classify(series(cand, cls), series(base, cls))
        values[f"{cls}_p_value"] = p
        values[f"{cls}_effect"] = effect
        words.append(f"{cls} {label}" + ("" if math.isnan(p) else f" (p={p:.3g}, x{effect:.3g})"))
        if label == NODATA:
            continue
        classified += 1
        passed += label in (PASS, LOW)
    # saturation, cpu and memory have no per-bin series to compare: their bounds judge them
    broken = []
    for check in spec.checks:
        if check.metric in RESOURCE_METRICS:
            values[check.metric] = cand.value(check.metric)
            broken += violations(check.metric, values[check.metric], check.min, check.max)
    if broken:
        return Verdict(FAILED, "; ".join([*broken, *words]), values)
    if classified == 0:
        return Verdict(INCONCLUSIVE, "no data to compare: " + "; ".join(words), values)
    score = 100.0 * passed / classified
    values["score"] = score
    return Verdict(score_phase(score), f"score {score:.0f}: " + "; ".join(words), values)


def score_phase(score: float, pass_score: float = PASS_SCORE, marginal_score: float = MARGINAL_SCORE) -> str:
    """Kayenta's summary: Pass from ``pass_score``, Marginal from ``marginal_score``, else
    Fail; in Argo's words Successful, Inconclusive (a person decides) and Failed.

    >>> score_phase(100.0), score_phase(80.0), score_phase(50.0)
    ('Successful', 'Inconclusive', 'Failed')
    """
    if score >= pass_score:
        return SUCCESSFUL
    if score >= marginal_score:
        return INCONCLUSIVE
    return FAILED


# --- sequential (anytime-valid) ------------------------------------------------------------

ALPHA = 0.05
MARGIN = 0.1
# θ / θ0 from 1.05 to 100, evenly in log: weight on small effects detects them eventually,
# on large ones detects those fast
GRID = np.exp(np.linspace(math.log(1.05), math.log(100.0), 48))
LOG_PRIOR = np.full(len(GRID), -math.log(len(GRID)))


def log_likelihood_ratio(theta: np.ndarray, theta0: float, n_c: np.ndarray, x_c: np.ndarray,
                         n_b: np.ndarray, x_b: np.ndarray) -> np.ndarray:
    """Σ over bins of log L(θ) - log L(θ0), for each θ, from the bins' requests and failures.

    Conditional on a bin's failures, each is the candidate's with probability
    rho(θ) = n_c θ / (n_c θ + n_b); bins where either version served nothing, or nobody
    failed, say nothing about θ.
    """
    use = (n_c > 0) & (n_b > 0) & ((x_c + x_b) > 0)
    if not np.any(use):
        return np.zeros(len(theta))
    n_c, x_c, n_b, x_b = n_c[use], x_c[use], n_b[use], x_b[use]

    def ll(t: np.ndarray) -> np.ndarray:
        # x_c log rho + x_b log(1 - rho), rho = n_c t / (n_c t + n_b), summed over bins
        t = np.asarray(t, dtype=float)[:, None]
        return (x_c * np.log(n_c * t) - (x_c + x_b) * np.log(n_c * t + n_b) + x_b * np.log(n_b)).sum(axis=1)

    return ll(theta) - ll(np.array([theta0]))[0]


def _logsumexp(x: np.ndarray) -> float:
    top = float(np.max(x))
    return top + math.log(float(np.sum(np.exp(x - top))))


def _bins(w: VersionWindow) -> tuple[np.ndarray, np.ndarray]:
    if w.series_requests:
        return np.asarray(w.series_requests, dtype=float), np.asarray(w.series_errors, dtype=float)
    return np.array([w.requests], dtype=float), np.array([w.errors], dtype=float)


def sequential_judge(spec: AnalysisSpec, m: Measurement, state: dict[str, Any],
                     alpha: float = ALPHA, margin: float = MARGIN) -> Verdict:
    """Failed once the e-value against "candidate error rate <= baseline × (1 + margin)"
    reaches 1/α; Successful (keep going) before. The evidence so far is kept in ``state``
    (plain data), so the test runs over every measurement of the analysis run.

    Error rate is judged by this test, not by the checks' error-rate bound; other checks
    (latency, request rate) keep their thresholds. No candidate requests is Inconclusive.
    """
    cand, base = m.candidate, m.baseline
    n_c, x_c = _bins(cand)
    n_b, x_b = _bins(base)
    if len(n_c) != len(n_b):
        n_c, x_c = np.array([cand.requests], float), np.array([cand.errors], float)
        n_b, x_b = np.array([base.requests], float), np.array([base.errors], float)
    theta0 = 1.0 + margin
    llr = np.asarray(state.get("llr") or np.zeros(len(GRID)), dtype=float)
    llr = llr + log_likelihood_ratio(GRID * theta0, theta0, n_c, x_c, n_b, x_b)
    log_e = _logsumexp(llr + LOG_PRIOR)
    looks = int(state.get("looks", 0)) + 1
    new_state = {"llr": llr.tolist(), "looks": looks, "log_e": log_e,
                 "requests": [int(state.get("requests", [0, 0])[0] + cand.requests),
                              int(state.get("requests", [0, 0])[1] + base.requests)],
                 "errors": [int(state.get("errors", [0, 0])[0] + cand.errors),
                            int(state.get("errors", [0, 0])[1] + base.errors)]}
    e_value = math.exp(min(log_e, 700.0))
    values = {"e_value": e_value, "requests": float(cand.requests), "error_rate": cand.error_rate,
              "baseline_error_rate": base.error_rate}
    if cand.requests < max(spec.min_requests, 1):
        return Verdict(INCONCLUSIVE, f"{cand.requests} candidate requests, too few to judge", values, new_state)
    broken = []
    for check in spec.checks:
        if check.metric == "error_rate":
            continue
        value = cand.value(check.metric)
        values[check.metric] = value
        broken += violations(check.metric, value, check.min, check.max)  # NaN breaks no bound
    if log_e >= math.log(1.0 / alpha):
        broken.insert(0, f"error rate above the stable version's × {theta0:g}: e-value {e_value:.3g} "
                         f">= {1 / alpha:g} after {looks} looks")
    if broken:
        return Verdict(FAILED, "; ".join(broken), values, new_state)
    return Verdict(SUCCESSFUL, f"e-value {e_value:.3g} < {1 / alpha:g} after {looks} looks", values, new_state)


JUDGES["mann_whitney"] = mann_whitney_judge
JUDGES["sequential"] = sequential_judge
