"""How Argo Rollouts and Flagger turn a metrics source's answer into a measurement's verdict.

Pure functions, no I/O: a provider fetches the answer, these judge it exactly as the
controllers do. Argo Rollouts:

- :func:`argo_phase`: ``utils/evaluate/evaluate.go`` ``EvaluateResult`` over ``EvalCondition``;
- :func:`argo_prometheus_result`: ``metricproviders/prometheus/prometheus.go`` ``processResponse``;
- :func:`argo_web_result`: ``metricproviders/webmetric/webmetric.go`` ``parseResponse`` and
  ``getValue`` (the body's JSON, the Kubernetes JSONPath, the first value found);
- :func:`argo_prometheus_measurement`, :func:`argo_web_measurement`: a provider's whole ``Run``
  after the HTTP call, as a :class:`MetricVerdict`.

Flagger:

- :func:`flagger_prometheus_value`: ``pkg/metrics/providers/prometheus.go`` ``RunQuery``;
- :func:`flagger_phase`: the ``thresholdRange`` check of ``pkg/controller/scheduler_metrics.go``
  ``runMetricChecks``; :func:`flagger_prometheus_check` both together.

>>> argo_prometheus_measurement(
...     {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000, "0.052"]}]},
...     "result[0] <= 0.01", None)
MetricVerdict(phase='Failed', value='[0.052]', message='result [0.052] fails successCondition result[0] <= 0.01', number=0.052)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploysim.analysis.expr import ExprError, evaluate_condition
from deploysim.analysis.govalues import go_format_float, go_sprint, go_type, kind, parse_go_float
from deploysim.errors import MetricsError

# Argo Rollouts' AnalysisPhase words (the same as deploysim.analysis.judges')
SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = "Successful", "Failed", "Inconclusive", "Error"


class ResultError(MetricsError):
    """A metrics source's answer cannot be judged: names the field, what it held and why."""


class NoValuesFound(ResultError):
    """Flagger's ``ErrNoValuesFound``: the query gave no sample, or its value is NaN."""


