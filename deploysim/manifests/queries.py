"""What a provider query measures, in the simulator's words, and the bounds it is judged by.

Provider queries map to the simulated metrics by what they measure (:func:`classify_query`):
a PromQL ratio of 5xx (or error) requests is ``error_rate``; a ratio of non-5xx requests is
a success rate, judged as ``1 - error_rate``; ``histogram_quantile(0.99, ...)`` is
``latency_p99`` (Prometheus histograms count seconds, the simulator milliseconds); a bare
``rate(...)`` of requests is ``request_rate``. Conditions such as ``result[0] >= 0.95`` become
:class:`~deploysim.plan.Check` bounds (:func:`condition_bounds`, :func:`bounds_to_check`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deploysim.analysis.metrics import MetricDef
from deploysim.durations import parse_duration
from deploysim.plan import Check
from deploysim.rules.checks import error_rate_bounds

_SUCCESS = re.compile(r'!~\s*"5|!=\s*"5|success|=~\s*"2|2xx|"2\.\."', re.I)
_ERROR = re.compile(r'5\.\.|5xx|=~\s*"5|=\s*"5\d\d"|error|fail', re.I)
_QUANTILE = re.compile(r'histogram_quantile\s*\(\s*([0-9.]+)|quantile\s*=\s*"([0-9.]+)"', re.I)
_RATE = re.compile(r"\b(i?rate)\s*\(", re.I)
_TIMES = re.compile(r"\*\s*(\d+(?:\.\d+)?)")
_RANGE = re.compile(r"\[\s*(\d+[smhd])\s*\]")
_QUANTILE_METRIC = {0.5: "latency_p50", 0.95: "latency_p95", 0.99: "latency_p99"}


@dataclass(frozen=True)
class Measures:
    """What a query measures in the simulator's words: ``metric`` is a simulated metric, or
    ``success_rate`` (judged as 1 - error_rate); ``scale`` turns the query's result into the
    simulated metric's unit (a percentage × 0.01, seconds × 1000)."""

    metric: str
    scale: float = 1.0
    note: str = ""


def classify_query(text: str, web: bool = False) -> Measures | None:
    """What a provider query measures, or None when it is nothing the simulator models.

    >>> classify_query('sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))')
    Measures(metric='error_rate', scale=1.0, note='')
    >>> classify_query('histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[1m])) by (le))').scale
    1000.0
    >>> classify_query('sum(rate(requests{code!~"5.."}[1m])) / sum(rate(requests[1m])) * 100')
    Measures(metric='success_rate', scale=0.01, note='')
    >>> classify_query('100 - sum(rate(requests{code!~"5.."}[1m])) / sum(rate(requests[1m])) * 100')
    Measures(metric='error_rate', scale=0.01, note='')
    """
    q = " ".join(text.split())
    low = q.lower()
    quantile = _QUANTILE.search(q)
    if quantile or (web and re.search(r"p99|latency|duration", low)):
        value = float(next(g for g in quantile.groups() if g)) if quantile else 0.99
        metric = _QUANTILE_METRIC.get(round(value, 4))
        if metric is None:
            return None
        factors = [float(x) for x in _TIMES.findall(q)]
        if "milli" in low or re.search(r"_ms(?:_|\b)", low) or 1000.0 in factors:
            return Measures(metric, 1.0)
        if "second" in low:
            return Measures(metric, 1000.0)
        if web:
            return Measures(metric, 1.0, "unit not stated; read as milliseconds")
        return Measures(metric, 1000.0, "unit not stated; read as seconds (the Prometheus convention)")
    percent = 100.0 in [float(x) for x in _TIMES.findall(q)] or bool(re.match(r"^\(?\s*100\s*\*", q))
    scale = 0.01 if percent else 1.0
    # "100 - success%" is an error percentage, "1 - error ratio" a success ratio
    complement = re.match(r"^\(?\s*(100|1)(\.0*)?\s*-", q)
    if complement and complement.group(1) == "100":
        scale = 0.01
    if "/" in q or web:
        found = "success_rate" if _SUCCESS.search(q) else "error_rate" if _ERROR.search(q) else None
        if found and complement:
            found = "error_rate" if found == "success_rate" else "success_rate"
        if found:
            return Measures(found, scale)
    if (_RATE.search(q) and "/" not in q and "request" in low) or (
            web and re.search(r"rps|throughput|request_rate", low)):
        return Measures("request_rate", 1.0)
    return None


_NUMBER = r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_RESULT = r"(?:asFloat\s*)?result(?:\s*\[\s*\d+\s*\])?"
_CMP = re.compile(rf"^\s*{_RESULT}\s*(<=|>=|<|>|==)\s*{_NUMBER}\s*$")
_CMP_REVERSED = re.compile(rf"^\s*{_NUMBER}\s*(<=|>=|<|>|==)\s*{_RESULT}\s*$")
_GUARD = re.compile(r"isNaN|isInf|len\s*\(\s*result|result\s*==\s*nil|default\(", re.I)
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "=="}


def _comparison(term: str) -> tuple[str, float] | None:
    t = term.replace("(", " ").replace(")", " ").strip()
    m = _CMP.match(t)
    if m:
        return m.group(1), float(m.group(2))
    m = _CMP_REVERSED.match(t)
    if m:
        return _FLIP[m.group(2)], float(m.group(1))
    return None


