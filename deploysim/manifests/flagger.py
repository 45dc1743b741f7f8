"""Flagger: a ``Canary`` (``flagger.app/v1beta1``), its ``MetricTemplate`` objects and its
target ``Deployment``, as a plan.

The reader takes what Flagger's ``analysis`` says (interval, threshold, weights or
iterations, ``match``, metrics, webhooks), picks the strategy as ``advanceCanary`` does
(:func:`deploysim.strategies.flagger.flagger_strategy`: A/B, blue/green, progressive) and hands
it to :func:`deploysim.strategies.flagger.flagger_plan`, which holds Flagger's weight
progression and ticks. Built-in metrics (``request-success-rate``, ``request-duration``) and
MetricTemplate queries are judged by what they measure (:mod:`deploysim.manifests.queries`).
Webhooks that wait for a person (``confirm-*``) become manual gates, each named in a warning
with what approves it; the others, and the ``spec.service`` fields that shape requests on the
route (``timeout``, ``retries``, ``trafficPolicy``, ...), are named as not simulated.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deploysim.analysis.metrics import MetricDef, MetricSource
from deploysim.errors import ManifestError
from deploysim.manifests.deployment import deployment_settings, warn_autoscalers
from deploysim.manifests.documents import Catalog, ImportedRollout, Reader
from deploysim.manifests.pod_template import pod_settings
from deploysim.manifests.queries import (
    Measures,
    bounds_to_check,
    read_bounds_as_percent,
    read_query,
)
from deploysim.plan import Check, Plan
from deploysim.rules.deployment import (
    DEFAULT_MAX_SURGE,
    DEFAULT_MAX_UNAVAILABLE,
    DEFAULT_MIN_READY_SECONDS,
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
    deadline_outlasts_min_ready,
)
from deploysim.strategies.flagger import (
    AB,
    CANARY,
    DEFAULT_ITERATIONS_KUBERNETES,
    flagger_plan,
    flagger_strategy,
    flagger_weights,
)

# Flagger's defaults and floor (``Canary.GetAnalysisInterval``: 60s when unset, never below 10s)
DEFAULT_INTERVAL = 60.0
MIN_INTERVAL = 10.0
GATE_HOOKS = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion")
GATE_WHERE = {
    "confirm-rollout": "before the canary is scaled up",
    "confirm-traffic-increase": "before every weight increase and before promotion",
    "confirm-promotion": "before promotion",
}
HOOK_NOT_SIMULATED = {
    "rollout": "webhook {name!r} (rollout) is not simulated; the scenario's traffic stands in for load tests",
    "pre-rollout": "webhook {name!r} (pre-rollout) is not simulated: it passes; in Flagger a failing one counts a "
                   "failed check at every tick until it passes, before any traffic moves",
    "post-rollout": "webhook {name!r} (post-rollout) is not simulated; it runs after the rollout ends",
    "rollback": "webhook {name!r} (rollback) is not simulated: it never asks for a rollback",
    "event": "webhook {name!r} (event) is not simulated; it only receives Flagger's events",
}
HOOK_TYPES = ("pre-rollout", "rollout", "confirm-rollout", "confirm-traffic-increase", "confirm-promotion",
              "post-rollout", "rollback", "event")

BUILTIN_METRICS = {
    # name: (what it measures, scale to the simulated unit, default bound side)
    "request-success-rate": (Measures("success_rate", 0.01), "min"),
    "request-duration": (Measures("latency_p99", 1.0), "max"),
}


def read_canary(r: Reader, catalog: Catalog) -> ImportedRollout:
    """A Flagger Canary (``flagger.app/v1beta1``), its MetricTemplates and target Deployment."""
    doc = r.doc
    spec = r.mapping(doc.data.get("spec"), "spec")
    r.unused(spec, "spec", ("targetRef", "analysis", "canaryAnalysis", "progressDeadlineSeconds", "skipAnalysis",
                            "provider", "autoscalerRef", "suspend", "service"),
             quiet=("ingressRef", "routeRef", "upstreamRef", "metricsServer", "revertOnDeletion"))
    _service(r, r.mapping(spec.get("service"), "spec.service"), "spec.service")
    target = r.mapping(spec.get("targetRef"), "spec.targetRef")
    target_name = r.name(target, "name", "spec.targetRef", "a Canary targets a Deployment by name")
    target_kind = r.string(target, "kind", "spec.targetRef", "Deployment")
    if target_kind != "Deployment":
        r.warn("spec.targetRef.kind", f"a {target_kind} target is rehearsed as a Deployment")
    if spec.get("autoscalerRef") is not None:
        r.warn("spec.autoscalerRef", "autoscaling is not simulated; replicas stay fixed")
    if spec.get("suspend"):
        r.warn("spec.suspend", "a suspended Canary does not run; the rehearsal runs it anyway")
    deadline = float(r.integer(spec, "progressDeadlineSeconds", "spec", int(DEFAULT_PROGRESS_DEADLINE_SECONDS), lo=1)
                     or DEFAULT_PROGRESS_DEADLINE_SECONDS)
    provider = r.string(spec, "provider", "spec", "") or ""
    kubernetes = provider == "kubernetes"

    replicas = None
    target_doc = catalog.deployments.get(target_name)
    settings: dict[str, Any] = {"min_ready_seconds": DEFAULT_MIN_READY_SECONDS, "max_surge": DEFAULT_MAX_SURGE,
                                "max_unavailable": DEFAULT_MAX_UNAVAILABLE}
    if target_doc is not None:
        d = deployment_settings(Reader(target_doc, r.warnings))
        replicas = d["replicas"]
        warn_autoscalers(r, catalog, "Deployment", replicas, name=target_name)
        settings = {k: d[k] for k in ("min_ready_seconds", "max_surge", "max_unavailable")}
        if not deadline_outlasts_min_ready(deadline, settings["min_ready_seconds"]):
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
                              "iterations", "metrics", "webhooks", "match", "mirror", "mirrorWeight", "sessionAffinity",
                              "primaryReadyThreshold", "canaryReadyThreshold"),
             quiet=("alerts",))
    interval = DEFAULT_INTERVAL
    if analysis.get("interval") is not None:
        interval = r.duration(analysis["interval"], f"{path}.interval", numbers=False)
        if interval < MIN_INTERVAL:
            r.warn(f"{path}.interval", f"{interval:g}s is below Flagger's minimum; it runs every 10s")
            interval = MIN_INTERVAL
    threshold = r.integer(analysis, "threshold", path, 1, lo=0) or 1
    max_w = r.weight(analysis, "maxWeight", path)
    step_w = r.weight(analysis, "stepWeight", path)
    promo = r.weight(analysis, "stepWeightPromotion", path)
    written_iterations = r.integer(analysis, "iterations", path, 0, lo=0) or 0
    step_ws: list[int] = []
    for i, w in enumerate(r.items(analysis.get("stepWeights"), f"{path}.stepWeights")):
        if isinstance(w, bool) or not isinstance(w, int) or not 0 < w <= 100:
            r.fail(f"{path}.stepWeights[{i}]", f"got {w!r}; a weight is a whole number from 1 to 100")
        if step_ws and w <= step_ws[-1]:
            r.fail(f"{path}.stepWeights[{i}]", f"got {w}; stepWeights must grow ({step_ws[-1]} before it)")
        step_ws.append(w)
    match = bool(r.items(analysis.get("match"), f"{path}.match"))
    runs, iterations = flagger_strategy(written_iterations, match=match, kubernetes=kubernetes)
    if not skip:
        _strategy_warnings(r, analysis, path, runs, written_iterations, match, kubernetes)
    weights: list[int] = []
    if runs == CANARY and not skip:
        if step_w == 0 and not step_ws:
            r.fail(path, "needs stepWeight, stepWeights or iterations; otherwise the canary weight never grows")
        weights = flagger_weights(max_w, step_w, step_ws)
    checks, notes, defs, foreign = _metrics(r, analysis.get("metrics"), f"{path}.metrics", catalog, interval,
                                            provider or "istio")
    gates = _webhooks(r, analysis.get("webhooks"), f"{path}.webhooks", runs)

    def build(n: int, judge: str) -> Plan:
        return flagger_plan(
            n, interval=interval, threshold=threshold, weights=weights, iterations=iterations,
            step_weight_promotion=promo, checks=checks, not_simulated=notes, metrics=defs, foreign_metrics=foreign,
            kubernetes=kubernetes, ab=runs == AB, gates=gates, name=doc.name or "canary", judge=judge,
            progress_deadline_seconds=deadline, skip_analysis=skip, **settings,
        )

    kind = "rolling" if skip else ("canary" if runs == CANARY else "blue-green")
    strategy: dict[str, Any] = {"kind": kind, "progress_deadline_seconds": deadline,
                                "min_ready_seconds": settings["min_ready_seconds"]}
    if kind == "canary":
        strategy["traffic_router"] = True
    if kind == "rolling":
        strategy.update(max_surge=settings["max_surge"], max_unavailable=settings["max_unavailable"],
                        background_analysis=False)
    if kind == "blue-green":
        strategy.update(scale_down_delay_seconds=interval, auto_promotion_seconds=0.0)
    pod: dict[str, Any] = {}
    if target_doc is not None:  # the pods are the target Deployment's
        pod = pod_settings(Reader(target_doc, r.warnings), r.mapping(target_doc.data.get("spec"), "spec").get("template"),
                           "spec.template")
    return ImportedRollout(kind, f"Canary {doc.name}", replicas, strategy, build, r.warnings, pod)


# spec.service: what Flagger names and exposes its generated objects with (nothing to simulate) ...
SERVICE_PLUMBING = ("name", "port", "portName", "targetPort", "appProtocol", "portDiscovery", "gateways",
                    "gatewayRefs", "hosts", "delegation", "apex", "primary", "canary", "meshName", "backends")
# ... and what the generated route does to requests, which the rehearsal does not
SERVICE_NOT_SIMULATED = {
    "trafficPolicy": "the destination rules' policy (load balancing, connection pool, outlier detection, TLS) "
                     "is not simulated",
    "match": "the route takes only the requests that match; the rehearsal sends all of the scenario's traffic "
             "through it",
    "rewrite": "URI rewriting is not simulated (it changes no failure or latency the rehearsal counts)",
    "headers": "header operations are not simulated (they change no failure or latency the rehearsal counts)",
    "corsPolicy": "the CORS policy is not simulated (browsers' preflight requests are not modelled)",
}


def _service(r: Reader, service: dict[str, Any], path: str) -> None:
    """Warn, by path, about every ``spec.service`` field that shapes requests on the route
    Flagger generates (``GetServiceNames`` and the routers' ``Reconcile`` copy ``timeout``,
    ``retries``, ``match``, ``rewrite``, ``headers``, ``corsPolicy`` into every route)."""
    r.unused(service, path, (*SERVICE_PLUMBING, "timeout", "retries", *SERVICE_NOT_SIMULATED))
    if service.get("timeout"):
        r.warn(f"{path}.timeout", f"requests slower than {service['timeout']} fail at the route; the rehearsal does "
               "not cut them off, so a slow candidate shows as latency, not as failed requests")
    if service.get("retries"):
        retries = r.mapping(service["retries"], f"{path}.retries")
        attempts = retries.get("attempts", "some")
        r.warn(f"{path}.retries", f"the route retries a failed request ({attempts} attempts); the rehearsal does "
               "not retry: a request a retry would save counts as failed, and the retries' load is not added")
    for key, why in SERVICE_NOT_SIMULATED.items():
        if service.get(key):
            r.warn(f"{path}.{key}", why)


def _strategy_warnings(r: Reader, analysis: dict[str, Any], path: str, runs: str, written_iterations: int,
                       match: bool, kubernetes: bool) -> None:
    """Name what the strategy Flagger picks (``advanceCanary``) does not use, and what of it
    the rehearsal does not simulate."""
    if kubernetes and match:
        r.warn(f"{path}.match", "A/B testing is not supported with the kubernetes provider: Flagger drops the "
               "match and runs blue/green")
    if kubernetes and written_iterations < 1:
        r.warn(path, f"the kubernetes provider cannot shift traffic; Flagger runs "
               f"{DEFAULT_ITERATIONS_KUBERNETES} blue/green iterations")
    if runs == AB:
        r.warn(f"{path}.match", "A/B testing: during the iterations only the requests that match reach the canary; "
               "the share of users matched is not simulated, so the canary is judged on the scenario's test "
               "traffic until it is promoted")
    elif runs == CANARY and match:
        r.warn(f"{path}.match", "with iterations 0 Flagger runs the progressive canary on the requests that match "
               "(the others stay on the primary); the rehearsal moves each weight of all traffic")
    if runs != CANARY:
        for key in ("maxWeight", "stepWeight", "stepWeights"):
            if analysis.get(key):
                r.warn(f"{path}.{key}", "not used: with iterations Flagger runs "
                       + ("A/B testing" if runs == AB else "blue/green"))
    if kubernetes and analysis.get("stepWeightPromotion"):
        r.warn(f"{path}.stepWeightPromotion", "not used: the kubernetes provider has no traffic to shift back")
    if analysis.get("mirror"):
        if kubernetes or runs == AB:
            why = "not used: the kubernetes provider and A/B testing do not mirror"
        elif runs == CANARY:
            why = ("Flagger mirrors live traffic for one tick before the first weight; the rehearsal has no "
                   "mirror and sets the first weight one tick earlier")
        else:
            why = ("the canary gets a copy of live traffic during the iterations; the rehearsal has no mirror "
                   "and judges it on the scenario's test traffic")
        r.warn(f"{path}.mirror", f"traffic mirroring is not simulated: {why}")
    if analysis.get("sessionAffinity"):
        r.warn(f"{path}.sessionAffinity", "sticky sessions are not simulated: each request is routed by the weight")
    for key, pods in (("primaryReadyThreshold", "primary"), ("canaryReadyThreshold", "canary")):
        ready = r.integer(analysis, key, path, 100, lo=0, hi=100)
        if ready != 100:
            r.warn(f"{path}.{key}", f"Flagger counts the {pods} ready with {ready}% of its pods available; the "
                   "rehearsal waits for all of them")


def _metrics(r: Reader, value: Any, path: str, catalog: Catalog, interval: float,
             mesh: str) -> tuple[list[Check], list[str], list[MetricDef], list[str]]:
    """(rehearsal stand-ins, metrics not simulated, the metrics as a cluster run evaluates
    them: a MetricTemplate's query and provider address, or the built-in query of the Canary's
    mesh provider, each judged by its ``thresholdRange``)."""
    checks: list[Check] = []
    notes: list[str] = []
    defs: list[MetricDef] = []
    foreign: list[str] = []  # MetricTemplates of providers a cluster run does not query
    for i, item in enumerate(r.items(value, path)):
        mpath = f"{path}[{i}]"
        m = r.mapping(item, mpath)
        name = r.name(m, "name", mpath, "every metric needs a name")
        r.unused(m, mpath, ("name", "interval", "thresholdRange", "threshold", "templateRef", "query",
                            "templateVariables"))
        variables = r.mapping(m.get("templateVariables"), f"{mpath}.templateVariables")
        written_interval = str(m["interval"]) if m.get("interval") is not None else "1m"
        source: MetricSource | None = None
        builtin: str | None = None
        if m.get("interval") is not None:
            window = _metric_interval(r, m["interval"], f"{mpath}.interval", interval)
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
            source = _builtin_source(r, mesh, name, mpath)
            builtin = mesh if source is not None else None
        else:
            text = ""
            if m.get("templateRef") is not None:
                ref = r.mapping(m["templateRef"], f"{mpath}.templateRef")
                tname = r.string(ref, "name", f"{mpath}.templateRef") or ""
                tdoc = catalog.template(r, "MetricTemplate", tname, f"{mpath}.templateRef.name")
                tr = Reader(tdoc, r.warnings)
                tspec = tr.mapping(tdoc.data.get("spec"), "spec")
                prov = tr.mapping(tspec.get("provider"), "spec.provider")
                ptype = tr.string(prov, "type", "spec.provider", "prometheus")
                text = tr.string(tspec, "query", "spec", "") or ""
                if ptype != "prometheus":
                    measures, why = None, f"the {ptype} provider is not simulated"
                    foreign.append(f"{name} ({ptype})")
                elif text:
                    secret = tr.mapping(prov.get("secretRef"), "spec.provider.secretRef")
                    source = MetricSource("prometheus", query=text, address=tr.string(prov, "address", "spec.provider"),
                                          insecure=tr.boolean(prov, "insecureSkipVerify", "spec.provider", False),
                                          secret_ref=tr.string(secret, "name", "spec.provider.secretRef"))
            else:
                text = r.string(m, "query", mpath, "") or ""
                if not text:
                    r.fail(mpath, f"metric {name!r} is not a built-in (request-success-rate, request-duration) "
                           "and has no templateRef or query")
                source = MetricSource("prometheus", query=text)
            if lo is None and hi is None and legacy is not None:
                hi = legacy  # the deprecated threshold is a maximum for custom queries
            if not why:
                measures, why = read_query(text)
            if measures is not None:
                measures = read_bounds_as_percent(measures, lo, hi)
        if measures is not None and lo is None and hi is None:
            why = "no thresholdRange: every check passes"
        stand_in = bounds_to_check(measures, lo, hi) if measures is not None and not why else None
        if source is not None:
            defs.append(MetricDef(name, source, dialect="flagger", min=lo, max=hi, interval=written_interval,
                                  variables=tuple((str(k), str(v)) for k, v in variables.items()), builtin=builtin,
                                  stand_in=stand_in.describe() if stand_in is not None else f"nothing: {why}"))
        if why or measures is None:
            notes.append(f"metric {name}: {why}")
            r.warn(mpath, f"metric {name!r} is not simulated: {why}")
            continue
        if measures.note:
            r.warn(mpath, f"metric {name!r}: {measures.note}")
        checks.append(replace(bounds_to_check(measures, lo, hi), stands_for=name if source is not None else None))
    return checks, notes, defs, foreign


def _metric_interval(r: Reader, value: Any, path: str, interval: float) -> float:
    """A metric's ``interval``, the range its query looks back (``{{ interval }}``). Flagger
    passes it to the query as written (its CRD's pattern ``^[0-9]+(m|s)`` is not anchored at
    the end, so Graphite's ``1min`` is accepted); one the rehearsal cannot read as a duration
    is warned and the analysis interval judged instead.

    >>> from deploysim.manifests.documents import Document
    >>> r = Reader(Document("f.yaml", 1, {"kind": "Canary"}), [])
    >>> _metric_interval(r, "1min", "spec.analysis.metrics[0].interval", 60.0), r.warnings[0].split(": ", 1)[1][:46]
    (60.0, "spec.analysis.metrics[0].interval: got '1min':")
    """
    try:
        return r.duration(value, path, numbers=False)
    except ManifestError:
        r.warn(path, f"got {value!r}: passed to the query as written; the rehearsal judges the analysis "
               f"interval ({interval:g}s)")
        return interval


def _builtin_source(r: Reader, mesh: str, name: str, path: str) -> MetricSource | None:
    """Flagger's built-in query for ``name`` on the Canary's mesh provider, its placeholders
    left for the run to fill; None (with a warning) for a provider with no such query."""
    from deploysim.analysis.templating import TemplateError
    from deploysim.manifests.flagger_builtins import BUILTIN_METRICS, QUERIES, observer_for

    try:
        return MetricSource("prometheus", query=QUERIES[observer_for(mesh)][BUILTIN_METRICS.index(name)].strip())
    except (TemplateError, KeyError) as exc:
        r.warn(path, f"metric {name!r} cannot run on a cluster: {exc}")
        return None


def _number(r: Reader, m: dict[str, Any], key: str, path: str) -> float | None:
    if m.get(key) is None:
        return None
    value = m[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        r.fail(f"{path}.{key}", f"got {value!r}; expected a number")
    return float(value)


def _webhooks(r: Reader, value: Any, path: str, runs: str) -> list[str]:
    """The manual gates among the webhooks (``scheduler_hooks.go``), each named with where it
    stops the rollout and what approves it; the other hooks named as not simulated."""
    gates: list[str] = []
    for i, item in enumerate(r.items(value, path)):
        hpath = f"{path}[{i}]"
        hook = r.mapping(item, hpath)
        kind = r.string(hook, "type", hpath, "rollout")
        name = r.string(hook, "name", hpath, "")
        if kind not in HOOK_TYPES:
            r.fail(f"{hpath}.type", f"unknown webhook type {kind!r}; allowed: {', '.join(HOOK_TYPES)}")
        if kind == "confirm-traffic-increase" and runs != CANARY:
            r.warn(hpath, f"webhook {name!r} (confirm-traffic-increase) is never called: Flagger asks it only "
                   "before a weight moves, and with iterations no weight does")
        elif kind in GATE_HOOKS:
            gates.append(kind)
            r.warn(hpath, f"webhook {name!r} ({kind}) is a manual gate: the rehearsal pauses {GATE_WHERE[kind]} "
                   "until the scenario's approve opens it (auto: at once, as a gate already open; never; or a "
                   "duration); Flagger asks again at every tick" + (
                       ", and keeps running the metric checks while it waits (the pause does not)"
                       if kind != "confirm-rollout" else ""))
        else:
            r.warn(hpath, HOOK_NOT_SIMULATED[kind].format(name=name))
    return gates
