"""The release gate: a run to a gated environment goes on only when the latest verdict on the
same image digest in the environment before it is a passing run, or with an override that the
record keeps.

Pure where it can be: :func:`decide` takes the evidence found and returns the gate's record;
:func:`records_evidence` reads a record folder and :func:`releases_evidence` the list a
staging namespace's status ConfigMap keeps (:mod:`deploysim.release.cluster` reads it).

A *passing* run is one whose record says outcome ``promoted`` and exit code 0, run on a
cluster (``target: kubernetes``, ``summary.world: kubernetes``, API changes made) in the
required environment with the same digest, of the same service and image repository (and in
the staging namespace, when one is named), and not itself let through by an override. A
rehearsal (``target: sim``) deploys nothing: it is never evidence, and it is never gated.
Tags are never compared: a tag can be moved, a digest cannot. The runs are read in the order
they finished; a run of the digest that did not promote after the last passing one refuses it.

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
#: outcomes that are no verdict yet (a run still going, or killed and not resumed)
NO_VERDICT = ("running", None)


class ReleaseRefused(DeploysimError):
    """A gated run has no passing run of its digest in the environment before it (exit 2)."""


@dataclass(frozen=True)
class Wanted:
    """What a run must be to count for a gate: its environment, and (None: not compared) the
    service, the image repository and the namespace; ``served``: a run let through by an
    override counts too (a rollback returns to what served, however it got there)."""

    environment: str
    service: str | None = None
    repository: str | None = None
    namespace: str | None = None
    served: bool = False

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.environment}{where}"


@dataclass(frozen=True)
class Evidence:
    """One earlier run of a release, as a record or the staging ConfigMap tells it.
    ``deployed``: the record's world is kubernetes and it lists API changes."""

    source: str
    run: str | None
    environment: str | None
    digest: str | None
    image: str | None
    outcome: str | None
    exit_code: int | None
    finished_at: str | None
    target: str | None
    service: str | None = None
    repository: str | None = None
    namespace: str | None = None
    deployed: bool = True
    overridden: bool = False

    def mismatch(self, digest: str, want: Wanted) -> str | None:
        """Why this run is not a run of ``digest`` as ``want`` asks; None when it is."""
        if self.digest != digest:
            return "another digest"
        for field, wanted, verb in (("environment", want.environment, "ran in"), ("service", want.service, "is of"),
                                    ("repository", want.repository, "is of image"),
                                    ("namespace", want.namespace, "ran in")):
            got = getattr(self, field)
            if wanted is not None and got != wanted:
                return f"{verb} {field} {got or '(unnamed)'}, not {wanted}"
        if self.target != CLUSTER_TARGET:
            return f"was a rehearsal (target {self.target}): it deployed nothing"
        if not self.deployed:
            return "deployed nothing (its summary.world is not kubernetes, or it lists no API changes)"
        return None

    def passes(self, digest: str, required: str | Wanted) -> bool:
        """A promoted cluster run (exit code 0), not overridden, of ``digest`` as ``required`` asks."""
        want = required if isinstance(required, Wanted) else Wanted(required)
        return (self.mismatch(digest, want) is None and self.outcome == PASSING_OUTCOME and self.exit_code == 0
                and (want.served or not self.overridden))


def short(digest: str | None) -> str:
    """A digest as a line shows it (a value without ``algorithm:`` shown as it is, cut).

    >>> short("sha256:" + "0123456789abcdef" * 4), short("0123456789abcdef0123")
    ('sha256:0123456789ab', '0123456789abcdef0123')
    """
    if digest is None:
        return "none"
    return digest[: digest.index(":") + 13] if ":" in digest else digest[:20]


def _what_it_says(ev: Evidence, digest: str, want: Wanted) -> str | None:
    """What one run of ``digest`` says against the gate; None for a run of another digest."""
    if ev.digest != digest:
        return None
    name = f"run {ev.run} of this digest"
    why = ev.mismatch(digest, want)
    if why:
        return f"{name} {why}"
    env = want.describe()
    if ev.outcome != PASSING_OUTCOME or ev.exit_code != 0:
        word = {"rolled_back": "rolled back", "running": "is running (or was killed)"}.get(
            ev.outcome or "", ev.outcome or "ended without an outcome")
        return f"{env} {name} {word} (exit code {ev.exit_code})"
    if ev.overridden and not want.served:
        return f"{env} {name} promoted, but its own gate was overridden: not evidence"
    return f"{env} {name} promoted at {ev.finished_at or '?'}"


