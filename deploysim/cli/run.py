"""``deploysim run RUNBOOK``: a runbook through papermill's Python API, same parameters as its CLI."""

from __future__ import annotations

import argparse
import sys

from deploysim.errors import EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from deploysim.runbooks import collect_parameters, notebook_parameters, run_notebook

    if args.help_notebook:
        for name, p in notebook_parameters(args.runbook).items():
            print(f"  {name}: {p['inferred_type_name']} (default {p['default']})  {p['help']}")
        return EXIT_OK
    parameters = collect_parameters(args.parameters_file or [], args.parameters_yaml or [],
                                    args.parameters or [], args.parameters_raw or [])
    if args.record_dir:
        parameters["record_dir"] = args.record_dir
    result = run_notebook(args.runbook, parameters, log_output=args.log_output)
    if result.folder is None:
        print(f"deploysim: error: {result.status}", file=sys.stderr)
    else:
        print(result.status)
        print(f"audit trail: {result.folder}/")
    return result.exit_code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute a runbook with papermill; leaves an audit folder",
                       description="Execute a runbook (rolling, canary, blue_green, rollback or a path) "
                       "through papermill with the same parameters as the papermill command line. Exit "
                       "0 when it succeeded, 1 when the rollout was rolled back, failed or paused, 2 for "
                       "a parameter error, 3 when the cluster or a metrics source cannot be reached.")
    p.add_argument("runbook", help="rolling, canary, blue_green, rollback, or a path to a .ipynb")
    p.add_argument("-p", "--parameters", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a parameter (read like papermill: numbers, True/False/None)")
    p.add_argument("-r", "--parameters_raw", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a parameter as text")
    p.add_argument("-y", "--parameters_yaml", action="append", metavar="YAML",
                   help="parameters as a YAML mapping, e.g. \"{candidate: {error_rate: 0.05}}\"")
    p.add_argument("-f", "--parameters_file", action="append", metavar="FILE", help="parameters from a YAML file")
    p.add_argument("--record-dir", help="where the audit folder goes (the record_dir parameter)")
    p.add_argument("--log-output", action="store_true", help="echo the notebook's output as it runs")
    p.add_argument("--help-notebook", action="store_true", help="list the runbook's parameters")
    p.set_defaults(func=cmd_run)
