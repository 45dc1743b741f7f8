"""What a PromQL query returns, read from its whole expression, in the simulator's words.

A query is parsed (``promql-parser``, the Python binding of GreptimeDB's PromQL parser: PromQL's
precedence and syntax are the parser's job, not a regex's) and folded bottom-up into what each
part returns:

* ``rate``/``irate``/``increase`` of a selector is a **count** of requests, and its label matchers
  say which outcome it counts: ``code!~"5.."``, ``response_code!="500"``,
  ``classification!="failure"``, ``status_code=~"2.."`` count successes; ``code=~"5.."``,
  ``classification="failure"``, ``grpc_code!="OK"`` count failed requests;
* a count over a count of all requests is a **share** ``a + b·e`` of the error share ``e``: an
  error ratio is ``0 + 1·e``, a success ratio ``1 - 1·e``; ``* 100`` and ``100 - x`` are arithmetic
  on ``a`` and ``b``, so ``100 - success%`` is ``0 + 100·e``, an error percentage;
* ``histogram_quantile(q, ...)`` of ``..._seconds_bucket`` is a **latency** in seconds, of
  ``..._milliseconds_bucket`` / ``..._ms_bucket`` in ms; ``* 1000`` and ``/ 1000`` move its unit.

:class:`Measures` ``scale`` turns the result into the simulated unit (``error_rate`` a share of 1,
``latency_p50/p95/p99`` ms, ``request_rate`` per second). What the expression cannot tell (a ratio
of two metrics with no outcome between them, a latency with no unit in its name, a mean,
arbitrary arithmetic) is said, with the query, instead of guessed.

The shapes are those Flagger sends (``fluxcd/flagger`` ``pkg/metrics/observers/*.go``,
``GetRequestSuccessRate`` / ``GetRequestDuration``; :mod:`deploysim.manifests.flagger_builtins`) and
Argo Rollouts' docs show (``docs/analysis/prometheus.md``: ``sum(irate(istio_requests_total{...,
response_code!~"5.*"}[5m])) / sum(irate(istio_requests_total{...}[5m]))`` with
``result[0] >= 0.95``).

>>> read_promql('sum(rate(response_total{classification!="failure"}[1m])) / sum(rate(response_total[1m])) * 100')
(Measures(metric='success_rate', scale=0.01, note=''), '')
>>> read_promql('histogram_quantile(0.99, sum(rate(request_duration_milliseconds_bucket[1m])) by (le)) / 1000')
(Measures(metric='latency_p99', scale=1000.0, note=''), '')
>>> read_promql('sum(rate(a_total[1m])) / sum(rate(b_total[1m]))')[1]
'its query sum(rate(a_total[1m])) / sum(rate(b_total[1m])) divides a_total by b_total: neither selects an outcome (a status code or an error label), so what the ratio measures cannot be known'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import promql_parser as pp

__all__ = ["Measures", "read_promql"]


@dataclass(frozen=True)
class Measures:
    """What a query measures in the simulator's words: ``metric`` is a simulated metric, or
    ``success_rate`` (judged as 1 - error_rate); ``scale`` turns the query's result into the
    simulated metric's unit (a percentage × 0.01, seconds × 1000); ``note`` says what was assumed."""

    metric: str
    scale: float = 1.0
    note: str = ""


# --- what each part of an expression returns: a reason it cannot be read, a number, a count,
# a share of failed requests, a latency


@dataclass(frozen=True)
class _Unknown:
    why: str


@dataclass(frozen=True)
class _Number:
    value: float


@dataclass(frozen=True)
class _Outcome:
    kind: str  # which requests a selector counts: all, error, success or none
    said: str = ""  # the outcome matchers as written, e.g. code!~"5.."
    note: str = ""
    left_out: str = ""  # values of neither class that an "all" selector leaves out (404)


@dataclass(frozen=True)
class _Count:
    """A count of ``name``: ``factor`` × requests per second (``known`` False when ``factor`` holds
    an ``increase()`` range written as a placeholder)."""

    name: str
    outcome: _Outcome
    factor: float = 1.0
    known: bool = True


