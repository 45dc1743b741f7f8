"""Argo Rollouts ``AnalysisTemplate`` / ``ClusterAnalysisTemplate``: the metrics an analysis
names, as one :class:`~deploysim.plan.AnalysisSpec` with a rehearsal stand-in per metric and
the metric's own definition for a cluster run.

What a metric's query measures in the simulator is read by :mod:`deploysim.manifests.queries`;
the definition (:class:`~deploysim.analysis.metrics.MetricDef`) keeps the provider's fields as
written, and the Rollout's ``args`` merged with the templates' as Argo merges them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from deploysim.analysis.metrics import WEB_METHODS, Arg, MetricDef, MetricSource
from deploysim.manifests.documents import Catalog, Reader
from deploysim.manifests.queries import (
    bounds_to_check,
    condition_bounds,
    query_window,
    read_bounds_as_percent,
    read_query,
)
from deploysim.plan import AnalysisSpec, Check

PROVIDERS = ("prometheus", "web", "datadog", "newRelic", "wavefront", "kayenta", "job", "cloudWatch",
             "graphite", "influxdb", "skywalking", "plugin")


@dataclass
class _Metric:
    name: str
    path: str
    interval: float | None
    count: int | None
    initial_delay: float
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    check: Check | None
    window: float | None
    dry_run: bool = False
    definition: MetricDef | None = None
    foreign: str = ""

    @property
    def span(self) -> float:
        if self.count is None and self.interval is not None:
            return float("inf")
        return self.initial_delay + (self.interval or self.window or 60.0) * (self.count or 1)


def _dry_run_patterns(r: Reader, value: Any, path: str) -> list[str]:
    patterns = []
    for i, item in enumerate(r.items(value, path)):
        entry = r.mapping(item, f"{path}[{i}]")
        patterns.append(r.name(entry, "metricName", f"{path}[{i}]", "name the metric (or a pattern like .*)"))
    return patterns


def _matches(patterns: list[str], name: str) -> bool:
    for p in patterns:
        try:
            if re.fullmatch(p, name):
                return True
        except re.error:
            if p == name:
                return True
    return False


def analysis_from_templates(r: Reader, refs: dict[str, Any], path: str, catalog: Catalog,
                            name: str, extra: tuple[str, ...] = ()) -> AnalysisSpec:
    """One AnalysisSpec from the templates a rollout names (an analysis step, background
    analysis or blue-green pre/post-promotion analysis).

    Every metric's check joins one spec; the metrics' timing must agree to be exact, and the
    slowest metric sets it when they do not (named in a warning). The strictest limits win.
    """
    r.unused(refs, path, ("templates", "dryRun", "args", *extra), quiet=("analysisRunMetadata",))
    if refs.get("measurementRetention") is not None:
        r.warn(f"{path}.measurementRetention", "ignored: every measurement is kept in the record")
    rollout_args = _args(r, refs.get("args"), f"{path}.args", rollout=r.doc.data)
    template_args: list[Arg] = []
    items = r.items(refs.get("templates"), f"{path}.templates")
    if not items:
        r.fail(f"{path}.templates", "missing; name at least one AnalysisTemplate (templateName)")
    dry = _dry_run_patterns(r, refs.get("dryRun"), f"{path}.dryRun")
    metrics: list[_Metric] = []
    notes: list[str] = []
    for i, item in enumerate(items):
        tpath = f"{path}.templates[{i}]"
        ref = r.mapping(item, tpath)
        tname = r.name(ref, "templateName", tpath, "name the AnalysisTemplate to run")
        cluster = r.boolean(ref, "clusterScope", tpath, False)
        kind = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
        tr = Reader(catalog.template(r, kind, tname, f"{tpath}.templateName"), r.warnings)
        tspec = tr.doc.data.get("spec") if isinstance(tr.doc.data.get("spec"), dict) else {}
        declared = _args(tr, tspec.get("args"), "spec.args")
        template_args.extend(declared)
        metrics.extend(_template_metrics(tr, dry, notes, _known_values(declared, rollout_args)))
    simulated = [m for m in metrics if not m.dry_run]
    judged = [m for m in simulated if m.check is not None]
    timing_from = max(judged or simulated or metrics, key=lambda m: m.span)
    differ = sorted({m.name for m in judged if (m.interval, m.count, m.initial_delay)
                     != (timing_from.interval, timing_from.count, timing_from.initial_delay)})
    if differ:
        r.warn(path, f"metrics {', '.join(differ)} have their own interval/count; the rehearsal measures "
               f"every metric on {timing_from.name}'s schedule")
    interval = timing_from.interval or timing_from.window or 60.0
    count = timing_from.count if timing_from.interval is not None else (timing_from.count or 1)
    checks = tuple(m.check for m in simulated if m.check is not None)
    pool = simulated or metrics
    return AnalysisSpec(
        name=name, interval=interval, count=count, initial_delay=timing_from.initial_delay,
        failure_limit=min((m.failure_limit for m in pool if m.failure_limit >= 0), default=-1),
        inconclusive_limit=min(m.inconclusive_limit for m in pool),
        consecutive_error_limit=min(m.consecutive_error_limit for m in pool),
        dry_run=bool(metrics) and not simulated, checks=checks, not_simulated=tuple(notes),
        metrics=tuple(m.definition for m in metrics if m.definition is not None),
        args=tuple(_merged_args(r, path, template_args, rollout_args)),
        foreign_metrics=tuple(m.foreign for m in metrics if m.foreign and not m.dry_run),
    )


def _args(r: Reader, value: Any, path: str, rollout: dict[str, Any] | None = None) -> list[Arg]:
    """Argo analysis args as written: ``{name, value}`` or ``{name, valueFrom: {secretKeyRef:
    {name, key}} | {fieldRef: {fieldPath}}}``; a template's args may leave the value out.

    A ``fieldRef`` of the Rollout's args is read from the Rollout document now (Argo reads the
    Rollout object it runs; here that is the manifest); a Secret is read when the run starts."""
    out = []
    for i, item in enumerate(r.items(value, path)):
        apath = f"{path}[{i}]"
        entry = r.mapping(item, apath)
        name = r.name(entry, "name", apath, "every arg needs a name")
        r.unused(entry, apath, ("name", "value", "valueFrom"))
        source = entry.get("valueFrom")
        if source is None:
            raw = entry.get("value")
            out.append(Arg(name, None if raw is None else str(raw)))
            continue
        source = r.mapping(source, f"{apath}.valueFrom")
        r.unused(source, f"{apath}.valueFrom", ("secretKeyRef", "fieldRef", "podTemplateHashValue"))
        if source.get("podTemplateHashValue") is not None:
            # a run on a plain cluster has no Rollout ReplicaSets whose hash the arg would name
            r.fail(f"{apath}.valueFrom.podTemplateHashValue",
                   f"got {source['podTemplateHashValue']!r}; not available without the Argo controller: give the "
                   "arg a value (e.g. a label the candidate's pods carry)")
        if source.get("secretKeyRef") is not None:
            ref = r.mapping(source["secretKeyRef"], f"{apath}.valueFrom.secretKeyRef")
            out.append(Arg(name, secret=(r.name(ref, "name", f"{apath}.valueFrom.secretKeyRef", "the Secret's name"),
                                         r.name(ref, "key", f"{apath}.valueFrom.secretKeyRef", "the key in the Secret"))))
        elif source.get("fieldRef") is not None:
            ref = r.mapping(source["fieldRef"], f"{apath}.valueFrom.fieldRef")
            field_path = r.name(ref, "fieldPath", f"{apath}.valueFrom.fieldRef",
                                "a field of the Rollout, e.g. metadata.labels['app']")
            if rollout is None:
                out.append(Arg(name, field_path=field_path))
                continue
            from deploysim.analysis.templating import field_value

            try:
                out.append(Arg(name, field_value(rollout, field_path)))
            except (KeyError, ValueError) as exc:
                r.fail(f"{apath}.valueFrom.fieldRef.fieldPath", f"got {field_path!r}; {exc}")
        else:
            r.fail(f"{apath}.valueFrom", "needs secretKeyRef or fieldRef")
    return out


def _merged_args(r: Reader, path: str, template: list[Arg], rollout: list[Arg]) -> list[Arg]:
    from deploysim.analysis.templating import TemplateError, merge_args

    try:
        return list(merge_args(template, rollout))
    except (ValueError, TemplateError) as exc:
        r.fail(f"{path}.args", str(exc))
        raise  # r.fail raises; this keeps type checkers content


def _known_values(declared: list[Arg], rollout: list[Arg]) -> dict[str, str]:
    """The args whose values are known before the run: the Rollout's values over the
    template's defaults (a Secret is read only when the run starts)."""
    values = {a.name: a.value for a in declared if a.value is not None and a.secret is None}
    names = {a.name for a in declared}
    values.update({a.name: a.value for a in rollout if a.value is not None and a.name in names})
    return {k: v for k, v in values.items() if v is not None}


