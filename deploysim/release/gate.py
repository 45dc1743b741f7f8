"""The release gate: a run to a gated environment goes on only with a passing run of the same
image digest in the environment before it, or an override that the record keeps.

Pure where it can be: :func:`decide` takes the evidence found and returns the gate's record;
:func:`records_evidence` reads a record folder and :func:`releases_evidence` the list a
staging namespace's status ConfigMap keeps (:mod:`deploysim.release.cluster` reads it).

A *passing* run is one whose record says outcome ``promoted`` and exit code 0, run on a
cluster (``target: kubernetes``) in the required environment with the same digest. A
rehearsal (``target: sim``) deploys nothing: it is never evidence, and it is never gated.
Tags are never compared: a tag can be moved, a digest cannot.

>>> d = "sha256:" + "1" * 64
>>> ok = Evidence("ConfigMap staging/deploysim-web", "r1", "staging", d, "web@" + d, "promoted", 0, None, "kubernetes")
>>> decide("production", d, "staging", [ok], ["ConfigMap staging/deploysim-web"])["passed"]
True
>>> gate = decide("production", d, "staging", [], ["record folder runs"])
>>> gate["passed"], gate["found"]
(False, ['no runs there'])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deploysim.errors import DeploysimError

PASSING_OUTCOME = "promoted"
CLUSTER_TARGET = "kubernetes"


class ReleaseRefused(DeploysimError):
    """A gated run has no passing run of its digest in the environment before it (exit 2)."""


@dataclass(frozen=True)
class Evidence:
    """One earlier run of a release, as a record or the staging ConfigMap tells it."""

    source: str
    run: str | None
    environment: str | None
    digest: str | None
    image: str | None
    outcome: str | None
    exit_code: int | None
    finished_at: str | None
    target: str | None

    def passes(self, digest: str, required: str) -> bool:
        """A promoted cluster run (exit code 0) of ``digest`` in ``required``."""
        return (self.digest == digest and self.environment == required and self.outcome == PASSING_OUTCOME
                and self.exit_code == 0 and self.target == CLUSTER_TARGET)


def short(digest: str | None) -> str:
    """A digest as a line shows it.

    >>> short("sha256:" + "0123456789abcdef" * 4)
    'sha256:0123456789ab'
    """
    return "none" if digest is None else digest[: digest.index(":") + 13]


def _what_it_says(ev: Evidence, digest: str, required: str) -> str | None:
    """What one run of ``digest`` says against the gate; None for a run of another digest."""
    if ev.digest != digest:
        return None
    name = f"run {ev.run} of this digest"
    if ev.environment != required:
        return f"{name} ran in environment {ev.environment or '(unnamed)'}, not {required}"
    if ev.target != CLUSTER_TARGET:
        return f"{required} {name} was a rehearsal (target {ev.target}): it deployed nothing"
    if ev.outcome != PASSING_OUTCOME or ev.exit_code != 0:
        word = {"rolled_back": "rolled back", "running": "is running (or was killed)"}.get(
            ev.outcome or "", ev.outcome or "ended without an outcome")
        return f"{required} {name} {word} (exit code {ev.exit_code})"
    return f"{required} {name} promoted at {ev.finished_at or '?'}"


def findings(evidence: list[Evidence], digest: str, required: str) -> list[str]:
    """What the evidence says about ``digest``, one line a person reads per fact.

    >>> d, e = "sha256:" + "d" * 64, "sha256:" + "e" * 64
    >>> runs = [Evidence("f", "r1", "staging", d, None, "rolled_back", 1, None, "kubernetes"),
    ...         Evidence("f", "r2", "staging", e, None, "promoted", 0, "2026-12-01T10:00:00Z", "kubernetes")]
    >>> findings(runs, d, "staging")  # doctest: +NORMALIZE_WHITESPACE
    ['staging run r1 of this digest rolled back (exit code 1)',
     '1 promoted staging run(s) of other digests (latest: sha256:eeeeeeeeeeee in run r2)']
    """
    found = [line for ev in evidence if (line := _what_it_says(ev, digest, required))]
    others = [ev for ev in evidence if ev.digest != digest and ev.passes(ev.digest or "", required)]
    if others:
        last = others[-1]
        found.append(f"{len(others)} promoted {required} run(s) of other digests "
                     f"(latest: {short(last.digest)} in run {last.run})")
    unnamed = sum(1 for ev in evidence if ev.digest is None)
    if unnamed:
        found.append(f"{unnamed} run(s) that name no digest")
    return found or ["no runs there"]


def decide(environment: str, digest: str, required: str, evidence: list[Evidence], looked_in: list[str],
           problems: list[str] | None = None, override: str | None = None,
           by: dict[str, Any] | None = None) -> dict[str, Any]:
    """The gate's record for a run of ``digest`` to ``environment``, which needs ``required``.

    ``passed``: a passing run was found (``evidence`` names it); else ``overridden`` when an
    override reason is given (``override`` keeps why, by whom and what was missing); else
    the run is refused (:func:`refusal` says why).

    >>> d = "sha256:" + "d" * 64
    >>> gate = decide("production", d, "staging", [], [], override="hotfix INC-7", by={"user": "ana"})
    >>> gate["passed"], gate["overridden"], gate["override"]["reason"], gate["override"]["missing"][:40]
    (False, True, 'hotfix INC-7', 'environment production needs a passing s')
    """
    passing = [ev for ev in evidence if ev.passes(digest, required)]
    gate: dict[str, Any] = {
        "checked": True, "environment": environment, "requires": required, "digest": digest,
        "passed": bool(passing), "overridden": False,
        "evidence": asdict(passing[-1]) if passing else None,
        "looked_in": list(looked_in), "problems": list(problems or []),
        "found": findings(evidence, digest, required) if looked_in else [],
        "override": None,
    }
    if not passing and override is not None:
        gate["overridden"] = True
        gate["override"] = {"reason": override, "by": by or {}, "missing": refusal(gate)}
    return gate


def refusal(gate: dict[str, Any]) -> str:
    """Why a gated run may not go on: the digest, where it looked, what it found, what to do."""
    env, required, digest = gate["environment"], gate["requires"], gate["digest"]
    text = (f"environment {env} needs a passing {required} run of {digest} (a cluster run, outcome promoted, "
            "exit code 0) and none was found")
    if gate["looked_in"]:
        text += f"; looked in {' and '.join(gate['looked_in'])}"
        text += f"; found: {'; '.join(gate['found'])}"
    else:
        text += f"; no {required} evidence was given"
    if gate["problems"]:
        text += f"; could not read: {'; '.join(gate['problems'])}"
    return (text + f". Give the {required} evidence (staging_records: the {required} runs' record folder; "
            f"staging_namespace: the {required} namespace, whose status ConfigMap lists the digests promoted "
            "there), or run with -r staging_override \"<why>\" (kept in the record with who ran it)")


def records_evidence(folder: str | Path) -> tuple[list[Evidence], list[str]]:
    """The runs of a record folder as evidence, oldest first; and the damaged folders, each
    with why it was skipped."""
    from deploysim.trail import scan_runs

    runs, damaged = scan_runs(folder)
    where = f"record folder {folder}"
    evidence = []
    for path, data in runs:
        run = data.get("run") or {}
        release = run.get("release") if isinstance(run.get("release"), dict) else {}
        target = run.get("target") if isinstance(run.get("target"), dict) else {}
        evidence.append(Evidence(
            source=where, run=run.get("id") or path.name, environment=release.get("environment"),
            digest=release.get("digest"), image=release.get("image"), outcome=run.get("outcome"),
            exit_code=run.get("exit_code"), finished_at=run.get("finished_at"), target=target.get("name")))
    return evidence, [d.line() for d in damaged]


def releases_evidence(stored: dict[str, Any] | None, where: str) -> list[Evidence]:
    """The promoted releases a status ConfigMap keeps (``deploysim.kube.store.read_releases``)
    as evidence: each was a promoted cluster run, exit code 0.

    >>> d = "sha256:" + "d" * 64
    >>> [e.run for e in releases_evidence({"releases": [{"digest": d, "run": "r9", "environment": "staging"}]}, "cm")]
    ['r9']
    """
    if not stored:
        return []
    return [Evidence(source=where, run=r.get("run"), environment=r.get("environment"), digest=r.get("digest"),
                     image=r.get("image"), outcome=PASSING_OUTCOME, exit_code=0,
                     finished_at=r.get("finished_at"), target=CLUSTER_TARGET)
            for r in stored.get("releases", []) if isinstance(r, dict)]
