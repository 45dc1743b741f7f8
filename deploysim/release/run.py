"""The release gate in a runbook run: the record's ``run.release`` before the run starts
(:func:`release_check`, called by :func:`deploysim.runbooks.session.prepare` beside the
lint, before the run folder or the target cluster is touched), and the release kept on the
cluster after it (:func:`keep_after`).

Which runs are gated: a run on a cluster (``target: kubernetes``) whose ``environment`` is a
key of ``environment_gates`` (default: ``production`` needs ``staging``; a given value that
drops a default gate, or no longer leads to it, is ignored and the default gate is checked:
only ``staging_override`` lets such a run on, and the record keeps why). A rehearsal
(``target: sim``) deploys nothing and is not gated. A rollback in a gated environment goes
back to a digest that served in its own namespace before (its status ConfigMap's releases) or
that has the usual evidence. A resumed run reuses the decision its first part's record kept.
A gated run's image must name a digest, even with an override: the record says what was
deployed by what cannot move.

>>> from types import SimpleNamespace as NS
>>> d = "sha256:" + "a" * 64
>>> p = NS(target="sim", environment="production", environment_gates={"production": "staging"},
...        staging_override=None)
>>> section = release_check(p, NS(candidate=NS(image="web@" + d), service="web"))
>>> section["digest"] == d, section["gate"]
(True, {'checked': False, 'why': 'a rehearsal (target sim) deploys nothing: not gated'})
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from deploysim.errors import ClusterError, ParameterError
from deploysim.release.gate import (
    ReleaseRefused,
    Wanted,
    decide,
    records_evidence,
    refusal,
    repository,
)
from deploysim.release.parameters import DEFAULT_GATES
from deploysim.release.reference import parse_reference

#: environment names that look like production: a run there that is not gated is warned of
PRODUCTION_LIKE = re.compile(r"(prod|prd|live|production)([-_.].*)?|.*[-_](prod|prd|live|production)")


def _digest(image: str, gated: str | None) -> tuple[str | None, str | None]:
    """The image's digest, and why there is none (a tag alone, or not a reference)."""
    try:
        digest = parse_reference(image).digest
    except ValueError as exc:
        if gated:
            raise ParameterError(f"parameter 'image': got {image!r}; {exc}") from None
        return None, str(exc)
    return digest, None if digest else "the image names a tag, not a digest"


def chain(environment: str, gates: dict[str, str]) -> list[str]:
    """The environments a run of ``environment`` stands on, nearest first.

    >>> chain("production", {"production": "qa", "qa": "staging"}), chain("dev", {})
    (['qa', 'staging'], [])
    """
    path: list[str] = []
    while (environment := gates.get(environment, "")) and environment not in path:
        path.append(environment)
    return path


def weakened(environment: str | None, gates: dict[str, str]) -> str | None:
    """The default gate ``gates`` drops for ``environment`` (what it needs by default), or None.

    >>> weakened("production", {}), weakened("production", {"production": "dev"})
    ('staging', 'staging')
    >>> weakened("production", {"production": "qa", "qa": "staging"}) is None
    True
    """
    default = DEFAULT_GATES.get(environment or "")
    return default if default and default not in chain(environment or "", gates) else None


def _lint(runbook: str, path: str, rule: str, message: str) -> dict[str, Any]:
    return {"id": rule, "severity": "warning", "path": path, "message": message, "subject": f"runbook {runbook}"}


def warnings(params: Any, environment: str | None, image: str, why: str | None) -> list[dict[str, Any]]:
    """Lint warnings for the record: a production-like environment that is not gated, and a
    run of an environment other runs need whose image names no digest (it can never be their
    evidence)."""
    gates, runbook = params.environment_gates, getattr(params, "runbook", "runbook")
    found = []
    if environment and environment not in gates and environment not in DEFAULT_GATES \
            and PRODUCTION_LIKE.fullmatch(environment):
        found.append(_lint(runbook, "environment", "environment-looks-like-production",
                           f"environment {environment} looks like production but is not gated (environment_gates: "
                           f"{', '.join(f'{k} needs {v}' for k, v in gates.items()) or 'none'}); name it production, "
                           f"or add {{{environment}: staging}} to environment_gates"))
    needed_by = sorted(k for k, v in gates.items() if v == environment)
    if environment and needed_by and why:
        found.append(_lint(runbook, "image", "release-evidence-without-digest",
                           f"environment {environment} is what {', '.join(needed_by)} need(s) first, by image digest: "
                           f"image {image!r}: {why}; this run can never be their evidence: give name[:tag]@sha256:..."))
    return found


def _reused(params: Any, scenario: Any, digest: str, environment: str) -> dict[str, Any] | None:
    """A resumed run's gate: the decision its first part's record kept (``record_dir/<run>``,
    the run its namespace's status ConfigMap names), when it was of this digest and let it on."""
    from deploysim.controller import TERMINAL_PHASES
    from deploysim.release.cluster import read_namespace

    _, stored, _, _ = read_namespace(params, scenario.service, params.namespace, own=True)
    if not stored or stored.get("phase") in TERMINAL_PHASES:
        return None  # nothing half-way to resume: gated as any run
    earlier = stored.get("run")
    path = Path(params.record_dir) / str(earlier) / "record.json"
    if not earlier or not path.is_file():
        return None
    try:
        release = json.loads(path.read_text()).get("run", {}).get("release") or {}
    except (OSError, ValueError, AttributeError):
        return None
    gate = release.get("gate") or {}
    if release.get("digest") != digest or release.get("environment") != environment or not (
            gate.get("passed") or gate.get("overridden")):
        return None
    return {**gate, "reused": f"decided when run {earlier} started; a resumed run is not gated again"}


