"""Verdicts as Argo Rollouts and Flagger reach them, with the controllers' own worked cases."""

from __future__ import annotations

import math

import pytest

from deploysim.analysis.verdicts import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    SUCCESSFUL,
    MetricVerdict,
    NotJSONBody,
    NoValuesFound,
    ResultError,
    argo_phase,
    argo_prometheus_measurement,
    argo_prometheus_result,
    argo_web_measurement,
    argo_web_result,
    flagger_phase,
    flagger_prometheus_check,
    flagger_prometheus_value,
    go_json,
)


def vector(*values: str) -> dict:
    return {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000.5, v]} for v in values]}


def scalar(value: str) -> dict:
    return {"resultType": "scalar", "result": [1700000000.5, value]}


# ---------------------------------------------------------------- Argo: EvaluateResult

# argoproj/argo-rollouts utils/evaluate/evaluate_test.go, TestEvaluateResult*, each over result true
@pytest.mark.parametrize(("success", "failure", "phase"), [
    ("true", "false", SUCCESSFUL),  # TestEvaluateResultWithSuccess
    ("true", "true", FAILED),  # TestEvaluateResultWithFailure
    ("false", "false", INCONCLUSIVE),  # TestEvaluateResultInconclusive
    ("", "false", SUCCESSFUL),  # TestEvaluateResultNoSuccessConditionAndNotFailing
    ("false", "", FAILED),  # TestEvaluateResultNoFailureConditionAndNotSuccessful
    ("", "", SUCCESSFUL),  # TestEvaluateResultNoFailureConditionAndNoSuccessCondition
    ("a == true", "true", ERROR),  # TestEvaluateResultWithErrorOnSuccessCondition
    ("true", "a == true", ERROR),  # TestEvaluateResultWithErrorOnFailureCondition
    (None, None, SUCCESSFUL),
])
def test_argo_evaluate_result(success: str | None, failure: str | None, phase: str) -> None:
    assert argo_phase(True, success, failure)[0] == phase


@pytest.mark.parametrize(("result", "success", "failure", "phase"), [
    ([0.005], "result[0] <= 0.01", None, SUCCESSFUL),
    ([0.01], "result[0] <= 0.01", None, SUCCESSFUL),
    ([0.05], "result[0] <= 0.01", None, FAILED),
    ([], "result[0] <= 0.01", None, ERROR),
    ([], "len(result) == 0 || result[0] < 0.01", None, SUCCESSFUL),
    ([0.2, 0.4], "all(result, {# < 0.5})", None, SUCCESSFUL),
    ([0.2, 0.6], "all(result, {# < 0.5})", None, FAILED),
    ([math.nan], None, "isNaN(result[0])", FAILED),
    ([math.nan], "result[0] < 0.01", "result[0] >= 0.01", INCONCLUSIVE),  # NaN meets neither
    (None, "default(result, 0) < 1", None, SUCCESSFUL),
    ([0.03], "result[0] <= 0.01", "result[0] > 0.05", INCONCLUSIVE),
    ([0.06], "result[0] <= 0.01", "result[0] > 0.05", FAILED),
    ([0.005], "result[0] <= 0.01", "result[0] > 0.05", SUCCESSFUL),
    ([0.005], "result[0]", None, ERROR),  # not a bool
    ([0.005], "result[0] <=", None, ERROR),  # not an expression
])
def test_argo_phase(result: object, success: str | None, failure: str | None, phase: str) -> None:
    assert argo_phase(result, success, failure)[0] == phase


def test_argo_messages_name_the_value_and_the_condition() -> None:
    assert argo_phase([0.052], "result[0] <= 0.01") == (
        FAILED, "result [0.052] fails successCondition result[0] <= 0.01")
    assert argo_phase([0.06], None, "result[0] > 0.05") == (
        FAILED, "result [0.06] meets failureCondition result[0] > 0.05")
    assert argo_phase([0.01], None, "result[0] > 0.05") == (
        SUCCESSFUL, "result [0.01] does not meet failureCondition result[0] > 0.05")
    assert argo_phase([0.03], "result[0] <= 0.01", "result[0] > 0.05") == (
        INCONCLUSIVE, "result [0.03] meets neither successCondition result[0] <= 0.01 nor failureCondition "
        "result[0] > 0.05")
    phase, message = argo_phase([], "result[0] <= 0.01")
    assert phase == ERROR and message == ("successCondition result[0] <= 0.01 could not be evaluated on result []: "
                                          "index out of range: 0 (array length is 0)")
    assert argo_phase("ok", "result == 'ok'", value='"ok"')[1] == "result \"ok\" meets successCondition result == 'ok'"


