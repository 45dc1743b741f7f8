"""``deploysim rehearse | compare | sweep | plan``: the simulator, over one scenario.

``rehearse`` and ``compare`` exit 1 when a rehearsed rollout is not promoted (``compare``:
any of the strategies), as a CI gate reads it; ``sweep`` and ``plan`` report and exit 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from deploysim.errors import EXIT_OK, ScenarioError, exit_code_for_outcome
from deploysim.scenario import STRATEGY_KINDS, Scenario, load_scenario

if TYPE_CHECKING:
    from deploysim.plan import Plan

REHEARSE_KEYS = ("rollout_seconds", "time_to_detect_seconds", "time_to_recover_seconds", "failed_requests",
                 "rollout_attributable_failures", "min_available", "extra_pod_seconds",
                 "time_paused_seconds", "time_in_analysis_seconds")


NAME_HELP = "with --manifest: the Rollout, Canary or Deployment to rehearse (metadata.name) when the files hold several"


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", "-s", help="scenario YAML (default: the built-in scenario)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. --set candidate.error_rate=0.05 (repeatable)")
    p.add_argument("--assume", action="append", default=[], metavar="NAME=pass|fail",
                   help="the verdict of a metric the rehearsal does not simulate (a datadog or job metric, "
                        "a query it cannot read); without one an analysis resting on it alone is inconclusive")


def positive_int(text: str) -> int:
    """An argument that counts something: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text[:40]!r}; expected a whole number of at least 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {value}; expected a whole number of at least 1")
    return value


def out_folder(text: str) -> str:
    """A report folder: new, or an existing folder (its files are replaced), never a file."""
    path = Path(text)
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"got {text!r}; {str(parent)!r} is a file, and the report is a folder")
    return text


def _assumption(text: str) -> str:
    """``--assume NAME=pass|fail`` as the scenario override it stands for."""
    name, sep, verdict = text.partition("=")
    if not sep or not name or verdict not in ("pass", "fail"):
        raise ScenarioError("--assume", text, "NAME=pass or NAME=fail, naming a metric the rehearsal does not simulate")
    return f"analysis.assume.{name}={verdict}"


def _load(args: argparse.Namespace) -> Scenario:
    overrides = list(args.overrides) + [_assumption(a) for a in getattr(args, "assume", [])]
    if getattr(args, "strategy", None):
        overrides.append(f"strategy.kind={args.strategy}")
    manifests = getattr(args, "manifest", None)
    if getattr(args, "name", None) and not manifests:
        raise ScenarioError("--name", args.name, "picks a rollout among the --manifest files; give --manifest too")
    if manifests:
        from deploysim.manifests import scenario_from_manifests

        return scenario_from_manifests(manifests, scenario_path=args.scenario, overrides=overrides,
                                       name=getattr(args, "name", None))
    return load_scenario(args.scenario, overrides)


def _plan(args: argparse.Namespace, scenario: Scenario) -> Plan:
    """The manifest's plan (its warnings on stderr), else the scenario's compiled one."""
    manifests = getattr(args, "manifest", None)
    if not manifests:
        from deploysim.strategies import compile_plan

        return compile_plan(scenario)
    from deploysim.manifests import plan_from_manifests

    plan = plan_from_manifests(manifests, scenario, name=getattr(args, "name", None))
    for warning in plan.warnings:
        print(f"deploysim: warning: {warning}", file=sys.stderr)
    return plan


def cmd_rehearse(args: argparse.Namespace) -> int:
    from deploysim.report import write_report
    from deploysim.sim import rehearse
    from deploysim.strategies.duration import expected_duration

    scenario = _load(args)
    plan = _plan(args, scenario)
    record = rehearse(scenario, plan)
    out = Path(args.out)
    pngs = write_report(record, out, full=args.full)
    s = record.summary
    print(f"{s['strategy']} rollout of {scenario.service}: {s['outcome']}")
    for key in REHEARSE_KEYS:
        print(f"  {key:32} {s[key] if s[key] is not None else '-'}")
    est = expected_duration(plan, scenario)
    print(f"  expected with a healthy candidate  {est['total_seconds']:.0f} s (paused {est['paused_seconds']:.0f} s, "
          f"in analysis {est['analysis_seconds']:.0f} s)")
    print(f"  simulated {s['simulated_seconds']:.0f} s in {s['wall_seconds']:.3f} s")
    print(f"report: {out}/ (summary.json, timeline.csv, record.json, {', '.join(p.name for p in pngs)})")
    return exit_code_for_outcome(s["outcome"])


