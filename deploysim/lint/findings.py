"""What ``deploysim lint`` reports: the rules by id, a finding, its rehearsed cost, the report.

Every rule has an id, a default severity and the check names of kube-score
(``zegl/kube-score`` ``README_CHECKS.md``), kube-linter (``stackrox/kube-linter``
``docs/generated/checks.md``) and Polaris (``FairwindsOps/polaris`` ``checks/``) that look
for the same thing, so a team that runs those tools beside this one can match the findings.

>>> RULES["image-tag-mutable"].severity, RULES["image-tag-mutable"].also[0]
('error', 'kube-score container-image-tag')
>>> at_or_above("warning", "error"), at_or_above("error", "warning"), at_or_above("info", "none")
(False, True, False)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from deploysim.errors import ParameterError

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
#: ``--fail-on`` values: a severity, or none (never fail on findings)
FAIL_ON: tuple[str, ...] = (*SEVERITIES, "none")
_RANK = {"info": 0, "warning": 1, "error": 2}


def at_or_above(severity: str, threshold: str) -> bool:
    """Whether a finding of ``severity`` counts for ``--fail-on threshold`` (``none``: never)."""
    if threshold == "none":
        return False
    return _RANK[severity] >= _RANK[threshold]


@dataclass(frozen=True)
class Rule:
    """One check: its id, title, default severity, why it matters, and the same check in
    other linters (``tool check-name``)."""

    id: str
    title: str
    severity: Severity
    why: str
    also: tuple[str, ...] = ()


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("image-tag-mutable", "mutable image tag", "error",
         "a tag such as latest, main or stable moves: the version rehearsed, approved and rolled back to is "
         "not the version that runs", ("kube-score container-image-tag", "kube-linter latest-tag",
                                      "Polaris tagNotSpecified")),
    Rule("image-tag-missing", "image without a tag", "error",
         "an image without a tag or digest is pulled as latest", (
             "kube-score container-image-tag", "kube-linter latest-tag", "Polaris tagNotSpecified")),
    Rule("image-not-pinned-by-digest", "image pinned by tag, not digest", "info",
         "a tag can be pushed again; a digest names exactly one image", ("kube-linter image-not-pinned-by-digest",)),
    Rule("no-readiness-probe", "no readiness probe", "warning",
         "without a readiness probe a pod takes traffic as soon as its container runs, before the "
         "application serves, and a rollout counts a pod that cannot serve as available", (
             "kube-score pod-probes", "kube-linter no-readiness-probe", "Polaris readinessProbeMissing")),
    Rule("liveness-equals-readiness", "liveness probe identical to the readiness probe", "warning",
         "a pod that is only busy fails both: it is taken out of rotation and restarted at once, and a "
         "slow dependency restarts every pod", ("kube-score pod-probes",)),
    Rule("no-rollback-path", "no rollback path", "warning",
         "no analysis and no manual gate before the candidate takes all traffic: a bad release is "
         "noticed by its users", ()),
    Rule("big-bang-max-unavailable", "every pod replaced at once", "error",
         "maxUnavailable lets the update take every pod out of service together", ()),
    Rule("big-bang-first-step", "the first canary step sends all traffic", "error",
         "a canary whose first weight is 100% is a switch, not a canary", ()),
    Rule("big-bang-recreate", "recreate update", "warning",
         "Recreate stops every old pod before a new one starts: an outage for every release; an error "
         "for production", ("kube-linter no-rolling-update-strategy",)),
    Rule("single-replica", "a single replica", "warning",
         "one pod is one node, one eviction or one crash away from an outage",
         ("Polaris deploymentMissingReplicas", "kube-linter minimum-three-replicas")),
    Rule("no-pod-disruption-budget", "no PodDisruptionBudget", "warning",
         "without one a node drain may evict every pod of the service together", (
             "kube-score deployment-has-poddisruptionbudget", "Polaris missingPodDisruptionBudget")),
    Rule("prestop-shorter-than-endpoint-lag", "preStop shorter than the endpoint lag", "warning",
         "a terminating pod keeps receiving requests until every node has seen it leave the "
         "endpoints; an application that stops at once fails them", ()),
    Rule("change-freeze", "deploy inside a change freeze", "warning",
         "a release inside the team's freeze calendar (Friday afternoon and weekends by default); an "
         "error for production", ()),
)}


@dataclass(frozen=True)
class Location:
    """Where a finding is: a file, its document (from 1) and the path inside it; ``file`` is
    None for what is not a file (the built-in scenario, a runbook's parameters, the clock).

    >>> Location("k8s/web.yaml", 2, "spec.replicas").describe()
    'k8s/web.yaml (document 2): spec.replicas'
    >>> Location(None, None, "candidate.image").describe()
    'candidate.image'
    """

    file: str | None
    document: int | None
    path: str

    def describe(self) -> str:
        if self.file is None:
            return self.path
        return f"{self.file} (document {self.document}): {self.path}"


@dataclass(frozen=True)
class Cost:
    """A finding's price, rehearsed: the same rollout as written (``as_is``) and with the
    finding fixed (``fixed``), each a summary of outcome, failed requests, error budget
    consumed and rollout duration. ``fix`` says what the fixed variant changes, ``candidate``
    which candidate both rehearsed, ``fault`` the fault both met (None: the scenario's own)."""

    fix: str
    candidate: str
    fault: str | None
    as_is: dict[str, Any]
    fixed: dict[str, Any]

    @property
    def difference(self) -> dict[str, float | None]:
        """As written minus fixed, per number: positive when the fix saves something.

        >>> c = Cost("x", "y", None, {"failed_requests": 900, "error_budget_consumed": 0.02, "rollout_seconds": 60.0},
        ...          {"failed_requests": 100, "error_budget_consumed": 0.001, "rollout_seconds": 300.0})
        >>> c.difference
        {'failed_requests': 800, 'error_budget_consumed': 0.019, 'rollout_seconds': -240.0}
        """
        out: dict[str, float | None] = {}
        for key in COST_KEYS:
            a, b = self.as_is.get(key), self.fixed.get(key)
            out[key] = None if a is None or b is None else round(a - b, 6)
        return out


#: the numbers a cost compares (keys of a record's summary)
COST_KEYS = ("failed_requests", "error_budget_consumed", "rollout_seconds")


@dataclass(frozen=True)
class Finding:
    """One thing lint found: the rule's id, the severity it has here, where, what, how to fix
    it, the object it is about (``Deployment web``, ``scenario``), and its rehearsed cost (or
    why there is none, ``not_costed``)."""

    id: str
    severity: Severity
    location: Location
    message: str
    hint: str
    subject: str
    cost: Cost | None = None
    not_costed: str | None = None
    # what a rule read that its cost needs (a preStop's seconds, a grace period)
    facts: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["location"] = asdict(self.location)
        data["cost"] = None if self.cost is None else {**asdict(self.cost), "difference": self.cost.difference}
        data["also"] = list(RULES[self.id].also)
        return data


@dataclass
class LintReport:
    """Everything one lint found, in order, and notes on what it could not look at."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def failing(self, fail_on: str) -> list[Finding]:
        """The findings at or above ``fail_on``."""
        return [f for f in self.findings if at_or_above(f.severity, fail_on)]

    def exit_code(self, fail_on: str = "error") -> int:
        """1 when a finding is at or above ``fail_on``, else 0."""
        return 1 if self.failing(fail_on) else 0


class LintError(ParameterError):
    """A runbook stopped before anything happened: lint found errors (exit 2, like every
    parameter a runbook refuses). The message names each finding, its place and its fix."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        parts = [f"{f.id} at {f.location.describe()}: {f.message} ({f.hint})" for f in findings]
        super().__init__(f"lint found {len(findings)} error(s) before the run: " + "; ".join(parts)
                         + "; `deploysim lint` shows them all")


def finding(rule_id: str, location: Location, message: str, hint: str, subject: str,
            severity: Severity | None = None, **facts: Any) -> Finding:
    """A finding of rule ``rule_id`` at its default severity unless ``severity`` is given."""
    return Finding(rule_id, severity or RULES[rule_id].severity, location, message, hint, subject, facts=facts)


def dedupe(findings: list[Finding]) -> list[Finding]:
    """Each finding once: the same rule at the same place is one finding, however many ways
    it was reached (a Deployment that two rollouts share, one file given twice).

    >>> f = finding("single-replica", Location("a.yaml", 1, "spec.replicas"), "m", "h", "Deployment a")
    >>> len(dedupe([f, f]))
    1
    """
    seen: set[tuple[str, Location]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.id, f.location)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
