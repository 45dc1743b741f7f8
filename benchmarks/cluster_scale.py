"""How fast the local control plane is at scale: nodes up, 1,000 replicas Ready, a rolling update.

    .venv/bin/python benchmarks/cluster_scale.py [--nodes 100] [--replicas 1000]

Brings up its own cluster (name ``deploysim-scale``), prints the timings and brings it down.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from kubernetes import client, config

from deploysim.kube import localcluster


def wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def rollout_complete(apps: client.AppsV1Api, name: str, ns: str, replicas: int) -> bool:
    d = apps.read_namespaced_deployment_status(name, ns)
    s = d.status
    return (
        (s.observed_generation or 0) >= d.metadata.generation
        and (s.updated_replicas or 0) == replicas
        and (s.available_replicas or 0) == replicas
        and (s.replicas or 0) == replicas
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--ready-delay", default="1s")
    parser.add_argument("--ready-jitter", default="1s")
    parser.add_argument("--name", default="deploysim-scale")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    args = parser.parse_args(argv)

    localcluster.ensure_built()
    localcluster.down(args.name)
    figures: dict[str, float | int | str] = {"nodes": args.nodes, "replicas": args.replicas}
    t0 = time.monotonic()
    info = localcluster.up(nodes=args.nodes, name=args.name, timeout=600)
    figures["up_s"] = round(time.monotonic() - t0, 1)
    print(f"cluster up with {args.nodes} Ready nodes: {figures['up_s']} s", flush=True)
    try:
        api_client = config.new_client_from_config(config_file=str(info.kubeconfig))
        apps = client.AppsV1Api(api_client)
        ns, name = "default", "scale"
        annotations = {
            "deploysim.io/ready-delay": args.ready_delay,
            "deploysim.io/ready-jitter": args.ready_jitter,
        }
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": args.replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": annotations},
                    "spec": {"containers": [{"name": "app", "image": "registry.local/app:1.0.0"}]},
                },
            },
        }
        t0 = time.monotonic()
        apps.create_namespaced_deployment(ns, body)
        wait(lambda: rollout_complete(apps, name, ns, args.replicas), 1200, "all replicas Ready")
        figures["create_to_ready_s"] = round(time.monotonic() - t0, 1)
        print(f"{args.replicas} replicas Ready: {figures['create_to_ready_s']} s", flush=True)

        t0 = time.monotonic()
        apps.patch_namespaced_deployment(
            name,
            ns,
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "app", "image": "registry.local/app:1.0.1"}]
                        }
                    }
                }
            },
        )
        wait(
            lambda: rollout_complete(apps, name, ns, args.replicas),
            1800,
            "rolling update to complete",
        )
        figures["rolling_update_s"] = round(time.monotonic() - t0, 1)
        print(
            f"rolling update (maxSurge/maxUnavailable 25%) complete: {figures['rolling_update_s']} s",
            flush=True,
        )
        api_client.close()
    finally:
        if not args.keep:
            t0 = time.monotonic()
            localcluster.down(args.name)
            figures["down_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
