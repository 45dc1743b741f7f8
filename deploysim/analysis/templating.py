"""Metric queries as the controllers fill them in: Argo Rollouts' ``{{args.x}}``, Flagger's ``{{ target }}``.

What reaches Prometheus is the query after substitution: the same text the controller sends.

**Argo Rollouts** (``argoproj/argo-rollouts``): (1) the templates' ``args`` are flattened
(``utils/analysis/helpers.go`` ``flattenArgs``) and the Rollout's merged over them (``MergeArgs``);
(2) ``valueFrom`` is read: ``fieldRef``/``podTemplateHashValue`` from the Rollout
(``utils/analysis/factory.go`` ``BuildArgumentsForRolloutAnalysisRun``), ``secretKeyRef`` from the
template (``analysis/analysis.go`` ``Controller.resolveArgs``); (3) every ``{{...}}`` tag is
replaced (``utils/template/template.go`` ``ResolveArgs``: ``fasttemplate``, the tag trimmed of
spaces). ``ResolveQuotedArgs`` escapes values only because it fills the metric's JSON, decoded
again, so a query receives each value verbatim. ``{{templates...}}``/``{{experiment...}}`` exist
only in Experiment args (``ResolveExperimentArgsValue``).

>>> values, secrets = resolve_args(
...     merge_args([Arg("service-name"), Arg("token", secret=("prom", "token"))],
...                [Arg("service-name", value="checkout")]),
...     read_secret=lambda name, key: "s3cr3t", read_field=lambda path: "")
>>> substitute_args('rate(http{service="{{ args.service-name }}"}[5m])', values)
'rate(http{service="checkout"}[5m])'
>>> redact("token=s3cr3t", secrets)
'token=[REDACTED]'

**Flagger** (``fluxcd/flagger``): a MetricTemplate query is Go ``text/template`` executed with *nil
data* and a function map (``pkg/metrics/observers/render.go`` ``RenderQuery``, functions from
``pkg/apis/flagger/v1beta1/metric.go`` ``MetricTemplateModel.TemplateFunctions``). So
``{{ namespace }}`` is a function, ``{{ .Namespace }}`` is not the model, and a missing
``{{ variables.k }}`` is an error (``render_test.go`` ``missing_variable_key``):

>>> render_flagger_query('sum(rate(x{ns="{{ namespace }}",app=~"{{ target }}"}[{{ interval }}]))',
...     name="podinfo", namespace="test", target="podinfo", service="podinfo",
...     ingress="podinfo", route="podinfo", interval="1m")
'sum(rate(x{ns="test",app=~"podinfo"}[1m]))'

Go's template engine has no kept Python port; this renders the actions Flagger's model offers
and refuses any other by name rather than guess.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from deploysim.errors import DeploysimError
from deploysim.redact import REDACTED

POD_TEMPLATE_HASHES = ("Stable", "Latest")
# Canary.GetMetricInterval: a built-in metric without an interval looks back 1m
DEFAULT_METRIC_INTERVAL = "1m"
FLAGGER_FUNCTIONS = ("name", "namespace", "target", "service", "ingress", "route", "interval", "variables")


class TemplateError(DeploysimError):
    """A query template cannot be filled: names the placeholder or arg (never a secret's value)."""


@dataclass(frozen=True)
class Arg:
    """One Argo argument: a literal ``value`` or where its value comes from.

    ``secret`` is ``valueFrom.secretKeyRef`` as ``(name, key)`` (template side); ``field_path`` is
    ``valueFrom.fieldRef.fieldPath`` and ``pod_template_hash`` ``valueFrom.podTemplateHashValue``
    (``Stable`` or ``Latest``), both on the Rollout's side.
    """

    name: str
    value: str | None = None
    secret: tuple[str, str] | None = None
    field_path: str | None = None
    pod_template_hash: str | None = None

    def has_source(self) -> bool:
        return any(v is not None for v in (self.value, self.secret, self.field_path, self.pod_template_hash))


def flatten_args(per_template: Iterable[list[Arg]]) -> list[Arg]:
    """The args of several templates as one list, as Argo's ``flattenArgs`` joins them.

    The same name twice with two different values is an error; a declaration without a value
    gives way to one with a value; otherwise the first stands.

    >>> [a.value for a in flatten_args([[Arg("foo", "true")], [Arg("foo")], [Arg("bar", "1")]])]
    ['true', '1']
    >>> flatten_args([[Arg("foo", "true")], [Arg("foo", "false")]])
    Traceback (most recent call last):
    ...
    deploysim.analysis.templating.TemplateError: args.foo: declared twice with different values ('true', 'false'); give it once
    """
    combined: list[Arg] = []
    for args in per_template:
        for arg in args:
            i = next((i for i, prev in enumerate(combined) if prev.name == arg.name), None)
            if i is None:
                combined.append(arg)
                continue
            prev = combined[i]
            if prev.value is not None and arg.value is not None and prev.value != arg.value:
                raise TemplateError(f"args.{arg.name}: declared twice with different values "
                                    f"({prev.value!r}, {arg.value!r}); give it once")
            if prev.value is None:
                combined[i] = arg
    return combined


def merge_args(template_args: list[Arg], rollout_args: list[Arg]) -> list[Arg]:
    """The template's declared args with the Rollout's analysis args over them (Argo's ``MergeArgs``).

    A Rollout arg the template does not declare is dropped; one with neither ``value`` nor
    ``valueFrom`` is the empty string (``BuildArgumentsForRolloutAnalysisRun``). A template's
    ``secretKeyRef`` stays and wins when read; a declared arg with no source is an error.

    >>> merge_args([Arg("foo", "bar")], [Arg("foo", "overwrite"), Arg("extra-arg", "x")])
    [Arg(name='foo', value='overwrite', secret=None, field_path=None, pod_template_hash=None)]
    >>> merge_args([Arg("service-name")], [])
    Traceback (most recent call last):
    ...
    deploysim.analysis.templating.TemplateError: args.service-name: no value; give it in the Rollout's analysis args
    """
    given = {a.name: a for a in rollout_args}
    merged: list[Arg] = []
    for t in template_args:
        r = given.get(t.name)
        if r is None:
            if t.value is None and t.secret is None and t.field_path is not None:
                raise TemplateError(f"args.{t.name}: valueFrom.fieldRef {t.field_path!r} in a template is not read "
                                    "by Argo; give the fieldRef in the Rollout's analysis args")
            arg = Arg(t.name, value=t.value, secret=t.secret)
        elif r.secret is not None:
            raise TemplateError(f"args.{t.name}: valueFrom.secretKeyRef is read only from the template's args; "
                                "the Rollout's args take value, fieldRef or podTemplateHashValue")
        elif r.field_path is not None:
            arg = Arg(t.name, secret=t.secret, field_path=r.field_path)
        elif r.pod_template_hash is not None:
            arg = Arg(t.name, secret=t.secret, pod_template_hash=r.pod_template_hash)
        else:
            arg = Arg(t.name, value=r.value if r.value is not None else "", secret=t.secret)
        if not arg.has_source():
            raise TemplateError(f"args.{t.name}: no value; give it in the Rollout's analysis args")
        merged.append(arg)
    return merged


def resolve_args(args: Iterable[Arg], read_secret: Callable[[str, str], str], read_field: Callable[[str], str],
                 read_hash: Callable[[str], str] | None = None) -> tuple[dict[str, str], set[str]]:
    """Each arg's value, and the set of secret values to redact wherever they might be shown.

    A ``secretKeyRef`` wins over a literal value (Argo's ``Controller.resolveArgs``); a missing
    key is Argo's ``key 'k' does not exist in secret 's'``. ``read_hash("Stable" | "Latest")``
    gives a ReplicaSet's pod-template-hash for ``podTemplateHashValue``.

    >>> resolve_args([Arg("app", field_path="metadata.name"), Arg("n", "3")],
    ...              read_secret=lambda n, k: "", read_field=lambda p: "checkout")
    ({'app': 'checkout', 'n': '3'}, set())
    """
    values: dict[str, str] = {}
    secrets: set[str] = set()
    for arg in args:
        if arg.secret is not None:
            name, key = arg.secret
            try:
                value = read_secret(name, key)
            except KeyError:
                raise TemplateError(f"args.{arg.name}: key {key!r} does not exist in secret {name!r}") from None
            if value:
                secrets.add(value)
        elif arg.field_path is not None:
            value = read_field(arg.field_path)
        elif arg.pod_template_hash is not None:
            if arg.pod_template_hash not in POD_TEMPLATE_HASHES:
                raise TemplateError(f"args.{arg.name}: podTemplateHashValue is {arg.pod_template_hash!r}; "
                                    f"allowed: {', '.join(POD_TEMPLATE_HASHES)}")
            if read_hash is None:
                raise TemplateError(f"args.{arg.name}: podTemplateHashValue {arg.pod_template_hash} needs the "
                                    "ReplicaSets' pod-template-hash, which this run does not know")
            value = read_hash(arg.pod_template_hash)
        elif arg.value is not None:
            value = arg.value
        else:
            raise TemplateError(f"args.{arg.name}: no value; give it in the Rollout's analysis args")
        values[arg.name] = value
    return values, secrets


def field_value(obj: Mapping[str, Any], field_path: str) -> str:
    """``valueFrom.fieldRef.fieldPath`` read from a Rollout (as a dict), as Argo reads it.

    ``metadata...`` paths follow Kubernetes' ``fieldpath.ExtractFieldPathAsString`` (name,
    namespace, uid, labels, annotations, ``labels['k']``, ``annotations['k']``); other paths walk
    the object by ``.`` and ``[i]`` (``extractValueFromRollout``) to a scalar, printed as Go's ``%v``.

    >>> ro = {"metadata": {"name": "test", "labels": {"app": "app", "env": "test"}},
    ...       "spec": {"replicas": 3}, "status": {"pauseConditions": [{"reason": "test-reason"}]}}
    >>> [field_value(ro, p) for p in ("metadata.labels['app']", "metadata.labels",
    ...                               "status.pauseConditions[0].reason", "spec.replicas")]
    ['app', 'app="app"\\nenv="test"', 'test-reason', '3']
    """
    if field_path.startswith("metadata"):
        return _metadata_field(obj.get("metadata") or {}, field_path)
    node: Any = obj
    for section in re.split(r"[.\[\]]+", field_path):
        if not section:
            continue
        if isinstance(node, list):
            if not re.fullmatch(r"[+-]?\d+", section):
                raise TemplateError(f"fieldRef {field_path!r}: invalid index {section!r}")
            i = int(section)
            if not 0 <= i < len(node):
                raise TemplateError(f"fieldRef {field_path!r}: index {i} out of range")
            node = node[i]
        elif isinstance(node, Mapping):
            node = node.get(section)
        else:
            raise TemplateError(f"fieldRef {field_path!r}: invalid path in rollout")
    if node is None:
        raise TemplateError(f"fieldRef {field_path!r}: invalid path in rollout")
    if isinstance(node, list | Mapping):
        raise TemplateError(f"fieldRef {field_path!r}: the path in rollout must end at a primitive value")
    return _go_value(node)


def _metadata_field(meta: Mapping[str, Any], path: str) -> str:
    if path.endswith("']") and "['" in path and not path.startswith("['"):
        base, key = path[:-2].split("['", 1)
        if base not in ("metadata.labels", "metadata.annotations"):
            raise TemplateError(f"fieldRef {path!r}: does not support a subscript; allowed on "
                                "metadata.labels and metadata.annotations")
        problem = _qualified_name_problem(key.lower() if base == "metadata.annotations" else key)
        if problem:
            raise TemplateError(f"fieldRef {path!r}: invalid key subscript: {problem}")
        return str((meta.get(base.split(".")[1]) or {}).get(key, ""))
    if path in ("metadata.labels", "metadata.annotations"):
        entries = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={_go_quote(str(entries[k]))}" for k in sorted(entries))
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(path.split(".")[1]) or "")
    raise TemplateError(f"fieldRef {path!r}: unsupported fieldPath; metadata allows name, namespace, uid, "
                        "labels, annotations, labels['k'] and annotations['k']")


