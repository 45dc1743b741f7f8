"""Go's rules for the values Argo Rollouts' conditions see: types, printing, parsing, ``==``, arithmetic.

Shared by :mod:`.expr` (the condition evaluator) and :mod:`.verdicts` (what a metrics source's
answer becomes). A value is the Python form of what Argo hands expr-lang: None (nil), bool, int
(Go's int), float (float64), str, a list or tuple (``[]interface {}``) and a mapping
(``map[string]interface {}``).

- :func:`kind`, :func:`go_type`: expr's type names and Go's ``%T``;
- :func:`go_format_float`: ``strconv.FormatFloat(x, verb, -1, 64)``; :func:`go_sprint`: ``fmt`` ``%v``;
- :func:`parse_go_float`: ``strconv.ParseFloat(text, 64)``;
- :func:`equal`: expr's ``Equal`` (expr-lang/expr ``vm/runtime/helpers/main.go``, which generates
  ``helpers[generated].go``): numbers by value, the rest by ``reflect.DeepEqual``;
- :func:`arithmetic`: the same file's ``Add``, ``Subtract``, ``Multiply``, ``Divide``, ``Modulo`` and
  ``vm/runtime/runtime.go`` ``Exponent`` (``math.Pow``).

Where Go reports an error, these raise ValueError with Go's message; the caller makes it its own
error (:mod:`.expr` an ExprError, :mod:`.verdicts` a ResultError).

>>> go_type(0.5), go_sprint([1, 0.5, None]), go_format_float(1e-7)
('float64', '[1 0.5 <nil>]', '0.0000001')
>>> equal(1, 1.0), equal([1], [1.0]), arithmetic("/", 1, 0), arithmetic("%", -7, 2)
(True, False, inf, -1)
>>> arithmetic("+", 1, "a")
Traceback (most recent call last):
...
ValueError: invalid operation: + (mismatched types int and string)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

#: expr's type of a value (see :func:`kind`) -> Go's name for it; ``any`` is a type only the run can tell
GO_TYPES = {"int": "int", "float": "float64", "string": "string", "bool": "bool", "nil": "<nil>",
            "array": "[]interface {}", "map": "map[string]interface {}", "any": "interface {}"}


def kind(value: Any) -> str:
    """The expr type of a value: nil, bool, int, float, string, array, map (or unknown).

    >>> [kind(v) for v in (None, True, 1, 0.5, "a", [1], (1,), {"a": 1}, {1})]
    ['nil', 'bool', 'int', 'float', 'string', 'array', 'array', 'map', 'unknown']
    """
    if value is None:
        return "nil"
    for name, types in (("bool", bool), ("int", Integral), ("float", Real), ("string", str),
                        ("map", Mapping), ("array", list | tuple)):
        if isinstance(value, types):
            return name
    return "unknown"


def go_type(value: Any) -> str:
    """Go's ``%T`` of the value as expr holds it; a value of no expr type is named by its Python type.

    >>> go_type(0.5), go_type(None), go_type({"a": [1]}), go_type({1})
    ('float64', '<nil>', 'map[string]interface {}', 'set')
    """
    return GO_TYPES.get(kind(value), type(value).__name__)


def is_number(value: Any) -> bool:
    """Whether expr does arithmetic on the value: an int or a float, never a bool.

    >>> is_number(1), is_number(0.5), is_number(True), is_number("1")
    (True, True, False, False)
    """
    return isinstance(value, Real) and not isinstance(value, bool)


def go_format_float(x: float, verb: str = "f") -> str:
    """Go's ``strconv.FormatFloat(x, verb, -1, 64)``: shortest digits, ``verb`` f, e or g.

    >>> [go_format_float(v) for v in (0.99, 10.0, 1e-7, float("nan"), float("-inf"))]
    ['0.99', '10', '0.0000001', 'NaN', '-Inf']
    >>> [go_format_float(v, "g") for v in (100000.0, 1e6, 1e-5, 0.0001)]
    ['100000', '1e+06', '1e-05', '0.0001']
    """
    if math.isnan(x) or math.isinf(x):
        return "NaN" if math.isnan(x) else "+Inf" if x > 0 else "-Inf"
    sign, digit_tuple, exponent = Decimal(repr(float(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    point, neg = (len(digit_tuple) + int(exponent) if digits != "0" else 1), "-" if sign else ""
    if verb == "g":  # shortest %g turns to %e outside 1e-4 <= |x| < 1e6
        verb = "f" if -4 <= point - 1 < 6 else "e"
    if verb == "e":
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mantissa}e{'-' if point < 1 else '+'}{abs(point - 1):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def go_sprint(value: Any) -> str:
    """Go's ``fmt.Sprintf("%v", value)``, as expr's ``string()`` gives it.

    >>> go_sprint([1, 0.5, "a", None, True]), go_sprint({"b": 1e6, "a": 2})
    ('[1 0.5 a <nil> true]', 'map[a:2 b:1e+06]')
    """
    k = kind(value)
    if k in ("nil", "bool", "float"):
        return "<nil>" if value is None else str(value).lower() if k == "bool" else go_format_float(value, "g")
    if k == "array":
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    if k == "map":
        return "map[" + " ".join(f"{key}:{go_sprint(value[key])}" for key in sorted(value)) + "]"
    return str(value)


def parse_go_float(text: str) -> float:
    """Go's ``strconv.ParseFloat(text, 64)``: no spaces or ``_``, and out of range is an error.

    >>> parse_go_float("0.5"), parse_go_float("+Inf"), parse_go_float("NaN")
    (0.5, inf, nan)
    >>> parse_go_float("1e400")
    Traceback (most recent call last):
    ...
    ValueError: strconv.ParseFloat: parsing "1e400": value out of range
    """
    try:
        if text != text.strip() or "_" in text:
            raise ValueError
        value = float(text)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None
    if math.isinf(value) and not re.fullmatch(r"[+-]?(?i:inf|infinity)", text):
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": value out of range')
    return value


def mismatched_types(op: str, a: Any, b: Any) -> str:
    """The message for an operator whose operands Go will not combine.

    >>> mismatched_types("<", 1, "a")
    'invalid operation: < (mismatched types int and string)'
    """
    return f"invalid operation: {op} (mismatched types {go_type(a)} and {go_type(b)})"


def equal(a: Any, b: Any, top: bool = True) -> bool:
    """expr's ``Equal``: numbers by value, the rest by ``reflect.DeepEqual``, whose kinds must match
    all the way down (1 and 1.0 inside arrays differ). ``top`` is False for the values inside.

    >>> equal(1, 1.0), equal([1], [1]), equal([1], [1.0]), equal({"a": [0.5]}, {"a": [0.5]}), equal(None, 0)
    (True, True, False, True, False)
    """
    if top and is_number(a) and is_number(b):
        return bool(a == b)
    if (k := kind(a)) != kind(b):
        return False
    if k == "array":
        return len(a) == len(b) and all(equal(x, y, False) for x, y in zip(a, b, strict=True))
    if k == "map":
        return a.keys() == b.keys() and all(equal(a[key], b[key], False) for key in a)
    return bool(a == b)


def arithmetic(op: str, a: Any, b: Any) -> Any:
    """``a op b`` for op ``+ - * / % ** ^`` as expr does it: two ints give an int, an int and a float a
    float; ``+`` also joins two strings; ``/`` and ``**`` always give a float64, a float divided by zero
    is ±Inf or NaN, ``%`` takes integers and truncates toward zero, ``math.Pow`` never raises.

    >>> arithmetic("+", 2, 3), arithmetic("*", 2, 0.5), arithmetic("/", 3, 2), arithmetic("/", -1, 0.0)
    (5, 1.0, 1.5, -inf)
    >>> arithmetic("%", 7, -2), arithmetic("**", 2, 10), arithmetic("**", 0, -1), arithmetic("+", "a", "b")
    (1, 1024.0, inf, 'ab')
    >>> arithmetic("%", 1, 0)
    Traceback (most recent call last):
    ...
    ValueError: integer divide by zero
    """
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    ints = isinstance(a, Integral) and isinstance(b, Integral)
    if not (is_number(a) and is_number(b)) or (op == "%" and not ints):
        raise ValueError(mismatched_types(op, a, b))
    if op == "%":
        if b == 0:
            raise ValueError("integer divide by zero")
        return (-1 if a < 0 else 1) * (abs(int(a)) % abs(int(b)))
    if op == "/":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
        return float(a) / float(b)
    if op in ("**", "^"):
        try:
            return math.pow(float(a), float(b))
        except OverflowError:
            return -math.inf if a < 0 and b == int(b) and int(b) % 2 else math.inf
        except ValueError:  # 0 to a negative power is +Inf, a negative base to a fraction NaN
            return math.inf if a == 0 else math.nan
    a, b = (int(a), int(b)) if ints else (float(a), float(b))
    return a + b if op == "+" else a - b if op == "-" else a * b
