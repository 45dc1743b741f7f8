"""``deploysim lint``: the release practices over manifests, a scenario or a runbook's parameters.

Exit 1 when a finding is at or above ``--fail-on`` (default: error), 0 otherwise, 2 for input
that cannot be read (one line naming the file, the field and the value).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploysim.errors import ScenarioError

if TYPE_CHECKING:
    from deploysim.lint import FreezeCalendar, LintReport

FORMATS = ("text", "json", "sarif")
FAIL_ON = ("error", "warning", "info", "none")


def _calendar(args: argparse.Namespace) -> FreezeCalendar | None:
    from deploysim.lint import calendar_from

    return calendar_from(args.freeze or None, args.timezone, off=args.no_freeze)


def _at(args: argparse.Namespace, calendar: FreezeCalendar | None) -> Any:
    from deploysim.lint import parse_instant
    from deploysim.lint.freeze import DEFAULT_TIMEZONE, zone_named

    if args.at is None:
        return None
    zone = calendar.zone if calendar is not None else zone_named(args.timezone or DEFAULT_TIMEZONE)
    return parse_instant(args.at, zone)


def _ignored(args: argparse.Namespace) -> list[str]:
    from deploysim.lint import RULES

    for rule in args.ignore:
        if rule not in RULES:
            raise ScenarioError("--ignore", rule, f"a rule id: {', '.join(RULES)}")
    return list(args.ignore)


def _runbook_report(args: argparse.Namespace, calendar: FreezeCalendar | None, at: Any) -> LintReport:
    """A runbook's parameters, read as ``deploysim run`` reads them, linted as the runbook will."""
    from deploysim.lint import LintReport, runbook_findings
    from deploysim.lint.costing import with_costs
    from deploysim.runbooks import build_plan, build_scenario, collect_parameters
    from deploysim.runbooks.parameters import read_parameters

    values = collect_parameters(args.parameters_file or [], args.parameters_yaml or [], args.parameters or [])
    params, _ = read_parameters(args.runbook, values, set(values))
    scenario, _ = build_scenario(params)
    plan = build_plan(params, scenario)
    found = [f for f in runbook_findings(params, scenario, plan, at, calendar) if f.id not in args.ignore]
    if not args.no_cost:
        found = with_costs(found, scenario, plan)
    return LintReport(found, [], [f"runbook {args.runbook} parameters"])


def cmd_lint(args: argparse.Namespace) -> int:
    from deploysim.lint import lint, to_json, to_sarif, to_text

    manifests = list(args.paths) + list(args.manifest or [])
    if args.runbook and (manifests or args.scenario or args.overrides):
        raise ScenarioError("--runbook", args.runbook, "lints the runbook's parameters (-p, -y, -f); give the "
                            "manifest and scenario as parameters (-p manifest FILE), not as files to lint")
    if (args.parameters or args.parameters_yaml or args.parameters_file) and not args.runbook:
        raise ScenarioError("-p/-y/-f", "parameters", "are a runbook's; give --runbook NAME too")
    for path in manifests:
        if not Path(path).is_file():
            raise ScenarioError("manifest", path, "no such file; give Deployment, Rollout or Canary YAML files")
    _ignored(args)
    calendar = _calendar(args)
    at = _at(args, calendar)
    if args.runbook:
        report = _runbook_report(args, calendar, at)
    else:
        report = lint(manifests, args.scenario, args.overrides, environment=args.environment, calendar=calendar,
                      at=at, cost=not args.no_cost, ignore=args.ignore)
    if args.format == "text":
        text = to_text(report, args.fail_on)
    else:
        data = to_json(report, args.fail_on) if args.format == "json" else to_sarif(report)
        text = json.dumps(data, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"lint: {sum(report.counts().values())} finding(s); report: {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return report.exit_code(args.fail_on)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lint", help="check manifests, a scenario or runbook parameters against release practices; "
        "exit 1 on findings at or above --fail-on",
        description="Mutable image tags, probes, preStop against the endpoint lag, rollback path, big-bang "
        "updates, single replicas, PodDisruptionBudgets and the change-freeze calendar; where the simulator "
        "can express a finding, its cost rehearsed as written and fixed. Exit 1 when a finding is at or above "
        "--fail-on, 0 otherwise, 2 for input that cannot be read.")
    p.add_argument("paths", nargs="*", metavar="MANIFEST", help="Deployment / Argo Rollout / Flagger Canary YAML "
                   "(with the templates, Services, PDBs and HPAs beside them); none: the scenario")
    p.add_argument("--manifest", "-m", action="append", help="a manifest file (as for rehearse; repeatable)")
    p.add_argument("--scenario", "-s", help="scenario YAML: linted without manifests; with them, the traffic, pods "
                   "and candidate the costs are rehearsed with (default: the built-in scenario)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key (repeatable)")
    p.add_argument("--runbook", help="lint a runbook's parameters (rolling, canary, blue_green, rollback) as the "
                   "runbook will before it runs; with -p/-y/-f as for deploysim run")
    p.add_argument("-p", "--parameters", nargs=2, action="append", metavar=("NAME", "VALUE"))
    p.add_argument("-y", "--parameters_yaml", action="append", metavar="YAML")
    p.add_argument("-f", "--parameters_file", action="append", metavar="FILE")
    p.add_argument("--environment", help="where the deploy goes: production makes the freeze and recreate "
                   "errors; another name (staging) is never frozen; unset: warnings")
    p.add_argument("--at", help="lint as of this time (ISO 8601, e.g. 2026-12-04T15:00, read in --timezone "
                   "unless it has an offset); default: now")
    p.add_argument("--timezone", help="the freeze calendar's IANA time zone (default: $DEPLOYSIM_TIMEZONE, else UTC)")
    p.add_argument("--freeze", action="append", metavar="WINDOW",
                   help="a freeze window, replacing the default 'Fri 12:00-Mon 00:00' (repeatable): weekly "
                   "'Fri 12:00-Mon 00:00' or dated '2026-12-23..2027-01-04'")
    p.add_argument("--no-freeze", action="store_true", help="no change-freeze calendar")
    p.add_argument("--format", choices=FORMATS, default="text", help="text (default), json or sarif (2.1.0)")
    p.add_argument("--output", "-o", help="write the report to this file instead of stdout")
    p.add_argument("--fail-on", choices=FAIL_ON, default="error",
                   help="exit 1 on findings at or above this severity (default: error; none: never)")
    p.add_argument("--no-cost", action="store_true", help="do not rehearse the findings' costs")
    p.add_argument("--ignore", action="append", default=[], metavar="RULE", help="leave out a rule by id (repeatable)")
    p.set_defaults(func=cmd_lint)
