"""The manifests teams already have in, the same plan out: Argo Rollouts, Flagger, Deployments.

``deploysim rehearse --manifest rollout.yaml --manifest templates.yaml`` reads multi-document
YAML files and finds the rollout in them: an Argo Rollouts ``Rollout`` (with the
``AnalysisTemplate`` / ``ClusterAnalysisTemplate`` objects it names), a Flagger ``Canary``
(with its ``MetricTemplate`` objects and target ``Deployment``) or a lone ``apps/v1
Deployment``; among several, the one named by ``--name`` (``name=``). A ``kind: List``
document is read item by item; a kind the rehearsal does not read (an Argo ``Experiment``, a
CRD of the team's own) is skipped and named in a warning. The manifest gives the strategy,
the replicas and the analysis; the scenario still gives the traffic (its rate per pod kept
for the manifest's replicas, :func:`scenario_from_manifests`), the pods, the two versions and
the faults.

One reader per kind (:data:`READERS`): ``argo``, ``flagger`` and ``deployment``, each over
the documents and paths of :mod:`~deploysim.manifests.documents` and the query rules of
:mod:`~deploysim.manifests.queries`, each returning an :class:`ImportedRollout`.

What the rehearsal cannot model is never dropped in silence: it is named, with its path, in
``Plan.warnings`` (and an analysis metric in ``AnalysisSpec.not_simulated``). What is wrong
raises :class:`~deploysim.errors.ManifestError` naming the file, the document (from 1) and
the path, before anything runs:

>>> import tempfile, pathlib
>>> bad = pathlib.Path(tempfile.mkdtemp()) / "rollout.yaml"
>>> _ = bad.write_text("kind: Rollout\\napiVersion: argoproj.io/v1alpha1\\n"
...                    "spec: {strategy: {canary: {steps: [{setWeight: 150}]}}}\\n")
>>> try:
...     read_rollout([bad])
... except ManifestError as exc:
...     print(str(exc).split(": ", 1)[1])
spec.strategy.canary.steps[0].setWeight: got 150; a weight is a whole number from 0 to 100
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from deploysim.errors import ManifestError
from deploysim.manifests.argo import read_argo_rollout
from deploysim.manifests.deployment import read_deployment
from deploysim.manifests.documents import (
    Catalog,
    Document,
    ImportedRollout,
    ManifestPaths,
    Reader,
    RolloutReader,
    document_role,
    read_documents,
    skipped_note,
)
from deploysim.manifests.flagger import read_canary
from deploysim.manifests.queries import (
    Measures,
    bounds_to_check,
    classify_query,
    condition_bounds,
    query_window,
)
from deploysim.plan import Plan
from deploysim.rules.service import pod_load, shed_fraction
from deploysim.scenario import (
    Scenario,
    Traffic,
    apply_overrides,
    default_scenario_path,
    load_scenario,
    read_yaml,
)

__all__ = [
    "READERS",
    "ImportedRollout",
    "Measures",
    "bounds_to_check",
    "classify_query",
    "condition_bounds",
    "plan_from_manifests",
    "query_window",
    "rate_is_pinned",
    "read_documents",
    "read_rollout",
    "scaled_rate",
    "scenario_from_manifests",
]

# one reader per rollout kind (documents.ROLLOUT_KINDS names their API groups)
READERS: dict[str, RolloutReader] = {
    "Rollout": read_argo_rollout,
    "Canary": read_canary,
    "Deployment": read_deployment,
}
# a kind another rollout may target: the rollout itself only when nothing else is
TARGET_KIND = "Deployment"
# a companion a reader looks at: it may scale the rollout's replicas
AUTOSCALER_KIND = "HorizontalPodAutoscaler"


def _catalogue(docs: list[Document]) -> tuple[list[Document], Catalog, list[str]]:
    """(the rollouts, the templates and Deployments beside them, a warning per skipped document)."""
    rollouts: list[Document] = []
    catalog = Catalog()
    warnings: list[str] = []
    for doc in docs:
        role = document_role(doc)
        if role == "template":
            if not doc.name:
                raise doc.error("metadata.name", f"a {doc.kind} needs a name, the one rollouts refer to")
            catalog.templates[(doc.kind, doc.name)] = doc
        elif role == "rollout" and doc.kind == TARGET_KIND:
            catalog.deployments[doc.name] = doc
        elif role == "rollout":
            rollouts.append(doc)
        elif role == "unknown":
            warnings.append(skipped_note(doc))
        elif doc.kind == AUTOSCALER_KIND:
            catalog.autoscalers.append(doc)
    return rollouts, catalog, warnings


def _canary_target(doc: Document) -> str | None:
    spec = doc.data.get("spec")
    target = spec.get("targetRef") if isinstance(spec, dict) else None
    return str(target.get("name")) if doc.kind == "Canary" and isinstance(target, dict) else None


def _listed(docs: list[Document]) -> str:
    return "; ".join(d.describe() for d in docs)


def _pick(docs: list[Document], rollouts: list[Document], catalog: Catalog, name: str | None,
          skipped: list[str]) -> Document:
    """The rollout to rehearse: the one there is, or the one named ``name`` (``metadata.name``).

    A Deployment is the rollout only when no Rollout or Canary is among the manifests, or when
    it is named and no Canary targets it (a Canary's target rolls out by the Canary's steps)."""
    targets = list(catalog.deployments.values())
    first = docs[0]
    if name is not None:
        named = [d for d in rollouts if d.name == name]
        if not named and name in catalog.deployments:
            owners = [d for d in rollouts if _canary_target(d) == name]
            if owners:
                raise owners[0].error("spec.targetRef.name", f"the name given, {name!r}, is this Canary's target; "
                                      f"a Canary's Deployment rolls out by the Canary's steps: name the Canary "
                                      f"({owners[0].name!r})")
            named = [catalog.deployments[name]]
        if len(named) > 1:
            raise named[1].error("metadata.name", f"several rollouts are named {name!r}: {_listed(named)}; "
                                 "a namespace holds one object of a kind and name")
        if not named:
            files = ", ".join(dict.fromkeys(d.file for d in docs))
            raise ManifestError(files, 0, "metadata.name", f"got {name!r}; no Rollout, Canary or Deployment of that "
                                f"name among the manifests (there: {_listed(rollouts or targets) or 'none'})")
        return named[0]
    several = rollouts if len(rollouts) > 1 else (targets if not rollouts and len(targets) > 1 else [])
    if several:
        raise several[1].error("metadata.name", f"several rollouts among the manifests: {_listed(several)}; "
                               "pick one by name (--name, name=, the runbook's manifest_name)")
    if rollouts:
        return rollouts[0]
    if not targets:
        raise ManifestError(first.file, first.index, "kind", "no rollout among the manifests; "
                            f"expected one of {', '.join(READERS)} beside the templates and companions"
                            + "".join(f"; {note}" for note in skipped))
    return targets[0]


def read_rollout(manifests: ManifestPaths, name: str | None = None) -> ImportedRollout:
    """Find and check the rollout among the manifests (the one named ``name`` when they hold
    several), with the templates it uses. Documents of kinds the rehearsal does not read are
    skipped, each named in a warning."""
    docs = read_documents(manifests)
    rollouts, catalog, warnings = _catalogue(docs)
    doc = _pick(docs, rollouts, catalog, name, warnings)
    return READERS[doc.kind](Reader(doc, warnings), catalog)


def scenario_from_manifests(
    manifests: ManifestPaths,
    scenario_path: str | Path | None = None,
    overrides: list[str] | None = None,
    name: str | None = None,
) -> Scenario:
    """The scenario (file or built-in default) with the strategy and replicas of the manifest's
    rollout (the one named ``name`` when there are several), and what its pod template says of
    probes, preStop and the grace period (:mod:`~deploysim.manifests.pod_template`); ``--set``
    overrides still win over both.

    The request rate keeps its rate per pod: the scenario's ``traffic.rps`` is sized for the
    scenario's ``replicas``, so when the rehearsal runs another number (the manifest's
    ``spec.replicas``, or ``--set replicas``) the rate is scaled by rehearsed / scenario
    replicas (:func:`scaled_rate`): the built-in scenario's 300 rps for 10 pods is 30 rps for a
    Rollout of 1 replica, not ten pods' worth of requests on one pod. The rate stays as given
    when the user pinned it (:func:`rate_is_pinned`): ``--set traffic.rps=...``, or a scenario
    file of their own that states ``traffic.rps`` without ``replicas``, a rate for the service
    whatever its size. A trace (``traffic.shape: trace``) is replayed as recorded. Whatever the
    rate, :func:`plan_from_manifests` warns when it is more than the replicas serve.
    """
    imported = read_rollout(manifests, name)
    data = read_yaml(scenario_path or default_scenario_path())
    pinned = rate_is_pinned(data, overrides or [], own_file=scenario_path is not None)
    base_replicas = data.get("replicas", Scenario.model_fields["replicas"].default)
    strategy = dict(data.get("strategy") or {})
    strategy.update(imported.strategy)
    data["strategy"] = strategy
    if imported.pod:  # the pod template's probes, preStop and grace period
        data["pod"] = {**(data.get("pod") if isinstance(data.get("pod"), dict) else {}), **imported.pod}
    if imported.replicas is not None:
        data["replicas"] = imported.replicas
    name = imported.source.split(" ", 1)[-1]
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63:
        data["service"] = name
    data = apply_overrides(data, overrides or [])
    traffic = data.get("traffic") if isinstance(data.get("traffic"), dict) else {}
    if not pinned and traffic.get("shape") != "trace":
        rps = traffic.get("rps", Traffic.model_fields["rps"].default)
        rate = scaled_rate(rps, base_replicas, data.get("replicas"))
        if rate is not None:
            data["traffic"] = {**traffic, "rps": rate}
    return load_scenario(scenario_path, overrides=[], data=data)


def scaled_rate(rps: object, scenario_replicas: object, replicas: object) -> float | None:
    """The request rate for ``replicas`` pods that gives each the rate ``rps`` gives
    ``scenario_replicas``; None when there is nothing to scale (the same replicas, or values
    the scenario's own checks will refuse).

    >>> scaled_rate(300, 10, 1), scaled_rate(300, 10, 3), scaled_rate(200.0, 10, 25)
    (30.0, 90.0, 500.0)
    >>> scaled_rate(300, 10, 10) is None, scaled_rate("lots", 10, 1) is None, scaled_rate(300, 10, 0) is None
    (True, True, True)
    """
    numbers = [v for v in (rps, scenario_replicas, replicas) if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != 3 or scenario_replicas == replicas or min(numbers) <= 0:
        return None
    return float(rps) * float(replicas) / float(scenario_replicas)  # type: ignore[arg-type]


def rate_is_pinned(data: dict[str, object], overrides: list[str], own_file: bool) -> bool:
    """Whether the user fixed the request rate for the service whatever its size: with
    ``--set traffic.rps=...`` (or ``--set traffic=...``), or in a scenario file of their own
    (``own_file``) that gives ``traffic.rps`` and no ``replicas``.

    >>> rate_is_pinned({"replicas": 10, "traffic": {"rps": 300}}, [], own_file=False)
    False
    >>> rate_is_pinned({"replicas": 10, "traffic": {"rps": 300}}, ["traffic.rps=40"], own_file=False)
    True
    >>> rate_is_pinned({"traffic": {"rps": 300}}, [], own_file=True), rate_is_pinned({"traffic": {}}, [], own_file=True)
    (True, False)
    """
    if any(item.partition("=")[0].strip() in ("traffic", "traffic.rps") for item in overrides):
        return True
    traffic = data.get("traffic")
    return own_file and "replicas" not in data and isinstance(traffic, dict) and "rps" in traffic


def overload_note(scenario: Scenario) -> str | None:
    """A warning when the scenario offers more requests than its replicas serve at the peak of
    its traffic (the service model sheds the excess as failures, :mod:`deploysim.rules.service`);
    None when they serve it. A trace's peak is not read here.

    >>> print(overload_note(load_scenario(overrides=["replicas=1", "traffic.shape=constant"])))
    traffic: 300 rps is more than 1 replica serves (100 rps each): 67% of requests fail as shed all through the rehearsal; size traffic.rps for this service (--set traffic.rps=...)
    >>> overload_note(load_scenario()) is None
    True
    """
    t = scenario.traffic
    factor = {"diurnal": t.peak_factor, "step": max(t.step_factor, 1.0)}.get(t.shape, 1.0)
    if t.shape == "trace":
        return None
    peak = t.rps * factor
    capacity = scenario.replicas * scenario.pod.capacity_rps
    if peak <= capacity:
        return None
    shed = shed_fraction(pod_load(peak, scenario.replicas, scenario.pod.capacity_rps))
    what = "rps" if factor == 1.0 else f"rps at the peak ({t.shape})"
    pods = f"{scenario.replicas} replica{'s serve' if scenario.replicas != 1 else ' serves'}"
    return (f"traffic: {peak:g} {what} is more than {pods} ({scenario.pod.capacity_rps:g} rps each): "
            f"{shed:.0%} of requests fail as shed {'all through the rehearsal' if factor == 1.0 else 'at the peak'}; "
            "size traffic.rps for this service (--set traffic.rps=...)")


def plan_from_manifests(manifests: ManifestPaths, scenario: Scenario, name: str | None = None) -> Plan:
    """The plan the manifests describe (their rollout named ``name`` when there are several),
    for the scenario's replicas and judge; a traffic the replicas cannot serve is named
    (:func:`overload_note`)."""
    imported = read_rollout(manifests, name)
    replicas = scenario.replicas
    warnings = list(imported.warnings)
    if imported.replicas is not None and imported.replicas != replicas:
        warnings.append(f"{imported.source}: spec.replicas is {imported.replicas} but the scenario "
                        f"has {replicas}; rehearsing {replicas}")
    overload = overload_note(scenario)
    if overload is not None:
        warnings.append(overload)
    plan = imported.build(replicas, scenario.analysis.judge)
    from deploysim.strategies import with_assumptions

    return with_assumptions(replace(plan, warnings=tuple(warnings) + plan.warnings), scenario.analysis.assume)
