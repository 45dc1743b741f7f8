"""The release gate in a runbook run: the record's ``run.release`` before the run starts
(:func:`release_check`, called by :func:`deploysim.runbooks.session.prepare` beside the
lint, before the run folder or the target cluster is touched), and the promoted release kept
on the cluster after it (:func:`keep_promoted`).

Which runs are gated: a run on a cluster (``target: kubernetes``) whose ``environment`` is a
key of ``environment_gates`` (default: ``production`` needs ``staging``). A rehearsal
(``target: sim``) deploys nothing and is not gated, nor is the rollback runbook (it returns to
the version that served before); their records still name the environment and the digest. A gated run's image must name a digest, even with an override: the record
says what was deployed by what cannot move.

>>> from types import SimpleNamespace as NS
>>> d = "sha256:" + "a" * 64
>>> p = NS(target="sim", environment="production", environment_gates={"production": "staging"},
...        staging_override=None)
>>> section = release_check(p, NS(candidate=NS(image="web@" + d), service="web"))
>>> section["digest"] == d, section["gate"]
(True, {'checked': False, 'why': 'a rehearsal (target sim) deploys nothing: not gated'})
"""

from __future__ import annotations

from typing import Any

from deploysim.errors import ClusterError, ParameterError
from deploysim.release.gate import ReleaseRefused, decide, records_evidence, refusal
from deploysim.release.reference import parse_reference


def _digest(image: str, gated: str | None) -> tuple[str | None, str | None]:
    """The image's digest, and why there is none (a tag alone, or not a reference)."""
    try:
        digest = parse_reference(image).digest
    except ValueError as exc:
        if gated:
            raise ParameterError(f"parameter 'image': got {image!r}; {exc}") from None
        return None, str(exc)
    return digest, None if digest else "the image names a tag, not a digest"


def release_check(params: Any, scenario: Any) -> dict[str, Any]:
    """The record's ``run.release`` (environment, image, digest, the gate's decision);
    raises :class:`ParameterError` for a gated run without a digest,
    :class:`~deploysim.release.gate.ReleaseRefused` (exit 2) when the gate refuses,
    :class:`ClusterError` (exit 3) when the staging cluster could not be read and nothing
    else passed."""
    environment = params.environment
    image = scenario.candidate.image
    required = params.environment_gates.get(environment) if environment else None
    rollback = getattr(params, "runbook", "") == "rollback"
    gated = required if params.target == "kubernetes" and not rollback else None
    digest, why = _digest(image, gated)
    section: dict[str, Any] = {"environment": environment, "image": image, "digest": digest}
    if why:
        section["no_digest"] = why
    if gated is None:
        if params.target != "kubernetes":
            reason = "a rehearsal (target sim) deploys nothing: not gated"
        elif rollback and required:
            reason = "a rollback returns to the version that served before it: not gated"
        elif environment is None:
            reason = "no environment named: not gated"
        else:
            shown = ", ".join(f"{k} needs {v}" for k, v in params.environment_gates.items()) or "none"
            reason = f"environment {environment} is not gated (environment_gates: {shown})"
        section["gate"] = {"checked": False, "why": reason}
        return section
    if digest is None:
        raise ParameterError(
            f"parameter 'image': got {image!r}; environment {environment} is gated on {gated} by image digest: "
            "give the image as name[:tag]@sha256:<64 hex> (the one its staging run deployed); the gate compares "
            "digests, never tags")
    evidence, looked, problems = [], [], []
    unreachable = None  # why the staging cluster could not be read
    if params.staging_records is not None:
        found, damaged = records_evidence(params.staging_records)
        evidence += found
        problems += damaged
        looked.append(f"record folder {params.staging_records} ({len(found)} runs)")
    if params.staging_namespace is not None:
        from deploysim.release.cluster import read_staging

        found, where, unreachable = read_staging(params, scenario.service)
        evidence += found
        looked.append(where)
        problems += [unreachable] if unreachable else []
    from deploysim.trail import who

    gate = decide(environment, digest, gated, evidence, looked, problems, params.staging_override, who())
    section["gate"] = gate
    if not gate["passed"] and not gate["overridden"]:
        if unreachable:
            raise ClusterError(refusal(gate))
        raise ReleaseRefused(refusal(gate))
    return section


def keep_promoted(params: Any, scenario: Any, release: dict[str, Any], run_id: str,
                  finished_at: str | None) -> dict[str, Any]:
    """After a promoted cluster run of a digest: the release added to the namespace's status
    ConfigMap. Returns what the record says of it (where, or why not)."""
    entry = {"digest": release["digest"], "image": release["image"], "run": run_id,
             "finished_at": finished_at, "environment": release["environment"]}
    try:
        from deploysim.release.cluster import keep_on_cluster

        return {"kept": True, "where": keep_on_cluster(params, scenario.service, entry)}
    except Exception as exc:  # noqa: BLE001 - the run is over and promoted; the record says what failed
        return {"kept": False, "why": f"{type(exc).__name__}: {exc}"[:300]}
