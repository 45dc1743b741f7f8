"""Argo Rollouts: a ``Rollout`` (canary or blue-green) and the ``AnalysisTemplate`` /
``ClusterAnalysisTemplate`` objects it names, as a plan.

A canary's ``steps`` become the plan's steps (``setWeight``, ``pause``, ``setCanaryScale``,
``analysis``), combined and checked as Argo combines and checks them
(:mod:`~deploysim.manifests.argo_steps`), with ``setWeight`` out of
``trafficRouting.maxTrafficWeight``; ``analysis.startingStep`` counts the Rollout's steps and
lands on the plan step they begin. With ``trafficRouting`` the old stable is kept
``scaleDownDelaySeconds`` after promotion and the aborted canary ``abortScaleDownDelaySeconds``
after an abort (:func:`canary_scale_down_delays`); a routed canary without steps brings the
canary to full size, then moves all traffic (:func:`routed_canary_without_steps`), a basic one
replaces pods like a rolling update. A blue-green rollout scales the preview, runs its
pre-promotion analysis, waits for promotion, switches, runs its post-promotion analysis and
keeps the old colour for ``scaleDownDelaySeconds``. Every metric of the templates an analysis
names joins one :class:`~deploysim.plan.AnalysisSpec`; what a metric's query measures is read
by :mod:`deploysim.manifests.queries`.

What Argo does that the rehearsal does not is named with its path: ``trafficRouting`` beyond
the weights (DestinationRule subsets, TLS/TCP routes, managed routes, Ingress annotations,
routers a cluster run does not drive), ``dynamicStableScale``, a ``workloadRef`` whose
Deployment keeps pods of its own, a ``HorizontalPodAutoscaler`` that scales the Rollout.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deploysim import plan as steps
from deploysim.manifests.argo_analysis import PROVIDERS, analysis_from_templates  # noqa: F401 - importers' API
from deploysim.manifests.argo_steps import CanarySteps, read_canary_steps, starting_step_note
from deploysim.manifests.deployment import fenceposts, warn_autoscalers, workload_timing
from deploysim.manifests.documents import Catalog, ImportedRollout, Reader
from deploysim.manifests.pod_template import pod_settings
from deploysim.plan import AnalysisSpec, Plan
from deploysim.rules.canary import percent_for_replicas

# Argo's defaults (utils/defaults/defaults.go)
DEFAULT_SCALE_DOWN_DELAY_SECONDS = 30  # DefaultScaleDownDelaySeconds
DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS = 30  # DefaultAbortScaleDownDelaySeconds
# Argo's refusals (ValidateRolloutStrategyCanary, pkg/apis/rollouts/validation/validation.go)
ARGO_DELAY_NEEDS_ROUTER = "Canary scaleDownDelaySeconds can only be used with traffic routing"
ARGO_DYNAMIC_NEEDS_ROUTER = "Canary dynamicStableScale can only be used with traffic routing"
ARGO_DYNAMIC_WITH_DELAY = "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds"
# what a workloadRef may name (infoByGroupKind, rollout/templateref.go)
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "PodTemplate")
WORKLOAD_SCALE_DOWN = ("never", "onsuccess", "progressively")


def read_argo_rollout(r: Reader, catalog: Catalog) -> ImportedRollout:
    """An Argo ``Rollout`` (``argoproj.io/v1alpha1``): a canary or blue-green strategy, with
    the AnalysisTemplates it names taken from ``catalog``."""
    doc = r.doc
    spec = r.mapping(doc.data.get("spec"), "spec")
    replicas, min_ready, deadline = workload_timing(r, spec)
    deadline_abort = r.boolean(spec, "progressDeadlineAbort", "spec", False)
    r.unused(spec, "spec", ("replicas", "minReadySeconds", "progressDeadlineSeconds", "progressDeadlineAbort",
                            "strategy", "workloadRef"),
             quiet=("selector", "template", "revisionHistoryLimit", "analysis"))
    _workload_ref(r, spec, catalog)
    warn_autoscalers(r, catalog, "Rollout", replicas)
    strategy = r.mapping(spec.get("strategy"), "spec.strategy")
    chosen = [k for k in ("canary", "blueGreen") if k in strategy]
    if len(chosen) != 1:
        r.fail("spec.strategy", f"got {sorted(strategy) or 'nothing'}; needs exactly one of canary, blueGreen")
    r.unused(strategy, "spec.strategy", chosen)
    common = {"min_ready_seconds": float(min_ready), "progress_deadline_seconds": float(deadline),
              "progress_deadline_abort": deadline_abort}
    source = f"Rollout {doc.name}"
    if chosen[0] == "canary":
        imported = _argo_canary(r, strategy["canary"], catalog, replicas, common, source)
    else:
        imported = _argo_blue_green(r, strategy["blueGreen"], catalog, replicas, common, source)
    return replace(imported, pod=_pod_template(r, spec, catalog))


def _pod_template(r: Reader, spec: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """The pods' probes and shutdown from ``spec.template``, or from the Deployment a
    ``workloadRef`` names (Argo runs that Deployment's pod template)."""
    ref = spec.get("workloadRef")
    if isinstance(ref, dict) and ref.get("kind") == "Deployment" and ref.get("name") in catalog.deployments:
        target = catalog.deployments[ref["name"]]
        tspec = target.data.get("spec")
        return pod_settings(Reader(target, r.warnings), tspec.get("template") if isinstance(tspec, dict) else None,
                            "spec.template")
    if isinstance(ref, dict) and ref:
        return {}  # a template not among the manifests: named by _workload_ref already
    return pod_settings(r, spec.get("template"), "spec.template")


def canary_scale_down_delays(router: bool, delay: int | None, abort_delay: int | None,
                             dynamic: bool = False) -> tuple[float, float]:
    """(seconds the old stable stays after all traffic moved, seconds the aborted canary stays
    after traffic went back) for a canary's ``scaleDownDelaySeconds`` and
    ``abortScaleDownDelaySeconds`` (None: not set).

    Argo's ``GetScaleDownDelaySecondsOrDefault`` and ``GetAbortScaleDownDelaySecondsOrDefault``
    (utils/defaults/defaults.go) give 30 s each with ``trafficRouting``, and nothing to a basic
    canary, whose pods move with the weight (``scaleDownOldReplicaSetsForCanary`` in
    rollout/canary.go scales a basic canary's old pods down at once). An explicit
    ``abortScaleDownDelaySeconds: 0`` makes the getter return nil, so
    ``shouldDelayScaleDownOnAbort`` (rollout/replicaset.go) is false and the canary gets
    ``GetCurrentSetWeight``'s replicas, 0 once aborted, at once (a held ``setCanaryScale`` is
    the exception, :func:`_abort_delay_notes`). With ``dynamicStableScale`` the stable is
    scaled down as the traffic moves (``CalculateReplicaCountsForTrafficRoutedCanary``), so
    none is left to keep at promotion, and the aborted canary goes down as the traffic comes
    back unless ``abortScaleDownDelaySeconds`` is set (``usesDynamicStableScaling &&
    !abortDelayWasSet``).

    >>> canary_scale_down_delays(True, None, None)
    (30.0, 30.0)
    >>> canary_scale_down_delays(True, 0, 120), canary_scale_down_delays(True, 600, 0)
    ((0.0, 120.0), (600.0, 0.0))
    >>> canary_scale_down_delays(False, None, None), canary_scale_down_delays(False, None, 60)
    ((0.0, 0.0), (0.0, 0.0))
    >>> canary_scale_down_delays(True, None, None, dynamic=True), canary_scale_down_delays(True, None, 45, dynamic=True)
    ((0.0, 0.0), (0.0, 45.0))
    """
    if not router:
        return 0.0, 0.0
    keep = 0 if dynamic else (DEFAULT_SCALE_DOWN_DELAY_SECONDS if delay is None else delay)
    if abort_delay is None:
        abort = 0 if dynamic else DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS
    else:
        abort = abort_delay
    return float(keep), float(abort)


def routed_canary_without_steps() -> tuple[steps.Step, ...]:
    """The plan of a canary with ``trafficRouting`` and no ``steps``, as Argo runs it.

    With no steps ``GetCurrentCanaryStep`` is nil, so ``GetCurrentSetWeight`` is 100 and
    ``CalculateReplicaCountsForTrafficRoutedCanary`` (utils/replicaset/canary.go) asks for a
    full-size canary while the stable stays at full size; ``reconcileTrafficRouting``
    (rollout/trafficrouting.go) keeps the canary's weight at 0 (no step index) until
    ``shouldFullPromote`` (rollout/sync.go) finds the canary's pods all available ("Completed
    all 0 canary steps") and makes it the stable: all traffic moves at once, and the old
    ReplicaSet goes after ``scaleDownDelaySeconds`` (the plan's ``scale_down_delay``).

    >>> [s.describe() for s in routed_canary_without_steps()]
    ['scale candidate to 100% of replicas', 'set weight to 100%']
    """
    return steps.SetCanaryScale(100), steps.SetWeight(100)


def _scale_down_delays(r: Reader, canary: dict[str, Any], path: str, router: bool,
                       read: CanarySteps) -> tuple[float, float]:
    """:func:`canary_scale_down_delays` of ``canary``, refused where Argo refuses it and named
    where the rehearsal differs."""
    delay = r.integer(canary, "scaleDownDelaySeconds", path, None, lo=0)
    abort = r.integer(canary, "abortScaleDownDelaySeconds", path, None, lo=0)
    dynamic = r.boolean(canary, "dynamicStableScale", path, False)
    if not router:
        if delay is not None:
            r.fail(f"{path}.scaleDownDelaySeconds", f"got {delay}; {ARGO_DELAY_NEEDS_ROUTER} (Argo Rollouts "
                   "refuses it without trafficRouting: a basic canary's old pods go as the weight moves)")
        if dynamic:
            r.fail(f"{path}.dynamicStableScale", f"got true; {ARGO_DYNAMIC_NEEDS_ROUTER} (Argo Rollouts refuses it "
                   "without trafficRouting)")
        if abort is not None:
            r.warn(f"{path}.abortScaleDownDelaySeconds", "ignored, as Argo Rollouts ignores it without trafficRouting "
                   "(shouldDelayScaleDownOnAbort): an aborted basic canary moves its pods back to the stable "
                   "within maxSurge and maxUnavailable")
        return canary_scale_down_delays(False, delay, abort)
    if dynamic and delay is not None:
        r.fail(f"{path}.dynamicStableScale", f"got true with scaleDownDelaySeconds {delay}; "
               f"{ARGO_DYNAMIC_WITH_DELAY} (Argo Rollouts refuses the two together)")
    if dynamic:
        r.warn(f"{path}.dynamicStableScale", "not simulated: Argo Rollouts scales the stable down as the canary's "
               "weight grows (and, on an abort, the canary down as traffic returns); the rehearsal keeps the stable "
               "at full size until all traffic moved, then scales it down at once, so its peak pods and extra "
               "pod-seconds are those without dynamicStableScale")
    if abort == 0:
        _abort_delay_notes(r, f"{path}.abortScaleDownDelaySeconds", read, f"{path}.steps")
    return canary_scale_down_delays(True, delay, abort, dynamic)


def _abort_delay_notes(r: Reader, path: str, read: CanarySteps, steps_path: str) -> None:
    """``abortScaleDownDelaySeconds: 0``: Argo's docs say the canary is left up; its code
    (``GetAbortScaleDownDelaySecondsOrDefault`` nil, ``UseSetCanaryScale``) leaves it up only
    at a held ``setCanaryScale``, and scales it down at once otherwise."""
    held = [where for what, value, where in read.planned if what in ("scale", "scale_replicas") and value]
    if not held:
        r.warn(path, "0 turns Argo's abort delay off (GetAbortScaleDownDelaySecondsOrDefault returns nil): with no "
               "setCanaryScale among the steps the aborted canary gets GetCurrentSetWeight's 0 replicas at once, "
               "as rehearsed (docs/features/scaledown-aborted-rs.md says it is left up; the controller's code "
               "scales it down)")
        return
    r.warn(path, f"0 turns Argo's abort delay off: an abort while {held[0]} holds leaves the canary at that scale "
           "indefinitely (UseSetCanaryScale keeps it), any other abort scales it down at once; the rehearsal "
           "scales it down at once after traffic went back, so its pod-seconds after such an abort are undercounted")


def _argo_canary(r: Reader, value: Any, catalog: Catalog, replicas: int | None,
                 common: dict[str, Any], source: str) -> ImportedRollout:
    path = "spec.strategy.canary"
    canary = r.mapping(value, path)
    surge, unavailable = fenceposts(r, canary, path)
    router = canary.get("trafficRouting") is not None
    router_name, route = _router(r, canary.get("trafficRouting"), f"{path}.trafficRouting") if router else (None, None)
    max_weight = _max_traffic_weight(r, canary.get("trafficRouting"), f"{path}.trafficRouting") if router else 100
    r.unused(canary, path, ("steps", "maxSurge", "maxUnavailable", "trafficRouting", "analysis",
                            "scaleDownDelaySeconds", "abortScaleDownDelaySeconds", "dynamicStableScale"),
             # one old ReplicaSet in a rehearsal: the limit on those kept for their delay never bites
             quiet=("canaryService", "stableService", "canaryMetadata", "stableMetadata", "pingPong",
                    "scaleDownDelayRevisionLimit"))
    read = read_canary_steps(r, canary.get("steps"), f"{path}.steps", catalog, router, max_weight)
    keep, abort_keep = _scale_down_delays(r, canary, path, router, read)
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

    # a basic canary without steps replaces pods like a rolling update: Argo's GetCurrentSetWeight
    # is 100 with no steps (docs/features/canary.md, "Mimicking Rolling Update")
    rolling = not planned and not router
    kind = "rolling" if rolling else "canary"
    strategy = {"kind": kind, "max_surge": surge, "max_unavailable": unavailable, "traffic_router": router,
                "min_ready_seconds": common["min_ready_seconds"],
                "progress_deadline_seconds": common["progress_deadline_seconds"],
                "scale_down_delay_seconds": keep, "abort_scale_down_delay_seconds": abort_keep}

    def build(n: int, judge: str) -> Plan:
        bg = replace(bg_spec, judge=judge) if bg_spec is not None else None
        if rolling:
            return Plan(strategy="rolling", replicas=n, steps=(steps.RollingUpdate(),), routing="replica_ratio",
                        max_surge=surge, max_unavailable=unavailable, background=bg, **common)
        sequence: list[steps.Step] = [] if planned else list(routed_canary_without_steps())
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
                    router=router_name, route=route, scale_down_delay=keep, abort_scale_down_delay=abort_keep,
                    max_surge=surge, max_unavailable=unavailable, background=bg, background_start=bg_start,
                    **common)

    return ImportedRollout(kind, source, replicas, strategy, build, r.warnings)


