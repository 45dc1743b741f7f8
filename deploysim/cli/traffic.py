"""``deploysim traffic``: the exporter's command, from :mod:`deploysim.kube.traffic`.

Its parser is built only when the command runs: the exporter pulls in numpy, the Kubernetes
client and prometheus_client, which ``deploysim --help`` and every other command do without.
"""

from __future__ import annotations

import argparse

HELP = "serve the scenario's traffic to a cluster's pods as Prometheus metrics"


def cmd_traffic(args: argparse.Namespace) -> int:
    from deploysim.kube.traffic import add_traffic_commands

    parser = argparse.ArgumentParser(prog="deploysim")
    add_traffic_commands(parser.add_subparsers(dest="command", required=True))
    real = parser.parse_args(["traffic", *args.rest])
    return int(real.func(real))


def register(sub: argparse._SubParsersAction) -> None:
    # no options of its own (not even -h): deploysim.cli.main hands them all to cmd_traffic
    p = sub.add_parser("traffic", help=HELP, add_help=False)
    p.set_defaults(func=cmd_traffic, forward_options=True, rest=[])