def cmd_compare(args: argparse.Namespace) -> int:
    from deploysim.compare import compare_strategies
    from deploysim.report import comparison_table, format_table, plot_comparison, write_report

    out = Path(args.out)
    records = compare_strategies(_load(args))
    for record in records:
        write_report(record, out / record.summary["strategy"], full=args.full)
    table = comparison_table(records)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "comparison.csv", index=False)
    plot_comparison(records, out / "comparison.png", full=args.full)
    print(format_table(table))
    print(f"report: {out}/comparison.csv, {out}/comparison.png and one folder per strategy")
    not_promoted = [r.summary for r in records if exit_code_for_outcome(r.summary["outcome"]) != EXIT_OK]
    if not_promoted:
        print("not promoted: " + ", ".join(f"{s['strategy']} ({s['outcome']})" for s in not_promoted))
    return max(exit_code_for_outcome(r.summary["outcome"]) for r in records)


def cmd_sweep(args: argparse.Namespace) -> int:
    from deploysim.sweep import run_sweep, write_sweep

    scenario = _load(args)
    judges = [j.strip() for j in args.judges.split(",")] if args.judges else None
    t0 = time.perf_counter()
    df = run_sweep(scenario, args.runs, judges=judges, workers=args.workers, progress=not args.quiet)
    summary = write_sweep(df, args.out)
    print(json.dumps(summary, indent=2))
    print(f"{len(df)} runs in {time.perf_counter() - t0:.1f} s; report: {args.out}/sweep.csv, sweep_summary.json")
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from deploysim.strategies.duration import expected_duration

    scenario = _load(args)
    plan = _plan(args, scenario)
    for line in plan.describe():
        print(line)
    est = expected_duration(plan, scenario)
    print(f"expected duration with a healthy candidate: {est['total_seconds']:.0f} s "
          f"(paused {est['paused_seconds']:.0f} s, in analysis {est['analysis_seconds']:.0f} s, "
          f"waiting for pods {est['pods_seconds']:.0f} s"
          + (f", old colour kept {est['scale_down_delay_seconds']:.0f} s" if est.get("scale_down_delay_seconds") else "")
          + ")")
    if est["manual_gates"]:
        print(f"plus {est['manual_gates']} manual gate(s), which wait for a person")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rehearse", help="simulate one rollout and write its report; exit 1 unless promoted")
    _scenario_args(p)
    p.add_argument("--strategy", choices=STRATEGY_KINDS, help="override strategy.kind")
    p.add_argument("--manifest", "-m", action="append", help="Argo Rollouts / Flagger / Deployment YAML")
    p.add_argument("--name", help=NAME_HELP)
    p.add_argument("--out", "-o", default="reports/rehearsal", type=out_folder, help="report folder")
    p.add_argument("--full", action="store_true", help="plot the whole simulated run, not the rollout's window")
    p.set_defaults(func=cmd_rehearse)

    p = sub.add_parser("compare", help="rehearse all four strategies on one scenario; exit 1 unless all promoted")
    _scenario_args(p)
    p.add_argument("--out", "-o", default="reports/compare", type=out_folder)
    p.add_argument("--full", action="store_true", help="plot the whole simulated runs, not the rollouts' windows")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sweep", help="Monte-Carlo over seeds: detection and false-rollback rates")
    _scenario_args(p)
    p.add_argument("--strategy", choices=STRATEGY_KINDS)
    p.add_argument("--runs", "-n", type=positive_int, default=100, help="runs per candidate and judge")
    p.add_argument("--judges", help="comma-separated: threshold,mann_whitney,sequential")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: every core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", "-o", default="reports/sweep", type=out_folder)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plan", help="print the compiled plan and its expected duration")
    _scenario_args(p)
    p.add_argument("--strategy", choices=STRATEGY_KINDS)
    p.add_argument("--manifest", "-m", action="append")
    p.add_argument("--name", help=NAME_HELP)
    p.set_defaults(func=cmd_plan)
