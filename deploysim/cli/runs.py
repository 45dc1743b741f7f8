"""``deploysim runs list | show | diff``: the audit trail, over :mod:`deploysim.history`.

Everything these commands print on stdout is redacted (:mod:`deploysim.redact`), as the CLI's
stderr is: a record written by an older deploysim, by hand, or by a tool that redacts less may
hold a secret in a reason, a parameter or an API change, and a terminal, a CI log or a pasted
``runs diff`` is where it would leak. The secrets the shown runs were given (their parameters)
are replaced wherever they appear again, besides every secret found by place, shape or look.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploysim.errors import EXIT_OK

if TYPE_CHECKING:
    from deploysim.redact import Redactor

Diff = dict[str, list[tuple[str, Any, Any]]]


def cmd_list(args: argparse.Namespace) -> int:
    """The runs that read cleanly; each damaged folder named on stderr, one line each."""
    from deploysim.history import format_rows, list_runs_and_skipped
    from deploysim.redact import Redactor

    rows, skipped = list_runs_and_skipped(args.dir)
    for damaged in skipped:
        print(f"deploysim: skipped {damaged.line()}", file=sys.stderr)
    if not rows:
        print(f"no runs in {args.dir}/")
        return EXIT_OK
    print(Redactor().text(format_rows(rows, ["time", "run", "runbook", "target", "outcome", "duration", "user"])))
    return EXIT_OK


def run_redactor(*records: dict[str, Any]) -> Redactor:
    """Redaction for what is shown of ``records``: the shapes, and the secrets among each
    one's parameters (given and resolved), replaced wherever they appear again.

    >>> r = run_redactor({"run": {"parameters": {"given": {"prometheus_token": "plain-value-1"}}}}, {"run": {}})
    >>> r.text("step 3: the query sent plain-value-1")
    'step 3: the query sent [REDACTED]'
    """
    from deploysim.redact import Redactor

    literals: set[str] = set()
    for record in records:
        literals |= Redactor.from_parameters((record.get("run") or {}).get("parameters") or {}).literals
    return Redactor(literals)


def _redacted_cell(name: str, value: Any, redactor: Redactor) -> Any:
    from deploysim.redact import REDACTED, is_secret_name

    if is_secret_name(name.rsplit(".", 1)[-1]) and value not in (None, ""):
        return REDACTED  # a secret's name: whatever its value (a number, a short word)
    return redactor.data(value)


def redact_diff(diff: Diff, redactor: Redactor) -> Diff:
    """``diff`` (:func:`deploysim.history.diff_runs`) with each value redacted: the value of a
    parameter named as a secret is replaced whatever it is (``prometheus_token  1234``), and
    the others go through ``redactor``. Two values that differ and read the same once
    redacted say so in B, so that a changed secret still shows as a change.

    >>> redact_diff({"parameters": [("prometheus_token", "old-value-1", "new-value-2"),
    ...                             ("namespace", "prod", "staging")]}, run_redactor())
    {'parameters': [('prometheus_token', '[REDACTED]', '[REDACTED] (not the same as A)'), ('namespace', 'prod', 'staging')]}
    """
    out: Diff = {}
    for section, rows in diff.items():
        out[section] = []
        for name, a, b in rows:
            ra, rb = _redacted_cell(name, a, redactor), _redacted_cell(name, b, redactor)
            if a != b and ra == rb:
                rb = f"{rb} (not the same as A)"
            out[section].append((name, ra, rb))
    return out


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def cmd_show(args: argparse.Namespace) -> int:
    """One run's header and decisions, redacted; with ``--json``, its whole record (and the
    outcome as read now: a ``running`` record whose process is gone reads ``interrupted``)."""
    from deploysim.history import check_shape, resolve_run, run_outcome, show_run
    from deploysim.trail import load_record

    folder = resolve_run(args.run, args.dir)
    record = load_record(folder, check_shape)
    redactor = run_redactor(record)
    if args.json:
        outcome, status = run_outcome(record["run"])
        _print_json(redactor.data({"run": folder.name, "folder": str(folder), "outcome": outcome, "status": status,
                                   "record": record}))
    else:
        print(redactor.text(show_run(folder)))
    return EXIT_OK


def diff_json(a: Path, b: Path, diff: Diff) -> dict[str, Any]:
    """``diff`` as JSON: per section, one entry per name with A's and B's values and whether
    they differ.

    >>> diff_json(Path("runs/x"), Path("runs/y"), {"outcome": [("outcome", "promoted", "rolled_back")]})
    {'a': 'runs/x', 'b': 'runs/y', 'outcome': [{'name': 'outcome', 'a': 'promoted', 'b': 'rolled_back', 'differs': True}]}
    """
    out: dict[str, Any] = {"a": str(a), "b": str(b)}
    for section, rows in diff.items():
        out[section] = [{"name": name, "a": x, "b": y, "differs": x != y} for name, x, y in rows]
    return out


def cmd_diff(args: argparse.Namespace) -> int:
    """Two runs side by side, redacted (:func:`redact_diff`), as a table or as JSON."""
    from deploysim.history import check_shape, diff_runs, format_diff, resolve_run
    from deploysim.trail import load_record

    a, b = resolve_run(args.a, args.dir), resolve_run(args.b, args.dir)
    redactor = run_redactor(load_record(a, check_shape), load_record(b, check_shape))
    diff = redact_diff(diff_runs(a, b), redactor)
    if args.json:
        _print_json(redactor.data(diff_json(a, b, diff)))
    else:
        print(redactor.text(format_diff(a, b, diff)))
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
    q.add_argument("--json", action="store_true", help="the whole record as JSON (redacted), with the outcome as "
                   "read now")
    q.set_defaults(func=cmd_show)
    q = runs.add_parser("diff", help="parameters, outcome and metrics at each step of two runs")
    q.add_argument("a")
    q.add_argument("b")
    q.add_argument("--dir", default=DEFAULT_DIR, help=f"where to look for A and B (default {DEFAULT_DIR}/)")
    q.add_argument("--json", action="store_true", help="the comparison as JSON (redacted)")
    q.set_defaults(func=cmd_diff)
