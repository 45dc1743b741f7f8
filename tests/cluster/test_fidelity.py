"""Fidelity: the simulator's rolling update against the real Deployment controller.

The same rolling update (20 replicas, 25%/25%, pods ready 5 s after they start) is applied
to the local control plane and to the simulator; ready pods per version are sampled over
time in both. After aligning the start, the ready counts must agree within one pod at
every sample and the total duration within 15%. A never-ready candidate makes both report
the progress deadline.

The simulated controllers react in zero time; the real ones take a moment per wave (the
ReplicaSet controller creates pods, the scheduler binds them, KWOK runs their stages, the
status comes back), and more on a busy machine. So the test measures that moment on the
same cluster, in the same run, just before the rollout: a Deployment is scaled up by one
wave (maxSurge, 5 pods) and timed until every pod of it is ready. The simulator's pod startup is that measured time, the
KWOK delay included, rather than the bare 5 s.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from kubernetes import client, config

from deploysim.kube.app import create_app, delete_namespace
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse

pytestmark = pytest.mark.cluster

REPLICAS, READY_DELAY, STABLE, CANDIDATE = 20, 5.0, "app:1.0.0", "app:2.0.0"


def _sim(never_ready: bool = False, deadline: str = "10m", startup: float = READY_DELAY):
    scenario = load_scenario(data={
        "service": "fidelity", "replicas": REPLICAS, "duration": "10m", "start_at": 0,
        "pod": {"startup": startup, "startup_jitter": 0, "termination": 0.1},
        "stable": {"image": STABLE}, "candidate": {"image": CANDIDATE, "never_ready": never_ready},
        "strategy": {"kind": "rolling", "max_surge": "25%", "max_unavailable": "25%",
                     "background_analysis": False, "progress_deadline_seconds": deadline},
    })
    return rehearse(scenario, trace_pods=True)


def _ready_by_image(apps: client.AppsV1Api, ns: str) -> dict[str, int]:
    counts = {STABLE: 0, CANDIDATE: 0}
    for rs in apps.list_namespaced_replica_set(ns).items:
        image = rs.spec.template.spec.containers[0].image
        counts[image] = counts.get(image, 0) + (rs.status.ready_replicas or 0)
    return counts


WAVE = 5  # 25% of 20: the pods one step of the rolling update starts at once


def _startup_as_seen(apps: client.AppsV1Api, ns: str, ann: dict[str, str], times: int = 3) -> tuple[float, float]:
    """Seconds from scaling a Deployment up by one wave to all its pods being ready, median
    of a few: the KWOK delay plus what the real controllers take, on this machine, now; and
    how far apart the tries were (the controllers' jitter, larger on a busy machine)."""
    labels = {"app.kubernetes.io/name": "calibrate"}
    apps.create_namespaced_deployment(ns, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="calibrate"),
        spec=client.V1DeploymentSpec(
            replicas=0, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=ann),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=STABLE)])))))
    seen = []
    for _ in range(times):
        t0 = time.monotonic()
        apps.patch_namespaced_deployment("calibrate", ns, {"spec": {"replicas": WAVE}})
        while (apps.read_namespaced_deployment("calibrate", ns).status.ready_replicas or 0) < WAVE:
            assert time.monotonic() - t0 < 60, "a calibration pod never became ready"
            time.sleep(0.05)
        seen.append(time.monotonic() - t0)
        apps.patch_namespaced_deployment("calibrate", ns, {"spec": {"replicas": 0}})
        while (apps.read_namespaced_deployment("calibrate", ns).status.replicas or 0) > 0:
            time.sleep(0.05)
    return float(np.median(seen)), float(max(seen) - min(seen))


