"""Argo Rollouts: a ``Rollout`` (canary or blue-green) and the ``AnalysisTemplate`` /
``ClusterAnalysisTemplate`` objects it names, as a plan.

A canary's ``steps`` become the plan's steps (``setWeight``, ``pause``, ``setCanaryScale``,
``analysis``), combined and checked as Argo combines and checks them
(:mod:`~deploysim.manifests.argo_steps`), with ``setWeight`` out of
``trafficRouting.maxTrafficWeight``; ``analysis.startingStep`` counts the Rollout's steps and
lands on the plan step they begin; a canary without steps replaces pods like a rolling update,
as Argo does. A blue-green rollout scales the preview, runs its pre-promotion analysis, waits
for promotion, switches, runs its post-promotion analysis and keeps the old colour for
``scaleDownDelaySeconds``. Every metric of the templates an analysis names joins one
:class:`~deploysim.plan.AnalysisSpec`; what a metric's query measures is read by
:mod:`deploysim.manifests.queries`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deploysim import plan as steps
from deploysim.manifests.argo_analysis import PROVIDERS, analysis_from_templates  # noqa: F401 - importers' API
from deploysim.manifests.argo_steps import read_canary_steps, starting_step_note
from deploysim.manifests.deployment import fenceposts, workload_timing
from deploysim.manifests.documents import Catalog, ImportedRollout, Reader
from deploysim.plan import AnalysisSpec, Plan
from deploysim.rules.canary import percent_for_replicas


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
    router_name, route = _router(r, canary.get("trafficRouting"), f"{path}.trafficRouting") if router else (None, None)
    max_weight = _max_traffic_weight(r, canary.get("trafficRouting"), f"{path}.trafficRouting") if router else 100
    r.unused(canary, path, ("steps", "maxSurge", "maxUnavailable", "trafficRouting", "analysis"),
             quiet=("canaryService", "stableService", "canaryMetadata", "stableMetadata", "pingPong"))
    read = read_canary_steps(r, canary.get("steps"), f"{path}.steps", catalog, router, max_weight)
    planned = read.planned
    background = canary.get("analysis")
    bg_spec: AnalysisSpec | None = None
    bg_start = 0
    if background is not None:
        bpath = f"{path}.analysis"
        refs = r.mapping(background, bpath)
        bg_spec = analysis_from_templates(r, refs, bpath, catalog, "background", extra=("startingStep",))
        step_index = r.integer(refs, "startingStep", bpath, 0, lo=0) or 0
        if step_index > len(read.kinds):
            r.fail(f"{bpath}.startingStep", f"got {step_index}; the canary has {len(read.kinds)} steps")
        bg_start = read.plan_index(step_index)
        if bg_start != step_index:
            r.warn(f"{bpath}.startingStep", starting_step_note(read, step_index, f"{path}.steps"))

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
                    router=router_name, route=route,
                    max_surge=surge, max_unavailable=unavailable, background=bg, background_start=bg_start,
                    **common)

    kind = "rolling" if no_steps else "canary"
    strategy["kind"] = kind
    return ImportedRollout(kind, source, replicas, strategy, build, r.warnings)


#: Argo trafficRouting keys a cluster run carries out with its own router
ROUTER_KEYS = {"nginx": "nginx-ingress", "plugins": "gateway-httproute"}


def _router(r: Reader, value: Any, path: str) -> tuple[str | None, str | None]:
    """(router, the object it routes through) for a cluster run, from ``trafficRouting``:
    ``nginx.stableIngress`` (NGINX Ingress canary annotations, Argo's
    ``rollout/trafficrouting/nginx``) or the Gateway API plugin's ``httpRoute``; any other
    router (istio, alb, smi, ...) is stood in for by the Gateway API HTTPRoute, named."""
    routing = r.mapping(value, path)
    if routing.get("nginx") is not None:
        nginx = r.mapping(routing["nginx"], f"{path}.nginx")
        # annotationPrefix, additionalIngressAnnotations (canary-by-header, ...) are not carried out
        r.unused(nginx, f"{path}.nginx", ("stableIngress", "stableIngresses"))
        ingress = r.string(nginx, "stableIngress", f"{path}.nginx")
        if ingress is None and nginx.get("stableIngresses"):
            stables = r.items(nginx["stableIngresses"], f"{path}.nginx.stableIngresses")
            ingress = str(stables[0])
            if len(stables) > 1:
                r.warn(f"{path}.nginx.stableIngresses", f"only the first, {ingress!r}, gets a canary Ingress; "
                       f"{', '.join(map(str, stables[1:]))} keep all their traffic on the stable version")
        if ingress is None:
            r.fail(f"{path}.nginx.stableIngress", "missing; the NGINX router needs the stable Ingress")
        return "nginx-ingress", ingress
    plugins = r.mapping(routing.get("plugins"), f"{path}.plugins")
    gateway = plugins.get("argoproj-labs/gatewayAPI")
    if gateway is not None:
        gpath = f"{path}.plugins.argoproj-labs/gatewayAPI"
        g = r.mapping(gateway, gpath)
        r.unused(g, gpath, ("httpRoute",), quiet=("namespace",))  # the route is looked up in the run's namespace
        return "gateway-httproute", r.string(g, "httpRoute", gpath)
    others = sorted(k for k in routing if k not in ("nginx", "plugins", "managedRoutes", "maxTrafficWeight"))
    others += sorted(f"plugins.{k}" for k in plugins)  # a router plugin other than the Gateway API's
    if others:
        r.warn(f"{path}.{others[0]}", "on a cluster the weights are set through a Gateway API HTTPRoute "
               "(or NGINX Ingress); the rehearsal's exact weights are the same")
    return None, None


# Argo's refusal of maxTrafficWeight with another router (ValidateRolloutStrategyCanary)
ARGO_MAX_WEIGHT_ROUTERS = "Canary maxTrafficWeight in traffic routing only support in Nginx and Plugins"


def _max_traffic_weight(r: Reader, value: Any, path: str) -> int:
    """``trafficRouting.maxTrafficWeight``, the total the steps' weights are out of (default
    100, ``weightutil.MaxTrafficWeight``); Argo accepts it with the NGINX router or a plugin
    router only."""
    routing = r.mapping(value, path)
    if routing.get("maxTrafficWeight") is None:
        return 100
    total = r.integer(routing, "maxTrafficWeight", path, 100, lo=1) or 100
    if routing.get("nginx") is None and not routing.get("plugins"):
        r.fail(f"{path}.maxTrafficWeight", f"got {total}; {ARGO_MAX_WEIGHT_ROUTERS} (Argo Rollouts refuses it "
               "with any other router)")
    return total


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