_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _qualified_name_problem(key: str) -> str:
    """Why ``key`` is not a Kubernetes qualified name (``validation.IsQualifiedName``), or ''."""
    *prefix, name = key.split("/")
    if len(prefix) > 1 or prefix and not (len(prefix[0]) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix[0])):
        return f"{key!r}: at most one 'prefix/', the prefix a DNS subdomain"
    ok = 0 < len(name) <= 63 and _NAME.fullmatch(name)
    return "" if ok else f"{key!r}: a name is 1 to 63 letters, digits, '-', '_' or '.', alphanumeric at both ends"


_GO_ESCAPES = dict(zip('"\\\a\b\f\n\r\t\v', ('\\"', "\\\\", "\\a", "\\b", "\\f", "\\n", "\\r", "\\t", "\\v"), strict=True))


def _go_quote(s: str) -> str:
    """Go's ``%q`` for a string (``strconv.Quote``)."""
    def one(c: str) -> str:
        n = ord(c)
        if c in _GO_ESCAPES or c.isprintable():
            return _GO_ESCAPES.get(c, c)
        return f"\\x{n:02x}" if n < 0x80 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"
    return '"' + "".join(map(one, s)) + '"'


def _go_value(value: Any) -> str:
    """A JSON scalar as Go's ``%v`` prints it after ``json.Unmarshal`` (numbers are float64).

    >>> [_go_value(v) for v in (3, 0.5, 1000000, 123456, 1234567, True, "x")]
    ['3', '0.5', '1e+06', '123456', '1.234567e+06', 'true', 'x']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, int | float):
        return str(value)
    f = float(value)
    if math.isnan(f) or math.isinf(f):
        return "NaN" if math.isnan(f) else ("+Inf" if f > 0 else "-Inf")
    d = Decimal(repr(f)).normalize()  # repr holds the shortest digits, as Go's strconv finds them
    if f == 0 or -4 <= d.adjusted() < 6:  # shortest %g turns to an exponent at 1e-05 and 1e+06
        return "0" if f == 0 else format(d, "f")
    mantissa, _, exp = format(d, "e").partition("e")
    return f"{mantissa}e{exp[0]}{int(exp[1:]):02d}"


def _tags(text: str) -> list[tuple[int, str]]:
    """Every ``{{...}}`` tag in ``text`` as (offset, raw tag), scanning as ``fasttemplate`` does."""
    tags: list[tuple[int, str]] = []
    pos = 0
    while (start := text.find("{{", pos)) >= 0:
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError(f"unclosed placeholder at character {start}: {text[start:start + 40]!r}; close it with }}}}")
        tags.append((start, text[start + 2:end]))
        pos = end + 2
    return tags


def args_in(text: str) -> set[str]:
    """The arg names ``text`` refers to as ``{{args.NAME}}`` (spaces inside the braces allowed).

    >>> sorted(args_in("{{args.a}} and {{ args.b }} and {{args.a}}"))
    ['a', 'b']
    """
    return {tag.strip()[len("args."):] for _, tag in _tags(text) if tag.strip().startswith("args.")}


def substitute_args(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every ``{{args.NAME}}`` replaced by its value (Argo's ``ResolveArgs``).

    Every ``{{...}}`` is a placeholder to Argo: one that names no known arg is an error.

    >>> substitute_args("test-{{ args.var }}", {"var": "foo"})
    'test-foo'
    >>> substitute_args("test-{{args.var}}", {})
    Traceback (most recent call last):
    ...
    deploysim.analysis.templating.TemplateError: {{args.var}}: no such argument; the template's args are: (none)
    """
    out: list[str] = []
    pos = 0
    for start, tag in _tags(text):
        key = tag.strip()
        name = key[len("args."):] if key.startswith("args.") else None
        if name is None or name not in values:
            known = ", ".join(sorted(values)) or "(none)"
            what = "no such argument" if name is not None else "not an argument; Argo fills only {{args.NAME}}"
            raise TemplateError(f"{{{{{tag}}}}}: {what}; the template's args are: {known}")
        out.append(text[pos:start])
        out.append(values[name])
        pos = start + len(tag) + 4
    out.append(text[pos:])
    return "".join(out)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret value replaced by ``[REDACTED]``, longest first.

    Argo redacts every non-empty secret arg from logs and measurement messages, however short.

    >>> redact("user=app pass=hunter2 again hunter2", {"hunter2"})
    'user=app pass=[REDACTED] again [REDACTED]'
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


