"""What lint looks at: a scenario with its plan, or each workload among a set of manifests.

A workload is a ``Rollout`` (its pod template in ``spec.template``, or in the Deployment its
``spec.workloadRef`` names), a Flagger ``Canary`` (its pods are its ``targetRef``
Deployment's) or a Deployment that no Canary or Rollout takes over. Its pods are linted where
they are written, its plan where the rollout is; PodDisruptionBudgets and
HorizontalPodAutoscalers count from every file of the set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploysim.lint import pods, rollout
from deploysim.lint.disruption import covering_budget, flagger_primary_labels
from deploysim.lint.findings import Finding, Location, Severity, finding

if TYPE_CHECKING:
    from deploysim.manifests.documents import Document
    from deploysim.plan import Plan
    from deploysim.scenario import Scenario

PRODUCTION = ("production", "prod")


@dataclass
class Subject:
    """One thing linted, with the scenario and plan its costs are rehearsed on."""

    name: str
    scenario: Scenario | None
    plan: Plan | None
    findings: list[Finding] = field(default_factory=list)


def in_production(environment: str | None) -> bool:
    return (environment or "").lower() in PRODUCTION


def plan_findings(plan: Plan, replicas: int, where: dict[str, Location], subject: str,
                  environment: str | None) -> list[Finding]:
    """The rollout rules over one plan; ``where`` gives the place of each (strategy,
    max_unavailable, first_step, replicas, rollback)."""
    out: list[Finding] = []
    if not rollout.has_rollback_path(plan):
        out.append(finding("no-rollback-path", where["rollback"],
                           f"{plan.strategy} rollout with no analysis and no manual gate before the candidate "
                           "takes all traffic", "add an analysis (steps or background) or a manual gate "
                           "(pause without a duration) before full traffic", subject))
    if rollout.all_unavailable(plan):
        out.append(finding("big-bang-max-unavailable", where["max_unavailable"],
                           f"maxUnavailable {plan.max_unavailable} resolves to every pod ({plan.replicas} of "
                           f"{plan.replicas}): all may be out of service at once", f"maxUnavailable {rollout.FIXED_MAX_UNAVAILABLE} "
                           "(Kubernetes' default) or a whole number below the replicas", subject))
    if rollout.first_step_all_traffic(plan):
        out.append(finding("big-bang-first-step", where["first_step"],
                           "the first canary step sends 100% of traffic to the candidate",
                           "start with a small weight (5-20%) and an analysis or pause before raising it", subject))
    if rollout.is_recreate(plan):
        severity: Severity = "error" if in_production(environment) else "warning"
        out.append(finding("big-bang-recreate", where["strategy"],
                           "Recreate stops every old pod before a new one starts: the service is down for "
                           "every release" + (" in production" if severity == "error" else ""),
                           "use RollingUpdate (or a canary / blue-green)", subject, severity))
    if replicas == 1:
        out.append(finding("single-replica", where["replicas"], "one replica: losing its pod or its node "
                           "is an outage", "run 2 or more replicas (spread over nodes)", subject))
    return out


# --- a scenario ----------------------------------------------------------------------------


def scenario_findings(scenario: Scenario, plan: Plan, file: str | None, subject: str,
                      environment: str | None, image_keys: tuple[str, ...] = ("stable", "candidate")) -> list[Finding]:
    """Images, rollout rules and replicas of a scenario (a file, the built-in one, or what a
    runbook's parameters built); paths are scenario keys."""
    doc = 1 if file else None

    def at(path: str) -> Location:
        return Location(file, doc, path)

    out: list[Finding] = []
    for key in image_keys:
        image = getattr(scenario, key).image
        for rule, message, hint in pods.image_problems(image):
            out.append(finding(rule, at(f"{key}.image"), message, hint, subject))
    steps = scenario.strategy.steps
    first = next((i for i, s in enumerate(steps) if s.set_weight), None)
    kind = scenario.strategy.kind
    rollback = {"canary": "strategy.steps", "blue-green": "strategy.pre_promotion_analysis"}.get(
        kind, "strategy.background_analysis")
    where = {"strategy": at("strategy.kind"), "max_unavailable": at("strategy.max_unavailable"),
             "first_step": at(f"strategy.steps[{first}].set_weight" if first is not None else "strategy.steps"),
             "replicas": at("replicas"), "rollback": at(rollback)}
    out.extend(plan_findings(plan, plan.replicas, where, subject, environment))
    return out


# --- manifests -----------------------------------------------------------------------------


@dataclass
class Workload:
    """A rollout among the manifests and where its pods are written."""

    doc: Document
    pod_doc: Document | None  # the document holding the pod template (None: not among the files)
    replicas: int
    replicas_at: Location
    labels: dict[str, str]  # of the pods that serve between releases
    namespace: str | None
    note: str | None = None

    @property
    def subject(self) -> str:
        return f"{self.doc.kind} {self.doc.name}"


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _loc(doc: Document, path: str) -> Location:
    return Location(doc.file, doc.index, doc.prefix + path)


def _namespace(doc: Document) -> str | None:
    ns = _get(doc.data, "metadata", "namespace")
    return str(ns) if ns else None


def _replicas(doc: Document, autoscalers: list[Document], kind: str, name: str) -> tuple[int, Location]:
    """A workload's fewest replicas: an autoscaler's minReplicas when one scales it, else spec.replicas (1)."""
    for hpa in autoscalers:
        ref = _get(hpa.data, "spec", "scaleTargetRef") or {}
        if isinstance(ref, dict) and ref.get("kind") == kind and ref.get("name") == name:
            low = _get(hpa.data, "spec", "minReplicas")
            return (low if isinstance(low, int) and not isinstance(low, bool) else 1), _loc(hpa, "spec.minReplicas")
    value = _get(doc.data, "spec", "replicas")
    return (value if isinstance(value, int) and not isinstance(value, bool) else 1), _loc(doc, "spec.replicas")


def _labels(doc: Document | None) -> dict[str, str]:
    labels = _get(doc.data, "spec", "template", "metadata", "labels") if doc is not None else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def find_workloads(docs: list[Document]) -> list[Workload]:
    """Every workload among the documents, in file order."""
    deployments = {d.name: d for d in docs if d.kind == "Deployment"}
    autoscalers = [d for d in docs if d.kind == "HorizontalPodAutoscaler"]
    taken: set[str] = set()
    for d in docs:
        ref = _get(d.data, "spec", "targetRef") if d.kind == "Canary" else _get(d.data, "spec", "workloadRef")
        if d.kind in ("Canary", "Rollout") and isinstance(ref, dict) and ref.get("kind", "Deployment") == "Deployment":
            taken.add(str(ref.get("name")))
    out: list[Workload] = []
    for d in docs:
        if d.kind == "Deployment" and d.name not in taken:
            n, at = _replicas(d, autoscalers, "Deployment", d.name)
            out.append(Workload(d, d, n, at, _labels(d), _namespace(d)))
        elif d.kind == "Rollout":
            ref = _get(d.data, "spec", "workloadRef")
            pod_doc = deployments.get(str(ref.get("name"))) if isinstance(ref, dict) else d
            n, at = _replicas(d, autoscalers, "Rollout", d.name)
            labels = _labels(pod_doc)
            note = None if pod_doc is not None else (f"{d.kind} {d.name!r}: the Deployment its workloadRef names is not "
                                                     "among the files; its pods were not linted")
            out.append(Workload(d, pod_doc, n, at, labels, _namespace(d), note))
        elif d.kind == "Canary":
            target = str(_get(d.data, "spec", "targetRef", "name") or "")
            pod_doc = deployments.get(target)
            if pod_doc is None:
                out.append(Workload(d, None, 2, _loc(d, "spec.targetRef"), {}, _namespace(d),
                                    f"Canary {d.name!r}: its target Deployment {target!r} is not among the files; "
                                    "its pods, replicas and disruption budget were not linted"))
                continue
            n, at = _replicas(pod_doc, autoscalers, "Deployment", target)
            selector = _get(pod_doc.data, "spec", "selector", "matchLabels") or {}
            labels = flagger_primary_labels(_labels(pod_doc), selector if isinstance(selector, dict) else {}, target)
            out.append(Workload(d, pod_doc, n, at, labels, _namespace(pod_doc) or _namespace(d)))
    return out


def pod_findings(w: Workload) -> list[Finding]:
    """Images of every container (init ones too), and probes and preStop of the serving ones."""
    if w.pod_doc is None:
        return []
    spec = _get(w.pod_doc.data, "spec", "template", "spec")
    if not isinstance(spec, dict):
        return []
    subject = f"{w.pod_doc.kind} {w.pod_doc.name}"
    out: list[Finding] = []
    grace = pods.grace_seconds(spec)
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            if not isinstance(c, dict):
                continue
            base = f"spec.template.spec.{group}[{i}]"
            for rule, message, hint in pods.image_problems(str(c.get("image") or "")):
                out.append(finding(rule, _loc(w.pod_doc, f"{base}.image"), message, hint, subject))
            if group == "containers":
                for rule, path, message, hint, facts in pods.container_problems(c, grace):
                    out.append(finding(rule, _loc(w.pod_doc, f"{base}.{path}"), message, hint, subject, **facts))
    return out


def budget_findings(w: Workload, docs: list[Document]) -> list[Finding]:
    """No PodDisruptionBudget in the set selects the workload's serving pods (checked from 2
    replicas, as kube-score does)."""
    if w.pod_doc is None or w.replicas < 2 or not w.labels:
        return []
    budgets = [(_namespace(d), _get(d.data, "spec", "selector")) for d in docs if d.kind == "PodDisruptionBudget"]
    if covering_budget(budgets, w.namespace, w.labels):
        return []
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(w.labels.items()))
    flagger = " (Flagger's primary pods, which serve between releases)" if w.doc.kind == "Canary" else ""
    return [finding("no-pod-disruption-budget", _loc(w.doc, "metadata.name"),
                    f"no PodDisruptionBudget among the files selects the pods {{{shown}}}{flagger}",
                    f"add a policy/v1 PodDisruptionBudget with maxUnavailable 1 selecting {{{shown}}}", w.subject)]