class NotJSONBody(ResultError):
    """A web metric's body is not JSON. Not an error for Argo: ``parseResponse`` records the body
    as the value and marks the measurement Successful without evaluating any condition."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__("the body is not JSON")


@dataclass(frozen=True)
class MetricVerdict:
    """One measurement as its controller records it: the phase, the value string (Argo's
    ``[0.052]``, ``"ok"``, ``0.5``), why, and the first number of the value (for tables and plots)."""

    phase: str
    value: str
    message: str
    number: float | None = None


# ---------------------------------------------------------------- Argo Rollouts

def argo_phase(result: Any, success_condition: str | None = None, failure_condition: str | None = None,
               *, value: str | None = None) -> tuple[str, str]:
    """Argo's ``EvaluateResult``: the phase of one measurement whose ``result`` is handed to the
    conditions, and a message naming the value (``value``, or ``result`` shown as Argo would) and
    the condition that decided.

    The success condition is evaluated first, then the failure condition; an error in either is
    Error at once. No condition: Successful. Only a success condition: Failed when it is false.
    Only a failure condition: Successful when it is false. Both: Failed when the failure condition
    holds, else Successful when the success condition holds, else Inconclusive.

    >>> argo_phase([0.005], "result[0] <= 0.01")
    ('Successful', 'result [0.005] meets successCondition result[0] <= 0.01')
    >>> argo_phase([0.03], "result[0] <= 0.01", "result[0] > 0.05")[0]
    'Inconclusive'
    >>> argo_phase([], "result[0] <= 0.01")
    ('Error', 'successCondition result[0] <= 0.01 could not be evaluated on result []: index out of range: 0 (array length is 0)')
    """
    shown = _shown(result) if value is None else value
    outcomes: dict[str, bool] = {}
    for name, condition in (("successCondition", success_condition), ("failureCondition", failure_condition)):
        if condition:
            try:
                outcomes[name] = evaluate_condition(condition, {"result": result})
            except ExprError as exc:
                return ERROR, f"{name} {condition} could not be evaluated on result {shown}: {exc}"
    if not outcomes:
        return SUCCESSFUL, f"result {shown}: no successCondition or failureCondition, so every measurement passes"
    success, failure = outcomes.get("successCondition"), outcomes.get("failureCondition")
    if failure:
        return FAILED, f"result {shown} meets failureCondition {failure_condition}"
    if success is None:
        return SUCCESSFUL, f"result {shown} does not meet failureCondition {failure_condition}"
    if success:
        return SUCCESSFUL, f"result {shown} meets successCondition {success_condition}"
    if failure is None:
        return FAILED, f"result {shown} fails successCondition {success_condition}"
    return INCONCLUSIVE, (f"result {shown} meets neither successCondition {success_condition} "
                          f"nor failureCondition {failure_condition}")


def argo_prometheus_result(data: Any) -> tuple[Any, str]:
    """What Argo's Prometheus provider (``processResponse``) makes of the ``data`` object of a
    Prometheus query answer: the ``result`` the conditions see and the measurement's value.

    A vector is a list of floats, its value ``[v1,v2]`` (each ``SampleValue.String()``, Go's
    shortest ``'f'`` format); a scalar is a float and its value. An empty vector is ``[]``: a
    condition indexing ``result[0]`` is then an Error, while ``len(result) == 0 || ...`` can pass.
    NaN and ±Inf samples are passed through, so ``isNaN(result[0])`` works and any comparison with
    NaN is false. Matrix and string results are not supported (Argo: "Prometheus metric type not
    supported"), nor a native-histogram sample (Argo's client would read its value as 0).

    >>> argo_prometheus_result({"resultType": "vector", "result": [
    ...     {"metric": {"pod": "a"}, "value": [1700000000, "0.99"]}, {"metric": {}, "value": [1700000000, "NaN"]}]})
    ([0.99, nan], '[0.99,NaN]')
    >>> argo_prometheus_result({"resultType": "scalar", "result": [1700000000, "10"]})
    (10.0, '10')
    >>> argo_prometheus_result({"resultType": "vector", "result": []})
    ([], '[]')
    """
    if not isinstance(data, Mapping):
        raise ResultError(f"data: got {go_type(data)}; expected the object holding resultType and result")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        number = _sample_value(result, "data.result")
        return number, go_format_float(number)
    if result_type != "vector":
        raise ResultError(f"Prometheus metric type not supported: data.resultType is {result_type!r}; Argo's "
                          "Prometheus provider judges vector and scalar results only")
    if not isinstance(result, list):
        raise ResultError(f"data.result: got {go_type(result)}; a vector's result is a list of samples")
    values: list[float] = []
    for i, sample in enumerate(result):
        if sample is None:  # Argo skips nil samples
            continue
        if not isinstance(sample, Mapping) or "value" not in sample:
            what = "a native histogram sample, whose value Argo's client reads as 0" if isinstance(
                sample, Mapping) and "histogram" in sample else "a sample without a value"
            raise ResultError(f"data.result[{i}]: {what}; not judged")
        values.append(_sample_value(sample["value"], f"data.result[{i}].value"))
    return values, "[" + ",".join(go_format_float(v) for v in values) + "]"


def argo_web_result(body: bytes | str, json_path: str | None = None) -> tuple[Any, str]:
    """What Argo's web provider (``parseResponse``, ``getValue``) makes of a response body: the
    ``result`` the conditions see and the measurement's value.

    The body is read as Go's ``encoding/json`` reads it into ``interface{}`` (every number a float64,
    NaN and out-of-range numbers refused). ``json_path`` is Kubernetes JSONPath (default ``{$}``,
    the whole body), of which this supports one ``{...}`` with ``$.a.b``, ``.a.b``, ``['a.b']``,
    ``[0]``, ``[-1]`` and ``[*]``; the result is the first value found, unconverted (a number, bool,
    string, list, map or nil) and the value is its Go JSON (``"ok"`` keeps its quotes, map keys
    sorted). A missing field is an error (``x is not found``), as is an index out of range or a
    path that finds nothing; a body that is not JSON raises :class:`NotJSONBody`.

    >>> argo_web_result(b'{"data": {"ok": true, "rate": 0.02}}', "{$.data.rate}")
    (0.02, '0.02')
    >>> argo_web_result('{"key": [{"key2": {"value": "1"}}]}', "{$.key[0].key2.value}")
    ('1', '"1"')
    >>> argo_web_result('{"a": 1, "b": [1, 2]}')
    ({'a': 1.0, 'b': [1.0, 2.0]}, '{"a":1,"b":[1,2]}')
    """
    steps = _json_path_steps(json_path)  # Argo parses the path when it builds the provider
    document = _load_json(body)
    found = [document]
    for step, arg in steps:
        found = _json_path_step(found, step, arg)
    if not found:
        raise ResultError("result of web metric produced no value")
    return found[0], go_json(found[0])


def argo_prometheus_measurement(data: Any, success_condition: str | None = None,
                                failure_condition: str | None = None) -> MetricVerdict:
    """Argo's Prometheus provider ``Run`` once the query has answered ``data``: an answer it cannot
    read is an Error with an empty value (``MarkMeasurementError``)."""
    try:
        result, value = argo_prometheus_result(data)
    except ResultError as exc:
        return MetricVerdict(ERROR, "", str(exc))
    phase, message = argo_phase(result, success_condition, failure_condition, value=value)
    number = result if isinstance(result, float) else result[0] if result else None
    return MetricVerdict(phase, value, message, number)


def argo_web_measurement(body: bytes | str, json_path: str | None = None, success_condition: str | None = None,
                         failure_condition: str | None = None) -> MetricVerdict:
    """Argo's web provider ``Run`` once a 2xx response has answered ``body``. A body that is not
    JSON is Successful with the body as its value and no condition evaluated, as in Argo."""
    try:
        result, value = argo_web_result(body, json_path)
    except NotJSONBody as exc:
        return MetricVerdict(SUCCESSFUL, exc.text, "the body is not JSON: Argo's web provider records it as the "
                             "value and evaluates no condition")
    except ResultError as exc:
        return MetricVerdict(ERROR, "", str(exc))
    phase, message = argo_phase(result, success_condition, failure_condition, value=value)
    number = float(result) if kind(result) in ("int", "float") else None
    return MetricVerdict(phase, value, message, number)


def go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of a decoded JSON value: compact, map keys sorted, ``<>&`` escaped,
    floats in ``'f'`` form except below 1e-6 or from 1e21 on (``1e-7``, ``1e+21``).

    >>> go_json({"b": [1.0, 1e-7, "<ok>"], "a": None})
    '{"a":null,"b":[1,1e-7,"\\\\u003cok\\\\u003e"]}'
    """
    k = kind(value)
    if k in ("nil", "bool", "int"):
        return "null" if value is None else str(value).lower() if k == "bool" else str(int(value))
    if k == "float":
        if math.isnan(value) or math.isinf(value):
            raise ResultError(f"json: unsupported value: {go_format_float(value)}")
        if value != 0 and not 1e-6 <= abs(value) < 1e21:
            return re.sub(r"e-0(\d)$", r"e-\1", go_format_float(value, "e"))
        return go_format_float(value)
    if k == "string":
        out = json.dumps(value, ensure_ascii=False)
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                              ("\u2029", "\\u2029")):
            out = out.replace(char, escaped)
        return out
    if k == "array":
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if k == "map":
        return "{" + ",".join(f"{go_json(str(key))}:{go_json(value[key])}" for key in sorted(value)) + "}"
    raise ResultError(f"json: unsupported type: {go_type(value)}")


