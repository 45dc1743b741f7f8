"""Check bounds: how a check's ``min`` / ``max`` judges a measured value, and how it reads.

A check passes when the value lies within [min, max], both ends included (a bound left out
is no bound): an error rate of exactly the 1% max passes, 1.01% fails. This is Flagger's
``thresholdRange``; the Argo importers read both ``result < x`` and ``result <= x`` as it. A
value that is not a number (NaN: nothing measured) breaks no bound; a judge that needs a
value says Inconclusive before it asks.

Every judge of a bound (the threshold judge, the sequential judge's latency checks, the
verification after a rollback) calls :func:`violations`, and every description of one calls
:func:`describe_bounds`.

>>> violations("error_rate", 0.012, lo=None, hi=0.01)
['error_rate 0.012 > 0.01']
"""

from __future__ import annotations


def violations(metric: str, value: float, lo: float | None = None, hi: float | None = None) -> list[str]:
    """The bounds ``value`` breaks, each said as ``metric value op bound``; empty when it
    passes. Max 0.01: 0.01 passes, 0.012 breaks it. Min 0.99 and max 1.0 on 0.95: below the
    min. NaN breaks nothing.

    >>> violations("error_rate", 0.01, hi=0.01), violations("error_rate", 0.012, hi=0.01)
    ([], ['error_rate 0.012 > 0.01'])
    >>> violations("success_rate", 0.95, lo=0.99, hi=1.0)
    ['success_rate 0.95 < 0.99']
    >>> violations("latency_p99", float("nan"), hi=250.0)
    []
    """
    broken = []
    if hi is not None and value > hi:
        broken.append(f"{metric} {value:.4g} > {hi:g}")
    if lo is not None and value < lo:
        broken.append(f"{metric} {value:.4g} < {lo:g}")
    return broken


def within_bounds(value: float, lo: float | None = None, hi: float | None = None) -> bool:
    """True when ``value`` breaks neither bound (:func:`violations` is empty).

    >>> within_bounds(250.0, hi=250.0), within_bounds(250.5, hi=250.0), within_bounds(5.0, lo=10.0)
    (True, False, False)
    """
    return not violations("", value, lo, hi)


def describe_bounds(lo: float | None = None, hi: float | None = None) -> str:
    """The bounds in words: ``>= 10 and <= 250``; one side alone when the other is open.

    >>> describe_bounds(hi=0.01), describe_bounds(lo=10.0, hi=250.0)
    ('<= 0.01', '>= 10 and <= 250')
    """
    bounds = []
    if lo is not None:
        bounds.append(f">= {lo:g}")
    if hi is not None:
        bounds.append(f"<= {hi:g}")
    return " and ".join(bounds)


def error_rate_bounds(success_lo: float | None, success_hi: float | None) -> tuple[float | None, float | None]:
    """(min, max) error rate for a success rate bounded by [lo, hi] (both as shares of 1):
    a success rate of at least 95% is an error rate of at most 5%; at most 99.9%, an error
    rate of at least 0.1%.

    >>> [None if b is None else round(b, 6) for b in error_rate_bounds(0.95, None)]
    [None, 0.05]
    >>> [None if b is None else round(b, 6) for b in error_rate_bounds(None, 0.999)]
    [0.001, None]
    """
    return (
        None if success_hi is None else 1 - success_hi,
        None if success_lo is None else 1 - success_lo,
    )
