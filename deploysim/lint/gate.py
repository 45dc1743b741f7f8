"""The same lint before a runbook runs: errors stop it, before its folder or the cluster are touched.

A runbook lints what it is about to run: the scenario its parameters built (the images it
deploys, the plan, the replicas) or, with ``manifest``, the rollout it picked among the
manifests (its pods, its plan, the disruption budgets of the set) and the image it deploys.
The freeze calendar applies to a run on a cluster (``target: kubernetes``), binding when its
environment is production (the runbook's ``environment`` parameter); a
rehearsal (``target: sim``) deploys nothing and is never frozen. Nothing is rehearsed: costs
are for ``deploysim lint``.

>>> from deploysim.runbooks import validate_parameters
>>> try:
...     validate_parameters("rolling", {"image": "checkout:main", "duration": "20m"})
... except LintError as exc:
...     print(str(exc)[:96])
lint found 1 error(s) before the run: image-tag-mutable at candidate.image: 'checkout:main' is a
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from deploysim.lint.findings import Finding, LintError, Location, dedupe, finding
from deploysim.lint.freeze import FreezeCalendar, calendar_from
from deploysim.lint.pods import image_problems
from deploysim.plan import Plan
from deploysim.scenario import Scenario

_ENV = object()


def runbook_findings(params: Any, scenario: Scenario, plan: Plan, at: datetime | None = None,
                     calendar: FreezeCalendar | None | object = _ENV) -> list[Finding]:
    """What lint finds in a runbook's run, before it starts (``at``: the deploy's time, now by
    default; ``calendar``: the freeze calendar, by default the one ``DEPLOYSIM_FREEZE`` and
    ``DEPLOYSIM_TIMEZONE`` give, else Friday noon to Monday in UTC)."""
    from deploysim.lint.run import freeze_findings
    from deploysim.lint.subjects import manifest_subjects, scenario_findings

    subject = f"runbook {params.runbook}"
    environment = getattr(params, "environment", None)
    if params.manifest is not None:
        paths = [params.manifest] if isinstance(params.manifest, str) else list(params.manifest)
        from deploysim.manifests import read_rollout

        picked = read_rollout(paths, params.manifest_name).source.split(" ", 1)[-1]
        subjects, _ = manifest_subjects(paths, params.scenario, [], environment, names=[picked])
        found = [f for s in subjects for f in s.findings]
        image = scenario.candidate.image  # what the run deploys, whatever the template says
        for rule, message, hint in image_problems(image):
            found.append(finding(rule, Location(None, None, "image"), message, hint, subject))
    else:
        found = scenario_findings(scenario, plan, None, subject, environment)
    if params.target == "kubernetes":
        chosen = calendar_from(None, None) if calendar is _ENV else calendar
        found += freeze_findings(chosen, at, environment)  # type: ignore[arg-type]
    return dedupe(found)


def check_runbook(params: Any, scenario: Scenario, plan: Plan, at: datetime | None = None,
                  calendar: FreezeCalendar | None | object = _ENV) -> list[Finding]:
    """The runbook's findings; :class:`~deploysim.lint.findings.LintError` (exit 2) when any
    is an error, naming each."""
    found = runbook_findings(params, scenario, plan, at, calendar)
    errors = [f for f in found if f.severity == "error"]
    if errors:
        raise LintError(errors)
    return found