#: a metric's timing and limits, which Argo fills from ``{{args.*}}`` before it reads them
TIMING_FIELDS = ("interval", "initialDelay", "count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit")


def _resolve_timing(r: Reader, m: dict[str, Any], path: str, values: dict[str, str]) -> dict[str, Any]:
    """``m`` with ``{{args.*}}`` in its timing and limits filled (Argo resolves args over the
    whole metric before it runs it, ``analysisutil.ResolveArgs``); a whole number written as
    text is read as one (these fields are IntOrString in Argo)."""
    from deploysim.analysis.templating import TemplateError, substitute_args

    out = dict(m)
    for key in TIMING_FIELDS:
        value = m.get(key)
        if not isinstance(value, str) or "{{" not in value:
            continue
        try:
            text = substitute_args(value, values)
        except TemplateError as exc:
            r.fail(f"{path}.{key}", f"got {value!r}; {exc} (a value the Rollout gives, not a Secret)")
        out[key] = int(text) if key not in ("interval", "initialDelay") and text.strip().lstrip("-").isdigit() else text
    return out


def _template_metrics(r: Reader, dry: list[str], notes: list[str],
                      values: dict[str, str] | None = None) -> list[_Metric]:
    doc = r.doc
    spec = r.mapping(doc.data.get("spec"), "spec")
    r.unused(spec, "spec", ("metrics", "dryRun"), quiet=("args", "measurementRetention"))
    dry = dry + _dry_run_patterns(r, spec.get("dryRun"), "spec.dryRun")
    raw = r.items(spec.get("metrics"), "spec.metrics")
    if not raw:
        r.fail("spec.metrics", f"{doc.kind} {doc.name!r} has no metrics")
    out = []
    for i, item in enumerate(raw):
        path = f"spec.metrics[{i}]"
        m = _resolve_timing(r, r.mapping(item, path), path, values or {})
        name = r.name(m, "name", path, "every metric needs a name")
        interval = r.duration(m["interval"], f"{path}.interval") if m.get("interval") is not None else None
        initial = r.duration(m["initialDelay"], f"{path}.initialDelay") if m.get("initialDelay") is not None else 0.0
        count = r.integer(m, "count", path, None, lo=0)
        if count == 0:
            count = None  # Argo: 0 is unset
        if interval is None and count is not None and count > 1:
            r.fail(f"{path}.interval", f"missing; count {count} needs an interval between measurements")
        failure_limit = r.integer(m, "failureLimit", path, 0, lo=-1)
        inconclusive_limit = r.integer(m, "inconclusiveLimit", path, 0, lo=0)
        error_limit = r.integer(m, "consecutiveErrorLimit", path, 4, lo=0)
        success = r.string(m, "successCondition", path)
        failure = r.string(m, "failureCondition", path)
        provider = r.mapping(m.get("provider"), f"{path}.provider")
        kinds = [k for k in provider]
        if len(kinds) != 1:
            r.fail(f"{path}.provider", f"got {kinds or 'nothing'}; needs exactly one of {', '.join(PROVIDERS)}")
        if kinds[0] not in PROVIDERS:
            r.fail(f"{path}.provider", f"unknown provider {kinds[0]!r}; allowed: {', '.join(PROVIDERS)}")
        r.unused(m, path, ("name", "interval", "initialDelay", "count", "failureLimit", "inconclusiveLimit",
                           "consecutiveErrorLimit", "successCondition", "failureCondition", "provider"))
        check, window, why = _argo_metric_check(r, kinds[0], provider[kinds[0]], f"{path}.provider.{kinds[0]}",
                                                name, success, failure)
        definition = _argo_definition(r, kinds[0], provider[kinds[0]], f"{path}.provider.{kinds[0]}", name,
                                      success, failure, check, why)
        label = f"{doc.kind} {doc.name}: metric {name}"
        if why:
            notes.append(f"{label}: {why}")
            r.warn(path, f"metric {name!r} is not simulated: {why}")
        is_dry = _matches(dry, name)
        if is_dry and check is not None:
            r.warn(path, f"metric {name!r} is a dry run: measured, never failing the rollout")
        if definition is not None and is_dry:
            definition = replace(definition, dry_run=True)
        if check is not None:
            check = replace(check, stands_for=name)
        foreign = "" if definition is not None else f"{name} ({kinds[0]})"
        out.append(_Metric(name, path, interval, count, initial, failure_limit, inconclusive_limit,
                           error_limit, None if is_dry else check, window, is_dry, definition, foreign))
    return out