# ---------------------------------------------------------------- Argo: Prometheus provider

# argoproj/argo-rollouts metricproviders/prometheus/prometheus_test.go
@pytest.mark.parametrize(("data", "success", "failure", "phase", "value"), [
    (scalar("10"), "result == 10", "result != 10", SUCCESSFUL, "10"),  # TestProcessScalarResponse, TestRunSuccessfully
    (scalar("NaN"), "result >= 0.9", "result < 0.9", INCONCLUSIVE, "NaN"),  # TestProcessNaNResponse/inconclusive
    (scalar("NaN"), "result >= 0.9 || isNaN(result)", None, SUCCESSFUL, "NaN"),  # .../success
    (scalar("NaN"), "result >= 0.9", None, FAILED, "NaN"),  # .../failure
    (scalar("+Inf"), "result >= 0.9", None, SUCCESSFUL, "+Inf"),  # TestProcessInfResponse/success
    (scalar("+Inf"), None, "isInf(result)", FAILED, "+Inf"),  # TestProcessInfResponse/failure
    (vector("10", "11"), "10 in result", "len(result) != 2", SUCCESSFUL, "[10,11]"),  # TestProcessVectorResponse
    (vector("0.005"), "result[0] <= 0.01", None, SUCCESSFUL, "[0.005]"),
    (vector("0.052"), "result[0] <= 0.01", None, FAILED, "[0.052]"),
    (vector(), "result[0] <= 0.01", None, ERROR, "[]"),  # an empty vector is [], and result[0] an error
    (vector(), "len(result) == 0 || result[0] <= 0.01", None, SUCCESSFUL, "[]"),
    (vector("NaN"), "isNaN(result[0])", None, SUCCESSFUL, "[NaN]"),  # NaN samples are passed through
    (vector("1e-7", "100"), "true", None, SUCCESSFUL, "[0.0000001,100]"),  # SampleValue.String, 'f' format
])
def test_argo_prometheus(data: dict, success: str | None, failure: str | None, phase: str, value: str) -> None:
    verdict = argo_prometheus_measurement(data, success, failure)
    assert (verdict.phase, verdict.value) == (phase, value)


def test_argo_prometheus_result_is_what_the_conditions_see() -> None:
    result, value = argo_prometheus_result(vector("0.99", "NaN"))
    assert result[0] == 0.99 and math.isnan(result[1]) and value == "[0.99,NaN]"
    assert argo_prometheus_result(scalar("-Inf")) == (-math.inf, "-Inf")
    # nil samples are skipped, as Argo's `if s != nil`
    assert argo_prometheus_result({"resultType": "vector", "result": [None, {"value": [1, "2"]}]}) == ([2.0], "[2]")
    assert argo_prometheus_measurement(vector("0.02", "0.5"), "true").number == 0.02
    assert argo_prometheus_measurement(vector(), "true").number is None


@pytest.mark.parametrize(("data", "message"), [
    ({"resultType": "matrix", "result": []}, "Prometheus metric type not supported"),  # TestRunWithEvaluationError
    ({"resultType": "string", "result": [1, "x"]}, "Prometheus metric type not supported"),
    (None, "expected the object holding resultType and result"),  # TestProcessInvalidResponse
    (vector("abc"), 'strconv.ParseFloat: parsing "abc": invalid syntax'),
    ({"resultType": "vector", "result": [{"metric": {}, "value": [1, 0.5]}]}, 'expected [timestamp, "number"]'),
    ({"resultType": "vector", "result": [{"metric": {}, "histogram": [1, {}]}]}, "native histogram"),
])
def test_argo_prometheus_answers_it_cannot_judge_are_errors(data: object, message: str) -> None:
    with pytest.raises(ResultError, match=message.replace("[", r"\[")):
        argo_prometheus_result(data)
    verdict = argo_prometheus_measurement(data, "true", "true")
    assert verdict.phase == ERROR and verdict.value == "" and message in verdict.message