@dataclass(frozen=True)
class _Share:
    a: float  # a + b × e, for the share e of failed requests
    b: float
    note: str = ""


@dataclass(frozen=True)
class _Latency:
    metric: str
    to_ms: float  # milliseconds = result × to_ms


_Value = _Unknown | _Number | _Count | _Share | _Latency
_QUANTILES = {0.5: "latency_p50", 0.95: "latency_p95", 0.99: "latency_p99"}
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.S)
_PLACEHOLDER_RANGE, _PLACEHOLDER_SECONDS = "59s999ms", 59.999  # a range written as a placeholder
_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}

# --- outcome labels and the values they take --------------------------------------------------


@dataclass(frozen=True)
class _Values:
    """The values an outcome label takes, each ``ok``, ``fail`` or ``other`` (a client error:
    neither, as the simulator has no 4xx). With ``words`` a pattern picks a class when it
    matches one of the class's words in any case (``status="failed"``)."""

    classes: dict[str, str]
    words: dict[str, tuple[str, ...]] | None = None

    @property
    def failures(self) -> set[str]:
        return {v for v, c in self.classes.items() if c == "fail"}


def _http(values: str) -> _Values:
    return _Values({v: {"2": "ok", "3": "ok", "5": "fail"}.get(v[0], "other") for v in values.split()})


_HTTP_CODES = _http("100 101 200 201 202 204 206 301 302 304 307 308 400 401 403 404 405 408 409 410 413 422 "
                    "429 499 500 501 502 503 504 505")
_GRPC_NAMES = ("OK Canceled Unknown InvalidArgument DeadlineExceeded NotFound AlreadyExists PermissionDenied "
               "ResourceExhausted FailedPrecondition Aborted OutOfRange Unimplemented Internal Unavailable "
               "DataLoss Unauthenticated").split()
_GRPC_FAIL = {"Unknown", "DeadlineExceeded", "Unimplemented", "Internal", "Unavailable", "DataLoss"}


def _grpc(names: bool) -> _Values:
    return _Values({(n if names else str(i)): "ok" if n == "OK" else "fail" if n in _GRPC_FAIL else "other"
                    for i, n in enumerate(_GRPC_NAMES)})


_WORDS = _Values({"ok": "ok", "fail": "fail"}, {
    "ok": ("success", "succeeded", "successful", "ok", "passed"),
    "fail": ("failure", "failed", "fail", "error", "errored", "errors")})
_LABELS: tuple[tuple[re.Pattern[str], tuple[_Values, ...]], ...] = (
    (re.compile(r"^(?:rpc_)?grpc_(?:response_)?(?:code|status|status_code)$"), (_grpc(True), _grpc(False))),
    (re.compile(r"^classification$"), (_Values({"success": "ok", "failure": "fail"}),)),  # Linkerd
    (re.compile(r"^outcome$"), (_Values({"SUCCESS": "ok", "REDIRECTION": "ok", "INFORMATIONAL": "other",
                                         "CLIENT_ERROR": "other", "SERVER_ERROR": "fail",
                                         "UNKNOWN": "other"}),)),  # Micrometer's http_server_requests
    (re.compile(r"^(?:error|failed|failure|fault)$"), (_Values({"true": "fail", "false": "ok"}),)),
    (re.compile(r"^(?:success|succeeded)$"), (_Values({"true": "ok", "false": "fail"}),)),
    (re.compile(r"^(?:(?:http|envoy)_)?(?:response_)?(?:code|status|status_code|result)(?:_class)?$"),
     (_HTTP_CODES, _http("1xx 2xx 3xx 4xx 5xx"), _http("1 2 3 4 5"), _WORDS)),  # status="5xx", ..._class="5"
)


def _matched(values: _Values, pattern: str) -> set[str]:
    if values.words is not None:
        return {c for c, ws in values.words.items() if any(re.fullmatch(pattern, w, re.I) for w in ws)}
    return {v for v in values.classes if re.fullmatch(pattern, v)}


def _said(m: pp.Matcher) -> str:
    return f'{m.name}{_OPS.get(str(m.op), str(m.op))}"{m.value}"'


