"""``deploysim traffic``: run the exporter until Ctrl-C or ``--duration``, then say what it served."""

from __future__ import annotations

import argparse
import sys
import time

from deploysim.kube.traffic.exporter import HOST, TrafficError, start_exporter
from deploysim.scenario import parse_duration

#: start_exporter's keyword options, each given by the flag of the same name
EXPORTER_OPTIONS = ("kubeconfig", "context", "namespace", "service", "port", "tick", "register", "route",
                    "ingress")


def cmd_traffic(args: argparse.Namespace) -> int:
    duration = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            raise TrafficError(f"--duration: got {args.duration!r}; {exc}") from None
    exporter = start_exporter(
        args.scenario, args.overrides, **{name: getattr(args, name) for name in EXPORTER_OPTIONS}
    )
    sc = exporter.scenario
    print(
        f"serving {exporter.url} for service {exporter.service!r} in namespace {exporter.namespace!r} "
        f"({sc.traffic.rps:g} rps {sc.traffic.shape}, seed {sc.seed})",
        flush=True,
    )
    print(f"port {exporter.port}", flush=True)
    if args.register:
        print(f"registered with the Prometheus of cluster {args.register!r}", flush=True)
    seen = 0
    try:
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
            new = min(exporter.error_count - seen, len(exporter.errors))
            for line in list(exporter.errors)[len(exporter.errors) - new:]:
                print(f"deploysim traffic: warning: {line}", file=sys.stderr, flush=True)
            seen = exporter.error_count
    except KeyboardInterrupt:
        pass
    finally:
        exporter.stop()
    totals = exporter.totals()
    print(
        "served " + ", ".join(f"{v}: {n} requests, {e} failed" for v, (n, e) in totals.items()),
        flush=True,
    )
    return 0


def add_traffic_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "traffic",
        help="serve the scenario's traffic to a cluster's pods as Prometheus metrics",
        description="Watch the pods of a service, apply the scenario's traffic and failure model to "
        "whichever are ready and weighted, and serve the result as Prometheus metrics on "
        f"{HOST} (deploysim_requests_total, deploysim_request_duration_seconds, and Istio's, NGINX "
        "Ingress' and http_requests_total series with their real names and labels).",
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: its current context)")
    p.add_argument(
        "--namespace", "-n", default="default", help="namespace of the service (default: default)"
    )
    p.add_argument("--service", help="service name (default: the scenario's service)")
    p.add_argument("--route", help="the HTTPRoute that splits users' requests (default: the service name)")
    p.add_argument("--ingress", help="the stable Ingress an NGINX canary Ingress weights against "
                   "(default: the route's name)")
    p.add_argument("--scenario", "-s", help="scenario YAML (default: the built-in scenario)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set candidate.error_rate=0.05 (repeatable)",
    )
    p.add_argument(
        "--port", type=int, default=0, help=f"port on {HOST} (default 0: a free port, printed)"
    )
    p.add_argument(
        "--register",
        metavar="CLUSTER",
        help="have this local cluster's Prometheus scrape the exporter",
    )
    p.add_argument(
        "--tick", type=float, default=0.5, help="seconds between draws of requests (default 0.5)"
    )
    p.add_argument("--duration", help="stop after this long, e.g. 10m (default: until Ctrl-C)")
    p.set_defaults(func=cmd_traffic)