# ---------------------------------------------------------------- Argo: web provider

NESTED = '{"key": [{"key2": {"value": %s}}]}'
PATH = "{$.key[0].key2.value}"


# argoproj/argo-rollouts metricproviders/webmetric/webmetric_test.go, TestRunSuite (its case names)
@pytest.mark.parametrize(("body", "path", "success", "failure", "phase", "value"), [
    # When_noJSONPathSpecified_And_MatchesConditions_Then_Succeed
    ('{"a": 1, "b": true, "c": [1, 2, 3, 4], "d": null}', None,
     "result.a > 0 && result.b && all(result.c, {# < 5}) && result.d == nil", None, SUCCESSFUL,
     '{"a":1,"b":true,"c":[1,2,3,4],"d":null}'),
    # When_matchesNeitherCondition_Then_Inconclusive
    ('{"a": 1, "b": true, "c": [1, 2, 3, 4], "d": null}', None,
     "result.a >= 2 && result.b && all(result.c, {# < 5}) && result.d == nil",
     "result.a <= 0 && result.b && all(result.c, {# < 5}) && result.d == nil", INCONCLUSIVE,
     '{"a":1,"b":true,"c":[1,2,3,4],"d":null}'),
    (NESTED % '"1"', PATH, "asInt(result) > 0", "asInt(result) <= 0", SUCCESSFUL, '"1"'),  # When_intStringReturnedInJson_*
    (NESTED % '"0"', PATH, "asInt(result) > 0", "asInt(result) <= 0", FAILED, '"0"'),
    (NESTED % '"1.2"', PATH, "asFloat(result) > 1.1", "asFloat(result) <= 0", SUCCESSFUL, '"1.2"'),  # When_floatString*
    (NESTED % '"1.2"', PATH, "asFloat(result) > 1.1", "asFloat(result) < 1.3", FAILED, '"1.2"'),
    (NESTED % "1", PATH, "result > 0", "result <= 0", SUCCESSFUL, "1"),  # When_numberReturnedInJson_*
    (NESTED % "0", PATH, "result > 0", "result <= 0", FAILED, "0"),
    (NESTED % "1.1", PATH, "result > 0", "result <= 0", SUCCESSFUL, "1.1"),  # When_floatReturnedInJson_*
    (NESTED % "-1.1", PATH, "result > 0", "result <= 0", FAILED, "-1.1"),
    (NESTED % '"true"', PATH, 'result == "true"', 'result == "false"', SUCCESSFUL, '"true"'),  # When_stringReturned*
    (NESTED % '"true"', PATH, 'result == "true"', 'result == "true"', FAILED, '"true"'),
    (NESTED % "true", PATH, "result == true", "result == false", SUCCESSFUL, "true"),  # When_boolReturnedInJson_*
    (NESTED % "false", PATH, "result == true", "result == false", FAILED, "false"),
    ('{"key": [1, 2, 3, 4, 5, 6]}', "{$.key}", "any(result, {# > 5})", None, SUCCESSFUL, "[1,2,3,4,5,6]"),  # When_list*
    ('{"key": [1, 2, 3, 4, 5, 6]}', "{$.key}", "any(result, {# > 6})", None, FAILED, "[1,2,3,4,5,6]"),
    ('{"key":{"num":1.2, "bool":true, "mapfield":{"foo":"bar"}}}', "{$.key}",  # When_mapReturnedInJson_*
     'result.num > 1.1 && result.bool && result.mapfield.foo == "bar"', None, SUCCESSFUL,
     '{"bool":true,"mapfield":{"foo":"bar"},"num":1.2}'),
    ('{"key":{"num":1.2, "bool":true, "mapfield":{"foo":"bar"}}}', "{$.key}",
     'result.num > 1.1 && result.bool && result.mapfield.foo == "bar"',
     'result.num > 1.1 && result.bool && result.mapfield.foo == "bar"', FAILED,
     '{"bool":true,"mapfield":{"foo":"bar"},"num":1.2}'),
    ("", PATH, "true", "true", SUCCESSFUL, ""),  # When_200Response_And_EmptyBody_Then_Succeed
    ("test: notJson", PATH, "true", "true", SUCCESSFUL, "test: notJson"),  # When_200Response_And_NonJsonBody_Then_Succeed
    (NESTED % '"true"', "{$.key[0].key2.novalue}", "true", "true", ERROR, ""),  # When_200Response_And_JsonPathHasNoMatch
    ("{}", None, "true", None, SUCCESSFUL, "{}"),  # When_200Response_And_AnyJson_Then_Succeed
])
def test_argo_web(body: str, path: str | None, success: str | None, failure: str | None, phase: str,
                  value: str) -> None:
    verdict = argo_web_measurement(body.encode(), path, success, failure)
    assert (verdict.phase, verdict.value) == (phase, value)