def _matcher_outcome(m: pp.Matcher) -> _Outcome | _Unknown | None:
    """Which requests one matcher keeps; None when it says nothing of outcomes."""
    universes = next((u for label, u in _LABELS if label.search(m.name)), None)
    if universes is None or m.value == "":
        return None  # code!="" keeps every request that has a code
    said = _said(m)
    if "__placeholder_" in m.value:
        return _Unknown(f"selects {said}, filled in only when the analysis runs")
    negated = str(m.op) in ("MatchOp.NotEqual", "MatchOp.NotRe")
    pattern = m.value if str(m.op) in ("MatchOp.Re", "MatchOp.NotRe") else re.escape(m.value)
    try:
        found = [(u, p) for u in universes if (p := _matched(u, pattern))]
    except re.error:
        return _Unknown(f"{said} is not a regular expression the reader can run")
    if not found:
        return _Unknown(f"{said} selects values the reader cannot place as successes or failures")
    values, matched = found[0]
    if matched == set(values.classes):
        return None  # code=~".*": every request
    chosen = set(values.classes) - matched if negated else matched
    ok = {v for v in chosen if values.classes[v] == "ok"}
    fail = chosen & values.failures
    whole = values.failures <= chosen
    if ok and not fail:
        return _Outcome("success", said)
    if fail and not ok:
        return _Outcome("error", said, "" if whole else f"{said} counts only some failed requests; "
                        "read as counting every one")
    if ok and not whole:
        return _Outcome("success", said, f"{said} counts some failed requests as successes; read as "
                        "counting successes only")
    if ok:
        left = sorted(v for v, c in values.classes.items() if c == "other" and v not in chosen)
        return _Outcome("all", said, left_out=", ".join(left[:4]) + (", ..." if len(left) > 4 else ""))
    return _Outcome("none", said)


def _outcome(selector: pp.VectorSelector) -> _Outcome | _Unknown:
    """Which requests a selector counts: its outcome matchers all hold at once."""
    kinds = []
    for m in selector.matchers.matchers:
        one = _matcher_outcome(m)
        if isinstance(one, _Unknown):
            return one
        if one is not None:
            kinds.append(one)
    said = ", ".join(k.said for k in kinds)
    found = {k.kind for k in kinds} - {"all"}
    if "none" in found or len(found) > 1:
        return _Outcome("none", said)
    if not found:
        return _Outcome("all", said, left_out=", ".join(k.left_out for k in kinds if k.left_out))
    kind = found.pop()
    return _Outcome(kind, said, "; ".join(k.note for k in kinds if k.note and k.kind == kind))


# --- units of latency metrics -----------------------------------------------------------------

_UNITS = ((re.compile(r"(?:^|_)(?:seconds?|secs?)(?:_|$)"), 1000.0),
          (re.compile(r"(?:^|_)(?:milliseconds?|millis|ms)(?:_|$)"), 1.0),
          (re.compile(r"(?:^|_)(?:microseconds?|micros|us)(?:_|$)"), 0.001))
# histograms whose unit is in their documentation, not their name
_KNOWN_UNITS = {
    "envoy_cluster_upstream_rq_time": 1.0,  # Envoy cluster statistics: "Request time milliseconds"
    "apisix_http_latency": 1.0,  # APISIX prometheus plugin: request latency in milliseconds
}


def _to_ms(name: str) -> float | None:
    """× what turns a latency metric's value into milliseconds, from its name.

    >>> _to_ms("http_request_duration_seconds_bucket"), _to_ms("response_latency_ms_bucket"), _to_ms("x_bucket")
    (1000.0, 1.0, None)
    """
    base = re.sub(r"_(?:bucket|sum|count)$", "", name.lower())
    if base in _KNOWN_UNITS:
        return _KNOWN_UNITS[base]
    return next((factor for unit, factor in _UNITS if unit.search(base)), None)


# --- the expression, folded -------------------------------------------------------------------


