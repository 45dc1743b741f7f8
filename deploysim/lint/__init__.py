"""``deploysim lint``: the release practices a rollout should follow, checked before it runs,
and what breaking them costs, rehearsed.

Over a scenario (its file or the built-in one), a runbook's parameters, or a set of
manifests (Deployments, Argo Rollouts, Flagger Canaries and what travels with them), lint
reports each finding once with its rule id, severity, place (file, document, path), what is
wrong and how to fix it (:data:`RULES` lists them, with the kube-score, kube-linter and
Polaris checks that look for the same). Where the simulator can express the finding, it
rehearses the rollout as written and fixed and reports the difference in failed requests,
error budget consumed and duration (:mod:`~deploysim.lint.costing`). The report reads as
text, JSON or SARIF 2.1.0 (:mod:`~deploysim.lint.output`, :mod:`~deploysim.lint.sarif`).

The rooms: :mod:`.findings` (rules, finding, report), :mod:`.pods` (images, probes, preStop
and the endpoint lag), :mod:`.disruption` (PodDisruptionBudgets by label selector),
:mod:`.rollout` (rollback path, big bang, and the fixed plans), :mod:`.freeze` (the
change-freeze calendar), :mod:`.subjects` (scenario and manifests to findings),
:mod:`.costing`, :mod:`.run` (one lint), :mod:`.gate` (the runbooks' check).
"""

from deploysim.lint.findings import (
    FAIL_ON,
    RULES,
    SEVERITIES,
    Cost,
    Finding,
    LintError,
    LintReport,
    Location,
    Rule,
    at_or_above,
)
from deploysim.lint.freeze import (
    DEFAULT_TIMEZONE,
    DEFAULT_WINDOWS,
    FreezeCalendar,
    calendar_from,
    parse_instant,
    parse_window,
)
from deploysim.lint.gate import check_runbook, runbook_findings
from deploysim.lint.output import FORMATS, to_json, to_text
from deploysim.lint.pods import ENDPOINT_LAG_SECONDS
from deploysim.lint.run import freeze_findings, lint
from deploysim.lint.sarif import to_sarif

__all__ = [
    "DEFAULT_TIMEZONE",
    "DEFAULT_WINDOWS",
    "ENDPOINT_LAG_SECONDS",
    "FAIL_ON",
    "FORMATS",
    "RULES",
    "SEVERITIES",
    "Cost",
    "Finding",
    "FreezeCalendar",
    "LintError",
    "LintReport",
    "Location",
    "Rule",
    "at_or_above",
    "calendar_from",
    "check_runbook",
    "freeze_findings",
    "lint",
    "parse_instant",
    "parse_window",
    "runbook_findings",
    "to_json",
    "to_sarif",
    "to_text",
]