# --- trafficRouting ----------------------------------------------------------------------------

#: the routers of Argo's trafficRouting (RolloutTrafficRouting, pkg/apis/rollouts/v1alpha1/types.go)
ARGO_ROUTERS = ("istio", "nginx", "alb", "smi", "ambassador", "appMesh", "traefik", "apisix", "plugins")
#: Argo trafficRouting keys a cluster run carries out with its own router
ROUTER_KEYS = {"nginx": "nginx-ingress", "plugins": "gateway-httproute"}
GATEWAY_PLUGIN = "argoproj-labs/gatewayAPI"
_CARRIED_BY = {"nginx-ingress": "the NGINX Ingress canary annotations", "gateway-httproute": "the Gateway API HTTPRoute",
               None: "a Gateway API HTTPRoute (or NGINX Ingress)"}


def _router(r: Reader, value: Any, path: str) -> tuple[str | None, str | None]:
    """(router, the object it routes through) for a cluster run, from ``trafficRouting``:
    ``nginx.stableIngress`` (NGINX Ingress canary annotations, Argo's
    ``rollout/trafficrouting/nginx``) first, else the Gateway API plugin's ``httpRoute``. Every
    other router (istio, alb, smi, ... or a second one beside these: Argo sets the weight on
    each) is stood in for and named, and what a router does beyond the weights is named with
    its path: the rehearsal routes exact weights, as every router does."""
    routing = r.mapping(value, path)
    r.unused(routing, path, (*ARGO_ROUTERS, "maxTrafficWeight", "managedRoutes"))
    if routing.get("managedRoutes") is not None:
        r.warn(f"{path}.managedRoutes", "not simulated: the header and mirror routes it names (setHeaderRoute, "
               "setMirrorRoute) are not rehearsed, only the weights")
    plugins = r.mapping(routing.get("plugins"), f"{path}.plugins")
    chosen: tuple[str | None, str | None] = (None, None)
    if routing.get("nginx") is not None:
        chosen = ("nginx-ingress", _nginx(r, routing["nginx"], f"{path}.nginx"))
    if plugins.get(GATEWAY_PLUGIN) is not None:
        gpath = f"{path}.plugins.{GATEWAY_PLUGIN}"
        g = r.mapping(plugins[GATEWAY_PLUGIN], gpath)
        r.unused(g, gpath, ("httpRoute",), quiet=("namespace",))  # the route is looked up in the run's namespace
        if chosen[0] is None:
            chosen = ("gateway-httproute", r.string(g, "httpRoute", gpath))
        else:
            r.warn(gpath, f"on a cluster the weights are set through {_CARRIED_BY[chosen[0]]} only")
    stand_in = (f"on a cluster the weights are set through {_CARRIED_BY[chosen[0]]} instead; the rehearsal's "
                "exact weights are the same")
    for key in ARGO_ROUTERS:
        if key not in ("nginx", "plugins") and routing.get(key) is not None:
            r.warn(f"{path}.{key}", stand_in)
    for name in plugins:
        if name != GATEWAY_PLUGIN:  # a router plugin other than the Gateway API's
            r.warn(f"{path}.plugins.{name}", stand_in)
    if routing.get("istio") is not None:
        _istio(r, routing["istio"], f"{path}.istio")
    return chosen


