"""Argo Rollouts: a ``Rollout`` (canary or blue-green) and the ``AnalysisTemplate`` /
``ClusterAnalysisTemplate`` objects it names, as a plan.

A canary's ``steps`` become the plan's steps one for one (``setWeight``, ``pause``,
``setCanaryScale``, ``analysis``); a canary without steps replaces pods like a rolling update,
as Argo does. A blue-green rollout scales the preview, runs its pre-promotion analysis, waits
for promotion, switches, runs its post-promotion analysis and keeps the old colour for
``scaleDownDelaySeconds``. Every metric of the templates an analysis names joins one
:class:`~deploysim.plan.AnalysisSpec`; what a metric's query measures is read by
:mod:`deploysim.manifests.queries`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from deploysim import plan as steps
from deploysim.manifests.deployment import fenceposts, workload_timing
from deploysim.manifests.documents import WEIGHT_HELP, Catalog, ImportedRollout, Reader
from deploysim.manifests.queries import (
    bounds_to_check,
    classify_query,
    condition_bounds,
    query_window,
    read_bounds_as_percent,
)
from deploysim.plan import AnalysisSpec, Check, Plan
from deploysim.rules.canary import percent_for_replicas

CANARY_STEP_TYPES = ("setWeight", "pause", "setCanaryScale", "analysis", "experiment",
                     "setHeaderRoute", "setMirrorRoute", "plugin")
PROVIDERS = ("prometheus", "web", "datadog", "newRelic", "wavefront", "kayenta", "job", "cloudWatch",
             "graphite", "influxdb", "skywalking", "plugin")


def read_argo_rollout(r: Reader, catalog: Catalog) -> ImportedRollout:
    """An Argo ``Rollout`` (``argoproj.io/v1alpha1``): a canary or blue-green strategy, with
    the AnalysisTemplates it names taken from ``catalog``."""
    doc = r.doc
    spec = r.mapping(doc.data.get("spec"), "spec")
    replicas, min_ready, deadline = workload_timing(r, spec)
    deadline_abort = r.boolean(spec, "progressDeadlineAbort", "spec", False)
    r.unused(spec, "spec", ("replicas", "minReadySeconds", "progressDeadlineSeconds", "progressDeadlineAbort",
                            "strategy"),
             quiet=("selector", "template", "workloadRef", "revisionHistoryLimit", "analysis"))
    strategy = r.mapping(spec.get("strategy"), "spec.strategy")
    chosen = [k for k in ("canary", "blueGreen") if k in strategy]
    if len(chosen) != 1:
        r.fail("spec.strategy", f"got {sorted(strategy) or 'nothing'}; needs exactly one of canary, blueGreen")
    r.unused(strategy, "spec.strategy", chosen)
    common = {"min_ready_seconds": float(min_ready), "progress_deadline_seconds": float(deadline),
              "progress_deadline_abort": deadline_abort}
    source = f"Rollout {doc.name}"
    if chosen[0] == "canary":
        return _argo_canary(r, strategy["canary"], catalog, replicas, common, source)
    return _argo_blue_green(r, strategy["blueGreen"], catalog, replicas, common, source)


def _argo_canary(r: Reader, value: Any, catalog: Catalog, replicas: int | None,
                 common: dict[str, Any], source: str) -> ImportedRollout:
    path = "spec.strategy.canary"
    canary = r.mapping(value, path)
    surge, unavailable = fenceposts(r, canary, path)
    router = canary.get("trafficRouting") is not None
    r.unused(canary, path, ("steps", "maxSurge", "maxUnavailable", "trafficRouting", "analysis"),
             quiet=("canaryService", "stableService", "canaryMetadata", "stableMetadata", "pingPong"))
    planned: list[tuple[str, Any, str]] = []  # (what, value, path)
    for i, raw in enumerate(r.items(canary.get("steps"), f"{path}.steps")):
        spath = f"{path}.steps[{i}]"
        step = r.mapping(raw, spath)
        kinds = [k for k in step if k in CANARY_STEP_TYPES]
        unknown = [k for k in step if k not in CANARY_STEP_TYPES]
        if unknown:
            r.fail(spath, f"unknown step type {unknown[0]!r}; allowed: {', '.join(CANARY_STEP_TYPES)}")
        if len(kinds) != 1:
            r.fail(spath, f"got {kinds or 'an empty step'}; a step is exactly one of {', '.join(CANARY_STEP_TYPES)}")
        kind = kinds[0]
        body = step[kind]
        if kind == "setWeight":
            w = body
            if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 100:
                r.fail(f"{spath}.setWeight", f"got {w!r}; {WEIGHT_HELP}")
            planned.append(("weight", w, spath))
        elif kind == "pause":
            if body is None or not isinstance(body, dict):
                r.fail(f"{spath}.pause", f"got {body!r}; pause: {{}} waits for promotion, "
                       "pause: {duration: 10m} waits ten minutes")
            r.unused(body, f"{spath}.pause", ("duration",))
            seconds = None
            if body.get("duration") is not None:
                seconds = r.duration(body["duration"], f"{spath}.pause.duration")
            planned.append(("pause", seconds, spath))
        elif kind == "setCanaryScale":
            scale = r.mapping(body, f"{spath}.setCanaryScale")
            given = [k for k in ("replicas", "weight", "matchTrafficWeight") if k in scale]
            r.unused(scale, f"{spath}.setCanaryScale", ("replicas", "weight", "matchTrafficWeight"))
            if len(given) != 1:
                r.fail(f"{spath}.setCanaryScale", "needs exactly one of replicas, weight, matchTrafficWeight")
            if given[0] == "matchTrafficWeight":
                if scale["matchTrafficWeight"] is not True:
                    r.fail(f"{spath}.setCanaryScale.matchTrafficWeight", "must be true when set")
                planned.append(("scale", None, spath))
            elif given[0] == "weight":
                w = r.integer(scale, "weight", f"{spath}.setCanaryScale", None, lo=0)
                planned.append(("scale", w, spath))
            else:
                n = r.integer(scale, "replicas", f"{spath}.setCanaryScale", None, lo=0)
                planned.append(("scale_replicas", n, spath))
            if not router:
                r.warn(f"{spath}.setCanaryScale", "needs trafficRouting; Argo Rollouts ignores it here, "
                       "and so does the rehearsal")
                planned.pop()
        elif kind == "analysis":
            refs = r.mapping(body, f"{spath}.analysis")
            spec = analysis_from_templates(r, refs, f"{spath}.analysis", catalog, f"step-{i + 1}")
            if spec.count is None:
                r.warn(f"{spath}.analysis", "a metric runs indefinitely (interval without count); "
                       "the step waits until the analysis fails")
            planned.append(("analysis", spec, spath))
        elif kind == "experiment":
            exp = r.mapping(body, f"{spath}.experiment")
            seconds = r.duration(exp["duration"], f"{spath}.experiment.duration") if exp.get("duration") else None
            r.warn(f"{spath}.experiment", "experiments are not simulated"
                   + ("; the rehearsal holds for its duration" if seconds else "; the step is skipped"))
            if seconds:
                planned.append(("pause", seconds, spath))
        else:
            r.warn(f"{spath}.{kind}", "not simulated; the step is skipped")
    background = canary.get("analysis")
    bg_spec: AnalysisSpec | None = None
    bg_start = 0
    if background is not None:
        bpath = f"{path}.analysis"
        refs = r.mapping(background, bpath)
        bg_spec = analysis_from_templates(r, refs, bpath, catalog, "background", extra=("startingStep",))
        bg_start = r.integer(refs, "startingStep", bpath, 0, lo=0) or 0
        if bg_start > len(planned):
            r.fail(f"{bpath}.startingStep", f"got {bg_start}; the canary has {len(planned)} steps")

    strategy = {"kind": "canary", "max_surge": surge, "max_unavailable": unavailable, "traffic_router": router,
                "min_ready_seconds": common["min_ready_seconds"],
                "progress_deadline_seconds": common["progress_deadline_seconds"]}
    no_steps = not planned

    def build(n: int, judge: str) -> Plan:
        bg = replace(bg_spec, judge=judge) if bg_spec is not None else None
        if no_steps:
            # Argo: a canary without steps replaces pods like a rolling update
            return Plan(strategy="rolling", replicas=n, steps=(steps.RollingUpdate(),), routing="replica_ratio",
                        max_surge=surge, max_unavailable=unavailable, background=bg, **common,
                        warnings=(f"{source}: {path}.steps: none; rehearsed as a rolling update",) if router else ())
        sequence: list[steps.Step] = []
        for what, value, _ in planned:
            if what == "weight":
                sequence.append(steps.SetWeight(value))
            elif what == "pause":
                sequence.append(steps.Pause(value))
            elif what == "scale":
                sequence.append(steps.SetCanaryScale(value))
            elif what == "scale_replicas":
                # a whole number of pods as a percentage that gives back exactly that many
                sequence.append(steps.SetCanaryScale(percent_for_replicas(value, n)))
            else:
                sequence.append(steps.Analyze(replace(value, judge=judge)))
        if not any(isinstance(s, steps.SetWeight) and s.weight == 100 for s in sequence):
            sequence.append(steps.SetWeight(100))
        return Plan(strategy="canary", replicas=n, steps=tuple(sequence), routing="router" if router else "replica_ratio",
                    max_surge=surge, max_unavailable=unavailable, background=bg, background_start=bg_start,
                    **common)

    kind = "rolling" if no_steps else "canary"
    strategy["kind"] = kind
    return ImportedRollout(kind, source, replicas, strategy, build, r.warnings)


def _argo_blue_green(r: Reader, value: Any, catalog: Catalog, replicas: int | None,
                     common: dict[str, Any], source: str) -> ImportedRollout:
    path = "spec.strategy.blueGreen"
    bg = r.mapping(value, path)
    r.name(bg, "activeService", path, "a blue-green rollout needs the service it switches")
    preview_service = r.string(bg, "previewService", path)
    auto = r.boolean(bg, "autoPromotionEnabled", path, True)
    auto_seconds = r.integer(bg, "autoPromotionSeconds", path, None, lo=0)
    delay = r.integer(bg, "scaleDownDelaySeconds", path, 30, lo=0)
    preview_count = r.integer(bg, "previewReplicaCount", path, None, lo=0)
    if preview_count == 0:
        r.fail(f"{path}.previewReplicaCount", "got 0; the preview needs at least one pod")
    pre = post = None
    if bg.get("prePromotionAnalysis") is not None:
        pre = analysis_from_templates(r, r.mapping(bg["prePromotionAnalysis"], f"{path}.prePromotionAnalysis"),
                                      f"{path}.prePromotionAnalysis", catalog, "pre-promotion")
    if bg.get("postPromotionAnalysis") is not None:
        post = analysis_from_templates(r, r.mapping(bg["postPromotionAnalysis"], f"{path}.postPromotionAnalysis"),
                                       f"{path}.postPromotionAnalysis", catalog, "post-promotion")
    if not auto and auto_seconds is not None:
        r.warn(f"{path}.autoPromotionSeconds", "ignored because autoPromotionEnabled is false (as Argo does)")
    r.unused(bg, path, ("activeService", "previewService", "autoPromotionEnabled", "autoPromotionSeconds",
                        "scaleDownDelaySeconds", "previewReplicaCount", "prePromotionAnalysis",
                        "postPromotionAnalysis"),
             quiet=("activeMetadata", "previewMetadata", "scaleDownDelayRevisionLimit"))

    def build(n: int, judge: str) -> Plan:
        preview = n if preview_count is None else min(preview_count, n)
        sequence: list[steps.Step] = [steps.ScaleCandidate(preview)]
        if pre is not None:
            sequence.append(steps.Analyze(replace(pre, judge=judge)))
        if not auto:
            sequence.append(steps.Pause(None))
        elif auto_seconds:
            sequence.append(steps.Pause(float(auto_seconds)))
        if preview < n:
            sequence.append(steps.ScaleCandidate(n))
        sequence.append(steps.SwitchTraffic())
        if post is not None:
            sequence.append(steps.Analyze(replace(post, judge=judge)))
        sequence.append(steps.ScaleDownStable(float(delay)))
        return Plan(strategy="blue-green", replicas=n, steps=tuple(sequence), routing="active",
                    scale_down_delay=float(delay), **common)

    strategy: dict[str, Any] = {
        "kind": "blue-green", "preview_replicas": preview_count,
        "auto_promotion_seconds": (float(auto_seconds or 0) if auto else None),
        "scale_down_delay_seconds": float(delay), "pre_promotion_analysis": pre is not None,
        "post_promotion_analysis": post is not None, "min_ready_seconds": common["min_ready_seconds"],
        "progress_deadline_seconds": common["progress_deadline_seconds"],
    }
    if not preview_service:
        strategy["preview_rps"] = 0.0  # no preview service, no smoke tests through it
    return ImportedRollout("blue-green", source, replicas, strategy, build, r.warnings)


# --- Argo analysis templates --------------------------------------------------------------------


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
    r.unused(refs, path, ("templates", "dryRun", *extra), quiet=("args", "measurementRetention", "analysisRunMetadata"))
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
        metrics.extend(_template_metrics(tr, dry, notes))
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
    )


def _template_metrics(r: Reader, dry: list[str], notes: list[str]) -> list[_Metric]:
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
        m = r.mapping(item, path)
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
        label = f"{doc.kind} {doc.name}: metric {name}"
        if why:
            notes.append(f"{label}: {why}")
            r.warn(path, f"metric {name!r} is not simulated: {why}")
        is_dry = _matches(dry, name)
        if is_dry and check is not None:
            r.warn(path, f"metric {name!r} is a dry run: measured, never failing the rollout")
        out.append(_Metric(name, path, interval, count, initial, failure_limit, inconclusive_limit,
                           error_limit, None if is_dry else check, window, is_dry))
    return out


def _argo_metric_check(r: Reader, provider: str, body: Any, path: str, name: str,
                       success: str | None, failure: str | None) -> tuple[Check | None, float | None, str]:
    """(check, query window, reason not simulated)."""
    body = r.mapping(body, path)
    if provider == "prometheus":
        query = r.string(body, "query", path)
        if not query:
            r.fail(f"{path}.query", "missing; a prometheus metric needs a query")
        measures = classify_query(query)
        window = query_window(query)
    elif provider == "web":
        text = " ".join(str(body.get(k, "")) for k in ("url", "jsonPath")) + " " + name
        measures = classify_query(text, web=True)
        window = None
    else:
        return None, None, f"the {provider} provider is not simulated"
    if measures is None:
        return None, window, "its query measures nothing the simulator models (error rate, latency, request rate)"
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
