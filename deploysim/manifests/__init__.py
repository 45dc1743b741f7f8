"""The manifests teams already have in, the same plan out: Argo Rollouts, Flagger, Deployments.

``deploysim rehearse --manifest rollout.yaml --manifest templates.yaml`` reads multi-document
YAML files and finds one rollout in them: an Argo Rollouts ``Rollout`` (with the
``AnalysisTemplate`` / ``ClusterAnalysisTemplate`` objects it names), a Flagger ``Canary``
(with its ``MetricTemplate`` objects and target ``Deployment``) or a lone ``apps/v1
Deployment``. The manifest gives the strategy, the replicas and the analysis; the scenario
still gives the traffic, the pods, the two versions and the faults.

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
from deploysim.scenario import (
    Scenario,
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
    "read_documents",
    "read_rollout",
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


def _the_rollout(docs: list[Document]) -> tuple[Document, Catalog]:
    """The one rollout among the documents, and the templates and Deployments beside it."""
    rollouts: list[Document] = []
    catalog = Catalog()
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
    if len(rollouts) > 1:
        first = rollouts[0]
        raise rollouts[1].error("kind", f"a second rollout ({rollouts[1].kind} {rollouts[1].name!r}) "
                                f"after {first.kind} {first.name!r} in {first.file}; rehearse one at a time")
    if rollouts:
        return rollouts[0], catalog
    targets = list(catalog.deployments.values())
    if len(targets) > 1:
        raise targets[1].error("kind", f"a second Deployment ({targets[1].name!r}) after {targets[0].name!r}; "
                               "rehearse one at a time, or add the Flagger Canary that targets it")
    if not targets:
        raise ManifestError(docs[0].file, docs[0].index, "kind", "no rollout among the manifests; "
                            f"expected one of {', '.join(READERS)} beside the templates and companions")
    return targets[0], catalog


def read_rollout(manifests: ManifestPaths) -> ImportedRollout:
    """Find and check the one rollout among the manifests, with the templates it uses."""
    doc, catalog = _the_rollout(read_documents(manifests))
    return READERS[doc.kind](Reader(doc, []), catalog)


def scenario_from_manifests(
    manifests: ManifestPaths,
    scenario_path: str | Path | None = None,
    overrides: list[str] | None = None,
) -> Scenario:
    """The scenario (file or built-in default) with the manifest's strategy and replicas;
    ``--set`` overrides still win over both."""
    imported = read_rollout(manifests)
    data = read_yaml(scenario_path or default_scenario_path())
    strategy = dict(data.get("strategy") or {})
    strategy.update(imported.strategy)
    data["strategy"] = strategy
    if imported.replicas is not None:
        data["replicas"] = imported.replicas
    name = imported.source.split(" ", 1)[-1]
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63:
        data["service"] = name
    data = apply_overrides(data, overrides or [])
    return load_scenario(scenario_path, overrides=[], data=data)


def plan_from_manifests(manifests: ManifestPaths, scenario: Scenario) -> Plan:
    """The plan the manifests describe, for the scenario's replicas and judge."""
    imported = read_rollout(manifests)
    replicas = scenario.replicas
    warnings = list(imported.warnings)
    if imported.replicas is not None and imported.replicas != replicas:
        warnings.append(f"{imported.source}: spec.replicas is {imported.replicas} but the scenario "
                        f"has {replicas}; rehearsing {replicas}")
    plan = imported.build(replicas, scenario.analysis.judge)
    return replace(plan, warnings=tuple(warnings) + plan.warnings)
