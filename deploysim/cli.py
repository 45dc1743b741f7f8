"""``deploysim``: a thin command line over the Python API; it adds no logic of its own.

Commands: rehearse · compare · sweep · plan · run · runs · cluster · traffic. Every error
a user can cause prints one line and exits non-zero, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from deploysim.errors import DeploysimError
from deploysim.scenario import STRATEGY_KINDS, Scenario, load_scenario


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", "-s", help="scenario YAML (default: the built-in scenario)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. --set candidate.error_rate=0.05 (repeatable)")


def _load(args: argparse.Namespace) -> Scenario:
    overrides = list(args.overrides)
    if getattr(args, "strategy", None):
        overrides.append(f"strategy.kind={args.strategy}")
    manifests = getattr(args, "manifest", None)
    if manifests:
        from deploysim.strategies.manifests import scenario_from_manifests

        return scenario_from_manifests(manifests, scenario_path=args.scenario, overrides=overrides)
    return load_scenario(args.scenario, overrides)


def cmd_rehearse(args: argparse.Namespace) -> int:
    from deploysim.report import write_report
    from deploysim.sim import rehearse
    from deploysim.strategies import compile_plan
    from deploysim.strategies.duration import expected_duration

    scenario = _load(args)
    plan = _plan_for(args, scenario) or compile_plan(scenario)
    record = rehearse(scenario, plan)
    out = Path(args.out)
    pngs = write_report(record, out)
    s = record.summary
    print(f"{s['strategy']} rollout of {scenario.service}: {s['outcome']}")
    for key in ("rollout_seconds", "time_to_detect_seconds", "time_to_recover_seconds", "failed_requests",
                "rollout_attributable_failures", "min_available", "extra_pod_seconds",
                "time_paused_seconds", "time_in_analysis_seconds"):
        print(f"  {key:32} {s[key] if s[key] is not None else '-'}")
    est = expected_duration(plan, scenario)
    print(f"  expected with a healthy candidate  {est['total_seconds']:.0f} s (paused {est['paused_seconds']:.0f} s, "
          f"in analysis {est['analysis_seconds']:.0f} s)")
    print(f"  simulated {s['simulated_seconds']:.0f} s in {s['wall_seconds']:.3f} s")
    print(f"report: {out}/ (summary.json, timeline.csv, record.json, {', '.join(p.name for p in pngs)})")
    return 0


def _plan_for(args: argparse.Namespace, scenario: Scenario):  # noqa: ANN202
    manifests = getattr(args, "manifest", None)
    if not manifests:
        return None
    from deploysim.strategies.manifests import plan_from_manifests

    plan = plan_from_manifests(manifests, scenario)
    for warning in plan.warnings:
        print(f"deploysim: warning: {warning}", file=sys.stderr)
    return plan


def cmd_compare(args: argparse.Namespace) -> int:
    from deploysim.report import comparison_table, format_table, plot_comparison, write_report
    from deploysim.sim import rehearse

    base = _load(args)
    out = Path(args.out)
    records = []
    for kind in STRATEGY_KINDS:
        record = rehearse(base.with_strategy(kind))
        write_report(record, out / kind)
        records.append(record)
    table = comparison_table(records)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "comparison.csv", index=False)
    plot_comparison(records, out / "comparison.png")
    print(format_table(table))
    print(f"report: {out}/comparison.csv, {out}/comparison.png and one folder per strategy")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from deploysim.sweep import run_sweep, write_sweep

    scenario = _load(args)
    judges = [j.strip() for j in args.judges.split(",")] if args.judges else None
    t0 = time.perf_counter()
    df = run_sweep(scenario, args.runs, judges=judges, workers=args.workers, progress=not args.quiet)
    summary = write_sweep(df, args.out)
    print(json.dumps(summary, indent=2))
    print(f"{len(df)} runs in {time.perf_counter() - t0:.1f} s; report: {args.out}/sweep.csv, sweep_summary.json")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from deploysim.strategies import compile_plan
    from deploysim.strategies.duration import expected_duration

    scenario = _load(args)
    plan = _plan_for(args, scenario) or compile_plan(scenario)
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
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deploysim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("rehearse", help="simulate one rollout and write its report")
    _scenario_args(p)
    p.add_argument("--strategy", choices=STRATEGY_KINDS, help="override strategy.kind")
    p.add_argument("--manifest", "-m", action="append", help="Argo Rollouts / Flagger / Deployment YAML")
    p.add_argument("--out", "-o", default="reports/rehearsal", help="report folder")
    p.set_defaults(func=cmd_rehearse)

    p = sub.add_parser("compare", help="rehearse all four strategies on one scenario")
    _scenario_args(p)
    p.add_argument("--out", "-o", default="reports/compare")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sweep", help="Monte-Carlo over seeds: detection and false-rollback rates")
    _scenario_args(p)
    p.add_argument("--strategy", choices=STRATEGY_KINDS)
    p.add_argument("--runs", "-n", type=int, default=100, help="runs per candidate and judge")
    p.add_argument("--judges", help="comma-separated: threshold,mann_whitney,sequential")
    p.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", "-o", default="reports/sweep")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plan", help="print the compiled plan and its expected duration")
    _scenario_args(p)
    p.add_argument("--strategy", choices=STRATEGY_KINDS)
    p.add_argument("--manifest", "-m", action="append")
    p.set_defaults(func=cmd_plan)

    for register in _extensions():
        register(sub)
    return parser


def _extensions() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Command groups that live beside the rooms they drive (runbooks, runs, cluster, traffic)."""
    found = []
    for module, name in (
        ("deploysim.runbook", "add_run_commands"),
        ("deploysim.history", "add_runs_commands"),
        ("deploysim.kube.cli", "add_cluster_commands"),
        ("deploysim.kube.traffic", "add_traffic_commands"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        found.append(getattr(mod, name))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DeploysimError as exc:
        print(f"deploysim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deploysim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