def latest_verdict(evidence: list[Evidence], digest: str, want: Wanted) -> tuple[Evidence | None, Evidence | None]:
    """The passing run the gate stands on, and the later run of the digest that did not promote
    (which refuses it), in the order the runs finished.

    >>> d = "sha256:" + "d" * 64
    >>> runs = [Evidence("f", "r1", "staging", d, None, "promoted", 0, "2026-12-01T10:00Z", "kubernetes"),
    ...         Evidence("f", "r2", "staging", d, None, "rolled_back", 1, "2026-12-01T11:00Z", "kubernetes")]
    >>> [None if e is None else e.run for e in latest_verdict(runs, d, Wanted("staging"))]
    [None, 'r2']
    >>> [None if e is None else e.run for e in latest_verdict(runs[::-1], d, Wanted("staging"))]
    [None, 'r2']
    """
    ordered = sorted((ev for ev in evidence if ev.mismatch(digest, want) is None and ev.outcome not in NO_VERDICT),
                     key=lambda ev: ev.finished_at or "")
    passing, failed = None, None
    for ev in ordered:
        if ev.passes(digest, want):
            passing, failed = ev, None
        elif ev.outcome != PASSING_OUTCOME or ev.exit_code != 0:
            passing, failed = None, ev
    return passing, failed


def findings(evidence: list[Evidence], digest: str, required: str | Wanted) -> list[str]:
    """What the evidence says about ``digest``, one line a person reads per fact.

    >>> d, e = "sha256:" + "d" * 64, "sha256:" + "e" * 64
    >>> runs = [Evidence("f", "r1", "staging", d, None, "rolled_back", 1, None, "kubernetes"),
    ...         Evidence("f", "r2", "staging", e, None, "promoted", 0, "2026-12-01T10:00:00Z", "kubernetes")]
    >>> findings(runs, d, "staging")  # doctest: +NORMALIZE_WHITESPACE
    ['staging run r1 of this digest rolled back (exit code 1)',
     '1 promoted staging run(s) of other digests (latest: sha256:eeeeeeeeeeee in run r2)']
    """
    want = required if isinstance(required, Wanted) else Wanted(required)
    found = [line for ev in evidence if (line := _what_it_says(ev, digest, want))]
    passing, failed = latest_verdict(evidence, digest, want)
    if failed is not None and any(ev.passes(digest, want) for ev in evidence):
        found.append(f"the latest {want.describe()} run of this digest, {failed.run}, did not promote: "
                     "it decides")
    others = [ev for ev in evidence if ev.digest != digest and ev.passes(ev.digest or "", want)]
    if others:
        last = others[-1]
        found.append(f"{len(others)} promoted {want.environment} run(s) of other digests "
                     f"(latest: {short(last.digest)} in run {last.run})")
    unnamed = sum(1 for ev in evidence if ev.digest is None)
    if unnamed:
        found.append(f"{unnamed} run(s) that name no digest")
    return found or ["no runs there"]