def _argo_definition(r: Reader, provider: str, body: Any, path: str, name: str, success: str | None,
                     failure: str | None, check: Check | None, why: str) -> MetricDef | None:
    """The metric as a cluster run evaluates it: Argo's Prometheus provider (``address``,
    ``query``, ``timeout``, ``headers``, ``insecure``) or web provider (``url``, ``method``,
    ``headers``, ``body`` / ``jsonBody``, ``jsonPath``, ``timeoutSeconds``, ``insecure``);
    None for a provider deploysim does not run."""
    if provider not in ("prometheus", "web"):
        return None
    body = r.mapping(body, path)
    headers = []
    for i, item in enumerate(r.items(body.get("headers"), f"{path}.headers")):
        h = r.mapping(item, f"{path}.headers[{i}]")
        headers.append((r.name(h, "key", f"{path}.headers[{i}]", "the header's name"), str(h.get("value", ""))))
    stand_in = check.describe() if check is not None else f"nothing: {why}"
    if provider == "prometheus":
        r.unused(body, path, ("query", "address", "timeout", "headers", "insecure"),
                 quiet=("authentication",))
        if body.get("authentication") is not None:
            r.warn(f"{path}.authentication", "sigv4 / oauth2 are not run by deploysim; give a header or "
                   "the run's prometheus_token")
        timeout = r.integer(body, "timeout", path, None, lo=1)
        source = MetricSource("prometheus", query=str(body["query"]), address=r.string(body, "address", path),
                              headers=tuple(headers), timeout=None if timeout is None else float(timeout),
                              insecure=r.boolean(body, "insecure", path, False))
    else:
        r.unused(body, path, ("url", "method", "headers", "body", "jsonBody", "jsonPath", "timeoutSeconds",
                              "insecure"))
        url = r.name(body, "url", path, "a web metric needs the URL it reads")
        method = str(body.get("method") or "GET").upper()
        if method not in WEB_METHODS:
            r.fail(f"{path}.method", f"got {body.get('method')!r}; allowed: {', '.join(WEB_METHODS)}")
        payload = body.get("body")
        if body.get("jsonBody") is not None:
            import json

            payload = json.dumps(body["jsonBody"])
            headers.append(("Content-Type", "application/json"))
        timeout = r.integer(body, "timeoutSeconds", path, None, lo=1)
        source = MetricSource("web", url=url, method=method, headers=tuple(headers),
                              body=None if payload is None else str(payload),
                              json_path=r.string(body, "jsonPath", path),
                              timeout=None if timeout is None else float(timeout),
                              insecure=r.boolean(body, "insecure", path, False))
    return MetricDef(name, source, dialect="argo", success_condition=success, failure_condition=failure,
                     stand_in=stand_in)