def _scale(v: _Value, k: float) -> _Value:
    """``v × k``."""
    if k == 0 and not isinstance(v, _Number | _Unknown):
        return _Unknown("multiplies by zero")
    if isinstance(v, _Number):
        return _Number(v.value * k)
    if isinstance(v, _Share):
        return _Share(v.a * k, v.b * k, v.note)
    if isinstance(v, _Latency):
        return replace(v, to_ms=v.to_ms / k)
    if isinstance(v, _Count):
        return replace(v, factor=v.factor * k)
    return v


def _offset(v: _Value, k: float) -> _Value:
    """``v + k``."""
    if isinstance(v, _Number):
        return _Number(v.value + k)
    if isinstance(v, _Share):
        return _Share(v.a + k, v.b, v.note)
    return v if isinstance(v, _Unknown) else _Unknown(f"adds a constant to {_kind(v)}")


def _kind(v: _Value) -> str:
    return {_Count: "a count", _Share: "a share of requests", _Latency: "a latency"}.get(type(v), "a number")


def _ratio(n: _Count, d: _Count) -> _Value:
    """``n / d``: the share of failed (or successful) requests when ``n`` selects an outcome of
    what ``d`` counts in all."""
    sums = re.fullmatch(r"(.+)_sum", n.name)
    if sums and d.name == f"{sums.group(1)}_count":
        return _Unknown(f"divides {n.name} by {d.name}: a mean; the simulator models latency p50, p95 and "
                        "p99, not the mean")
    if not (n.known and d.known) and n.factor != d.factor:
        return _Unknown(f"divides {n.name} by {d.name} over ranges not known until the analysis runs")
    k = n.factor / d.factor
    if d.outcome.kind != "all":
        return _Unknown(f"divides by {d.name}{{{d.outcome.said}}}, only some of the requests")
    out = n.outcome
    if out.kind == "error":
        return _Share(0.0, k, out.note)
    if out.kind == "success":
        return _Share(k, -k, out.note)
    if out.kind == "none":
        return _Unknown(f"counts {out.said}: neither failed nor successful requests")
    if out.said and out.left_out:
        return _Unknown(f"counts {out.said}, leaving out only {out.left_out}: client errors, which the simulator "
                        "does not model, not failed requests")
    if out.said:
        return _Unknown(f"counts {out.said}: successes and failures alike")
    if n.name != d.name:
        if _FAIL_NAME.search(n.name) and not _OK_NAME.search(n.name):
            return _Share(0.0, k)
        if _OK_NAME.search(n.name) and not _FAIL_NAME.search(n.name):
            return _Share(k, -k)
        return _Unknown(f"divides {n.name} by {d.name}: neither selects an outcome (a status code or an error "
                        "label), so what the ratio measures cannot be known")
    return _Unknown(f"divides {n.name} by itself with no outcome between them: a share of traffic, not of "
                    "failed requests")


_FAIL_NAME = re.compile(r"(?:^|[_:])(?:errors?|errored|fail(?:ed|ures?|s)?|5xx)(?:[_:]|$)")
_OK_NAME = re.compile(r"(?:^|[_:])(?:success(?:es|ful)?|succeeded|ok|2xx)(?:[_:]|$)")
_REQUESTS = re.compile(r"request|response|(?:^|_)rq(?:_|$)|handled|started|calls")
_COMPARISONS = ("==", "!=", ">", "<", ">=", "<=", "and", "unless")


