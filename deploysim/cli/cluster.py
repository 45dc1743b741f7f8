"""``deploysim cluster up | down | status | env``: a thin layer over deploysim.kube.localcluster.

A cluster that is not running is an environment problem: ``status`` exits 3 for it, and a
ClusterError from any subcommand does too (see :mod:`deploysim.errors`).
"""

from __future__ import annotations

import argparse
import json

from deploysim.errors import EXIT_ENVIRONMENT, EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    from deploysim.kube import localcluster

    info = localcluster.up(nodes=args.nodes, prometheus=args.prometheus, name=args.name,
                           api_port=args.api_port, timeout=args.timeout)
    print(f"cluster {info.name!r} is up: {info.nodes} nodes Ready, API {info.api_server}")
    if info.prometheus_url:
        print(f"prometheus: {info.prometheus_url} (targets file {info.prometheus_targets_file})")
    print(localcluster.env(info.name))
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from deploysim.kube import localcluster

    if localcluster.down(args.name):
        print(f"cluster {args.name!r} stopped and its state removed")
    else:
        print(f"cluster {args.name!r} was not running")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from deploysim.kube import localcluster

    st = localcluster.status(args.name)
    code = EXIT_OK if st["running"] else EXIT_ENVIRONMENT
    if args.json:
        print(json.dumps(st, indent=2))
        return code
    if "components" not in st:
        print(f"cluster {args.name!r}: not running")
        return code
    state = "running" if st["running"] else "DEGRADED"
    print(f"cluster {args.name!r}: {state}, Kubernetes {st['k8s_version']}, {st['nodes']} nodes")
    print(f"  api server   {st['api_server']}")
    print(f"  kubeconfig   {st['kubeconfig']}")
    if st["prometheus_url"]:
        print(f"  prometheus   {st['prometheus_url']}")
    for component, c in st["components"].items():
        health = "healthy" if c["healthy"] else ("alive, unhealthy" if c["alive"] else "NOT RUNNING")
        print(f"  {component:<24} pid {c['pid']:<8} port {c['port']:<6} {health}")
    return code


def cmd_env(args: argparse.Namespace) -> int:
    from deploysim.kube import localcluster

    print(localcluster.env(args.name))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    cluster = subparsers.add_parser(
        "cluster", help="a local Kubernetes control plane (KWOK nodes) on 127.0.0.1",
        description="Start, inspect and stop a local Kubernetes control plane with fake (KWOK) nodes. "
        "Exit 3 when the cluster is not running or cannot start.")
    sub = cluster.add_subparsers(dest="cluster_command", metavar="{up,down,status,env}", required=True)

    def named(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--name", default="deploysim", help="cluster name (default: %(default)s)")
        return parser

    up = named(sub.add_parser("up", help="start the cluster and wait until every node is Ready"))
    up.add_argument("--nodes", type=int, default=3, help="fake nodes to create (default: %(default)s)")
    up.add_argument("--prometheus", action="store_true", help="also start Prometheus on a free port")
    up.add_argument("--api-port", type=int, default=None, help="kube-apiserver port (default: a free one)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    up.set_defaults(func=cmd_up)

    down = named(sub.add_parser("down", help="stop every process of the cluster and remove its state"))
    down.set_defaults(func=cmd_down)

    st = named(sub.add_parser("status", help="which processes run, their ports and health"))
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=cmd_status)

    env = named(sub.add_parser("env", help="print 'export KUBECONFIG=...' for the shell"))
    env.set_defaults(func=cmd_env)
