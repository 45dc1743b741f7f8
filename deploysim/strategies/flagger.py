"""Flagger's ``Canary`` as a plan: its weight progression, its ticks and its failed-checks rule.

Flagger advances a canary on a timer, one tick every ``analysis.interval``
(``pkg/controller/scheduler.go``):

- tick 0: a new revision is seen; the canary Deployment is scaled up (to full size);
- tick 1: no traffic yet, so no metrics: pre-rollout checks, then the first weight;
- each later tick: the metric checks run over the last interval. A failure adds one to
  ``failedChecks`` and halts advancement (the weight stays); a pass advances the weight by
  ``stepWeight`` (or to the next of ``stepWeights``) while it is below ``maxWeight``, and at
  or past it promotes. ``failedChecks`` never resets during a run; reaching ``threshold``
  rolls back (100% to the primary, canary scaled to zero);
- promotion: the primary takes the canary's template, traffic goes back to the primary
  (``stepWeightPromotion`` per tick, or all at once), and the canary is scaled to zero.

So a healthy canary promotes in about ``interval × (steps + 3)`` (the documented
``interval × maxWeight / stepWeight``, plus the first tick and the two ticks of
promotion), and a failing one rolls back ``interval × threshold`` after its first request.

The plan says this in the shared vocabulary: ``SetCanaryScale(100)`` (full-size canary),
``Pause(interval)`` for tick 1, then per weight ``SetWeight(w)`` and an ``Analyze`` that
needs one passing measurement (``count_successes``), whose failed checks come out of one
budget shared over the rollout (``failure_budget``, limit ``threshold - 1``).

Flagger checks the threshold at the start of the tick after the failure that reaches it,
so a real rollback comes about one interval later than here; the documented
``interval × threshold`` is what the rehearsal reproduces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from deploysim.plan import (
    AnalysisSpec,
    Analyze,
    Check,
    Pause,
    Plan,
    RollingUpdate,
    ScaleCandidate,
    ScaleDownStable,
    SetCanaryScale,
    SetWeight,
    Step,
    SwitchTraffic,
)
from deploysim.strategies.manifests import (
    Document,
    ImportedRollout,
    Measures,
    Reader,
    bounds_to_check,
    classify_query,
    deployment_settings,
)

TOTAL_WEIGHT = 100
DEFAULT_INTERVAL = 60.0
MIN_INTERVAL = 10.0
DEFAULT_ITERATIONS_KUBERNETES = 10
BUDGET = "flagger"
GATE_HOOKS = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion")
HOOK_TYPES = ("pre-rollout", "rollout", "confirm-rollout", "confirm-traffic-increase", "confirm-promotion",
              "post-rollout", "rollback", "event")


def max_weight(max_weight_: int = 0, step_weights: Sequence[int] = ()) -> int:
    """Flagger's maxWeight: the last of stepWeights (at most 100), else maxWeight, else 100."""
    if step_weights:
        return min(TOTAL_WEIGHT, step_weights[-1])
    return max_weight_ if max_weight_ > 0 else TOTAL_WEIGHT


def next_step_weight(weight: int, step_weight: int = 0, step_weights: Sequence[int] = ()) -> int:
    """How much Flagger adds to the canary weight at the next passing tick.

    ``stepWeight`` wins when set; with ``stepWeights`` the step leads to the next listed
    weight (never past 100). From 20 with stepWeights [10, 20, 50]: 30.
    """
    if step_weight > 0 or not step_weights:
        return step_weight
    room = TOTAL_WEIGHT - weight
    if room == 0:
        return 1  # at 100 any step promotes
    if weight == 0:
        return min(room, step_weights[0])
    for here, there in zip(step_weights, step_weights[1:], strict=False):
        if here == weight:
            return min(room, there - weight)
    return room