def _binary(node: pp.BinaryExpr) -> _Value:
    op = str(node.op)
    if op in _COMPARISONS:
        return _Unknown(f"filters with {op!r}: the reader judges values, not which series survive")
    lhs, rhs = _read(node.lhs), _read(node.rhs)
    if op == "or":  # x or vector(0): x, with a default when it has no series
        return lhs if isinstance(rhs, _Number) else _Unknown("joins two series with 'or'")
    for v in (lhs, rhs):
        if isinstance(v, _Unknown):
            return v
    if isinstance(lhs, _Number) and isinstance(rhs, _Number):
        try:
            folded = {"+": lhs.value + rhs.value, "-": lhs.value - rhs.value, "*": lhs.value * rhs.value,
                      "/": lhs.value / rhs.value}
        except ZeroDivisionError:
            return _Unknown("divides by zero")
        return _Number(folded[op]) if op in folded else _Unknown(f"takes {op!r} of two numbers")
    if op == "*" and isinstance(rhs, _Number):
        return _scale(lhs, rhs.value)
    if op == "*" and isinstance(lhs, _Number):
        return _scale(rhs, lhs.value)
    if op == "/" and isinstance(rhs, _Number):
        return _scale(lhs, 1 / rhs.value) if rhs.value else _Unknown("divides by zero")
    if op == "/" and isinstance(lhs, _Count) and isinstance(rhs, _Count):
        return _ratio(lhs, rhs)
    if op in ("+", "-") and isinstance(rhs, _Number):
        return _offset(lhs, rhs.value if op == "+" else -rhs.value)
    if op in ("+", "-") and isinstance(lhs, _Number):
        return _offset(_scale(rhs, 1.0 if op == "+" else -1.0), lhs.value)
    if op == "-" and isinstance(lhs, _Share) and isinstance(rhs, _Share):
        return _Unknown("subtracts one share of requests from another (one version's from another's?); the "
                        "simulator judges the candidate's own")
    return _Unknown(f"takes {_kind(lhs)} {op} {_kind(rhs)}: arithmetic whose result the reader cannot place")


def _call(node: pp.Call) -> _Value:
    name = node.func.name
    args = list(node.args)
    if name in ("rate", "irate", "increase"):
        matrix = args[0]
        if not isinstance(matrix, pp.MatrixSelector):
            return _Unknown(f"takes {name}() of a subquery")
        selector = matrix.vector_selector
        outcome = _outcome(selector)
        if isinstance(outcome, _Unknown):
            return outcome
        seconds = matrix.range.total_seconds() if name == "increase" else 1.0
        return _Count(selector.name or "", outcome, seconds, abs(seconds - _PLACEHOLDER_SECONDS) > 1e-9)
    if name == "histogram_quantile":
        q = _read(args[0])
        inner = _read(args[1])
        if isinstance(inner, _Unknown):
            return inner
        if not isinstance(q, _Number):
            return _Unknown("asks for a quantile known only when the analysis runs")
        if not isinstance(inner, _Count):
            return _Unknown("takes histogram_quantile() of something that is not a histogram's rate")
        return _latency(q.value, inner.name)
    if name in ("vector", "scalar"):
        return _read(args[0])
    return _Unknown(f"calls {name}(), which the reader does not follow")


def _latency(q: float, name: str) -> _Value:
    metric = _QUANTILES.get(round(q, 4))
    if metric is None:
        return _Unknown(f"asks for the {q:g} quantile; the simulator models 0.5, 0.95 and 0.99")
    to_ms = _to_ms(name)
    if to_ms is None:
        return _Unknown(f"reads {name}, whose unit is not in its name (..._seconds_bucket, "
                        "..._milliseconds_bucket or ..._ms_bucket), so a bound on it cannot be judged")
    return _Latency(metric, to_ms)


def _instant(node: pp.VectorSelector) -> _Value:
    name = node.name or ""
    quantile = next((m for m in node.matchers.matchers if m.name == "quantile" and str(m.op) == "MatchOp.Equal"),
                    None)
    if quantile is not None:  # a summary's quantile series
        try:
            return _latency(float(quantile.value), name)
        except ValueError:
            return _Unknown(f"reads {_said(quantile)}, not a number")
    if ":" in name and "rate" in name.rsplit(":", 1)[-1]:  # a recording rule of a rate
        outcome = _outcome(node)
        return outcome if isinstance(outcome, _Unknown) else _Count(name, outcome)
    return _Unknown(f"is the series {name or '{...}'} as it stands: not a rate, a ratio or a quantile")


def _aggregate(node: pp.AggregateExpr) -> _Value:
    op = str(node.op)
    inner = _read(node.expr)
    if isinstance(inner, _Unknown):
        return inner
    if op == "sum" or (op in ("avg", "max", "min") and not isinstance(inner, _Count)):
        return inner
    return _Unknown(f"takes {op}() of {_kind(inner)}")


