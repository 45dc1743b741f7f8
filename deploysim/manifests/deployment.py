"""An ``apps/v1 Deployment``: its replicas, update strategy and timing, with Kubernetes' defaults.

A lone Deployment is rehearsed as the rolling update (or recreate) Kubernetes would run; a
Deployment beside a Flagger Canary is the Canary's target, and gives it replicas and timing.
An Argo Rollout's spec carries the same pod-template fields, read by the same functions.
"""

from __future__ import annotations

from typing import Any

from deploysim.manifests.documents import Catalog, ImportedRollout, Reader
from deploysim.manifests.pod_template import pod_settings
from deploysim.plan import Plan, Recreate, RollingUpdate
from deploysim.rules.deployment import (
    DEFAULT_MAX_SURGE,
    DEFAULT_MAX_UNAVAILABLE,
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
    deadline_outlasts_min_ready,
)

REPLICAS_HELP = "a rehearsal needs a whole number of replicas, 1 or more"


def workload_timing(r: Reader, spec: dict[str, Any]) -> tuple[int, int, int]:
    """(replicas, minReadySeconds, progressDeadlineSeconds) of a Deployment or Rollout spec,
    defaults 1, 0 and 600; the deadline must outlast minReadySeconds, as the API server
    requires (``ValidateDeploymentSpec``)."""
    replicas = r.integer(spec, "replicas", "spec", 1, lo=1, allowed=REPLICAS_HELP)
    min_ready = r.integer(spec, "minReadySeconds", "spec", 0, lo=0)
    deadline = r.integer(spec, "progressDeadlineSeconds", "spec", int(DEFAULT_PROGRESS_DEADLINE_SECONDS), lo=1)
    if not deadline_outlasts_min_ready(deadline, min_ready):  # type: ignore[arg-type]
        r.fail("spec.progressDeadlineSeconds", f"got {deadline}; must be greater than minReadySeconds ({min_ready})")
    return replicas, min_ready, deadline  # type: ignore[return-value]


def fenceposts(r: Reader, m: dict[str, Any], path: str) -> tuple[int | str, int | str]:
    """(maxSurge, maxUnavailable) at ``path``, default 25% each; both 0 is an error, as the
    Deployment would never move."""
    surge = r.int_or_percent(m, "maxSurge", path, DEFAULT_MAX_SURGE)
    unavailable = r.int_or_percent(m, "maxUnavailable", path, DEFAULT_MAX_UNAVAILABLE)
    if surge in (0, "0%") and unavailable in (0, "0%"):
        r.fail(path, "maxSurge and maxUnavailable cannot both be 0")
    return surge, unavailable


def deployment_settings(r: Reader) -> dict[str, Any]:
    """replicas, strategy and timing of an apps/v1 Deployment, with Kubernetes' defaults."""
    spec = r.mapping(r.doc.data.get("spec"), "spec")
    replicas, min_ready, deadline = workload_timing(r, spec)
    strategy = r.mapping(spec.get("strategy"), "spec.strategy")
    kind = r.string(strategy, "type", "spec.strategy", "RollingUpdate")
    if kind not in ("RollingUpdate", "Recreate"):
        r.fail("spec.strategy.type", f"got {kind!r}; allowed: RollingUpdate, Recreate")
    rolling = r.mapping(strategy.get("rollingUpdate"), "spec.strategy.rollingUpdate")
    if kind == "Recreate" and rolling:
        r.fail("spec.strategy.rollingUpdate", "may only be set when type is RollingUpdate")
    surge, unavailable = fenceposts(r, rolling, "spec.strategy.rollingUpdate")
    r.unused(rolling, "spec.strategy.rollingUpdate", ("maxSurge", "maxUnavailable"))
    r.unused(strategy, "spec.strategy", ("type", "rollingUpdate"))
    r.unused(spec, "spec", ("replicas", "minReadySeconds", "progressDeadlineSeconds", "strategy"),
             quiet=("selector", "template", "revisionHistoryLimit"))
    if spec.get("paused"):
        r.warn("spec.paused", "a paused Deployment does not roll out; the rehearsal rolls it out anyway")
    return {"replicas": replicas, "kind": "recreate" if kind == "Recreate" else "rolling",
            "max_surge": surge, "max_unavailable": unavailable,
            "min_ready_seconds": float(min_ready), "progress_deadline_seconds": float(deadline)}


def warn_autoscalers(r: Reader, catalog: Catalog, kind: str, replicas: int, name: str | None = None) -> None:
    """A ``HorizontalPodAutoscaler`` whose ``scaleTargetRef`` is this ``kind``/``name`` (the
    document's own name by default) scales its ``spec.replicas`` (Argo's
    docs/features/hpa-support.md, Flagger's autoscalerRef target, a plain Deployment's HPA);
    the rehearsal keeps them fixed, and says so in the HPA's own document."""
    name = name or r.doc.name
    for hpa in catalog.autoscalers:
        spec = hpa.data.get("spec")
        target = spec.get("scaleTargetRef") if isinstance(spec, dict) else None
        if not isinstance(target, dict) or target.get("kind") != kind or target.get("name") != name:
            continue
        bounds = f"{spec.get('minReplicas', 1)} and {spec.get('maxReplicas', '?')}"
        Reader(hpa, r.warnings).warn("spec.scaleTargetRef", f"scales {kind} {name!r} between {bounds} "
                                     f"replicas; not simulated: the rehearsal keeps {replicas} replicas "
                                     "(spec.replicas) all through")


def read_deployment(r: Reader, catalog: Catalog) -> ImportedRollout:
    """A Deployment rolls out by its own rules and never rolls back on its own: when the
    progress deadline passes, Kubernetes marks it, and does nothing else."""
    d = deployment_settings(r)
    warn_autoscalers(r, catalog, "Deployment", d["replicas"])

    def build(replicas: int, judge: str) -> Plan:
        return Plan(
            strategy=d["kind"], replicas=replicas,
            steps=(Recreate(),) if d["kind"] == "recreate" else (RollingUpdate(),),
            routing="replica_ratio", max_surge=d["max_surge"], max_unavailable=d["max_unavailable"],
            min_ready_seconds=d["min_ready_seconds"], progress_deadline_seconds=d["progress_deadline_seconds"],
            progress_deadline_abort=False,
        )

    strategy = {"kind": d["kind"], "max_surge": d["max_surge"], "max_unavailable": d["max_unavailable"],
                "min_ready_seconds": d["min_ready_seconds"],
                "progress_deadline_seconds": d["progress_deadline_seconds"], "background_analysis": False}
    pod = pod_settings(r, r.mapping(r.doc.data.get("spec"), "spec").get("template"), "spec.template")
    return ImportedRollout(d["kind"], f"Deployment {r.doc.name}", d["replicas"], strategy, build, r.warnings, pod)