def _real(cluster_info, never_ready: bool = False, deadline: int = 600, limit: float = 180.0):
    """Roll the real Deployment; sample (seconds since the patch, ready stable, ready candidate).
    Returns the samples, when the deadline was reported, and the startup measured just before
    (its median and spread)."""
    api = config.new_client_from_config(str(cluster_info.kubeconfig))
    apps = client.AppsV1Api(api)
    ns = f"fidelity-{uuid.uuid4().hex[:6]}"
    ann = {"deploysim.io/ready-delay": f"{READY_DELAY:g}s", "deploysim.io/ready-jitter": "0s"}
    create_app(api, ns, "fidelity", "rolling", REPLICAS, STABLE, pod_annotations=ann, timeout=180)
    try:
        startup, jitter = _startup_as_seen(apps, ns, ann)
        apps.patch_namespaced_deployment("fidelity", ns, {"spec": {
            "progressDeadlineSeconds": deadline,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        }})
        candidate_ann = {**ann, "deploysim.io/never-ready": "true" if never_ready else "false"}
        t0 = time.monotonic()
        apps.patch_namespaced_deployment("fidelity", ns, {"spec": {"template": {
            "metadata": {"annotations": candidate_ann},
            "spec": {"containers": [{"name": "app", "image": CANDIDATE}]}}}})
        samples, exceeded_at = [], None
        while time.monotonic() - t0 < limit:
            now = time.monotonic() - t0
            ready = _ready_by_image(apps, ns)
            samples.append((now, ready[STABLE], ready[CANDIDATE]))
            dep = apps.read_namespaced_deployment("fidelity", ns)
            conds = {c.type: c for c in dep.status.conditions or []}
            prog = conds.get("Progressing")
            if prog is not None and prog.reason == "ProgressDeadlineExceeded" and exceeded_at is None:
                exceeded_at = now
                break
            if (ready[CANDIDATE] == REPLICAS and ready[STABLE] == 0
                    and (dep.status.updated_replicas or 0) == REPLICAS
                    and (dep.status.replicas or 0) == REPLICAS):
                break
            time.sleep(0.25)
        return np.array(samples), exceeded_at, (startup, jitter)
    finally:
        delete_namespace(api, ns)


def _sim_curve(rec) -> np.ndarray:
    t = rec.pod_trace
    return t[["time", "ready_stable", "ready_candidate"]].to_numpy(dtype=float)


def _first(curve: np.ndarray) -> float:
    return float(curve[np.argmax(curve[:, 2] > 0), 0])


LAG = 1.0


def _range(curve: np.ndarray, a: float, b: float, col: int) -> tuple[float, float]:
    """Lowest and highest value of a step curve over [a, b]."""
    start = _at(curve, np.array([a]), col)[0]
    inside = curve[(curve[:, 0] >= a) & (curve[:, 0] <= b), col]
    values = np.append(inside, start)
    return float(values.min()), float(values.max())


def _at(curve: np.ndarray, times: np.ndarray, col: int) -> np.ndarray:
    """Step-function value of a sampled curve at each time (last sample at or before it)."""
    idx = np.searchsorted(curve[:, 0], times, side="right") - 1
    return curve[np.clip(idx, 0, len(curve) - 1), col]


def test_rolling_update_curves_agree(cluster):
    real, exceeded, (startup, jitter) = _real(cluster)
    assert exceeded is None
    assert startup >= READY_DELAY  # the KWOK stage's delay is a floor
    rec = _sim(startup=startup)
    assert rec.summary["outcome"] == "promoted"
    sim = _sim_curve(rec)
    real_done = real[-1, 0]
    sim_done = sim[-1, 0]
    assert real[-1, 2] == REPLICAS and real[-1, 1] == 0
    # total duration within 15%
    assert abs(real_done - sim_done) <= 0.15 * sim_done, (real_done, sim_done)
    # ready counts per version within one pod at each sample, after aligning the start (the
    # first candidate pod ready in each). The simulated controllers react in zero time; the
    # real ones take a fraction of a second per reaction, so a wave of five pods that is
    # one instant in the simulator spreads over up to a second on the cluster: each real
    # sample may match the simulated curve anywhere within LAG seconds of its time, plus
    # the spread of the wave times measured just before on this machine (a busy machine's
    # controllers are later by more, and the calibration sees it).
    lag = LAG + jitter
    shift = _first(real) - _first(sim)
    worst = {}
    for col, name in ((1, "stable"), (2, "candidate")):
        misses = []
        for t, *values in real:
            lo, hi = _range(sim, t - shift - lag, t - shift + lag, col)
            value = values[col - 1]
            if not lo - 1 <= value <= hi + 1:
                misses.append((round(t, 2), value, lo, hi))
        worst[name] = misses
        assert not misses, f"{name}: real samples off the simulated curve: {misses[:5]}"
    print(f"fidelity: pod startup as seen {startup:.2f} s (spread {jitter:.2f} s); real {real_done:.1f} s, sim {sim_done:.1f} s "
          f"({100 * (real_done - sim_done) / sim_done:+.0f}%), {len(real)} samples within one pod")


def test_never_ready_candidate_hits_the_progress_deadline_in_both(cluster):
    real, exceeded, _startup = _real(cluster, never_ready=True, deadline=20, limit=120)
    assert exceeded is not None and exceeded >= 20
    # the stable version kept serving with at most maxUnavailable (2 of 20... 25% = 5) gone
    assert real[:, 1].min() >= REPLICAS - 5
    rec = _sim(never_ready=True, deadline="20s")
    assert rec.summary["outcome"] == "failed"
    abort = next(d for d in rec.decisions if d["kind"] == "abort")
    assert "ProgressDeadlineExceeded" in abort["reason"]
    assert abs(abort["at"] - exceeded) <= 10, (abort["at"], exceeded)
