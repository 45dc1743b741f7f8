"""A safe evaluator (never Python ``eval``) for the expr-lang subset Argo Rollouts' conditions use.

Long: one language in one room: the lexer, expr's parser and checker, and the evaluator. Go's rules
for values (types, formatting, parsing, equality, arithmetic) are in :mod:`.govalues`.

Argo evaluates ``successCondition`` / ``failureCondition`` with github.com/antonmedv/expr v1.15 in
``utils/evaluate/evaluate.go`` (``EvalCondition``). The parser follows expr's precedence-climbing
``parser/parser.go`` (``parseExpression``, ``parsePrimary``, ``parsePostfixExpression``,
``parseConditionalExpression``) and its operator table, which a grammar library such as lark would turn
into a tangle of rules (``not`` binds looser than ``*`` but tighter than ``==``, unary ``-`` looser than
``**``). Types are checked as expr's ``checker/checker.go`` does where both sides are known, so
``asFloat(result) == "1.1"`` fails whatever the result. Not supported, each an ExprError saying so: map
literals, slices, ``?.``, ``matches``, ``..``, pipes, methods, expr's other builtins.
One known difference: arrays compare element by element here, while expr's ``reflect.DeepEqual`` also
tells Argo's ``[]float64`` vector from an array literal.

>>> evaluate("len(result) == 0 || result[0] < 0.01", {"result": []})
True
>>> evaluate("all(result, {# < 0.5}) and not isNaN(result[0])", {"result": [0.2, 0.4]})
True
>>> evaluate("result[0] <= 0.01", {"result": []})
Traceback (most recent call last):
...
deploysim.analysis.expr.ExprError: index out of range: 0 (array length is 0)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, make_dataclass
from functools import lru_cache
from typing import Any

from deploysim.analysis.govalues import (
    GO_TYPES,
    arithmetic,
    equal,
    go_sprint,
    go_type,
    is_number,
    kind,
    mismatched_types,
    parse_go_float,
)
from deploysim.errors import DeploysimError

MAX_LENGTH = 2000  # characters in an expression
MAX_DEPTH = 50  # levels of nesting: parentheses, arguments, closures, unary operators
MAX_STEPS = 200_000  # nodes evaluated, a closure's body once per element
MAX_STRING = 1_000_000  # characters in a string built with +


class ExprError(DeploysimError):
    """An expression cannot be compiled or evaluated; Argo makes any of these an Error phase."""


# ---------------------------------------------------------------- tokens, nodes, operators

_TOKEN = re.compile(r"""\s+
    | (?P<num>(?:\d[\d_]*(?:\.\d[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<op>\*\*|\?\?|\?\.|==|!=|<=|>=|&&|\|\||\.\.|[-+*/%^<>!?:,.\#()\[\]{}|])""", re.X)
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.S)
_ESCAPES = dict(zip("abfnrtv\\'\"", "\a\b\f\n\r\t\v\\'\"", strict=True))
_WORD_OPS = {"and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith"}


def _error(message: str, text: str, pos: int) -> ExprError:
    return ExprError(f"{message} (column {pos + 1} of {text!r})")


def _lex(text: str) -> list[tuple[str, Any, int]]:
    """(kind, value, position) tokens; kind is num, str, name, op or eof."""
    tokens, pos = [], 0
    while pos < len(text):
        if (m := _TOKEN.match(text, pos)) is None:
            raise _error("literal not terminated" if text[pos] in "\"'`" else f"unexpected character {text[pos]!r}",
                         text, pos)
        raw, group = m.group(), m.lastgroup
        if group == "num":
            digits = raw.replace("_", "")
            value: Any = float(digits) if any(c in digits for c in ".eE") else int(digits)
            if isinstance(value, int) and value >= 2**63:
                raise _error(f"invalid integer literal {raw}: value out of range", text, pos)
            tokens.append(("num", value, pos))
        elif group == "str":
            tokens.append(("str", raw[1:-1] if raw[0] == "`" else _unescape(raw[1:-1], text, pos), pos))
        elif group:
            tokens.append(("op" if raw in _WORD_OPS else group, raw, pos))
        pos = m.end()
    return [*tokens, ("eof", None, len(text))]


def _unescape(body: str, text: str, pos: int) -> str:
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if len(code) == 1 and code not in _ESCAPES:
            raise _error(f"invalid escape \\{code} in string", text, pos)
        return chr(int(code[1:], 16)) if len(code) > 1 else _ESCAPES[code]

    return _ESCAPE.sub(one, body)


def _node(name: str, *fields: str) -> type:
    """A frozen syntax-tree node; ``kind`` is its static type (int float string bool nil array map),
    or any where only the run can tell."""
    return make_dataclass(name, ["kind", *fields], frozen=True, slots=True)


_Lit, _Name, _Pointer, _Array = _node("Lit", "value"), _node("Name", "name"), _node("Pointer"), _node("Array", "items")
_Unary, _Cond = _node("Unary", "op", "operand"), _node("Cond", "cond", "yes", "no")
_Chain = _node("Chain", "first", "rest")  # expr's left-deep BinaryNodes; rest: ((op, negated, right), ...)
_Path = _node("Path", "base", "steps")  # steps: (("member", name) | ("index", node), ...)
_Call, _Predicate = _node("Call", "name", "args"), _node("Predicate", "name", "seq", "body")

# expr's operator tables: precedence; ** and ^ associate to the right
_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
_BINARY = {"or": 10, "||": 10, "and": 15, "&&": 15, "==": 20, "!=": 20, "<": 20, ">": 20, ">=": 20, "<=": 20,
           "in": 20, "matches": 20, "contains": 20, "startsWith": 20, "endsWith": 20, "..": 25, "+": 30, "-": 30,
           "*": 60, "/": 60, "%": 60, "**": 100, "^": 100, "??": 500, "|": 0}
_UNSUPPORTED = {"matches", "..", "|"}
_STRING_OPS = {"contains", "startsWith", "endsWith"}
_LOGIC, _ORDER, _NUM = {"or", "||", "and", "&&"}, {"<", ">", "<=", ">="}, {"int", "float"}
_PREDICATES = {"all": "bool", "any": "bool", "none": "bool", "one": "bool", "count": "int", "filter": "array",
               "map": "array"}


def _binary_kind(op: str, left: str, right: str) -> str | None:
    """The static type of ``left op right``, None where expr's checker rejects it; an untyped side
    passes when the other is untyped or allowed (the checker's ``or``)."""

    def either(*allowed: str) -> bool:
        return (left == "any" and (right == "any" or right in allowed)) or (right == "any" and left in allowed)

    nums = left in _NUM and right in _NUM
    if op in ("==", "!="):
        ok = "any" in (left, right) or "nil" in (left, right) or nums or left == right
    elif op in _LOGIC:
        ok = left == right == "bool" or either("bool")
    elif op in _ORDER:
        ok = nums or left == right == "string" or either("int", "float", "string")
    elif op == "in":
        ok = right in ("array", "any") or (right == "map" and left in ("string", "any"))
    elif op in _STRING_OPS:
        ok = left == right == "string" or either("string")
    elif op == "??":
        return left if left == right else "any"
    elif op == "%":
        return "int" if left == right == "int" or either("int") else None
    elif op == "+" and left == right == "string":
        return "string"
    elif nums or either("int", "float", *(("string",) if op == "+" else ())):
        return "float" if op in ("/", "**", "^") else ("int" if left == right == "int" else "float") if nums else "any"
    else:
        return None
    return "bool" if ok else None


class _Parser:
    """expr's ``parser.go`` over the tokens, building typed nodes and checking them."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.pos, self.depth, self.closures = text, _lex(text), 0, 0, 0
        self.names: set[str] = set()

    def is_op(self, *values: str, ahead: int = 0) -> bool:
        token = self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]
        return token[0] == "op" and token[1] in values

    def check(self, ok: bool, message: str = "", at: int | None = None) -> None:
        """Raise ``message`` (or "unexpected token") at token ``at`` (or the current one) unless ``ok``."""
        if not ok:
            token = self.tokens[self.pos if at is None else at]
            if not message:
                message = "unexpected end of expression" if token[0] == "eof" else f"unexpected token {token[1]!r}"
            raise _error(message, self.text, token[2])

    def expect(self, value: str) -> None:
        self.check(self.is_op(value))
        self.pos += 1

    def parse(self) -> Any:
        node = self.expression(0)
        self.check(self.tokens[self.pos][0] == "eof")
        return node

    def expression(self, precedence: int) -> Any:
        self.depth += 1
        self.check(self.depth <= MAX_DEPTH, f"expression nested more than {MAX_DEPTH} levels deep")
        node, rest = self.primary(), []
        kind_ = node.kind
        while self.tokens[self.pos][0] == "op":
            negate = self.is_op("not") and self.is_op("in", "matches", *_STRING_OPS, ahead=1)
            at = self.pos + negate
            op = self.tokens[at][1]
            if _BINARY.get(op, -1) < precedence:
                break
            self.check(op not in _UNSUPPORTED, f"operator {op} is not supported", at)
            self.pos = at + 1
            right = self.expression(_BINARY[op] + (op not in ("**", "^")))
            result = _binary_kind(op, kind_, right.kind)
            self.check(result is not None, f"invalid operation: {op} (mismatched types {GO_TYPES[kind_]} and "
                       f"{GO_TYPES[right.kind]})", at)
            rest.append((op, negate, right))
            kind_ = result
        node = _Chain(kind_, node, tuple(rest)) if rest else node
        node = self.conditional(node) if precedence == 0 else node
        self.depth -= 1
        return node

    def primary(self) -> Any:
        at, op = self.pos, self.tokens[self.pos][1]
        if self.is_op(*_UNARY):
            self.pos += 1
            operand = self.expression(_UNARY[op])
            logical = op in ("not", "!")
            self.check(operand.kind in ({"bool", "any"} if logical else {"int", "float", "any"}),
                       f"invalid operation: {op} (mismatched type {GO_TYPES[operand.kind]})", at)
            return self.postfix(_Unary("bool" if logical else operand.kind, op, operand))
        if self.is_op("("):
            self.pos += 1
            node = self.expression(0)
            self.expect(")")
            return self.postfix(node)
        if self.is_op("#", "."):
            self.check(self.closures > 0, "cannot use pointer accessor outside closure")
            self.pos += self.is_op("#")  # .field in a closure is #.field
            return self.postfix(_Pointer("any"))
        return self.postfix(self.atom())

    def atom(self) -> Any:
        at = self.pos
        group, value, _ = self.tokens[at]
        self.pos += group != "eof"
        if group in ("num", "str"):
            return _Lit("string" if group == "str" else "int" if isinstance(value, int) else "float", value)
        if group == "name" and value in ("true", "false", "nil"):
            return _Lit("nil", None) if value == "nil" else _Lit("bool", value == "true")
        if group == "name" and self.is_op("("):
            return self.call(value, at)
        if group == "name":
            self.names.add(value)
            return _Name("any", value)
        self.check(value == "[", "map literals are not supported" if value == "{" else "", at)
        return _Array("array", tuple(self.items("]")))

    def items(self, close: str) -> list[Any]:
        items: list[Any] = []
        while not self.is_op(close):
            if items:
                self.expect(",")
                if self.is_op(close):  # a trailing comma
                    break
            items.append(self.expression(0))
        self.pos += 1
        return items

    def call(self, name: str, at: int) -> Any:
        self.pos += 1  # "("
        if name in _PREDICATES:
            seq = self.expression(0)
            self.check(seq.kind in ("array", "any"), f"builtin {name} takes only array (got {GO_TYPES[seq.kind]})", at)
            self.expect(",")
            braced = self.is_op("{")
            self.pos += braced
            self.closures += 1
            body = self.expression(0)
            self.closures -= 1
            if braced:
                self.expect("}")
            self.expect(")")
            self.check(name == "map" or body.kind in ("bool", "any"),
                       f"closure should return boolean (got {GO_TYPES[body.kind]})", at)
            return _Predicate(_PREDICATES[name], name, seq, body)
        self.check(name in _FUNCTIONS, f"unknown func {name}", at)
        args, (_, arity, result) = self.items(")"), _FUNCTIONS[name]
        many = "too many" if len(args) > arity else "not enough"
        self.check(len(args) == arity, f"{many} arguments to call {name}", at)
        self.check(name != "len" or args[0].kind in ("array", "map", "string", "any"),
                   f"invalid argument for len (type {GO_TYPES[args[0].kind]})", at)
        return _Call(result, name, tuple(args))

    def postfix(self, node: Any) -> Any:
        steps: list[tuple[str, Any]] = []
        while self.is_op(".", "[", "?."):
            at, op = self.pos, self.tokens[self.pos][1]
            self.pos += 1
            self.check(op != "?.", "operator ?. is not supported", at)
            if op == ".":
                group, name, _ = self.tokens[self.pos]
                self.check(group in ("name", "op") and bool(re.fullmatch(r"[A-Za-z_$]\w*", str(name))), "expected name")
                self.pos += 1
                self.check(not self.is_op("("), f"method calls are not supported: .{name}()", at)
                steps.append(("member", name))
                continue
            index = None if self.is_op(":") else self.expression(0)
            self.check(not self.is_op(":"), "slices are not supported", at)
            self.expect("]")
            steps.append(("index", index))
        self.check(not steps or node.kind in ("array", "map", "string", "any"),
                   f"type {GO_TYPES[node.kind]} does not support indexing")
        return _Path("any", node, tuple(steps)) if steps else node

    def conditional(self, node: Any) -> Any:
        while self.is_op("?"):
            at = self.pos
            self.pos += 1
            yes = self.expression(0)
            self.expect(":")
            no = self.expression(0)
            self.check(node.kind in ("bool", "any"),
                       f"non-bool expression (type {GO_TYPES[node.kind]}) used as condition", at)
            node = _Cond(yes.kind if yes.kind == no.kind else "any", node, yes, no)
        return node


# ---------------------------------------------------------------- evaluation

def _mismatch(op: str, a: Any, b: Any) -> ExprError:
    return ExprError(mismatched_types(op, a, b))


def _binop(op: str, a: Any, b: Any) -> Any:
    if op in ("==", "!="):
        return equal(a, b) == (op == "==")
    if op in _ORDER:
        if not ((is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise _mismatch(op, a, b)
        return a < b if op == "<" else a > b if op == ">" else a <= b if op == "<=" else a >= b
    if op == "in":
        if kind(b) == "array":
            return any(equal(item, a) for item in b)
        if kind(b) == "map" and isinstance(a, str):
            return a in b
        raise _mismatch(op, a, b)
    if op in _STRING_OPS:
        if not (isinstance(a, str) and isinstance(b, str)):
            raise _mismatch(op, a, b)
        return b in a if op == "contains" else a.startswith(b) if op == "startsWith" else a.endswith(b)
    if op == "+" and isinstance(a, str) and isinstance(b, str) and len(a) + len(b) > MAX_STRING:
        raise ExprError(f"string longer than {MAX_STRING} characters")
    try:
        return arithmetic(op, a, b)
    except ValueError as exc:  # a mismatch, or an integer divided by zero
        raise ExprError(str(exc)) from None


def _fetch(value: Any, key: Any) -> Any:
    """expr's runtime.Fetch: a map's missing key is nil; an array index must be in range."""
    if kind(value) == "map" and isinstance(key, str):
        return value.get(key)
    if kind(value) in ("array", "string") and is_number(key):
        i = int(key) + (len(value) if key < 0 else 0)
        if not 0 <= i < len(value):
            raise ExprError(f"index out of range: {int(key)} (array length is {len(value)})")
        return value[i]
    raise ExprError(f"cannot fetch {go_sprint(key)} from {go_type(value)}")


def _boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"{what} must be bool, got {go_type(value)}")
    return value


class _Run:
    """One evaluation: the env, the closure elements (``#``) and the step budget."""

    def __init__(self, env: Mapping[str, Any], max_steps: int) -> None:
        self.env, self.max_steps, self.steps, self.pointers = env, max_steps, 0, []

    def eval(self, node: Any) -> Any:
        self.steps += 1
        if self.steps > self.max_steps:
            raise ExprError(f"evaluation took more than {self.max_steps} steps")
        return _EVAL[type(node)](self, node)

    def chain(self, node: Any) -> Any:
        acc = self.eval(node.first)
        for op, negate, right in node.rest:
            if op in ("&&", "and"):  # the right side's value is the result, as in expr's VM
                acc = self.eval(right) if _boolean(acc, f"left operand of {op}") else False
            elif op in ("||", "or"):
                acc = True if _boolean(acc, f"left operand of {op}") else self.eval(right)
            elif op == "??":
                acc = self.eval(right) if acc is None else acc
            else:
                acc = _binop(op, acc, self.eval(right))
            acc = (not acc) if negate else acc
        return acc

    def path(self, node: Any) -> Any:
        value = self.eval(node.base)
        for step, arg in node.steps:
            if step == "member" and kind(value) != "map":
                raise ExprError(f"cannot fetch {arg} from {go_type(value)}")
            value = value.get(arg) if step == "member" else _fetch(value, self.eval(arg))
        return value

    def predicate(self, node: Any) -> Any:
        seq, name, kept = self.eval(node.seq), node.name, []
        if kind(seq) != "array":
            raise ExprError(f"builtin {name} takes only array (got {go_type(seq)})")
        for item in seq:
            self.pointers.append(item)
            try:
                out = self.eval(node.body)
            finally:
                self.pointers.pop()
            hit = out if name == "map" else _boolean(out, f"closure of {name}")
            if (name == "all" and not hit) or (name in ("any", "none") and hit):
                return name == "any"  # all, any and none stop at the first element that decides
            if name == "map" or hit:
                kept.append(out if name == "map" else item)
        results = {"all": True, "any": False, "none": True, "one": len(kept) == 1, "count": len(kept)}
        return kept if name in ("map", "filter") else results[name]

    def cond(self, node: Any) -> Any:
        value = self.eval(node.cond)
        if not isinstance(value, bool):
            raise ExprError(f"non-bool expression (type {go_type(value)}) used as condition")
        return self.eval(node.yes if value else node.no)

    def unary(self, node: Any) -> Any:
        value = self.eval(node.operand)
        if node.op in ("not", "!"):
            return not _boolean(value, f"operand of {node.op}")
        if not is_number(value):
            raise ExprError(f"invalid operation: {node.op} (mismatched type {go_type(value)})")
        return value if node.op == "+" else -value


_EVAL: dict[type, Callable[[_Run, Any], Any]] = {
    _Lit: lambda run, n: n.value, _Name: lambda run, n: run.env[n.name],
    _Pointer: lambda run, n: run.pointers[-1], _Array: lambda run, n: [run.eval(i) for i in n.items],
    _Call: lambda run, n: _FUNCTIONS[n.name][0](run, *(run.eval(arg) for arg in n.args)),
    _Unary: _Run.unary, _Chain: _Run.chain, _Path: _Run.path, _Cond: _Run.cond, _Predicate: _Run.predicate,
}


def _to_int(name: str, value: Any) -> int:
    """Go's int64(x) for Argo's asInt and expr's int(); a string as strconv.ParseInt reads it."""
    if isinstance(value, str):
        if not re.fullmatch(r"[+-]?\d+", value) or not -(2**63) <= int(value) < 2**63:
            raise ExprError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
        return int(value)
    if not is_number(value) or math.isnan(value) or math.isinf(value):
        raise ExprError(f"{name}() not supported on {go_type(value)} {go_sprint(value)}")
    return int(value)


def _to_float(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            return parse_go_float(value)
        except ValueError as exc:
            raise ExprError(str(exc)) from None
    if not is_number(value):
        raise ExprError(f"{name}() not supported on {go_type(value)} {go_sprint(value)}")
    return float(value)


def _number(name: str, value: Any) -> Any:
    if not is_number(value):
        raise ExprError(f"cannot use {go_type(value)} as argument (type float64) to call {name}")
    return value


def _len(run: _Run, value: Any) -> int:
    if kind(value) not in ("array", "map", "string"):
        raise ExprError(f"invalid argument for len (type {go_type(value)})")
    return len(value.encode()) if isinstance(value, str) else len(value)  # Go counts a string's bytes


# name -> (function, arity, static result type). isNil and default look at ``result``, never at their
# argument, exactly as Argo's isNilFunc and defaultFunc do.
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, str]] = {
    "len": (_len, 1, "int"),
    "abs": (lambda run, v: abs(_number("abs", v)), 1, "any"),
    "int": (lambda run, v: _to_int("int", v), 1, "int"),
    "float": (lambda run, v: _to_float("float", v), 1, "float"),
    "string": (lambda run, v: go_sprint(v), 1, "string"),
    "asInt": (lambda run, v: _to_int("asInt", v), 1, "int"),
    "asFloat": (lambda run, v: _to_float("asFloat", v), 1, "float"),
    "isNaN": (lambda run, v: math.isnan(_number("isNaN", v)), 1, "bool"),
    "isInf": (lambda run, v: math.isinf(_number("isInf", v)), 1, "bool"),
    "isNil": (lambda run, v: run.env.get("result") is None, 1, "bool"),
    "default": (lambda run, v, d: d if run.env.get("result") is None else run.env["result"], 2, "any"),
}


# ---------------------------------------------------------------- public API

@dataclass(frozen=True)
class Expression:
    """A parsed, type-checked expression: compile once, evaluate against many envs."""

    text: str
    names: frozenset[str]
    node: Any

    def evaluate(self, env: Mapping[str, Any], *, max_steps: int = MAX_STEPS) -> Any:
        """The value over ``env`` (e.g. ``{"result": [0.5]}``). Every name must be in ``env``, even on a
        branch not taken, as expr checks names when it compiles against Argo's env."""
        for name in sorted(self.names - env.keys()):
            raise ExprError(f"unknown name {name}")
        try:
            return _Run(env, max_steps).eval(self.node)
        except RecursionError:
            raise ExprError("a value is nested too deeply to evaluate") from None

    def condition(self, env: Mapping[str, Any]) -> bool:
        """The value, which must be a bool, as Argo's EvalCondition demands."""
        value = self.evaluate(env)
        if not isinstance(value, bool):
            raise ExprError(f"expected bool, but got {go_type(value)}")
        return value


@lru_cache(maxsize=512)
def compile_expression(text: str) -> Expression:
    """Parse and check ``text`` once; an ExprError says what is wrong and where.

    >>> compile_expression("asFloat(result) == 1.1").names
    frozenset({'result'})
    >>> compile_expression("asFloat(result) == '1.1'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deploysim.analysis.expr.ExprError: invalid operation: == (mismatched types float64 and string) ...
    """
    if not isinstance(text, str):
        raise ExprError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    parser = _Parser(text)
    node = parser.parse()
    return Expression(text, frozenset(parser.names), node)


def evaluate(expression: str, env: Mapping[str, Any]) -> Any:
    """The value of ``expression`` over ``env``; any failure is an :class:`ExprError`."""
    return compile_expression(expression).evaluate(env)


def evaluate_condition(expression: str, env: Mapping[str, Any]) -> bool:
    """Argo's ``EvalCondition``: ``expression`` over ``env`` must give a bool."""
    return compile_expression(expression).condition(env)
