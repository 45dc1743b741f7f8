"""``deploysim runs list | show | diff``: the audit trail, over :mod:`deploysim.history`."""

from __future__ import annotations

import argparse
import sys

from deploysim.errors import EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """The runs that read cleanly; each damaged folder named on stderr, one line each."""
    from deploysim.history import format_rows, list_runs_and_skipped

    rows, skipped = list_runs_and_skipped(args.dir)
    for damaged in skipped:
        print(f"deploysim: skipped {damaged.line()}", file=sys.stderr)
    if not rows:
        print(f"no runs in {args.dir}/")
        return EXIT_OK
    print(format_rows(rows, ["time", "run", "runbook", "target", "outcome", "duration", "user"]))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from deploysim.history import resolve_run, show_run

    print(show_run(resolve_run(args.run, args.dir)))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from deploysim.history import diff_runs, format_diff, resolve_run

    a, b = resolve_run(args.a, args.dir), resolve_run(args.b, args.dir)
    print(format_diff(a, b, diff_runs(a, b)))
    return EXIT_OK


# deploysim.history's own default, repeated so that building the parser imports nothing heavy
DEFAULT_DIR = "runs"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="the audit trail: list, show and compare runs")
    runs = p.add_subparsers(dest="runs_command", required=True, metavar="SUBCOMMAND")
    q = runs.add_parser("list", help="time, runbook, target, outcome and duration of each run")
    q.add_argument("dir", nargs="?", default=DEFAULT_DIR, help=f"record folder (default {DEFAULT_DIR}/)")
    q.set_defaults(func=cmd_list)
    q = runs.add_parser("show", help="one run's decisions, and why")
    q.add_argument("run", help="a run folder, its name, or a unique part of it (the short id)")
    q.add_argument("--dir", default=DEFAULT_DIR, help=f"where to look for RUN (default {DEFAULT_DIR}/)")
    q.set_defaults(func=cmd_show)
    q = runs.add_parser("diff", help="parameters, outcome and metrics at each step of two runs")
    q.add_argument("a")
    q.add_argument("b")
    q.add_argument("--dir", default=DEFAULT_DIR, help=f"where to look for A and B (default {DEFAULT_DIR}/)")
    q.set_defaults(func=cmd_diff)
