"""What a provider query measures, in the simulator's words, and the bounds it is judged by.

A Prometheus query is read from its whole expression (:mod:`deploysim.manifests.promql_reading`):
which outcome the numerator of a ratio selects (``code!~"5.."`` over all requests is a success
ratio, judged as ``1 - error_rate``), complements (``100 - x``), percentages (``* 100``) and the
unit of a latency (``..._seconds_bucket``, ``..._milliseconds_bucket``, ``* 1000``, ``/ 1000``);
what it cannot know it says, and the metric is not simulated. A web metric has no expression, so
its URL, JSON path and name are read for the words of a metric (:func:`read_query`). Conditions
such as ``result[0] >= 0.95`` become :class:`~deploysim.plan.Check` bounds
(:func:`condition_bounds`, :func:`bounds_to_check`).
"""

from __future__ import annotations

import re

from deploysim.analysis.metrics import MetricDef
from deploysim.durations import parse_duration
from deploysim.manifests.promql_reading import Measures, read_promql
from deploysim.plan import Check
from deploysim.rules.checks import error_rate_bounds

__all__ = ["Measures", "bounds_to_check", "classify_query", "condition_bounds", "query_window",
           "read_bounds_as_percent", "read_query", "stand_in_for"]

_WEB_SUCCESS = re.compile(r"success|2xx|\b2\.\.")
_WEB_ERROR = re.compile(r"5\.\.|5xx|error|fail")
_RANGE = re.compile(r"\[\s*(\d+[smhd])\s*\]")


def read_query(text: str, web: bool = False) -> tuple[Measures | None, str]:
    """What a provider query measures, or None and why not (naming the query).

    >>> read_query('sum(rate(response_total{classification!="failure"}[1m])) / sum(rate(response_total[1m]))')
    (Measures(metric='success_rate', scale=1.0, note=''), '')
    >>> read_query('https://status.example.com/api {$.latency_p99} latency', web=True)
    (Measures(metric='latency_p99', scale=1.0, note='unit not stated; read as milliseconds'), '')
    """
    return _read_web(text) if web else read_promql(text)


def classify_query(text: str, web: bool = False) -> Measures | None:
    """What a provider query measures, or None when it cannot be read as a simulated metric
    (:func:`read_query` says why).

    >>> classify_query('sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))')
    Measures(metric='error_rate', scale=1.0, note='')
    >>> classify_query('histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[1m])) by (le))').scale
    1000.0
    >>> classify_query('sum(rate(requests{code!~"5.."}[1m])) / sum(rate(requests[1m])) * 100')
    Measures(metric='success_rate', scale=0.01, note='')
    >>> classify_query('100 - sum(rate(requests{code!~"5.."}[1m])) / sum(rate(requests[1m])) * 100')
    Measures(metric='error_rate', scale=0.01, note='')
    """
    return read_query(text, web)[0]


def _read_web(text: str) -> tuple[Measures | None, str]:
    """A web metric by the words of its URL, JSON path and name (it has no expression to read):
    ``p99`` / ``latency`` / ``duration`` is the p99 latency (milliseconds unless the words say
    seconds), ``success`` / ``2xx`` a success ratio, ``5xx`` / ``error`` / ``fail`` an error
    ratio, ``rps`` / ``throughput`` a request rate."""
    low = " ".join(text.split()).lower()
    if re.search(r"p99|latency|duration", low):
        if "milli" in low or re.search(r"_ms(?:_|\b)", low):
            return Measures("latency_p99", 1.0), ""
        if "second" in low:
            return Measures("latency_p99", 1000.0), ""
        return Measures("latency_p99", 1.0, "unit not stated; read as milliseconds"), ""
    if _WEB_SUCCESS.search(low):
        return Measures("success_rate"), ""
    if _WEB_ERROR.search(low):
        return Measures("error_rate"), ""
    if re.search(r"rps|throughput|request_rate", low):
        return Measures("request_rate"), ""
    return None, f"its source {text.strip()!r} names no error rate, latency or request rate"


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
    is read × 0.01, as a bound of 5 on an error rate means 5%, not 500%. The note says so: a
    query that returns a share of 1 never reaches such a bound on a cluster.

    >>> read_bounds_as_percent(Measures("error_rate"), None, 5.0)
    Measures(metric='error_rate', scale=0.01, note='a bound of 5 is above 1: the result is read as a percentage (5%)')
    >>> read_bounds_as_percent(Measures("error_rate"), None, 0.05).scale
    1.0
    """
    if measures.metric in ("error_rate", "success_rate") and measures.scale == 1.0 and any(
            b is not None and b > 1 for b in (lo, hi)):
        bound = next(b for b in (lo, hi) if b is not None and b > 1)
        said = f"a bound of {bound:g} is above 1: the result is read as a percentage ({bound:g}%)"
        return Measures(measures.metric, 0.01, "; ".join(n for n in (measures.note, said) if n))
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
    query); otherwise the query says what it measures (:func:`read_query`), or why that cannot be
    known. Flagger's min/max and Argo's conditions (:func:`condition_bounds`) give the bounds.

    >>> from deploysim.analysis.metrics import MetricDef, MetricSource
    >>> q = 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'
    >>> stand_in_for(MetricDef("errors", MetricSource("prometheus", query=q), dialect="flagger", max=0.01))
    (Check(metric='error_rate', max=0.01, min=None, stands_for='errors'), '')
    >>> stand_in_for(MetricDef("ok", MetricSource("prometheus", query=q), success_condition="result[0] < 0.05"))[0].max
    0.05
    >>> stand_in_for(MetricDef("x", MetricSource("prometheus", query="up"), dialect="flagger", max=1))
    (None, 'its query up is the series up as it stands: not a rate, a ratio or a quantile')
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
        measures, why = read_query(str(text), web=metric.source.kind == "web")
        if measures is None:
            return None, why
    measures = read_bounds_as_percent(measures, lo, hi)
    check = bounds_to_check(measures, lo, hi)
    return Check(check.metric, max=check.max, min=check.min, stands_for=metric.name), measures.note
