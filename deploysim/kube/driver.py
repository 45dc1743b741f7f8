"""The controller's loop against a real cluster: watch, reconcile, act, keep the status there.

The same pure :func:`deploysim.controller.reconcile` walks the plan. Between passes the
driver waits on a watch of the namespace's Deployments (woken by any change, or when the
controller asked to be called again), never busy-polling. The status is written to the
ConfigMap ``deploysim-<service>`` after every pass, so a run killed half-way resumes where
it stopped; a Lease of the same name keeps two runs from driving one service at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from deploysim.analysis.measurement import Measurement
from deploysim.controller import (
    TERMINAL_PHASES,
    Decision,
    initial_status,
    reconcile,
)
from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.kube.world import KubeWorld
from deploysim.plan import Plan
from deploysim.record import TIMELINE_DECISIONS, Record, detect_and_recover, outcome_of, step_times
from deploysim.scenario import Scenario

LEASE_SECONDS = 60


class MetricProvider(Protocol):
    """What the driver needs of a provider: both versions over an interval of wall time."""

    def measure(self, start: float, end: float) -> Measurement: ...


@dataclass
class KubeRun:
    record: Record
    changes: list[dict[str, Any]]
    status: dict[str, Any]
    run_id: str
    resumed: bool = False
    context: dict[str, Any] = field(default_factory=dict)


class _Watcher:
    """Sets an event whenever a Deployment in the namespace changes."""

    def __init__(self, apps: client.AppsV1Api, namespace: str) -> None:
        self.apps = apps
        self.namespace = namespace
        self.changed = threading.Event()
        self._stop = threading.Event()
        self._watch = watch.Watch()
        self.thread = threading.Thread(target=self._run, name="deploysim-watch", daemon=True)

    def start(self) -> _Watcher:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for _event in self._watch.stream(
                    self.apps.list_namespaced_deployment, self.namespace, timeout_seconds=20
                ):
                    self.changed.set()
                    if self._stop.is_set():
                        break
            except Exception:  # noqa: BLE001 - the API may restart: wait, watch again
                self.changed.set()
                self._stop.wait(1.0)

    def wait(self, timeout: float) -> None:
        self.changed.wait(max(timeout, 0.0))
        self.changed.clear()

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()


class _Store:
    """The run's status on the cluster: a ConfigMap, and a Lease as the lock."""

    def __init__(self, api: client.ApiClient, namespace: str, service: str, run_id: str) -> None:
        self.core = client.CoreV1Api(api)
        self.coord = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = n.status_configmap(service)
        self.run_id = run_id
        self._last = ""

    def load(self) -> dict[str, Any] | None:
        try:
            cm = self.core.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {"data": cm.data or {}, "annotations": cm.metadata.annotations or {}}

    def save(self, status: dict[str, Any], saved: dict[str, Any], plan: Plan) -> None:
        data = {
            "run": self.run_id,
            "status": json.dumps(status, default=str),
            "saved": json.dumps(saved),
            "strategy": plan.strategy,
        }
        text = json.dumps(data, sort_keys=True)
        if text == self._last:
            return
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=self.name, annotations={n.RUN_ANNOTATION: self.run_id}
            ),
            data=data,
        )
        try:
            self.core.replace_namespaced_config_map(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_config_map(self.namespace, body)
        self._last = text

    def take_annotation(self, key: str) -> bool:
        """True once when a person set ``key: "true"`` on the ConfigMap; the mark is then removed."""
        state = self.load()
        if not state or state["annotations"].get(key) != "true":
            return False
        self.core.patch_namespaced_config_map(
            self.name, self.namespace, {"metadata": {"annotations": {key: None}}}
        )
        return True

    def lock(self) -> None:
        now = dt.datetime.now(dt.UTC)
        spec = client.V1LeaseSpec(
            holder_identity=self.run_id,
            lease_duration_seconds=LEASE_SECONDS,
            acquire_time=now,
            renew_time=now,
        )
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coord.create_namespaced_lease(
                self.namespace,
                client.V1Lease(metadata=client.V1ObjectMeta(name=self.name), spec=spec),
            )
            return
        holder = lease.spec.holder_identity
        renewed = lease.spec.renew_time
        fresh = renewed is not None and (now - renewed).total_seconds() < (
            lease.spec.lease_duration_seconds or 0
        )
        if holder and holder != self.run_id and fresh:
            raise ClusterError(
                f"run {holder} is driving this service (Lease {self.namespace}/{self.name}); "
                f"wait for it or let its lease expire ({LEASE_SECONDS}s)"
            )
        lease.spec = spec
        self.coord.replace_namespaced_lease(self.name, self.namespace, lease)

    def renew(self) -> None:
        now = dt.datetime.now(dt.UTC)
        try:
            self.coord.patch_namespaced_lease(
                self.name,
                self.namespace,
                {
                    "spec": {
                        "renewTime": now.isoformat().replace("+00:00", "Z"),
                        "holderIdentity": self.run_id,
                    }
                },
            )
        except ApiException:
            pass

    def unlock(self) -> None:
        try:
            self.coord.patch_namespaced_lease(
                self.name, self.namespace, {"spec": {"holderIdentity": None}}
            )
        except ApiException:
            pass


def execute(
    plan: Plan,
    scenario: Scenario,
    api: client.ApiClient,
    namespace: str,
    provider: MetricProvider,
    run_id: str,
    *,
    approve_after: float | None = 0.0,
    timeout: float | None = None,
    resume: bool = False,
    on_decision: Callable[[Decision], None] | None = None,
) -> KubeRun:
    """Drive the plan on the cluster until it is promoted, rolled back, paused or times out."""
    t_start = time.perf_counter()
    epoch0 = time.time()
    world = KubeWorld(api, namespace, scenario, plan, run_id)
    store = _Store(api, namespace, scenario.service, run_id)
    status = initial_status()
    resumed = False
    stored = store.load()
    if stored and stored["data"].get("status"):
        old = json.loads(stored["data"]["status"])
        if (
            resume
            and old.get("phase") not in TERMINAL_PHASES
            and stored["data"].get("strategy") == plan.strategy
        ):
            status, resumed = old, True
            world.saved = json.loads(stored["data"].get("saved") or "{}")
            store.run_id = run_id = stored["data"].get("run", run_id)
            world.run_id = run_id
            # the stored times count from the earlier start: keep counting from there
            world.t0 -= float(world.saved.get("elapsed", 0.0))
            epoch0 -= float(world.saved.get("elapsed", 0.0))
    store.lock()
    watcher = _Watcher(world.apps, namespace).start()
    decisions: list[Decision] = []
    samples: list[tuple[float, int, int, int, int, float]] = []
    measurements: dict[str, Measurement] = {}
    paused_since: float | None = None
    passes, busy, measuring = 0, 0.0, 0.0  # the driver's own time, apart from waiting
    limit = timeout if timeout is not None else scenario.duration
    try:
        while True:
            now = world.now()
            if status["phase"] == "Paused":
                paused_since = now if paused_since is None else paused_since
            else:
                paused_since = None
            approved = (
                store.take_annotation(n.PROMOTE_ANNOTATION)
                if status["phase"] == "Paused"
                else False
            )
            if (
                approve_after is not None
                and paused_since is not None
                and now - paused_since >= approve_after
            ):
                approved = True
            abort = store.take_annotation(n.ABORT_ANNOTATION)
            t_pass = time.perf_counter()
            obs = world.observe(
                measurements=measurements, promote_requested=approved, abort_requested=abort
            )
            samples.append(
                (
                    obs.now,
                    obs.stable.current,
                    obs.candidate.current,
                    obs.stable.ready,
                    obs.candidate.ready,
                    obs.weight,
                )
            )
            result = reconcile(plan, status, obs)
            status = result.status
            for d in result.decisions:
                decisions.append(d)
                if on_decision:
                    on_decision(d)
            measurements = {}
            for action in result.actions:
                if action.kind == "measure":
                    a = action.args
                    t_measure = time.perf_counter()
                    m = provider.measure(epoch0 + a["start"], epoch0 + a["end"])
                    measuring += time.perf_counter() - t_measure
                    # the controller counts seconds from the run's start, not wall-clock epochs
                    measurements[a["analysis"]] = dataclasses.replace(m, start=a["start"], end=a["end"])
                else:
                    world.apply(action)
            world.saved["elapsed"] = world.now()
            store.save(status, world.saved, plan)
            store.renew()
            passes += 1
            busy += time.perf_counter() - t_pass
            if status["phase"] in TERMINAL_PHASES:
                world.finish(status)
                break
            if now > limit:
                break
            if measurements or result.actions:
                continue
            wake = result.requeue_at
            if paused_since is not None and approve_after is not None:
                gate = paused_since + approve_after
                wake = gate if wake is None else min(wake, gate)
            # bounded: a person's annotation is read at the next pass, within a few seconds
            wait = 2.0 if wake is None else min(max(wake - world.now(), 0.0), 2.0)
            watcher.wait(wait)
    finally:
        watcher.stop()
        store.unlock()
    wall = time.perf_counter() - t_start
    totals = _totals(provider, epoch0, world.now(), scenario)
    record = _record(plan, scenario, status, decisions, samples, totals, wall)
    steps = max(len(status.get("steps", [])), 1)
    record.status = {**record.status, "driver": {
        "passes": passes,
        "seconds_acting": round(busy - measuring, 3),  # observe, reconcile, API changes, status
        "seconds_measuring": round(measuring, 3),  # metric queries
        "seconds_acting_per_step": round((busy - measuring) / steps, 3),
    }}
    return KubeRun(
        record=record,
        changes=[c.to_dict() for c in world.changes],
        status=status,
        run_id=run_id,
        resumed=resumed,
    )


def _totals(
    provider: MetricProvider, epoch0: float, elapsed: float, scenario: Scenario
) -> Measurement | None:
    try:
        m = provider.measure(epoch0, epoch0 + elapsed)
    except Exception:  # noqa: BLE001 - the record is written even when metrics are gone
        return None
    return None if m.error else m


def _record(
    plan: Plan,
    scenario: Scenario,
    status: dict[str, Any],
    decisions: list[Decision],
    samples: list[tuple[float, int, int, int, int, float]],
    totals: Measurement | None,
    wall: float,
) -> Record:
    """The same record shape as a rehearsal's, from what the cluster and the metrics showed."""
    res = scenario.resolution
    df = pd.DataFrame(
        samples,
        columns=["t", "pods_stable", "pods_candidate", "ready_stable", "ready_candidate", "weight"],
    )
    df[["pods_stable", "pods_candidate"]] = df[["pods_stable", "pods_candidate"]].clip(lower=0)
    rows = []
    end = float(df["t"].max()) if len(df) else 0.0
    bins = max(1, math.ceil(end / res))
    series = {}
    if totals is not None:
        for v in ("stable", "candidate"):
            w = totals.versions.get(v)
            series[v] = w
    for i in range(bins):
        a, b = i * res, (i + 1) * res
        part = df[(df["t"] >= a) & (df["t"] < b)]
        last = (
            part.iloc[-1]
            if len(part)
            else (df[df["t"] < a].iloc[-1] if len(df[df["t"] < a]) else None)
        )
        row = {"time": b, "start": a, "seconds": res}
        for col in ("pods_stable", "pods_candidate", "ready_stable", "ready_candidate"):
            row[col] = int(last[col]) if last is not None else 0
        row["weight"] = (
            float(part["weight"].mean())
            if len(part)
            else (float(last["weight"]) if last is not None else 0.0)
        )
        for v in ("stable", "candidate"):
            w = series.get(v)
            k = i if w is not None and i < len(w.series_requests) else None
            row[f"requests_{v}"] = int(w.series_requests[k]) if k is not None else 0
            row[f"failed_{v}"] = (
                int(w.series_errors[k]) if k is not None and k < len(w.series_errors) else 0
            )
            row[f"latency_p99_{v}"] = (
                float(w.series_latency_p99[k])
                if k is not None and k < len(w.series_latency_p99)
                else math.nan
            )
        row["decision"] = ";".join(
            d.kind
            for d in decisions
            if a <= d.at < b
            and d.kind in TIMELINE_DECISIONS
        )
        rows.append(row)
    timeline = pd.DataFrame(rows)

    started, completed = status.get("started_at"), status.get("completed_at")
    outcome = outcome_of(status)
    abort_at = (status.get("abort") or {}).get("at")
    first = next((t for t, *_rest, w in samples if w > 0), None)
    recovered = None
    if abort_at is not None:
        recovered = next((t for t, *_rest, w in samples if t >= abort_at and w == 0), None)
    detect, recover = detect_and_recover(status, first, recovered)
    pods = df["pods_stable"] + df["pods_candidate"] if len(df) else pd.Series([0])
    serving = df["ready_stable"] + df["ready_candidate"] if len(df) else pd.Series([0])
    extra = 0.0
    for (t0, *_a), (t1, *_b), p in zip(samples, samples[1:], pods, strict=False):
        extra += max(p - plan.replicas, 0) * (t1 - t0)
    requests = failed = None
    if totals is not None:
        requests = sum(w.requests for w in totals.versions.values())
        failed = sum(w.errors for w in totals.versions.values())
    paused, in_analysis = step_times(
        status.get("steps", []), completed if completed is not None else end
    )
    summary = {
        "strategy": plan.strategy,
        "outcome": outcome,
        "rolled_back": abort_at is not None and status.get("phase") == "Aborted",
        "simulated_seconds": None,
        "wall_seconds": round(wall, 3),
        "rollout_seconds": None
        if completed is None or started is None
        else round(completed - started, 3),
        "time_to_detect_seconds": None if detect is None else round(detect, 3),
        "time_to_recover_seconds": None if recover is None else round(recover, 3),
        "requests": requests,
        "failed_requests": failed,
        "rollout_attributable_failures": None,
        "max_pods": int(pods.max()),
        "min_available": int(serving.min()),
        "extra_pod_seconds": round(extra, 1),
        "error_budget_consumed": None,
        "time_paused_seconds": round(paused, 3),
        "time_in_analysis_seconds": round(in_analysis, 3),
        "seed": scenario.seed,
    }
    return Record(
        summary=summary,
        timeline=timeline,
        decisions=[d.to_dict() for d in decisions],
        steps=status.get("steps", []),
        plan=plan.to_dict(),
        scenario=scenario.to_data(),
        status=status,
    )