@dataclass(frozen=True)
class FlaggerModel:
    """Flagger's ``MetricTemplateModel``: what a query template may name."""

    name: str
    namespace: str
    target: str
    service: str
    ingress: str
    route: str
    interval: str
    variables: Mapping[str, str] | None = None


def flagger_model(canary: Mapping[str, Any], interval: str, variables: Mapping[str, str] | None = None,
                  *, default_namespace: str = "default") -> FlaggerModel:
    """The model for one metric of a Canary (as a dict), as ``scheduler_metrics.go`` ``toMetricModel``.

    ``service`` is ``spec.service.name`` or the target's name; ``ingress`` and ``route`` are
    ``spec.ingressRef.name`` / ``spec.routeRef.name`` when the ref is given, else the target's
    name. A manifest without a namespace lands in ``default_namespace``.

    >>> m = flagger_model({"metadata": {"name": "podinfo", "namespace": "test"},
    ...                    "spec": {"targetRef": {"name": "podinfo"}, "service": {"port": 80}}}, "1m")
    >>> m.service, m.ingress, m.route, m.interval
    ('podinfo', 'podinfo', 'podinfo', '1m')
    """
    meta = canary.get("metadata") or {}
    spec = canary.get("spec") or {}
    target = str((spec.get("targetRef") or {}).get("name") or "")
    service = str((spec.get("service") or {}).get("name") or "") or target
    ingress = str(spec["ingressRef"].get("name") or "") if spec.get("ingressRef") is not None else target
    route = str(spec["routeRef"].get("name") or "") if spec.get("routeRef") is not None else target
    return FlaggerModel(name=str(meta.get("name") or ""), namespace=str(meta.get("namespace") or default_namespace),
                        target=target, service=service, ingress=ingress, route=route, interval=interval,
                        variables=dict(variables) if variables is not None else None)


