"""Fidelity: the simulator's rolling update against the real Deployment controller.

The same rolling update (10 replicas, 25%/25%, pods ready 10 s after they start) is applied
to the local control plane and to the simulator; ready pods per version are sampled over
time in both. The cluster must go through the simulated states, in their order, within one
pod at every sample (a wave half ready lies between two states), see every state the
simulation holds for a second or more (exactly), and take the simulated duration within 15%. A
never-ready candidate makes both report the progress deadline.

The simulated controllers react in zero time; the real ones take a moment per wave (the
ReplicaSet controller creates pods, the scheduler binds them, KWOK runs their stages, the
status comes back), and more on a busy machine. So the test measures that moment on the
same cluster, in the same run, just before the rollout and again just after it: a
Deployment is scaled up by one wave (5 pods) and timed until every pod of it is
ready, three times each. The simulator's pod startup is the fastest and the slowest of those
tries, the KWOK delay included, rather than the bare 10 s; the real duration must lie within
15% of the rehearsals at those two (give or take one sampling gap), so a load that changed while the rollout ran (the machine
is shared) is seen, not guessed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import numpy as np
import pytest
from kubernetes import client, config

from deploysim.kube.app import create_app, delete_namespace
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse

pytestmark = pytest.mark.cluster

# 25% of 10 is 2.5 pods: maxSurge rounds it up to 3 and maxUnavailable down to 2
# (``ResolveFenceposts``, pkg/controller/deployment/util/deployment_util.go, kubernetes/kubernetes),
# so a simulator rounding either the wrong way takes other states
# pods ready 10 s after they start: the controllers' share of a wave (a second or two on a
# busy machine) stays a small part of its time
REPLICAS, READY_DELAY, STABLE, CANDIDATE = 10, 10.0, "app:1.0.0", "app:2.0.0"
MAX_UNAVAILABLE = 2


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


WAVE = 5  # maxSurge 3 + maxUnavailable 2: the pods the first step of the rolling update starts at once


def _startup_as_seen(apps: client.AppsV1Api, ns: str, ann: dict[str, str], times: int = 3) -> list[float]:
    """Seconds from scaling a Deployment up by one wave to all its pods being ready, a few
    tries: the KWOK delay plus what the real controllers take, on this machine, now (how far
    apart the tries are is the controllers' jitter, larger on a busy machine)."""
    labels = {"app.kubernetes.io/name": "calibrate"}
    if not apps.list_namespaced_deployment(ns, field_selector="metadata.name=calibrate").items:
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
            if time.monotonic() - t0 > 300:  # a hang, not a slow machine
                raise AssertionError("a calibration pod was not ready after 300 s")
            time.sleep(0.05)
        seen.append(time.monotonic() - t0)
        apps.patch_namespaced_deployment("calibrate", ns, {"spec": {"replicas": 0}})
        while (apps.read_namespaced_deployment("calibrate", ns).status.replicas or 0) > 0:
            if time.monotonic() - t0 > 600:
                raise AssertionError("the calibration pods were not gone after 600 s")
            time.sleep(0.05)
    return seen


@dataclass(frozen=True)
class Calibration:
    """The pod startup as seen in the tries just before and just after the rollout."""

    before: list[float]
    after: list[float]

    @property
    def startups(self) -> tuple[float, float]:
        """The fastest and the slowest wave seen around the rollout: a machine whose load
        changed while it ran shows it here."""
        tries = self.before + self.after
        return min(tries), max(tries)


def _real(cluster_info, never_ready: bool = False, deadline: int = 600, limit: float = 180.0):
    """Roll the real Deployment; sample (seconds since the patch, ready stable, ready candidate).
    Returns the samples, when the deadline was reported, and the startup measured just before
    and just after the rollout (:class:`Calibration`)."""
    api = config.new_client_from_config(str(cluster_info.kubeconfig))
    apps = client.AppsV1Api(api)
    ns = f"fidelity-{uuid.uuid4().hex[:6]}"
    ann = {"deploysim.io/ready-delay": f"{READY_DELAY:g}s", "deploysim.io/ready-jitter": "0s"}
    create_app(api, ns, "fidelity", "rolling", REPLICAS, STABLE, pod_annotations=ann, timeout=180)
    try:
        before = _startup_as_seen(apps, ns, ann)
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
        # and once more after it: a machine whose load changed during the rollout shows it as
        # slower or faster tries, which the comparison allows
        after = _startup_as_seen(apps, ns, ann) if not never_ready else []
        return np.array(samples), exceeded_at, Calibration(before, after)
    finally:
        delete_namespace(api, ns)


def _sim_curve(rec) -> np.ndarray:
    t = rec.pod_trace
    return t[["time", "ready_stable", "ready_candidate"]].to_numpy(dtype=float)


def _first(curve: np.ndarray) -> float:
    return float(curve[np.argmax(curve[:, 2] > 0), 0])


def _show(real: np.ndarray) -> list[tuple[float, int, int]]:
    """The real samples where they change, for a failure's message."""
    keep = np.append(True, np.any(real[1:, 1:] != real[:-1, 1:], axis=1))
    return [(round(float(t), 2), int(a), int(b)) for t, a, b in real[keep]]


def _plateaus(curve: np.ndarray) -> list[tuple[float, float]]:
    """The (stable, candidate) ready counts a simulated curve goes through, in order, each once:
    its first state, then the state it is in after each instant (the simulator moves pod by
    pod within one instant, which a cluster does in no fixed order).

    >>> _plateaus(np.array([[0, 20, 0], [0, 15, 0], [5, 14, 1], [5, 10, 5], [9, 10, 5], [9, 5, 10]]))
    [(20.0, 0.0), (15.0, 0.0), (10.0, 5.0), (5.0, 10.0)]
    """
    last = np.append(curve[1:, 0] != curve[:-1, 0], True)
    path: list[tuple[float, float]] = []
    for stable, candidate in [curve[0, 1:], *curve[last, 1:]]:
        if not path or path[-1] != (stable, candidate):
            path.append((float(stable), float(candidate)))
    return path


def _held(curve: np.ndarray, path: list[tuple[float, float]]) -> list[float]:
    """How long the simulated curve holds each state of its path (the last: until its end).

    >>> c = np.array([[0, 20, 0], [0, 15, 0], [5, 10, 5], [5, 9, 6], [9, 5, 10]])
    >>> _held(c, _plateaus(c))
    [0.0, 5.0, 4.0, 0.0]
    """
    times = [float(curve[0, 0])]
    for t, *state in curve[np.append(curve[1:, 0] != curve[:-1, 0], True)]:
        if len(times) < len(path) and tuple(state) == path[len(times)]:
            times.append(float(t))
    return [*np.diff(times).tolist(), 0.0]


def _near(values, state: tuple[float, float]) -> bool:
    return all(abs(v - s) <= 1 for v, s in zip(values, state, strict=True))


def _between(values, a: tuple[float, float], b: tuple[float, float], most: float) -> bool:
    """On the way from state ``a`` to state ``b``, within one pod: each version's ready pods
    between the two, as many ready in all as the fewer of the two at least (what is
    available never drops below the simulation's), and no more than ``most``, the most pods
    the simulation ever ran.

    >>> _between((14, 5), (15, 0), (5, 10), most=25)  # the candidates ready before the stable goes
    True
    >>> _between((5, 0), (15, 0), (5, 10), most=25)   # the stable gone before any candidate is ready
    False
    """
    inside = all(min(x, y) - 1 <= v <= max(x, y) + 1 for v, x, y in zip(values, a, b, strict=True))
    return inside and min(sum(a), sum(b)) - 1 <= sum(values) <= most + 1


def _off_path(real: np.ndarray, path: list[tuple[float, float]], most: float) -> tuple | None:
    """The first real sample that is not on the path at or after where the previous one was.
    A sample is at a state (within one pod of it) or between two states that follow each
    other (a wave half ready); where it is never goes back.

    >>> path = [(20, 0), (15, 5), (10, 10), (5, 15), (0, 20)]
    >>> _off_path(np.array([[0, 20, 0], [1, 17, 3], [2, 15, 5], [3, 10, 10], [4, 0, 20]]), path, most=25) is None
    True
    >>> _off_path(np.array([[0, 20, 0], [1, 5, 15], [2, 15, 5]]), path, most=25)  # back along the path
    (2.0, 15.0, 5.0)
    >>> _off_path(np.array([[0, 20, 0], [1, 12, 0]]), path, most=25)  # stable down with no candidate up
    (1.0, 12.0, 0.0)
    """
    at = 0.0  # a state k is at k, the way from k to k + 1 at k + 0.5
    for t, *values in real:
        for k in range(int(at), len(path)):
            if k >= at and _near(values, path[k]):
                at = float(k)
                break
            if k + 1 < len(path) and _between(values, path[k], path[k + 1], most):
                at = k + 0.5
                break
        else:
            return (float(t), *map(float, values))
    return None


def test_rolling_update_curves_agree(cluster):
    real, exceeded, cal = _real(cluster)
    assert exceeded is None
    assert min(cal.startups) >= READY_DELAY  # the KWOK stage's delay is a floor
    assert real[-1, 2] == REPLICAS and real[-1, 1] == 0
    # the simulator at the fastest and at the slowest wave seen around the rollout
    recs = [_sim(startup=s) for s in sorted(set(cal.startups))]
    assert all(rec.summary["outcome"] == "promoted" for rec in recs)
    sims = [_sim_curve(rec) for rec in recs]
    real_done = real[-1, 0]
    sim_done = [curve[-1, 0] for curve in sims]
    # total duration within 15% of the simulated one, at a startup seen in this run; the real
    # end is known to within the gap between its last two samples (each takes two API reads)
    gap = float(real[-1, 0] - real[-2, 0])
    assert 0.85 * min(sim_done) - gap <= real_done <= 1.15 * max(sim_done) + gap, (
        real_done, sim_done, gap, cal, _show(real))
    # the same states, in the same order: every real sample lies within one pod of the
    # simulated path, never going back along it, and every state the simulation holds for a
    # second or more is seen on the cluster exactly. The simulated controllers react in zero time; the
    # real ones take a fraction of a second per reaction, once per wave, and on a shared
    # machine more at some waves than at others, so when each wave happens is held by the
    # duration above, not sample by sample.
    for rec, sim in zip(recs, sims, strict=True):
        path = _plateaus(sim)
        off = _off_path(real, path, most=rec.summary["max_pods"])
        assert off is None, f"a real sample off the simulated path: {off}; path {path}; real {_show(real)}"
        for state, held in zip(path, _held(sim, path), strict=True):
            if held >= 1.0:
                assert any(tuple(row[1:]) == state for row in real), f"state {state} never seen; path {path}; real {_show(real)}"
    print(f"fidelity: pod startup as seen {cal.startups[0]:.2f}-{cal.startups[1]:.2f} s around the rollout; real {real_done:.1f} s, sim {min(sim_done):.1f}-{max(sim_done):.1f} s, "
          f"{len(real)} samples on the path of {len(_plateaus(sims[0]))} states")


def test_never_ready_candidate_hits_the_progress_deadline_in_both(cluster):
    real, exceeded, _cal = _real(cluster, never_ready=True, deadline=20, limit=120)
    assert exceeded is not None and exceeded >= 20
    # the stable version kept serving with at most maxUnavailable (25% of 10, rounded down: 2) gone
    assert real[:, 1].min() >= REPLICAS - MAX_UNAVAILABLE
    rec = _sim(never_ready=True, deadline="20s")
    assert rec.summary["outcome"] == "failed"
    abort = next(d for d in rec.decisions if d["kind"] == "abort")
    assert "ProgressDeadlineExceeded" in abort["reason"]
    assert abs(abort["at"] - exceeded) <= 10, (abort["at"], exceeded)