def condition_bounds(condition: str, failure: bool = False) -> tuple[float | None, float | None] | None:
    """(min, max) of the results that pass, from an Argo success or failure condition.

    None when the condition is not a bound on ``result`` (guards against no data, such as
    ``isNaN(result)`` or ``len(result) == 0``, are left to the judge, which calls no data
    inconclusive).

    >>> condition_bounds("result[0] >= 0.95")
    (0.95, None)
    >>> condition_bounds("result < 0.01 && result >= 0")
    (0.0, 0.01)
    >>> condition_bounds("result[0] > 500", failure=True)
    (None, 500.0)
    >>> condition_bounds("isNaN(result) || result < 0.01")
    (None, 0.01)
    """
    text = re.sub(r"\bor\b", "||", re.sub(r"\band\b", "&&", condition.strip()))
    if not text:
        return None
    joins = set(re.findall(r"&&|\|\|", text))
    terms = [t for t in re.split(r"&&|\|\|", text) if t.strip()]
    comparisons = []
    for term in terms:
        if _GUARD.search(term):
            continue
        cmp = _comparison(term)
        if cmp is None:
            return None
        comparisons.append(cmp)
    if not comparisons:
        return None
    real_join = joins if len(comparisons) > 1 else set()
    # passing results meet every bound of a success condition (&&) and escape every bound of
    # a failure condition (||, by De Morgan); the other join is not one interval
    if ("&&" if failure else "||") in real_join:
        return None
    lo: float | None = None
    hi: float | None = None
    for op, value in comparisons:
        if op == "==":
            return None
        if (op in ("<", "<=")) != failure:  # passing results lie below the value
            hi = value if hi is None else min(hi, value)
        else:
            lo = value if lo is None else max(lo, value)
    return lo, hi


def read_bounds_as_percent(measures: Measures, lo: float | None, hi: float | None) -> Measures:
    """An error or success ratio whose bound is above 1 is a percentage: the query's result
    is read × 0.01, as a bound of 5 on an error rate means 5%, not 500%.

    >>> read_bounds_as_percent(Measures("error_rate"), None, 5.0).scale
    0.01
    >>> read_bounds_as_percent(Measures("error_rate"), None, 0.05).scale
    1.0
    """
    if measures.metric in ("error_rate", "success_rate") and measures.scale == 1.0 and any(
            b is not None and b > 1 for b in (lo, hi)):
        return Measures(measures.metric, 0.01, measures.note)
    return measures


def bounds_to_check(measures: Measures, lo: float | None, hi: float | None) -> Check:
    """A Check on the simulated metric for results that pass within [lo, hi]."""
    scale = measures.scale
    if measures.metric == "success_rate":
        err_lo, err_hi = error_rate_bounds(None if lo is None else lo * scale, None if hi is None else hi * scale)
        return Check("error_rate", max=None if err_hi is None else _clean(err_hi),
                     min=None if err_lo is None else _clean(err_lo))
    return Check(measures.metric, max=None if hi is None else _clean(hi * scale),
                 min=None if lo is None else _clean(lo * scale))


def _clean(x: float) -> float:
    return float(f"{x:.12g}")


def query_window(text: str) -> float | None:
    """The range a query looks back over (``rate(x[5m])`` -> 300 s), if it states one."""
    m = _RANGE.search(text)
    if m is None:
        return None
    return parse_duration(m.group(1))


def stand_in_for(metric: MetricDef, simulated: str | None = None) -> tuple[Check | None, str]:
    """The simulated check that stands in for a team metric in rehearsal, or None and why.

    ``simulated`` names the simulated metric outright (a scenario's ``metric:`` beside its
    query); otherwise the query says what it measures (:func:`classify_query`). Flagger's
    min/max and Argo's conditions (:func:`condition_bounds`) give the bounds.

    >>> from deploysim.analysis.metrics import MetricDef, MetricSource
    >>> q = 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'
    >>> stand_in_for(MetricDef("errors", MetricSource("prometheus", query=q), dialect="flagger", max=0.01))
    (Check(metric='error_rate', max=0.01, min=None, stands_for='errors'), '')
    >>> stand_in_for(MetricDef("ok", MetricSource("prometheus", query=q), success_condition="result[0] < 0.05"))[0].max
    0.05
    >>> stand_in_for(MetricDef("x", MetricSource("prometheus", query="up"), dialect="flagger", max=1))
    (None, 'its query measures nothing the simulator models (error rate, latency, request rate)')
    """
    if metric.dialect == "flagger":
        bounds: tuple[float | None, float | None] | None = (metric.min, metric.max)
    else:
        success, failure = metric.success_condition, metric.failure_condition
        bounds = condition_bounds(success) if success else None
        if bounds is None and failure:
            bounds = condition_bounds(failure, failure=True)
        if bounds is None:
            return None, f"its condition {success or failure!r} is not a bound on result"
    lo, hi = bounds
    if simulated is not None:
        measures: Measures | None = Measures(simulated)
    else:
        text = metric.source.query if metric.source.kind == "prometheus" else \
            f"{metric.source.url} {metric.source.json_path or ''} {metric.name}"
        measures = classify_query(str(text), web=metric.source.kind == "web")
    if measures is None:
        return None, "its query measures nothing the simulator models (error rate, latency, request rate)"
    measures = read_bounds_as_percent(measures, lo, hi)
    check = bounds_to_check(measures, lo, hi)
    return Check(check.metric, max=check.max, min=check.min, stands_for=metric.name), measures.note