def _nginx(r: Reader, value: Any, path: str) -> str:
    nginx = r.mapping(value, path)
    # annotationPrefix, additionalIngressAnnotations (canary-by-header, ...) are not carried out
    r.unused(nginx, path, ("stableIngress", "stableIngresses"))
    ingress = r.string(nginx, "stableIngress", path)
    if ingress is None and nginx.get("stableIngresses"):
        stables = r.items(nginx["stableIngresses"], f"{path}.stableIngresses")
        ingress = str(stables[0])
        if len(stables) > 1:
            r.warn(f"{path}.stableIngresses", f"only the first, {ingress!r}, gets a canary Ingress; "
                   f"{', '.join(map(str, stables[1:]))} keep all their traffic on the stable version")
    if ingress is None:
        r.fail(f"{path}.stableIngress", "missing; the NGINX router needs the stable Ingress")
    return ingress


def _istio(r: Reader, value: Any, path: str) -> None:
    """What Istio routing does beyond weighting the named HTTP routes of its VirtualServices."""
    istio = r.mapping(value, path)
    r.unused(istio, path, ("virtualService", "virtualServices", "destinationRule"))
    if istio.get("destinationRule") is not None:
        r.warn(f"{path}.destinationRule", "not simulated: Argo Rollouts splits by the DestinationRule's subsets "
               "(canarySubsetName, stableSubsetName) instead of two Services; the weights are the same")
    services = ([("virtualService", istio["virtualService"])] if istio.get("virtualService") is not None else [])
    services += [(f"virtualServices[{i}]", v) for i, v in enumerate(r.items(istio.get("virtualServices"),
                                                                            f"{path}.virtualServices"))]
    for where, vs in services:
        vpath = f"{path}.{where}"
        m = r.mapping(vs, vpath)
        r.unused(m, vpath, ("name", "routes", "tlsRoutes", "tcpRoutes"))
        for key in ("tlsRoutes", "tcpRoutes"):
            if m.get(key):
                r.warn(f"{vpath}.{key}", "not simulated: Argo Rollouts weights these routes too; the rehearsal's "
                       "requests are HTTP requests")


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