def test_argo_web_no_match_message() -> None:
    # When_200Response_And_JsonPathHasNoMatch_Then_Error expects "Could not find JSONPath in body"
    verdict = argo_web_measurement(NESTED % '"true"', "{$.key[0].key2.novalue}", "true")
    assert verdict.message == "Could not find JSONPath in body: novalue is not found"


@pytest.mark.parametrize(("body", "path", "result", "value"), [
    ('{"data": {"ok": true}}', "{$.data.ok}", True, "true"),
    ('{"data": {"ok": true}}', "{.data.ok}", True, "true"),  # kubectl style, without $
    ('{"data": {"a.b": 3}}', "{$.data['a.b']}", 3.0, "3"),
    ('{"data": {"a.b": 3}}', "{$.data.a\\.b}", 3.0, "3"),
    ('{"items": [{"v": 1}, {"v": 2}]}', "{$.items[-1].v}", 2.0, "2"),
    ('{"items": [{"v": 1}, {"v": 2}]}', "{$.items[*].v}", 1.0, "1"),  # getValue takes the first value found
    ('{"rate": 5e-7, "big": 1e21}', "{$.rate}", 5e-7, "5e-7"),
    ('{"s": "<a&b>"}', "{$.s}", "<a&b>", '"\\u003ca\\u0026b\\u003e"'),
    ('{"a": {"z": 1, "b": null}}', "{$.a}", {"z": 1.0, "b": None}, '{"b":null,"z":1}'),
    ("null", None, None, "null"),
    ("  [1, 2.50]  ", "", [1.0, 2.5], "[1,2.5]"),
])
def test_argo_web_result(body: str, path: str | None, result: object, value: str) -> None:
    assert argo_web_result(body, path) == (result, value)


def test_argo_web_numbers_are_float64_as_go_decodes_them() -> None:
    result, _ = argo_web_result('{"n": 2}', "{$.n}")
    assert type(result) is float  # so result % 2 is an error, as for a Go float64
    assert argo_web_measurement('{"n": 2}', "{$.n}", "result % 2 == 0").phase == ERROR


@pytest.mark.parametrize("body", ["not json", "", '{"a": NaN}', '{"a": 1e400}', "\ufeff{}", '{"a": 1'])
def test_argo_web_body_that_is_not_json(body: str) -> None:
    with pytest.raises(NotJSONBody) as caught:
        argo_web_result(body)
    assert caught.value.text == body
    assert argo_web_measurement(body, None, "false", "true") == MetricVerdict(
        SUCCESSFUL, body, "the body is not JSON: Argo's web provider records it as the value and evaluates no condition")


@pytest.mark.parametrize(("body", "path", "message"), [
    ('{"a": [1]}', "{$.a[3]}", "array index out of bounds: index 3, length 1"),
    ('{"a": {"b": 1}}', "{$.a[0]}", "map[string]interface {} is not array or slice"),
    ('{"a": 1}', "{$.a.b}", "b is not found"),
    ('{"a": null}', "{$.a.b}", "b is not found"),
    ('{"a": []}', "{$.a[*].b}", "result of web metric produced no value"),
    ('{"a": {"x": 1, "y": 2}}', "{$.a[*]}", "random order"),
    ('{"a": 1}', "$.a", "Kubernetes JSONPath reads text outside braces literally"),
    ('{"a": 1}', "{$..a}", "is not supported here"),
    ('{"a": [1]}', "{$.a[?(@ > 0)]}", "is not supported here"),
    ("not json", "{$.a[1:2]}", "is not supported here"),  # the path is parsed before the body is read
])
def test_argo_web_paths_that_find_nothing_are_errors(body: str, path: str, message: str) -> None:
    with pytest.raises(ResultError, match=message.replace("[", r"\[").replace("{", r"\{").replace("$", r"\$")):
        argo_web_result(body, path)
    assert argo_web_measurement(body, path, "true").phase == ERROR


