"""Fidelity: readiness probe timing on the local control plane against the rehearsal's.

The KWOK stages (pod-probe-clock, pod-serving, pod-ready in deploysim/kube/stages/) make a
pod Ready as the kubelet's prober would: the application answers 5 to 11 s after its
container starts (``pod.startup`` 5 s, jitter 6 s), and a readiness probe with a 2 s initial
delay every 4 s passes at the first tick after that, 8 or 12 s after the start. The
simulator runs the same rule (deploysim/rules/probes.py). For each pod of a Deployment
scaled up on the cluster, the time from its container's start (the stages' own note,
``deploysim.io/started-ms``) to its Ready condition must be one of the rehearsal's ready
times, within what the controllers take to report it; uniform times between 5 and 11 s,
what the stages did before probes, would miss the grid for most pods. (The range ends a
second before a tick: an application answering at its very end, reported a little late,
must not cross into the next one.)

Without a readiness probe the pods are Ready as soon as their containers run, long before
the applications answer, in both worlds.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kubernetes import client, config

from deploysim.kube.app import delete_namespace
from deploysim.kube.kwok import KWOK_STARTED_MS, pod_annotations
from deploysim.scenario import load_scenario
from deploysim.sim import engine, rehearse
from deploysim.sim.world import SimWorld

pytestmark = pytest.mark.cluster

REPLICAS, STARTUP, JITTER = 16, 5.0, 6.0
PROBES = {"readiness": {"initial_delay": "2s", "period": "4s"}}
#: seconds the stages, the API server and this test's polling take to show a Ready pod
TOLERANCE = 1.0


def _scenario(probes: dict[str, Any]):
    return load_scenario(data={
        "service": "probes", "replicas": REPLICAS, "duration": "5m", "start_at": 0, "seed": 4,
        "pod": {"startup": STARTUP, "startup_jitter": JITTER, "termination": 0.1, "probes": probes},
        "stable": {"image": "app:1.0.0"}, "candidate": {"image": "app:2.0.0"},
        "strategy": {"kind": "rolling", "max_surge": "100%", "max_unavailable": 0, "background_analysis": False},
    })


def _sim_ready_after(probes: dict[str, Any], monkeypatch) -> list[float]:
    """Seconds from each new pod's container start to its Ready, in the rehearsal."""
    worlds: list[SimWorld] = []

    class Capture(SimWorld):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            worlds.append(self)

    monkeypatch.setattr(engine, "SimWorld", Capture)
    rehearse(_scenario(probes))
    pods = [p for p in worlds[0].pods.values() if p.version == "candidate" and p.ready_since is not None]
    return sorted(round(p.ready_since - p.probe.container, 3) for p in pods)


def _real_ready_after(cluster_info, probes: dict[str, Any], limit: float = 90.0) -> tuple[list[float], float]:
    """Scale a Deployment of the scenario's pods from 0 to REPLICAS; return, per pod, seconds
    from its container's start to when this test saw it Ready, and the seconds from the
    scale-up until all were Ready."""
    api = config.new_client_from_config(str(cluster_info.kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = f"probes-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    ann = {k: v for k, v in pod_annotations(_scenario(probes), "candidate").items() if v is not None}
    labels = {"app.kubernetes.io/name": "probes"}
    try:
        apps.create_namespaced_deployment(ns, client.V1Deployment(
            metadata=client.V1ObjectMeta(name="probes"),
            spec=client.V1DeploymentSpec(
                replicas=0, selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels, annotations=ann),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="app:2.0.0")])))))
        t0 = time.time()
        apps.patch_namespaced_deployment("probes", ns, {"spec": {"replicas": REPLICAS}})
        seen: dict[str, float] = {}
        started: dict[str, float] = {}
        while len(seen) < REPLICAS:
            assert time.time() - t0 < limit, f"only {len(seen)} of {REPLICAS} pods became ready"
            now = time.time()
            for pod in core.list_namespaced_pod(ns).items:
                name = pod.metadata.name
                mark = (pod.metadata.annotations or {}).get(KWOK_STARTED_MS)
                if mark is not None:
                    started[name] = int(mark) / 1000
                ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
                if ready and name not in seen:
                    seen[name] = now
            time.sleep(0.1)
        all_ready = max(seen.values()) - t0
        return sorted(round(seen[n] - started.get(n, t0), 3) for n in seen), all_ready
    finally:
        delete_namespace(api, ns)


def test_pods_are_ready_on_the_readiness_probes_grid_in_both_worlds(cluster, monkeypatch):
    sim = _sim_ready_after(PROBES, monkeypatch)
    real, _ = _real_ready_after(cluster, PROBES)
    grid = sorted(set(sim))
    print(f"\nready after container start: rehearsal {sim}; cluster {real}")
    assert set(grid) <= {8.0, 12.0} and len(grid) == 2  # the application at 5-11 s; probes at 4, 8, 12 ...
    misses = [d for d in real if min(abs(d - g) for g in grid) > TOLERANCE]
    assert not misses, f"ready off the probes' grid {grid}: {misses}"
    assert {min(grid, key=lambda g, d=d: abs(d - g)) for d in real} == set(grid)  # both ticks seen on the cluster


def test_without_a_readiness_probe_pods_are_ready_before_their_applications_answer(cluster, monkeypatch):
    sim = _sim_ready_after({}, monkeypatch)
    _, all_ready = _real_ready_after(cluster, {})
    print(f"\nno readiness probe: rehearsal ready after {set(sim)} s; all {REPLICAS} pods ready on the cluster "
          f"{all_ready:.2f} s after the scale-up; the applications answer {STARTUP:g}-{STARTUP + JITTER:g} s in")
    assert set(sim) == {0.0}
    assert all_ready < STARTUP  # every pod Ready before any application answers