# --- what the Rollout refers to: its workload, an autoscaler ---------------------------------------


def _workload_ref(r: Reader, spec: dict[str, Any], catalog: Catalog) -> None:
    """``spec.workloadRef``: Argo takes the pod template (and the selector, when the Rollout
    has none) from the object it names and nothing else (``informerBasedTemplateResolver.Resolve``,
    rollout/templateref.go): replicas and strategy stay the Rollout's. The rehearsal needs
    neither template nor selector (the scenario gives the pods); a referenced Deployment that
    keeps pods of its own is named, since those pods are not simulated."""
    path = "spec.workloadRef"
    ref = r.mapping(spec.get("workloadRef"), path)
    if not ref:
        return
    r.unused(ref, path, ("apiVersion", "kind", "name", "scaleDown"))
    kind = r.string(ref, "kind", path)
    if kind not in WORKLOAD_KINDS:
        r.fail(f"{path}.kind", f"got {kind!r}; Argo Rollouts takes a pod template from one of "
               f"{', '.join(WORKLOAD_KINDS)} (\"workload of type ... is not supported\")")
    name = r.name(ref, "name", path, f"a workloadRef names the {kind} whose pod template the Rollout runs")
    if r.mapping(spec.get("template"), "spec.template"):
        r.fail("spec.template", "template must be empty for workload reference rollout (Argo Rollouts refuses "
               "both): drop spec.template or spec.workloadRef")
    scale_down = r.string(ref, "scaleDown", path, "never")
    if scale_down not in WORKLOAD_SCALE_DOWN:
        r.fail(f"{path}.scaleDown", f"got {scale_down!r}; allowed: {', '.join(WORKLOAD_SCALE_DOWN)}")
    target = catalog.deployments.get(name) if kind == "Deployment" else None
    if target is None:
        r.warn(path, f"{kind} {name!r} is not among the manifests; Argo Rollouts runs its pod template, the "
               "rehearsal the scenario's pods (replicas and strategy are the Rollout's either way)")
        return
    tspec = target.data.get("spec")
    own = tspec.get("replicas", 1) if isinstance(tspec, dict) else 1
    if isinstance(own, int) and not isinstance(own, bool) and own > 0:
        fate = {"never": "keep running beside the Rollout's (scaleDown: never)",
                "onsuccess": "run until the Rollout is healthy (scaleDown: onsuccess)",
                "progressively": "go as the Rollout's pods become available (scaleDown: progressively)"}[scale_down]
        r.warn(path, f"{target.describe()} has {own} pods of its own that {fate}; the rehearsal has only the "
               "Rollout's pods (Argo takes only the Deployment's pod template; its replicas and strategy are unused)")


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