def decide(environment: str, digest: str, required: str | Wanted, evidence: list[Evidence], looked_in: list[str],
           problems: list[str] | None = None, override: str | None = None,
           by: dict[str, Any] | None = None, also: Wanted | None = None) -> dict[str, Any]:
    """The gate's record for a run of ``digest`` to ``environment``, which needs ``required``
    (or, given, ``also``: a rollback's own environment, where the digest served before).

    ``passed``: the latest verdict on the digest is a passing run (``evidence`` names it);
    else ``overridden`` when an override reason is given (``override`` keeps why, by whom and
    what was missing); else the run is refused (:func:`refusal` says why).

    >>> d = "sha256:" + "d" * 64
    >>> gate = decide("production", d, "staging", [], [], override="hotfix INC-7", by={"user": "ana"})
    >>> gate["passed"], gate["overridden"], gate["override"]["reason"], gate["override"]["missing"][:40]
    (False, True, 'hotfix INC-7', 'environment production needs a passing s')
    """
    want = required if isinstance(required, Wanted) else Wanted(required)
    wants = [w for w in (also, want) if w is not None]
    passing = next((p for w in wants if (p := latest_verdict(evidence, digest, w)[0]) is not None), None)
    found = [line for w in wants for line in findings(evidence, digest, w)] if looked_in else []
    gate: dict[str, Any] = {
        "checked": True, "environment": environment, "requires": want.environment, "digest": digest,
        "passed": passing is not None, "overridden": False,
        "evidence": asdict(passing) if passing else None,
        "looked_in": list(looked_in), "problems": list(problems or []),
        "found": list(dict.fromkeys(line for line in found if line != "no runs there")) or found[:1],
        "override": None,
    }
    if also is not None:
        gate["or"] = f"a run of it that served in {also.describe()} before"
    if passing is None and override is not None:
        gate["overridden"] = True
        gate["override"] = {"reason": override, "by": by or {}, "missing": refusal(gate)}
    return gate


def refusal(gate: dict[str, Any]) -> str:
    """Why a gated run may not go on: the digest, where it looked, what it found, what to do."""
    env, required, digest = gate["environment"], gate["requires"], gate["digest"]
    text = (f"environment {env} needs a passing {required} run of {digest} (a cluster run of the same service "
            "and repository, outcome promoted, exit code 0, not overridden, and no later run of it rolled back)"
            + (f" or {gate['or']}" if gate.get("or") else "") + " and none was found")
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


def repository(image: Any) -> str | None:
    """The repository an image reference names (no tag, no digest); None when it is none.

    >>> repository("ghcr.io/acme/web:1.4@sha256:" + "a" * 64), repository("Bad Name")
    ('ghcr.io/acme/web', None)
    """
    from deploysim.release.reference import parse_reference

    try:
        return parse_reference(image).name if isinstance(image, str) else None
    except ValueError:
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def records_evidence(folder: str | Path) -> tuple[list[Evidence], list[str]]:
    """The runs of a record folder as evidence, oldest first; and the damaged folders, each
    with why it was skipped."""
    from deploysim.trail import scan_runs

    runs, damaged = scan_runs(folder)
    where = f"record folder {folder}"
    evidence = []
    for path, data in runs:
        run = _dict(data.get("run"))
        release, target = _dict(run.get("release")), _dict(run.get("target"))
        deployed = _dict(data.get("summary")).get("world") == CLUSTER_TARGET and bool(data.get("changes"))
        evidence.append(Evidence(
            source=where, run=run.get("id") or path.name, environment=release.get("environment"),
            digest=release.get("digest"), image=release.get("image"), outcome=run.get("outcome"),
            exit_code=run.get("exit_code"), finished_at=run.get("finished_at"), target=target.get("name"),
            service=_dict(data.get("scenario")).get("service"), repository=repository(release.get("image")),
            namespace=target.get("namespace"), deployed=deployed,
            overridden=_dict(release.get("gate")).get("overridden") is True))
    return evidence, [d.line() for d in damaged]


def releases_evidence(stored: dict[str, Any] | None, where: str, service: str | None = None,
                      namespace: str | None = None) -> list[Evidence]:
    """The releases a status ConfigMap keeps (``deploysim.kube.store.read_releases``) as
    evidence: each was a cluster run of ``service`` in ``namespace`` (the ConfigMap's), promoted
    with exit code 0 unless the entry says otherwise.

    >>> d = "sha256:" + "d" * 64
    >>> [e.run for e in releases_evidence({"releases": [{"digest": d, "run": "r9", "environment": "staging"}]}, "cm")]
    ['r9']
    """
    if not stored:
        return []
    return [Evidence(source=where, run=r.get("run"), environment=r.get("environment"), digest=r.get("digest"),
                     image=r.get("image"), outcome=r.get("outcome", PASSING_OUTCOME), exit_code=r.get("exit_code", 0),
                     finished_at=r.get("finished_at"), target=CLUSTER_TARGET, service=service,
                     repository=repository(r.get("image")), namespace=namespace,
                     overridden=r.get("overridden") is True)
            for r in stored.get("releases", []) if isinstance(r, dict)]