def _rollout_places(w: Workload) -> dict[str, Location]:
    d = w.doc
    if d.kind == "Rollout":
        canary = _get(d.data, "spec", "strategy", "canary")
        steps = canary.get("steps") if isinstance(canary, dict) else None
        first = next((i for i, s in enumerate(steps or []) if isinstance(s, dict) and s.get("setWeight")), None)
        base = "spec.strategy.canary" if isinstance(canary, dict) else "spec.strategy.blueGreen"
        return {"strategy": _loc(d, "spec.strategy"), "max_unavailable": _loc(d, f"{base}.maxUnavailable"),
                "first_step": _loc(d, f"{base}.steps[{first}].setWeight" if first is not None else f"{base}.steps"),
                "replicas": w.replicas_at, "rollback": _loc(d, base)}
    if d.kind == "Canary":
        weights = _get(d.data, "spec", "analysis", "stepWeights")
        target = w.pod_doc or d
        return {"strategy": _loc(target, "spec.strategy"),
                "max_unavailable": _loc(target, "spec.strategy.rollingUpdate.maxUnavailable"),
                "first_step": _loc(d, "spec.analysis.stepWeights[0]" if weights else "spec.analysis.stepWeight"),
                "replicas": w.replicas_at, "rollback": _loc(d, "spec.analysis")}
    return {"strategy": _loc(d, "spec.strategy.type"),
            "max_unavailable": _loc(d, "spec.strategy.rollingUpdate.maxUnavailable"),
            "first_step": _loc(d, "spec.strategy"), "replicas": w.replicas_at, "rollback": _loc(d, "spec.strategy")}