def flagger_weights(max_weight_: int = 0, step_weight: int = 0, step_weights: Sequence[int] = ()) -> list[int]:
    """The canary weights Flagger sets, in order, before it promotes.

    The weight grows while it is below maxWeight, so a step can overshoot it:

    >>> flagger_weights(50, 20)
    [20, 40, 60]
    >>> flagger_weights(100, 30)
    [30, 60, 90, 100]
    >>> flagger_weights(step_weights=[1, 5, 10, 20, 50])
    [1, 5, 10, 20, 50]
    >>> flagger_weights(50, 10)
    [10, 20, 30, 40, 50]
    """
    top = max_weight(max_weight_, step_weights)
    weights: list[int] = []
    weight = 0
    while weight < top:
        step = next_step_weight(weight, step_weight, step_weights)
        if step <= 0:
            raise ValueError("the canary weight never grows: set stepWeight or stepWeights")
        weight = min(weight + step, TOTAL_WEIGHT)
        weights.append(weight)
    return weights


def promotion_ticks(last_weight: int, step_weight_promotion: int) -> int:
    """Ticks from promotion to Succeeded: the traffic shift back to the primary
    (``ceil(weight / stepWeightPromotion)`` ticks, one if unset) and the final scale-down.

    >>> promotion_ticks(60, 0), promotion_ticks(50, 20)
    (2, 4)
    """
    shift = 1 if step_weight_promotion <= 0 else math.ceil(last_weight / step_weight_promotion)
    return shift + 1


def flagger_plan(
    replicas: int,
    *,
    interval: float,
    threshold: int,
    weights: Sequence[int] = (),
    iterations: int = 0,
    step_weight_promotion: int = 0,
    checks: Sequence[Check] = (),
    not_simulated: Sequence[str] = (),
    kubernetes: bool = False,
    gates: Sequence[str] = (),
    name: str = "canary",
    judge: str = "threshold",
    progress_deadline_seconds: float = 600.0,
    min_ready_seconds: float = 0.0,
    max_surge: int | str = "25%",
    max_unavailable: int | str = "25%",
    skip_analysis: bool = False,
) -> Plan:
    """The plan for one Flagger canary: progressive weights, or blue/green ``iterations``.

    >>> p = flagger_plan(10, interval=60, threshold=2, weights=[20, 40, 60])
    >>> [s.describe() for s in p.steps][:4]
    ['scale candidate to 100% of replicas', 'pause 1m', 'set weight to 20%', "threshold analysis 'canary at 20%' until 1 pass every 1m on no checks, rollback at 2 failed checks over the rollout"]
    """
    common: dict[str, Any] = dict(replicas=replicas, progress_deadline_seconds=progress_deadline_seconds,
                                  progress_deadline_abort=True, min_ready_seconds=min_ready_seconds)
    if skip_analysis:
        # promoted at tick 1 without analysis: the primary rolls to the new template
        return Plan(strategy="rolling", steps=(Pause(interval), RollingUpdate()), routing="replica_ratio",
                    max_surge=max_surge, max_unavailable=max_unavailable, **common)
    spec = AnalysisSpec(name=name, interval=interval, count=1, failure_limit=max(threshold, 1) - 1,
                        consecutive_error_limit=max(threshold, 1), judge=judge, checks=tuple(checks),
                        not_simulated=tuple(not_simulated), count_successes=True, failure_budget=BUDGET)
    steps: list[Step] = []
    if "confirm-rollout" in gates:
        steps.append(Pause(None))
    if iterations > 0:
        steps += [ScaleCandidate(replicas), Pause(interval)]
        if kubernetes:
            # no traffic shifting: every iteration and the promoting check see test traffic only
            steps.append(Analyze(replace(spec, name=f"{name} iterations", count=iterations + 1)))
            if "confirm-promotion" in gates:
                steps.append(Pause(None))
            steps.append(SwitchTraffic())  # the primary, now running the new template
        else:
            steps.append(Analyze(replace(spec, name=f"{name} iterations", count=iterations)))
            if "confirm-promotion" in gates:
                steps.append(Pause(None))  # Flagger asks before it routes all traffic to the canary
            steps.append(SwitchTraffic())
            steps.append(Analyze(replace(spec, name=f"{name} after switch")))
        steps += [Pause(interval), ScaleDownStable(interval)]
        return Plan(strategy="blue-green", steps=tuple(steps), routing="active", scale_down_delay=interval,
                    **common)
    steps += [SetCanaryScale(100), Pause(interval)]
    for weight in weights:
        if "confirm-traffic-increase" in gates:
            steps.append(Pause(None))
        steps.append(SetWeight(weight))
        steps.append(Analyze(replace(spec, name=f"{name} at {weight}%")))
    if "confirm-promotion" in gates:
        steps.append(Pause(None))
    ticks = promotion_ticks(weights[-1] if weights else TOTAL_WEIGHT, step_weight_promotion)
    steps += [Pause(interval), SetWeight(TOTAL_WEIGHT), Pause(interval * (ticks - 1))]
    return Plan(strategy="canary", steps=tuple(steps), routing="router", max_surge=max_surge,
                max_unavailable=max_unavailable, **common)