def _read(node: pp.Expr) -> _Value:
    if isinstance(node, pp.NumberLiteral):
        return _Number(float(node.val))
    if isinstance(node, pp.ParenExpr):
        return _read(node.expr)
    if isinstance(node, pp.UnaryExpr):
        return _scale(_read(node.expr), -1.0)
    if isinstance(node, pp.VectorSelector):
        return _instant(node)
    if isinstance(node, pp.Call):
        return _call(node)
    if isinstance(node, pp.AggregateExpr):
        return _aggregate(node)
    return _binary(node) if isinstance(node, pp.BinaryExpr) else _Unknown(
        f"holds a {type(node).__name__}, which the reader does not follow")


def _measures(v: _Value) -> Measures | str:
    """The simulated metric a folded query stands for, or why none does."""
    if isinstance(v, _Share):
        if v.a == 0 and v.b > 0:
            return Measures("error_rate", 1 / v.b, v.note)
        if v.a > 0 and abs(v.a + v.b) <= 1e-12 * v.a:
            return Measures("success_rate", 1 / v.a, v.note)
        return f"returns {v.a + 0:g} + {v.b:g} × the share of failed requests: neither an error nor a success ratio"
    if isinstance(v, _Latency):
        return Measures(v.metric, v.to_ms) if v.to_ms > 0 else "returns a negative latency"
    if isinstance(v, _Count):
        if v.outcome.kind != "all" or v.outcome.said:
            return f"counts {v.outcome.said} per second: an absolute rate, not a share of requests"
        if not _REQUESTS.search(v.name):
            return f"counts {v.name}, not requests"
        if not v.known or v.factor <= 0:
            return f"counts {v.name} over a range known only when the analysis runs"
        return Measures("request_rate", 1 / v.factor)
    if isinstance(v, _Number):
        return f"is the constant {v.value:g}"
    return v.why if isinstance(v, _Unknown) else "returns nothing the simulator models"


def _fill(query: str) -> tuple[str, dict[str, str]]:
    """The query with each ``{{...}}`` placeholder as a name PromQL parses (a range: 59.999 s)."""
    found: dict[str, str] = {}

    def name(m: re.Match[str]) -> str:
        key = f"__placeholder_{len(found)}__"
        found[key] = m.group(0)
        return key

    filled = _PLACEHOLDER.sub(name, query)
    filled = re.sub(r"([\[:])\s*__placeholder_\d+__\s*(?=[:\]])", rf"\g<1>{_PLACEHOLDER_RANGE}", filled)
    return filled, found


def _shown(query: str, limit: int = 120) -> str:
    return q if len(q := " ".join(query.split())) <= limit else q[: limit - 3] + "..."


def read_promql(query: str) -> tuple[Measures | None, str]:
    """What a PromQL query returns in the simulator's words, or None and why (naming the query).

    >>> read_promql('100 - sum(rate(x{code!~"5.."}[1m])) / sum(rate(x[1m])) * 100')[0]
    Measures(metric='error_rate', scale=0.01, note='')
    >>> read_promql('histogram_quantile(0.99, sum(rate(d_seconds_bucket[1m])) by (le)) * 1000')[0].scale
    1.0
    >>> read_promql('sum(rate(x{code="404"}[1m])) / sum(rate(x[1m]))')[1]
    'its query sum(rate(x{code="404"}[1m])) / sum(rate(x[1m])) counts code="404": neither failed nor successful requests'
    """
    filled, placeholders = _fill(query)
    try:
        tree = pp.parse(filled)
    except ValueError as exc:
        unfilled = f"; {', '.join(placeholders.values())} filled in only when it runs" if placeholders else ""
        return None, f"its query {_shown(query)} is not PromQL the reader can parse ({exc}{unfilled})"
    found = _measures(_read(tree))
    if isinstance(found, Measures):
        return found, ""
    for key, text in placeholders.items():
        found = found.replace(key, text)
    return None, f"its query {_shown(query)} {found}"