def _shown(result: Any) -> str:
    """A result as Argo would show it: a list of numbers as the Prometheus provider does, a number
    in Go's shortest form, anything else as its Go JSON."""
    if kind(result) == "array" and all(kind(v) in ("int", "float") for v in result):
        return "[" + ",".join(go_format_float(float(v)) for v in result) + "]"
    if kind(result) in ("int", "float"):
        return go_format_float(float(result))
    try:
        return go_json(result)
    except ResultError:
        return go_sprint(result)


def _sample_value(pair: Any, path: str) -> float:
    """A Prometheus ``[timestamp, "value"]`` pair's value, parsed as client_golang does."""
    if not (isinstance(pair, list) and len(pair) == 2 and kind(pair[0]) in ("int", "float")
            and isinstance(pair[1], str)):
        raise ResultError(f'{path}: got {pair!r}; expected [timestamp, "number"]')
    try:
        return parse_go_float(pair[1])
    except ValueError as exc:
        raise ResultError(f"{path}: {exc}") from None


def _go_number(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # Go: cannot unmarshal number 1e400 into Go value of type float64
        raise ValueError(f"number {text} is out of range of float64")
    return value


def _refuse(name: str) -> None:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _load_json(body: bytes | str) -> Any:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes | bytearray) else str(body)
    try:
        return json.loads(text, parse_int=_go_number, parse_float=_go_number, parse_constant=_refuse)
    except (ValueError, RecursionError):
        raise NotJSONBody(text) from None