def release_check(params: Any, scenario: Any) -> dict[str, Any]:
    """The record's ``run.release`` (environment, image, digest, the gate's decision, lint
    warnings); raises :class:`ParameterError` for a gated run without a digest,
    :class:`~deploysim.release.gate.ReleaseRefused` (exit 2) when the gate refuses,
    :class:`ClusterError` (exit 3) when a cluster could not be read and nothing else passed."""
    environment = params.environment
    image = scenario.candidate.image
    gates = params.environment_gates
    dropped = weakened(environment, gates) if params.target == "kubernetes" else None
    required = dropped or (gates.get(environment) if environment else None)
    rollback = getattr(params, "runbook", "") == "rollback"
    gated = required if params.target == "kubernetes" else None
    digest, why = _digest(image, gated)
    section: dict[str, Any] = {"environment": environment, "image": image, "digest": digest}
    if why:
        section["no_digest"] = why
    if found := warnings(params, environment, image, why):
        section["lint"] = found
    if gated is None:
        if params.target != "kubernetes":
            reason = "a rehearsal (target sim) deploys nothing: not gated"
        elif environment is None:
            reason = "no environment named: not gated"
        else:
            shown = ", ".join(f"{k} needs {v}" for k, v in gates.items()) or "none"
            reason = f"environment {environment} is not gated (environment_gates: {shown})"
        section["gate"] = {"checked": False, "why": reason}
        return section
    if digest is None:
        raise ParameterError(
            f"parameter 'image': got {image!r}; environment {environment} is gated on {gated} by image digest: "
            "give the image as name[:tag]@sha256:<64 hex> (the one its staging run deployed); the gate compares "
            "digests, never tags")
    if getattr(params, "resume", False) and (reused := _reused(params, scenario, digest, environment)):
        section["gate"] = reused
        return section
    want = Wanted(gated, scenario.service, repository(image), params.staging_namespace)
    evidence, looked, problems = [], [], []
    unreachable = []  # why a cluster could not be read
    if params.staging_records is not None:
        found_runs, damaged = records_evidence(params.staging_records)
        evidence += found_runs
        problems += damaged
        looked.append(f"record folder {params.staging_records} ({len(found_runs)} runs)")
    from deploysim.release.cluster import read_namespace

    also = None
    if rollback:  # back to a digest that served here before
        also = Wanted(environment, scenario.service, repository(image), params.namespace, served=True)
        found_runs, _, where, cut = read_namespace(params, scenario.service, params.namespace, own=True)
        evidence, looked, unreachable = evidence + found_runs, [*looked, where], unreachable + ([cut] if cut else [])
    if params.staging_namespace is not None:
        found_runs, _, where, cut = read_namespace(params, scenario.service, params.staging_namespace)
        evidence, looked, unreachable = evidence + found_runs, [*looked, where], unreachable + ([cut] if cut else [])
    from deploysim.trail import who

    gate = decide(environment, digest, want, evidence, looked, problems + unreachable, params.staging_override,
                  who(), also=also)
    if dropped:
        gate["weakened"] = (f"environment_gates {gates} drops the default gate {environment} needs {dropped}: "
                            "the default is checked")
    section["gate"] = gate
    if not gate["passed"] and not gate["overridden"]:
        text = (gate["weakened"] + "; " if dropped else "") + refusal(gate)
        if unreachable:
            raise ClusterError(text)
        raise ReleaseRefused(text)
    return section


def keep_promoted(params: Any, scenario: Any, release: dict[str, Any], run_id: str,
                  finished_at: str | None, outcome: str = "promoted", exit_code: int | None = 0) -> dict[str, Any]:
    """After a cluster run of a digest: its release added to the namespace's status ConfigMap
    (a later run of the same digest and environment takes its place, so the latest decides).
    Returns what the record says of it (where, or why not)."""
    entry = {"digest": release["digest"], "image": release["image"], "run": run_id, "finished_at": finished_at,
             "environment": release["environment"], "outcome": outcome, "exit_code": exit_code,
             "overridden": bool((release.get("gate") or {}).get("overridden"))}
    try:
        from deploysim.release.cluster import keep_on_cluster

        return {"kept": True, "where": keep_on_cluster(params, scenario.service, entry)}
    except Exception as exc:  # noqa: BLE001 - the run is over; the record says what failed
        return {"kept": False, "why": f"{type(exc).__name__}: {exc}"[:300]}


def keep_after(params: Any, scenario: Any, release: dict[str, Any] | None, run_id: str, finished_at: str | None,
               outcome: Any, deployed: bool) -> None:
    """After a cluster run that names a digest: a promoted run (exit code 0) kept as a release
    of its namespace, and a run that changed the cluster and did not promote kept as such (it
    refuses the digest until a later run promotes it). A rollback is never kept: it returns to
    a release, it does not make one."""
    if (not release or not release.get("digest") or params.target != "kubernetes"
            or getattr(params, "runbook", "") == "rollback"):
        return
    promoted = outcome.outcome == "promoted" and outcome.exit_code == 0
    if promoted or deployed:
        release["kept"] = keep_promoted(params, scenario, release, run_id, finished_at, outcome.outcome,
                                        outcome.exit_code)
