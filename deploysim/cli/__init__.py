"""``deploysim``: a thin command line over the Python API; it adds no logic of its own.

One module per command group, each with ``register(subparsers)``: rehearse · compare ·
sweep · plan (:mod:`.rehearsal`), lint (:mod:`.lint`), run (:mod:`.run`), runs (:mod:`.runs`), cluster
(:mod:`.cluster`), traffic (:mod:`.traffic`). Every error a user can cause prints one line,
without a traceback, and exits with the code :func:`deploysim.errors.exit_code` gives it:
0 promoted or done, 1 not promoted, 2 bad input, 3 the cluster, a metrics source or the
machine refused. Everything printed on stderr is redacted (:mod:`deploysim.redact`), with the
secrets of the command line itself (``-p prometheus_token VALUE``) replaced wherever they
show up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deploysim.cli import cluster, lint, rehearsal, run, runs, traffic
from deploysim.errors import DeploysimError, exit_code
from deploysim.redact import Redactor
from deploysim.redaction.stream import redacted_stderr

GROUPS = (rehearsal, lint, run, runs, cluster, traffic)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deploysim", description="Rehearse Kubernetes rollouts, execute the same plan, keep the record.",
        epilog="exit codes: 0 promoted or done, 1 not promoted (rolled back, failed, paused, incomplete), "
        "2 bad input, 3 cluster or metrics source unreachable")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    with redacted_stderr(Redactor.from_words(words)):
        return _main(words)


def _main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "forward_options", False):
        args.rest = rest  # a group whose parser is built when it runs (see .traffic)
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(args.func(args))
    except (DeploysimError, OSError) as exc:
        print(f"deploysim: error: {_one_line(exc)}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print("deploysim: interrupted", file=sys.stderr)
        return exit_code(exc)