_JSON_PATH_STEP = re.compile(r"""\.(?P<field>(?:\\.|[^.\[\]\\])+)|\[(?P<index>-?\d+)\]|\[(?P<star>\*)\]
    |\[(?P<quote>['"])(?P<quoted>.*?)(?P=quote)\]""", re.X)


def _json_path_steps(json_path: str | None) -> list[tuple[str, Any]]:
    """Kubernetes JSONPath ``{$.a[0].b}`` as (field|index|star, argument) steps. A small subset is
    kept here because a JSONPath library (jsonpath-ng) reads another dialect: no braces, no "is not
    found" errors, and it returns every match where Argo takes the first."""
    text = (json_path or "").strip() or "{$}"  # Argo's NewWebMetricJsonParser defaults to {$}
    if not (m := re.fullmatch(r"\{\s*(.*?)\s*\}", text, re.S)):
        raise ResultError(f"jsonPath {json_path!r}: write one {{...}} expression such as {{$.data.value}}; "
                          "Kubernetes JSONPath reads text outside braces literally")
    inner, steps, pos = m.group(1).removeprefix("$"), [], 0
    while pos < len(inner):
        if not (step := _JSON_PATH_STEP.match(inner, pos)):
            raise ResultError(f"jsonPath {json_path!r}: {inner[pos:]!r} is not supported here; supported are "
                              "$.a.b, .a.b, $['a.b'], $.a[0], $.a[-1] and $.a[*].b")
        if step.group("field") is not None:
            steps.append(("field", step.group("field").replace("\\.", ".")))
        elif step.group("index") is not None:
            steps.append(("index", int(step.group("index"))))
        else:
            steps.append(("star", None) if step.group("star") else ("field", step.group("quoted")))
        pos = step.end()
    return steps


def _json_path_step(values: list[Any], step: str, arg: Any) -> list[Any]:
    """One step of k8s.io/client-go/util/jsonpath over the values found so far; nil is skipped."""
    found: list[Any] = []
    for value in values:
        if value is None:
            continue
        if step == "field" and isinstance(value, dict) and arg in value:
            found.append(value[arg])
        elif step == "star" and isinstance(value, dict):
            raise ResultError("jsonPath [*] over an object: Go visits a map in random order, so which value Argo "
                              "takes first is not defined")
        elif step == "star" and isinstance(value, list):
            found.extend(value)
        elif step == "index":
            if not isinstance(value, list):
                raise ResultError(f"Could not find JSONPath in body: {go_type(value)} is not array or slice")
            i = arg + len(value) if arg < 0 else arg
            if not 0 <= i < len(value):
                raise ResultError(f"Could not find JSONPath in body: array index out of bounds: index {i}, "
                                  f"length {len(value)}")
            found.append(value[i])
    if step == "field" and values and not found:
        raise ResultError(f"Could not find JSONPath in body: {arg} is not found")
    return found


