"""The expr-lang evaluator: Argo's worked cases, expr's precedence and types, and its bounds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from deploysim.analysis.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    ExprError,
    compile_expression,
    evaluate,
    evaluate_condition,
)
from deploysim.analysis.govalues import (
    arithmetic,
    equal,
    go_format_float,
    go_sprint,
    parse_go_float,
)


def condition(expression: str, result: object) -> bool:
    return evaluate_condition(expression, {"result": result})


# argoproj/argo-rollouts utils/evaluate/evaluate_test.go
ARGO_CASES = [
    (True, "result == true", True),  # TestEvaluateConditionWithSuccess
    (True, "result == false", False),  # TestEvaluateConditionWithFailure
    ({"service_apdex": {"label": None, "values": {"values": [2.0, 2.0]}}},
     "all(result.service_apdex.values.values, {# > 1})", True),  # TestEvaluateArray
    ([2.0, 2.0], "2 in result", True),  # TestEvaluateInOperator
    (5.0, "result > 1", True),  # TestEvaluateFloat64
    ("1", "asInt(result) == 1", True),  # TestEvaluateAsInt
    (1, "asInt(result) == 1", True),
    (1.123, "asInt(result) == 1", True),
    ("1.1", "asFloat(result) == 1.1", True),  # TestEvaluateAsFloat
    ("1.1", "asFloat(result) >= 1.1", True),
    ("1.1", "asFloat(result) <= 1.1", True),
    (1.1, "asFloat(result) == 1.1", True),
    (1, "asFloat(result) == 1", True),
    (1, "asFloat(result) >= 1", True),
    ("1", "asFloat(result) == 1", True),  # TestAsFloat {"1", 1}
    (math.inf, "isInf(result)", True),  # TestIsInf
    (0.0, "isInf(result)", False),
    (None, "default(result, 0) == 0", True),  # TestDefaultFunc
    (None, "default(result, 2) == 2", True),
    (1.0, "default(result, 0) == 1", True),
    (None, "isNil(result)", True),  # TestIsNil
    (["hi", "hello"], "isNil(result)", False),
    (1, "isNil(result)", False),
    (False, "isNil(result)", False),
]


@pytest.mark.parametrize(("result", "expression", "expected"), ARGO_CASES)
def test_argo_worked_cases(result: object, expression: str, expected: bool) -> None:
    assert condition(expression, result) is expected


@pytest.mark.parametrize(("result", "expression", "message"), [
    (True, "1", "expected bool, but got int"),  # TestErrorWithNonBoolReturn
    (True, "invalidVariable", "unknown name invalidVariable"),  # TestErrorWithInvalidReference
    (True, "result.Name() == 'hi'", "method calls are not supported"),  # TestEvaluateInvalidStruct
    ("1.1", "asInt(result) == 1.1", 'strconv.ParseInt: parsing "1.1": invalid syntax'),  # TestEvaluateAsIntPanic
    ("notint", "asInt(result) == 1", 'parsing "notint"'),  # TestAsInt
    ("NotANum", "asFloat(result) == 1.1", 'strconv.ParseFloat: parsing "NotANum": invalid syntax'),  # TestEvaluateAsFloatError
    ("1.1", 'asFloat(result) == "1.1"', "invalid operation: == (mismatched types float64 and string)"),
    ("notfloat", "asFloat(result) == 1", 'parsing "notfloat"'),  # TestAsFloat
])
def test_argo_worked_errors(result: object, expression: str, message: str) -> None:
    with pytest.raises(ExprError, match=message.replace("(", r"\(").replace(")", r"\)")):
        condition(expression, result)


def test_isnil_and_default_look_at_result_whatever_their_argument() -> None:
    # Argo's isNilFunc and defaultFunc close over the result and ignore what they are given
    assert condition("isNil(1)", None)
    assert not condition("isNil(nil)", [0.5])
    assert evaluate("default(nil, 7)", {"result": [0.5]}) == [0.5]


@pytest.mark.parametrize(("expression", "expected"), [
    # expr's precedence: unary not (50) binds looser than * but tighter than ==
    ("not true == false", True),
    ("!false && false", False),
    ("-2 ** 2", -4.0),  # unary - (90) is looser than ** (100)
    ("2 ** 3 ** 2", 512.0),  # ** is right-associative
    ("2 ^ 3", 8.0),
    ("1 + 2 * 3 - 4 / 2", 5.0),
    ("7 / 2", 3.5),  # / is always float64
    ("7 % 3", 1),
    ("-7 % 3", -1),  # Go's % truncates toward zero
    ("7 % -3", 1),
    ("1 / 0", math.inf),
    ("-1 / 0", -math.inf),
    ("(1 + 2) * 3", 9),
    ("true ? 1 : 2", 1),
    ("false ? 1 : true ? 2 : 3", 2),
    ("len([1, 2, 3,]) == 3", True),
    ("[1, 2, 3][-1]", 3),
    ("1 in [1.0, 2]", True),  # numbers compare by value
    ("[1] == [1.0]", False),  # reflect.DeepEqual tells int from float64 inside arrays
    ("3 not in [1, 2]", True),
    ("nil == nil", True),
    ("'ab' + \"c\" == `abc`", True),
    ("'a\\tb' == \"a\\u0009b\"", True),
    ('"abc" contains "b" && "abc" startsWith "a" && not ("abc" endsWith "b")', True),
    ("nil ?? 3", 3),
    ("abs(-2.5) + abs(-2)", 4.5),
    ("int(2.9) + int(-2.9) + int('42')", 42),
    ("float('0.25') * 4", 1.0),
    ("string(1e6) + string(0.5) + string([1, true])", "1e+060.5[1 true]"),
    ("len('é')", 2),  # Go counts a string's bytes
    ("1_000 == 1000", True),
])
def test_language(expression: str, expected: object) -> None:
    value = evaluate(expression, {})
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("result", "expression", "expected"), [
    ([0.2, 0.4], "all(result, {# < 0.5})", True),
    ([0.2, 0.6], "all(result, {# < 0.5})", False),
    ([], "all(result, {# < 0.5})", True),
    ([0.2, 0.6], "any(result, {# > 0.5})", True),
    ([0.2, 0.6], "none(result, {# > 1})", True),
    ([0.2, 0.6], "one(result, {# > 0.5})", True),
    ([0.7, 0.6], "one(result, {# > 0.5})", False),
    ([1, 2, 3], "count(result, {# > 1}) == 2", True),
    ([1, 2, 3], "filter(result, {# % 2 == 1}) == [1, 3]", True),
    ([1, 2, 3], "map(result, {# * 2})[2] == 6", True),
    ([{"ok": True, "rate": 0.01}, {"ok": True, "rate": 0.03}], "all(result, {.ok}) && any(result, {.rate > 0.02})", True),
    ([[1, 2], [3]], "all(result, {any(#, {# > 0})})", True),  # # is the innermost element
    ({"data": {"ok": True}}, 'result.data.ok && result["data"]["ok"]', True),
    ({"a": 1.0}, "result.missing == nil", True),  # a map's missing key is nil, as in Go
    ([math.nan], "isNaN(result[0])", True),
    ([math.nan], "result[0] < 0.01 || result[0] >= 0.01", False),  # NaN compares false
    ([], "len(result) == 0 || result[0] < 0.01", True),
    ([], "false && result[5] > 0", False),  # && short-circuits
    ([0.005], "true || result[5] > 0", True),
])
def test_conditions_over_results(result: object, expression: str, expected: bool) -> None:
    assert condition(expression, result) is expected


@pytest.mark.parametrize(("result", "expression", "message"), [
    ([], "result[0] <= 0.01", "index out of range: 0 (array length is 0)"),
    ([0.5], "result[-2]", "index out of range: -2 (array length is 1)"),
    ([0.5], "result < 0.01", "invalid operation: < (mismatched types []interface {} and float64)"),
    ([0.5], "result + 1", "invalid operation: + (mismatched types []interface {} and int)"),
    (0.5, "result.field", "cannot fetch field from float64"),
    (None, "result[0]", "cannot fetch 0 from <nil>"),
    (0.5, "result && true", "left operand of && must be bool, got float64"),
    (0.5, "result ? 1 : 2", "non-bool expression (type float64) used as condition"),
    ([1, "a"], "all(result, {# > 0})", "mismatched types string and int"),
    ([1], "all(result, {#})", "closure of all must be bool, got int"),
    (0.5, "all(result, {# > 0})", "builtin all takes only array (got float64)"),
    (0.5, "len(result)", "invalid argument for len (type float64)"),
    (2.5, "result % 2 == 1", "invalid operation: %"),
    (5, "result % 0", "integer divide by zero"),
    ("x", "isNaN(result)", "cannot use string as argument"),
    (True, "asInt(result) == 1", "asInt() not supported on bool true"),
    ([0.5], "result == 1 || other > 2", "unknown name other"),  # names are checked even on a branch not taken
])
def test_evaluation_errors(result: object, expression: str, message: str) -> None:
    with pytest.raises(ExprError) as caught:
        evaluate(expression, {"result": result})
    assert message in str(caught.value)


@pytest.mark.parametrize(("expression", "message"), [
    ("1 +", "unexpected end of expression"),
    ("result[0] <= )", "unexpected token ')' (column 14"),
    ("result ==", "unexpected end of expression"),
    ("len(result) > '1'", "invalid operation: > (mismatched types int and string)"),
    ("!1", "invalid operation: ! (mismatched type int)"),
    ("not 1 == 1", "invalid operation: not (mismatched type int)"),  # (not 1) == 1: not binds tighter than ==
    ("1 ? 2 : 3", "non-bool expression (type int) used as condition"),
    ("true && 5", "invalid operation: && (mismatched types bool and int)"),
    ("all(1, {true})", "builtin all takes only array (got int)"),
    ("all(result, {1})", "closure should return boolean (got int)"),
    ("# > 1", "cannot use pointer accessor outside closure"),
    ("max(result)", "unknown func max"),
    ("isNaN(1, 2)", "too many arguments to call isNaN"),
    ("default(result)", "not enough arguments to call default"),
    ("{a: 1}", "map literals are not supported"),
    ("result[0:1]", "slices are not supported"),
    ("result?.a", "operator ?. is not supported"),
    ("'a' matches 'a'", "operator matches is not supported"),
    ("1..3", "operator .. is not supported"),
    ("'abc", "literal not terminated"),
    ("'a\\q'", "invalid escape \\q"),
    ("result @ 1", "unexpected character '@'"),
    ("9223372036854775808 > 0", "value out of range"),
])
def test_compile_errors(expression: str, message: str) -> None:
    with pytest.raises(ExprError) as caught:
        compile_expression(expression)
    assert message in str(caught.value)


def test_a_compiled_expression_evaluates_against_many_results() -> None:
    compiled = compile_expression("result[0] <= 0.01")
    assert compiled.names == frozenset({"result"})
    assert [compiled.condition({"result": [v]}) for v in (0.005, 0.01, 0.05)] == [True, True, False]


@pytest.mark.parametrize("expression", [
    "__import__('os').system('touch {marker}')",
    "open('{marker}', 'w')",
    "result.__class__.__init__.__globals__",
    "().__class__",
    "eval('1')",
    "[c for c in result]",
    "lambda: 1",
])
def test_hostile_input_is_an_error_and_never_runs(expression: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ExprError):
        evaluate(expression.replace("{marker}", str(marker)), {"result": [0.5]})
    assert not marker.exists()


def test_member_access_never_reaches_python_attributes() -> None:
    assert evaluate("result.__class__", {"result": {"a": 1}}) is None  # a map's missing key, not type(dict)
    with pytest.raises(ExprError, match="cannot fetch __class__ from string"):
        evaluate("'x'.__class__", {})


def test_input_is_bounded() -> None:
    with pytest.raises(ExprError, match=f"at most {MAX_LENGTH}"):
        compile_expression("1 + " * 500 + "1")
    with pytest.raises(ExprError, match="nested more than"):
        compile_expression("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH)
    with pytest.raises(ExprError, match="nested more than"):
        compile_expression("-" * (MAX_DEPTH + 1) + "1")
    assert evaluate("(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1), {}) == 1
    # a long flat chain is not nesting: it is folded left to right, without deep recursion
    assert evaluate("+".join(["1"] * 900), {}) == 900


def test_work_is_bounded() -> None:
    blowup = "all(result, {all(result, {all(result, {true})})})"
    with pytest.raises(ExprError, match="more than 200000 steps"):
        evaluate(blowup, {"result": list(range(100))})
    with pytest.raises(ExprError, match="more than 50 steps"):
        compile_expression("all(result, {# >= 0})").evaluate({"result": list(range(100))}, max_steps=50)
    with pytest.raises(ExprError, match="string longer than"):
        evaluate("result + result", {"result": "x" * 600_000})


@pytest.mark.parametrize(("value", "verb", "text"), [
    (0.99, "f", "0.99"), (10.0, "f", "10"), (-0.0, "f", "-0"), (1e-7, "f", "0.0000001"), (1e21, "f", "1" + "0" * 21),
    (math.nan, "f", "NaN"), (math.inf, "f", "+Inf"), (-math.inf, "f", "-Inf"), (1.5e300, "e", "1.5e+300"),
    (1e-7, "e", "1e-07"), (123456.0, "g", "123456"), (1234567.0, "g", "1.234567e+06"), (0.00001, "g", "1e-05"),
])
def test_go_format_float(value: float, verb: str, text: str) -> None:
    assert go_format_float(value, verb) == text


def test_go_sprint_and_parse_go_float() -> None:
    assert go_sprint({"b": [1, 2.5], "a": None}) == "map[a:<nil> b:[1 2.5]]"
    assert parse_go_float("-Inf") == -math.inf and parse_go_float("1e3") == 1000.0
    for text in ("1_000", " 1", "1e400", "", "abc"):
        with pytest.raises(ValueError, match=f'parsing "{text}"'):
            parse_go_float(text)


# Go's value rules (deploysim.analysis.govalues), which the evaluator above leans on

@pytest.mark.parametrize(("a", "b", "same"), [
    (1, 1.0, True),  # numbers by value at the top
    ([1], [1.0], False),  # reflect.DeepEqual inside: int and float64 differ
    ([1, [0.5]], [1, [0.5]], True),
    ([1], (1,), True),  # a list and a tuple are both []interface {}
    ({"a": 1}, {"a": 1.0}, False),
    ({"a": 1}, {"b": 1}, False),
    (None, None, True),
    (True, 1, False),  # a bool is no number
    ("1", 1, False),
])
def test_equal(a: object, b: object, same: bool) -> None:
    assert equal(a, b) is same
    assert equal(b, a) is same


@pytest.mark.parametrize(("op", "a", "b", "value"), [
    ("-", 2, 5, -3), ("*", 3, 4, 12), ("+", 1, 0.5, 1.5), ("+", "ab", "c", "abc"),
    ("%", -7, 2, -1), ("%", 7, -2, 1),  # truncated toward zero
    ("/", 1, 2, 0.5), ("/", -1, 0, -math.inf), ("/", 1, -0.0, -math.inf),
    ("**", 10, 400, math.inf), ("**", -10, 401, -math.inf), ("^", 0, -1, math.inf),
])
def test_arithmetic(op: str, a: object, b: object, value: object) -> None:
    out = arithmetic(op, a, b)
    assert out == value and type(out) is type(value)


def test_arithmetic_nan_and_errors() -> None:
    assert math.isnan(arithmetic("/", 0, 0)) and math.isnan(arithmetic("**", -8, 1 / 3))
    for op, a, b, message in (("%", 1.5, 2, "mismatched types float64 and int"),
                              ("-", "a", "b", "mismatched types string and string"),
                              ("+", True, 1, "mismatched types bool and int"),
                              ("%", 1, 0, "integer divide by zero")):
        with pytest.raises(ValueError, match=message):
            arithmetic(op, a, b)