def metric_interval(metric: Mapping[str, Any], *, builtin: bool) -> str:
    """The ``{{ interval }}`` of a Canary metric: as written; a built-in without one gets ``1m``
    (``runBuiltinMetricChecks``), a MetricTemplate without one renders it empty (``runMetricChecks``).

    >>> metric_interval({}, builtin=True), metric_interval({}, builtin=False), metric_interval({"interval": "30s"}, builtin=False)
    ('1m', '', '30s')
    """
    value = metric.get("interval")
    return str(value) if value else (DEFAULT_METRIC_INTERVAL if builtin else "")


def trim_query(query: str) -> str:
    """Every run of whitespace as one space, as Flagger's Prometheus provider sends a query (``trimQuery``).

    >>> trim_query("\\n\\tsum(\\n\\t\\trate(x[1m])\\n\\t) \\n\\t* 100")
    ' sum( rate(x[1m]) ) * 100'
    """
    return re.sub(r"[\t\n\f\r ]+", " ", query)


_SPACE = " \t\r\n"


def _go_actions(text: str) -> list[tuple[str, str]]:
    """``text`` as ("text", s) and ("action", body) pieces, with ``{{-`` / ``-}}`` trimming applied."""
    pieces: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    while True:
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if trim_next:
            chunk = chunk.lstrip(_SPACE)
        body_at = start + 2
        if start >= 0 and text[body_at:body_at + 1] == "-" and text[body_at + 1:body_at + 2] in tuple(_SPACE):
            chunk = chunk.rstrip(_SPACE)
            body_at += 1
        pieces.append(("text", chunk))
        if start < 0:
            return pieces
        end = _action_end(text, body_at)
        body = text[body_at:end]
        trim_next = len(body) >= 2 and body[-1] == "-" and body[-2] in _SPACE
        pieces.append(("action", body[:-1] if trim_next else body))
        pos = end + 2