# ---------------------------------------------------------------- Flagger

def flagger_prometheus_value(data: Any) -> float:
    """Flagger's ``RunQuery`` over the ``data`` object of a Prometheus answer: the value of the
    LAST sample of ``data.result`` (its loop overwrites the value; no ``resultType`` check).

    No sample, or a NaN last value, is :class:`NoValuesFound` ("no values found"); a value that
    is not a number string is skipped; a result that is not a list of samples (a scalar) is an
    unmarshalling error, and a series without ``value`` (a matrix) one Flagger would panic on.

    >>> flagger_prometheus_value({"resultType": "vector", "result": [{"metric": {}, "value": [1, "100"]}]})
    100.0
    >>> flagger_prometheus_value({"resultType": "vector", "result": []})
    Traceback (most recent call last):
    ...
    deploysim.analysis.verdicts.NoValuesFound: no values found: the query returned no sample
    """
    if not isinstance(data, Mapping):
        raise ResultError(f"error unmarshaling result: data is {go_type(data)}, not an object")
    result = data.get("result")
    if result is not None and not (isinstance(result, list) and all(isinstance(s, Mapping) for s in result)):
        raise ResultError("error unmarshaling result: data.result is not a list of samples (a scalar or string "
                          "result is [timestamp, value]; Flagger reads vectors)")
    value = None
    for i, sample in enumerate(result or []):
        pair = sample.get("value")
        if not isinstance(pair, list) or len(pair) < 2:
            raise ResultError(f"data.result[{i}] has no [timestamp, value] (a matrix has values): Flagger's "
                              "RunQuery indexes value[1] and would panic")
        if isinstance(pair[1], str):
            try:
                value = parse_go_float(pair[1])
            except ValueError as exc:
                raise ResultError(str(exc)) from None
    if value is None or math.isnan(value):
        raise NoValuesFound("no values found: " + ("the query returned no sample" if value is None else "the value is NaN"))
    return value


def flagger_phase(value: float, min: float | None = None, max: float | None = None) -> tuple[str, str]:
    """Flagger's ``thresholdRange`` check (``runMetricChecks``): Failed when ``value < min`` or
    ``value > max``, both strict, so a value on a bound passes; no bound, no check. A NaN value
    never reaches it in Flagger (``RunQuery`` makes it "no values found", a failed check), so
    it is Failed here too. The legacy ``threshold`` field is ``max=threshold``.

    >>> flagger_phase(1.14, max=1)
    ('Failed', '1.14 > thresholdRange max 1')
    >>> flagger_phase(99.0, min=99)
    ('Successful', '99 within thresholdRange min 99')
    """
    if math.isnan(value):
        return FAILED, "no values found: the value is NaN, which Flagger counts as a failed check"
    if min is not None and value < min:
        return FAILED, f"{go_sprint(float(value))} < thresholdRange min {go_sprint(float(min))}"
    if max is not None and value > max:
        return FAILED, f"{go_sprint(float(value))} > thresholdRange max {go_sprint(float(max))}"
    bounds = ", ".join(f"{name} {go_sprint(float(bound))}" for name, bound in (("min", min), ("max", max))
                       if bound is not None)
    return SUCCESSFUL, f"{go_sprint(float(value))} within thresholdRange {bounds or 'without bounds'}"


def flagger_prometheus_check(data: Any, min: float | None = None, max: float | None = None) -> MetricVerdict:
    """One Flagger metric check over a Prometheus answer. A query Flagger cannot read, or one with
    no values, halts advancement and counts as a failed check, as a value out of range does, so
    it is Failed (not Error) with the reason."""
    try:
        value = flagger_prometheus_value(data)
    except ResultError as exc:
        return MetricVerdict(FAILED, "", f"{exc}; Flagger halts advancement and counts a failed check")
    phase, message = flagger_phase(value, min, max)
    return MetricVerdict(phase, go_sprint(value), message, value)