# --- reading the Canary ----------------------------------------------------------------------

BUILTIN_METRICS = {
    # name: (what it measures, scale to the simulated unit, default bound side)
    "request-success-rate": (Measures("success_rate", 0.01), "min"),
    "request-duration": (Measures("latency_p99", 1.0), "max"),
}


def read_canary(r: Reader, templates: dict[tuple[str, str], Document],
                deployments: dict[str, Document]) -> ImportedRollout:
    """A Flagger Canary (``flagger.app/v1beta1``), its MetricTemplates and target Deployment."""
    doc = r.doc
    spec = r.mapping(doc.data.get("spec"), "spec")
    r.unused(spec, "spec", ("targetRef", "analysis", "canaryAnalysis", "progressDeadlineSeconds", "skipAnalysis",
                            "provider", "autoscalerRef", "suspend"),
             quiet=("service", "ingressRef", "routeRef", "upstreamRef", "metricsServer", "revertOnDeletion"))
    target = r.mapping(spec.get("targetRef"), "spec.targetRef")
    target_name = r.string(target, "name", "spec.targetRef")
    if not target_name:
        r.fail("spec.targetRef.name", "missing; a Canary targets a Deployment by name")
    target_kind = r.string(target, "kind", "spec.targetRef", "Deployment")
    if target_kind != "Deployment":
        r.warn("spec.targetRef.kind", f"a {target_kind} target is rehearsed as a Deployment")
    if spec.get("autoscalerRef") is not None:
        r.warn("spec.autoscalerRef", "autoscaling is not simulated; replicas stay fixed")
    if spec.get("suspend"):
        r.warn("spec.suspend", "a suspended Canary does not run; the rehearsal runs it anyway")
    deadline = float(r.integer(spec, "progressDeadlineSeconds", "spec", 600, lo=1) or 600)
    provider = r.string(spec, "provider", "spec", "") or ""
    kubernetes = provider == "kubernetes"

    replicas = None
    target_doc = deployments.get(target_name or "")
    settings: dict[str, Any] = {"min_ready_seconds": 0.0, "max_surge": "25%", "max_unavailable": "25%"}
    if target_doc is not None:
        d = deployment_settings(Reader(target_doc, r.warnings))
        replicas = d["replicas"]
        settings = {k: d[k] for k in ("min_ready_seconds", "max_surge", "max_unavailable")}
        if deadline <= settings["min_ready_seconds"]:
            r.fail("spec.progressDeadlineSeconds", f"got {deadline:g}; must be greater than the Deployment's "
                   f"minReadySeconds ({settings['min_ready_seconds']:g})")
    else:
        r.warn("spec.targetRef", f"Deployment {target_name!r} is not among the manifests; "
               "the scenario's replicas stand in for it")

    key = "analysis" if spec.get("analysis") is not None else "canaryAnalysis"
    path = f"spec.{key}"
    analysis = r.mapping(spec.get(key), path)
    skip = r.boolean(spec, "skipAnalysis", "spec", False) or spec.get(key) is None
    if key == "canaryAnalysis" and spec.get(key) is not None:
        r.warn(path, "deprecated name; Flagger reads it as spec.analysis")
    r.unused(analysis, path, ("interval", "threshold", "maxWeight", "stepWeight", "stepWeights", "stepWeightPromotion",
                              "iterations", "metrics", "webhooks", "match", "mirror"),
             quiet=("alerts",))
    interval = DEFAULT_INTERVAL
    if analysis.get("interval") is not None:
        interval = r.duration(analysis["interval"], f"{path}.interval", numbers=False)
        if interval < MIN_INTERVAL:
            r.warn(f"{path}.interval", f"{interval:g}s is below Flagger's minimum; it runs every 10s")
            interval = MIN_INTERVAL
    threshold = r.integer(analysis, "threshold", path, 1, lo=0) or 1
    max_w = r.integer(analysis, "maxWeight", path, 0, lo=0, hi=100, allowed="a weight is a whole number from 0 to 100")
    step_w = r.integer(analysis, "stepWeight", path, 0, lo=0, hi=100, allowed="a weight is a whole number from 0 to 100")
    promo = r.integer(analysis, "stepWeightPromotion", path, 0, lo=0, hi=100,
                      allowed="a weight is a whole number from 0 to 100")
    iterations = r.integer(analysis, "iterations", path, 0, lo=0) or 0
    step_ws: list[int] = []
    for i, w in enumerate(r.items(analysis.get("stepWeights"), f"{path}.stepWeights")):
        if isinstance(w, bool) or not isinstance(w, int) or not 0 < w <= 100:
            r.fail(f"{path}.stepWeights[{i}]", f"got {w!r}; a weight is a whole number from 1 to 100")
        if step_ws and w <= step_ws[-1]:
            r.fail(f"{path}.stepWeights[{i}]", f"got {w}; stepWeights must grow ({step_ws[-1]} before it)")
        step_ws.append(w)
    if analysis.get("mirror"):
        r.warn(f"{path}.mirror", "traffic mirroring is not simulated")
    if analysis.get("match") is not None:
        r.warn(f"{path}.match", "A/B testing by request match is rehearsed as blue/green iterations; "
               "the share of users matched is not simulated")
        kubernetes = True
    if kubernetes and iterations == 0 and not skip:
        r.warn(path, "the kubernetes provider cannot shift traffic; Flagger runs 10 blue/green iterations")
        iterations = DEFAULT_ITERATIONS_KUBERNETES
    weights: list[int] = []
    if iterations == 0 and not skip:
        if step_w == 0 and not step_ws:
            r.fail(path, "needs stepWeight, stepWeights or iterations; otherwise the canary weight never grows")
        weights = flagger_weights(max_w or 0, step_w or 0, step_ws)
    checks, notes = _metrics(r, analysis.get("metrics"), f"{path}.metrics", templates, interval)
    gates = _webhooks(r, analysis.get("webhooks"), f"{path}.webhooks")

    def build(n: int, judge: str) -> Plan:
        return flagger_plan(
            n, interval=interval, threshold=threshold, weights=weights, iterations=iterations,
            step_weight_promotion=promo or 0, checks=checks, not_simulated=notes, kubernetes=kubernetes,
            gates=gates, name=doc.name or "canary", judge=judge, progress_deadline_seconds=deadline,
            skip_analysis=skip, **settings,
        )

    kind = "rolling" if skip else ("blue-green" if iterations else "canary")
    strategy: dict[str, Any] = {"kind": kind, "progress_deadline_seconds": deadline,
                                "min_ready_seconds": settings["min_ready_seconds"]}
    if kind == "canary":
        strategy["traffic_router"] = True
    if kind == "rolling":
        strategy.update(max_surge=settings["max_surge"], max_unavailable=settings["max_unavailable"],
                        background_analysis=False)
    if kind == "blue-green":
        strategy.update(scale_down_delay_seconds=interval, auto_promotion_seconds=0.0)
    return ImportedRollout(kind, f"Canary {doc.name}", replicas, strategy, build, r.warnings)