def _argo_metric_check(r: Reader, provider: str, body: Any, path: str, name: str,
                       success: str | None, failure: str | None) -> tuple[Check | None, float | None, str]:
    """(check, query window, reason not simulated)."""
    body = r.mapping(body, path)
    if provider == "prometheus":
        query = r.string(body, "query", path)
        if not query:
            r.fail(f"{path}.query", "missing; a prometheus metric needs a query")
        measures, why = read_query(query)
        window = query_window(query)
    elif provider == "web":
        text = " ".join(str(body.get(k, "")) for k in ("url", "jsonPath")) + " " + name
        measures, why = read_query(text, web=True)
        window = None
    else:
        return None, None, f"the {provider} provider is not simulated"
    if measures is None:
        return None, window, why
    if not success and not failure:
        return None, window, "no successCondition or failureCondition: every measurement passes"
    bounds = condition_bounds(success, failure=False) if success else None
    if success and bounds is None:
        return None, window, f"successCondition {success!r} is not a bound on result"
    if failure:
        fb = condition_bounds(failure, failure=True)
        if fb is None:
            return None, window, f"failureCondition {failure!r} is not a bound on result"
        if bounds is None:
            bounds = fb
        elif fb != bounds:
            r.warn(path, f"metric {name!r}: results between successCondition and failureCondition are "
                   "Inconclusive in Argo; the rehearsal judges them by successCondition")
    lo, hi = bounds  # type: ignore[misc]
    measures = read_bounds_as_percent(measures, lo, hi)
    if measures.note:
        r.warn(path, f"metric {name!r}: {measures.note}")
    return bounds_to_check(measures, lo, hi), window, ""