def test_go_json() -> None:
    assert go_json([1.0, 0.1, 1e-6, 1e-7, 1e20, 1e21, -0.0]) == "[1,0.1,0.000001,1e-7,100000000000000000000,1e+21,-0]"
    assert go_json({"é": "\u2028\n"}) == '{"é":"\\u2028\\n"}'
    with pytest.raises(ResultError, match="unsupported value: NaN"):
        go_json(math.nan)


# ---------------------------------------------------------------- Flagger

# fluxcd/flagger pkg/metrics/providers/prometheus_test.go TestPrometheusProvider_RunQueryWithBasicAuth
def test_flagger_run_query_ok_and_no_values() -> None:
    ok = {"resultType": "vector", "result": [{"metric": {}, "value": [1545905245.458, "100"]}]}
    assert flagger_prometheus_value(ok) == 100.0  # "ok"
    with pytest.raises(NoValuesFound, match="no values found"):  # "no values"
        flagger_prometheus_value({"resultType": "vector", "result": []})


@pytest.mark.parametrize(("data", "expected"), [
    (vector("0.5", "2"), 2.0),  # RunQuery's loop keeps the last sample's value
    (vector("+Inf"), math.inf),
    ({"resultType": "vector", "result": [{"metric": {}, "value": [1, 0.5]}, {"value": [1, "3"]}]}, 3.0),  # skipped
])
def test_flagger_value(data: dict, expected: float) -> None:
    assert flagger_prometheus_value(data) == expected


@pytest.mark.parametrize(("data", "error", "message"), [
    (vector("NaN"), NoValuesFound, "no values found: the value is NaN"),
    (vector("1", "NaN"), NoValuesFound, "the value is NaN"),  # only the last value counts
    ({"resultType": "vector"}, NoValuesFound, "no sample"),
    ({"resultType": "vector", "result": [{"metric": {}, "value": [1, 2]}]}, NoValuesFound, "no sample"),
    (scalar("1"), ResultError, "error unmarshaling result"),
    ({"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "1"]]}]}, ResultError, "would panic"),
    (vector("abc"), ResultError, 'strconv.ParseFloat: parsing "abc"'),
])
def test_flagger_value_errors(data: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        flagger_prometheus_value(data)


@pytest.mark.parametrize(("value", "low", "high", "phase", "message"), [
    (1.14, None, 1, FAILED, "1.14 > thresholdRange max 1"),  # Flagger's "Halt ... advancement podinfo-prometheus 1.14 > 1"
    (1.0, None, 1, SUCCESSFUL, "1 within thresholdRange max 1"),  # the check is strict: a value on a bound passes
    (98.9, 99, None, FAILED, "98.9 < thresholdRange min 99"),
    (99.0, 99, None, SUCCESSFUL, "99 within thresholdRange min 99"),
    (0.5, 1, 5, FAILED, "0.5 < thresholdRange min 1"),
    (6.0, 1, 5, FAILED, "6 > thresholdRange max 5"),
    (3.0, 1, 5, SUCCESSFUL, "3 within thresholdRange min 1, max 5"),
    (1e9, None, None, SUCCESSFUL, "1e+09 within thresholdRange without bounds"),
    (math.inf, None, 500, FAILED, "+Inf > thresholdRange max 500"),
    (math.nan, None, 500, FAILED, "no values found"),
])
def test_flagger_phase(value: float, low: float | None, high: float | None, phase: str, message: str) -> None:
    got_phase, got_message = flagger_phase(value, low, high)
    assert got_phase == phase and message in got_message


def test_flagger_check_counts_a_query_it_cannot_read_as_a_failed_check() -> None:
    assert flagger_prometheus_check(vector("0.004"), max=0.01) == MetricVerdict(
        SUCCESSFUL, "0.004", "0.004 within thresholdRange max 0.01", 0.004)
    assert flagger_prometheus_check(vector("0.052"), max=0.01).phase == FAILED
    for data in (vector(), vector("NaN"), scalar("1")):
        verdict = flagger_prometheus_check(data, max=0.01)
        assert verdict.phase == FAILED and verdict.message.endswith("Flagger halts advancement and counts a failed check")