def _metrics(r: Reader, value: Any, path: str, templates: dict[tuple[str, str], Document],
             interval: float) -> tuple[list[Check], list[str]]:
    checks: list[Check] = []
    notes: list[str] = []
    for i, item in enumerate(r.items(value, path)):
        mpath = f"{path}[{i}]"
        m = r.mapping(item, mpath)
        name = r.string(m, "name", mpath)
        if not name:
            r.fail(f"{mpath}.name", "missing; every metric needs a name")
        r.unused(m, mpath, ("name", "interval", "thresholdRange", "threshold", "templateRef", "query"),
                 quiet=("templateVariables",))
        if m.get("interval") is not None:
            window = r.duration(m["interval"], f"{mpath}.interval", numbers=False)
            if window > interval:
                r.warn(f"{mpath}.interval", f"the query looks back {window:g}s; the rehearsal judges "
                       f"the last analysis interval ({interval:g}s)")
        rng = r.mapping(m.get("thresholdRange"), f"{mpath}.thresholdRange")
        r.unused(rng, f"{mpath}.thresholdRange", ("min", "max"))
        lo = _number(r, rng, "min", f"{mpath}.thresholdRange")
        hi = _number(r, rng, "max", f"{mpath}.thresholdRange")
        legacy = _number(r, m, "threshold", mpath)
        measures: Measures | None
        why = ""
        if name in BUILTIN_METRICS and m.get("templateRef") is None and not m.get("query"):
            measures, side = BUILTIN_METRICS[name]
            if lo is None and hi is None and legacy is not None:
                lo, hi = (legacy, None) if side == "min" else (None, legacy)
        else:
            text = ""
            if m.get("templateRef") is not None:
                ref = r.mapping(m["templateRef"], f"{mpath}.templateRef")
                tname = r.string(ref, "name", f"{mpath}.templateRef")
                tdoc = templates.get(("MetricTemplate", tname or ""))
                if tdoc is None:
                    r.fail(f"{mpath}.templateRef.name", f"MetricTemplate {tname!r} is not among the manifests; "
                           "pass its file with another --manifest")
                tr = Reader(tdoc, r.warnings)
                tspec = tr.mapping(tdoc.data.get("spec"), "spec")
                prov = tr.mapping(tspec.get("provider"), "spec.provider")
                ptype = tr.string(prov, "type", "spec.provider", "prometheus")
                text = tr.string(tspec, "query", "spec", "") or ""
                if ptype != "prometheus":
                    why = f"the {ptype} provider is not simulated"
            else:
                text = r.string(m, "query", mpath, "") or ""
                if not text:
                    r.fail(mpath, f"metric {name!r} is not a built-in (request-success-rate, request-duration) "
                           "and has no templateRef or query")
            if lo is None and hi is None and legacy is not None:
                hi = legacy  # the deprecated threshold is a maximum for custom queries
            measures = None if why else classify_query(text)
            if measures is None and not why:
                why = "its query measures nothing the simulator models (error rate, latency, request rate)"
            if measures is not None and measures.metric in ("error_rate", "success_rate") and measures.scale == 1.0 \
                    and any(b is not None and b > 1 for b in (lo, hi)):
                measures = Measures(measures.metric, 0.01)
        if measures is not None and lo is None and hi is None:
            why = "no thresholdRange: every check passes"
        if why or measures is None:
            notes.append(f"metric {name}: {why}")
            r.warn(mpath, f"metric {name!r} is not simulated: {why}")
            continue
        if measures.note:
            r.warn(mpath, f"metric {name!r}: {measures.note}")
        checks.append(bounds_to_check(measures, lo, hi))
    return checks, notes


def _number(r: Reader, m: dict[str, Any], key: str, path: str) -> float | None:
    if m.get(key) is None:
        return None
    value = m[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        r.fail(f"{path}.{key}", f"got {value!r}; expected a number")
    return float(value)


def _webhooks(r: Reader, value: Any, path: str) -> list[str]:
    gates: list[str] = []
    for i, item in enumerate(r.items(value, path)):
        hpath = f"{path}[{i}]"
        hook = r.mapping(item, hpath)
        kind = r.string(hook, "type", hpath, "rollout")
        name = r.string(hook, "name", hpath, "")
        if kind not in HOOK_TYPES:
            r.fail(f"{hpath}.type", f"unknown webhook type {kind!r}; allowed: {', '.join(HOOK_TYPES)}")
        if kind in GATE_HOOKS:
            gates.append(kind)  # a gate waits for a person: the scenario's approve decides
        else:
            r.warn(hpath, f"webhook {name!r} ({kind}) is not simulated; the scenario's traffic stands in for "
                   "load tests" if kind == "rollout" else f"webhook {name!r} ({kind}) is not simulated")
    return gates