def _action_end(text: str, i: int) -> int:
    quote = None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif text.startswith("}}", i):
            return i
        i += 1
    raise TemplateError(f"unclosed action in query: {text[max(0, i - 40):]!r}; close it with }}}}")


_FUNCTION = re.compile(r"[^\W\d]\w*")
_VARIABLE = re.compile(r"variables((?:\.[^\W\d]\w*)+)")
_INDEX = re.compile(r'index\s+variables\s+("(?:[^"\\]|\\.)*")')


def render_flagger(text: str, model: FlaggerModel) -> str:
    """``text`` rendered over ``model`` as Flagger's ``RenderQuery`` renders it (not yet trimmed)."""
    return "".join(p if kind == "text" else _evaluate(p.strip(), model) for kind, p in _go_actions(text))


def render_flagger_query(text: str, *, name: str, namespace: str, target: str, service: str, ingress: str,
                         route: str, interval: str, variables: Mapping[str, str] | None = None) -> str:
    """``text`` with Flagger's placeholders filled: ``{{ name }}``, ``{{ namespace }}``, ``{{ target }}``,
    ``{{ service }}``, ``{{ ingress }}``, ``{{ route }}``, ``{{ interval }}``, ``{{ variables.KEY }}``
    (also ``{{ index variables "KEY" }}``); ``{{- ... -}}`` trims and ``{{/* */}}`` comments work.

    >>> render_flagger_query('{cluster="{{ variables.cluster }}"}[{{ interval }}]', name="", namespace="",
    ...     target="", service="", ingress="", route="", interval="1m", variables={"cluster": "dev"})
    '{cluster="dev"}[1m]'
    """
    return render_flagger(text, FlaggerModel(name, namespace, target, service, ingress, route, interval, variables))