def manifest_subjects(paths: list[str | Path], scenario_path: str | Path | None = None,
                      overrides: list[str] | None = None, environment: str | None = None,
                      names: list[str] | None = None) -> tuple[list[Subject], list[str]]:
    """One subject per workload among the manifests (those named ``names``, when given), and
    notes on what could not be linted. A manifest deploysim cannot read is an error
    (:class:`~deploysim.errors.ManifestError`), as for ``rehearse``."""
    from deploysim.manifests import plan_from_manifests, read_documents, scenario_from_manifests

    docs = read_documents(paths)
    subjects: list[Subject] = []
    notes: list[str] = []
    for w in find_workloads(docs):
        if names is not None and w.doc.name not in names:
            continue
        if w.note:
            notes.append(w.note)
        scenario = scenario_from_manifests(paths, scenario_path, overrides or [], name=w.doc.name)
        plan = plan_from_manifests(paths, scenario, name=w.doc.name)
        found = pod_findings(w) + budget_findings(w, docs)
        places = _rollout_places(w)
        plan_found = plan_findings(plan, w.replicas, places, w.subject, environment)
        if w.pod_doc is None:  # nothing known of its replicas
            plan_found = [f for f in plan_found if f.id != "single-replica"]
        subjects.append(Subject(w.subject, scenario, plan, found + plan_found))
    return subjects, notes
