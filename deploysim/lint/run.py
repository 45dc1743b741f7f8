"""One lint: the inputs read, every rule applied, the costs rehearsed, one report.

>>> report = lint(cost=False, calendar=None)
>>> sorted({f.id for f in report.findings}), report.exit_code("error")
(['image-not-pinned-by-digest'], 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from deploysim.lint.costing import with_costs
from deploysim.lint.findings import Finding, LintReport, Location, Severity, dedupe, finding
from deploysim.lint.freeze import FreezeCalendar, now
from deploysim.lint.subjects import Subject, in_production, manifest_subjects, scenario_findings

_DEFAULT = object()


def freeze_findings(calendar: FreezeCalendar | None, at: datetime | None, environment: str | None,
                    where: str = "now") -> list[Finding]:
    """A deploy at ``at`` inside one of the calendar's windows: an error for production, a
    warning when the environment is not said, nothing for any other environment (staging,
    a rehearsal).

    >>> from deploysim.lint.freeze import parse_instant
    >>> cal = FreezeCalendar.default()
    >>> friday = parse_instant("2026-12-04T15:00", cal.zone)
    >>> [(f.id, f.severity) for f in freeze_findings(cal, friday, "production", "--at")]
    [('change-freeze', 'error')]
    >>> [f.severity for f in freeze_findings(cal, friday, None)], freeze_findings(cal, friday, "staging")
    (['warning'], [])
    """
    if calendar is None or (environment is not None and not in_production(environment)):
        return []
    at = at or now()
    window = calendar.window_at(at)
    if window is None:
        return []
    severity: Severity = "error" if in_production(environment) else "warning"
    local = at.astimezone(calendar.zone)
    return [finding("change-freeze", Location(None, None, where),
                    f"a deploy at {local:%a %Y-%m-%d %H:%M} {calendar.timezone} is inside the change freeze "
                    f"{window!r}" + ("" if severity == "error" else " (say --environment production to make it binding)"),
                    f"deploy outside {calendar.describe()}, or change the calendar (--freeze, --timezone, "
                    "DEPLOYSIM_FREEZE)", "deploy", severity)]


def rehearsal_notes(subject: Subject) -> list[str]:
    """What the rehearsals behind a subject's costs could not model (the plan's warnings: a
    field not simulated, a traffic its replicas cannot serve), so a cost is read with them."""
    notes = list(subject.plan.warnings) if subject.plan is not None else []
    if subject.scenario is not None and not notes:
        from deploysim.manifests import overload_note

        overload = overload_note(subject.scenario)
        notes = [overload] if overload else []
    return [f"rehearsal of {subject.name}: {n}" for n in notes]


def lint(manifests: Sequence[str | Path] = (), scenario_path: str | Path | None = None,
         overrides: Iterable[str] = (), *, environment: str | None = None,
         calendar: FreezeCalendar | None | object = _DEFAULT, at: datetime | None = None,
         cost: bool = True, ignore: Iterable[str] = ()) -> LintReport:
    """Lint the manifests (every workload among them), or without manifests the scenario
    (its file, else the built-in one, with ``overrides``); the freeze calendar (default:
    Friday noon to Monday, UTC; None: off) as of ``at`` (default: now); ``cost`` rehearses
    the findings that have a cost. The scenario also gives the costs' traffic, pods and
    candidate when manifests are linted."""
    report = LintReport()
    overrides = list(overrides)
    subjects: list[Subject]
    if manifests:
        subjects, report.notes = manifest_subjects(list(manifests), scenario_path, overrides, environment)
        report.inputs = [str(m) for m in manifests]
        if not subjects:
            report.notes.append("no Deployment, Rollout or Canary among the manifests: nothing rolls out")
    else:
        from deploysim.scenario import load_scenario
        from deploysim.strategies import compile_plan

        scenario = load_scenario(scenario_path, overrides)
        plan = compile_plan(scenario)
        file = str(scenario_path) if scenario_path else None
        name = f"scenario {Path(file).name}" if file else "built-in scenario"
        subjects = [Subject(name, scenario, plan, scenario_findings(scenario, plan, file, name, environment))]
        report.inputs = [file or "built-in scenario"]
    if calendar is _DEFAULT:
        calendar = FreezeCalendar.default()
    where = "--at" if at is not None else "now"
    skipped = set(ignore)
    for subject in subjects:
        found = [f for f in dedupe(subject.findings) if f.id not in skipped]
        if cost:
            found = with_costs(found, subject.scenario, subject.plan)
            if any(f.cost is not None for f in found):
                report.notes.extend(rehearsal_notes(subject))
        report.findings.extend(found)
    if "change-freeze" not in skipped:
        report.findings.extend(freeze_findings(calendar, at, environment, where))  # type: ignore[arg-type]
    report.findings = dedupe(report.findings)
    return report