def _evaluate(action: str, model: FlaggerModel) -> str:
    if action.startswith("/*") and action.endswith("*/"):
        return ""
    allowed = ", ".join(f"{{{{ {f} }}}}" for f in FLAGGER_FUNCTIONS[:-1]) + ", {{ variables.KEY }}"
    if _FUNCTION.fullmatch(action) and action in FLAGGER_FUNCTIONS:
        if action == "variables":
            entries = model.variables or {}
            return "map[" + " ".join(f"{k}:{entries[k]}" for k in sorted(entries)) + "]"
        return str(getattr(model, action))
    if m := _VARIABLE.fullmatch(action):
        keys = m.group(1).split(".")[1:]
        if len(keys) > 1:
            raise TemplateError(f"{{{{ {action} }}}}: a template variable is a string; it has no field {keys[1]!r}")
        if model.variables is None or keys[0] not in model.variables:
            given = ", ".join(sorted(model.variables or {})) or "(none)"
            raise TemplateError(f"{{{{ {action} }}}}: the metric's templateVariables have no {keys[0]!r}; "
                                f"they give: {given}")
        return model.variables[keys[0]]
    if m := _INDEX.fullmatch(action):
        return (model.variables or {}).get(json.loads(m.group(1)), "")  # Go's index: missing key is ""
    why = ("Flagger renders with no data, so a field like .Namespace fails" if action.startswith(".")
           else "unknown placeholder" if _FUNCTION.fullmatch(action) else "an action not rendered here")
    raise TemplateError(f"{{{{ {action} }}}}: {why}; Flagger's query templates know {allowed}")
