"""The drive loop against a real cluster: the world the runbook validated, its status store,
a watch to wait on, the metrics on the run's own clock, and the record.

:func:`execute` runs :func:`deploysim.driver.drive` (the same loop as the simulator's) over
the :class:`~deploysim.kube.world.KubeWorld` it is given, so the objects checked before the
run are the objects changed by it. Between passes the world waits on a watch of the
namespace's Deployments, woken by any change or when the controller asked to be called
again, bounded so a person's annotation is read within a few seconds.

An API that does not answer (refused, timed out, 5xx, 429) is an outage, not a failure: the
loop waits it out and observes afresh before acting (:mod:`deploysim.driver`), and rolls
back once it answers if it was gone longer than ``outage_limit``. A run resumed with
``resume`` continues from the stored status and keeps the earlier part's decisions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from deploysim.analysis.measurement import Measurement
from deploysim.controller import TERMINAL_PHASES, Decision
from deploysim.driver import Drive, drive, run_blocking
from deploysim.errors import ClusterError
from deploysim.kube.store import LEASE_SECONDS, ClusterStore, holder_identity
from deploysim.kube.traffic.sampling import outage_rate
from deploysim.kube.world import KubeWorld
from deploysim.providers import MetricProvider
from deploysim.record import Record, Samples, TrafficBin, build_record
from deploysim.rules.service import failure_probability
from deploysim.scenario import Scenario

#: The longest the loop waits without looking (a person's annotation is read within this).
POLL_SECONDS = 2.0
#: Seconds the Kubernetes API may be out of reach before the run rolls back (once it answers).
OUTAGE_LIMIT = 120.0
#: HTTP statuses that mean the API is out of reach for now (overloaded, restarting, a proxy
#: in front of it without a backend), as client-go retries them (rest/request.go
#: ``IsRetryableError``/``checkWait``: 429 and 5xx with Retry-After, connection errors).
UNREACHABLE_STATUSES = frozenset({0, 429, 500, 502, 503, 504})


def unreachable_at(api: Any) -> Callable[[BaseException], bool]:
    """:func:`unreachable`, and also a 403 from an API server that is not ready: one just
    started again answers before its authorizer has loaded the RBAC rules (kube-apiserver's
    ``/readyz`` waits for ``poststarthook/rbac/bootstrap-roles``). A refusal from a ready
    server is a refusal, and a 401 always is (a token that expired stays expired)."""

    def check(exc: BaseException) -> bool:
        if unreachable(exc):
            return True
        return isinstance(exc, ApiException) and exc.status == 403 and not api_ready(api)

    return check


def api_ready(api: Any) -> bool:
    """The API server answers ``/readyz`` with 200 (any client may ask it)."""
    try:
        answer = api.call_api("/readyz", "GET", auth_settings=["BearerToken"], _preload_content=False,
                              _return_http_data_only=True, _request_timeout=(5, 10))
    except Exception:  # noqa: BLE001 - refused, forbidden, timed out: not ready
        return False
    try:
        return getattr(answer, "status", None) == 200
    finally:
        release = getattr(answer, "release_conn", None)  # back to the pool: not preloaded
        if release is not None:
            release()


def unreachable(exc: BaseException) -> bool:
    """The error means the API did not answer now, not that it refused the request.

    >>> unreachable(ApiException(status=503)), unreachable(ApiException(status=409))
    (True, False)
    >>> unreachable(urllib3.exceptions.MaxRetryError(None, "/", "refused")), unreachable(ValueError())
    (True, False)
    """
    if isinstance(exc, ApiException):
        return (exc.status or 0) in UNREACHABLE_STATUSES
    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


class Watcher:
    """Sets an event whenever a Deployment in the namespace changes."""

    def __init__(self, apps: client.AppsV1Api, namespace: str) -> None:
        self.apps = apps
        self.namespace = namespace
        self.changed = threading.Event()
        self._stop = threading.Event()
        self._watch = watch.Watch()
        self.thread = threading.Thread(target=self._run, name="deploysim-watch", daemon=True)

    def start(self) -> Watcher:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for _event in self._watch.stream(self.apps.list_namespaced_deployment, self.namespace,
                                                 timeout_seconds=20):
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


class RunClock:
    """A provider on the run's clock: the loop counts seconds from the run's start, a metrics
    backend counts wall-clock epoch seconds."""

    def __init__(self, provider: MetricProvider, epoch0: float) -> None:
        self.provider = provider
        self.epoch0 = epoch0

    def measure(self, start: float, end: float, spec: Any = None) -> Measurement:
        a, b = self.epoch0 + start, self.epoch0 + end
        m = self.provider.measure(a, b, spec)
        return dataclasses.replace(m, start=start, end=end)

    def close(self) -> None:
        self.provider.close()


def execute(
    world: KubeWorld,
    provider: MetricProvider,
    *,
    approve_after: float | None = 0.0,
    timeout: float | None = None,
    resume: bool = False,
    on_decision: Callable[[Decision], None] | None = None,
    outage_limit: float | None = OUTAGE_LIMIT,
    lease_seconds: int = LEASE_SECONDS,
) -> Record:
    """Drive ``world.plan`` on the cluster until it is promoted, rolled back, or the time
    limit (``timeout``, else the scenario's duration) passes; return the run's record."""
    plan, scenario = world.plan, world.scenario
    t_start = time.perf_counter()
    epoch0 = time.time()
    store = ClusterStore(world.api, world.namespace, scenario.service, world.run_id, plan.strategy,
                         saved=world.saved, lease_seconds=lease_seconds)
    run = Drive(plan, approve_after=approve_after,
                approve_inconclusive_after=scenario.approve_after("approve_inconclusive"),
                limit=timeout if timeout is not None else scenario.duration, on_decision=on_decision,
                transient=unreachable_at(world.api), outage_limit=outage_limit, reach="the Kubernetes API")
    resumed = False
    stored = store.load()
    if resume and stored and stored["data"].get("status"):
        old = json.loads(stored["data"]["status"])
        if old.get("phase") not in TERMINAL_PHASES and stored["data"].get("strategy") == plan.strategy:
            resumed = True
            run.status = old
            world.saved.update(json.loads(stored["data"].get("saved") or "{}"))
            earlier = stored["data"].get("run", world.run_id)
            # the stored times count from the earlier start: keep counting from there
            elapsed = float(world.saved.get("elapsed", 0.0))
            world.t0 -= elapsed
            epoch0 -= elapsed
            if run.limit is not None:
                run.limit += elapsed
    if resumed:
        # the lease of the earlier process is taken only once it has expired (a killed run),
        # before the run takes its name or says anything
        store.run_id, store.holder = earlier, holder_identity(earlier)
        store.lock()
        world.run_id = earlier
        run.decisions = store.stored_decisions(stored)
        step = run.status.get("step")
        part = Decision(world.now(), step if isinstance(step, int) else -1, "resumed",
                        f"run {earlier} resumed at step {step + 1 if isinstance(step, int) else '?'} "
                        f"({run.status.get('phase')}) from its status on the cluster, {elapsed:.0f}s after "
                        f"it started; {len(run.decisions)} decisions of the earlier part kept, finished steps "
                        "not repeated")
        run.decisions.append(part)
        if on_decision is not None:
            on_decision(part)
    else:
        store.lock()
        store.clear_marks()
    store.elapsed = world.now
    store.decisions = run.decisions
    watcher = Watcher(world.apps, world.namespace).start()
    world.waiter = lambda t: watcher.wait(POLL_SECONDS if t is None else min(max(t - world.now(), 0.0),
                                                                              POLL_SECONDS))
    try:
        run_blocking(drive(world, run, RunClock(provider, epoch0), store))
        if run.done:
            _until_answered(lambda: world.finish(run.status), outage_limit or POLL_SECONDS)
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        status = run.attempted or run.status  # the pass it failed, not committed
        step = status.get("step")
        raise ClusterError(
            f"the cluster failed the run at step {step + 1 if isinstance(step, int) else '?'} "
            f"({status.get('phase')}): {_reason(exc)}") from None
    finally:
        watcher.stop()
        store.unlock()
    wall = time.perf_counter() - t_start
    samples = Samples(states=world.emitted.states,
                      bins=traffic_bins(provider, epoch0, world.now(), scenario))
    unknown = {}
    if not samples.bins:
        unknown = {"rollout_attributable_failures": "the metrics source gave no traffic for the run",
                   "error_budget_consumed": "the metrics source gave no traffic for the run"}
    record = build_record(samples, plan, scenario, run.status, run.decisions, world="kubernetes",
                          wall_seconds=wall, unknown=unknown)
    steps = max(len(run.status.get("steps", [])), 1)
    record.changes = [c.to_dict() for c in world.changes]
    record.status = {**record.status, "run_id": world.run_id, "resumed": resumed, "driver": {
        "passes": run.passes,
        "seconds_acting": round(run.seconds_acting, 3),  # observe, reconcile, API changes, status
        "seconds_measuring": round(run.seconds_measuring, 3),  # metric queries
        "seconds_acting_per_step": round(run.seconds_acting / steps, 3),
        "timed_out": run.timed_out,
    }, "outages": [{k: v for k, v in o.items() if k != "over_limit"} | {"rolled_back_for_it": o["over_limit"]}
                   for o in run.outages]}
    if run.outages and run.outages[-1]["end"] is None:
        record.status["left"] = (
            f"the Kubernetes API did not answer from t={run.outages[-1]['start']:.0f}s to the end of the run: "
            f"the cluster is as the last pass that got through left it (step {run.status.get('step')}, "
            f"phase {run.status.get('phase')}); resume the run when it answers")
    return record


def _until_answered(call: Callable[[], None], within: float) -> None:
    """``call``, again every second while the API does not answer, for up to ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            call()
            return
        except Exception as exc:
            if not unreachable(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


def traffic_bins(provider: MetricProvider, epoch0: float, elapsed: float, scenario: Scenario) -> list[TrafficBin]:
    """The run's traffic per ``scenario.resolution`` bin, as the metrics source counted it.

    The stable-only expectation of each bin comes from the scenario's service model (the
    stable version with all its replicas serving the bin's users), the same rule the
    simulator uses. An unanswered query gives no bins: the record says so.
    """
    if elapsed <= 0:
        return []
    try:
        m = provider.measure(epoch0, epoch0 + elapsed)
    except Exception:  # noqa: BLE001 - the record is written even when metrics are gone
        return []
    if m.error or not m.versions:
        return []
    res = scenario.resolution
    stable, cand = m.versions.get("stable"), m.versions.get("candidate")
    count = max(len(stable.series_requests) if stable else 0, len(cand.series_requests) if cand else 0)

    def at(series: tuple[Any, ...], i: int, empty: Any = 0) -> Any:
        return series[i] if i < len(series) else empty

    bins: list[TrafficBin] = []
    windows = [(i * res, (i + 1) * res) for i in range(count)]
    tail = elapsed - count * res
    if tail > 1e-6:
        windows.append((count * res, elapsed))
    for i, (a, b) in enumerate(windows):
        per = []
        for w in (stable, cand):
            if w is None:
                per.append((0, 0, math.nan))
            elif i < count:
                per.append((int(at(w.series_requests, i)), int(at(w.series_errors, i)),
                            float(at(w.series_latency_p99, i, math.nan))))
            else:  # the last part-bin: what the window's totals hold beyond the full bins
                per.append((max(w.requests - sum(w.series_requests), 0),
                            max(w.errors - sum(w.series_errors), 0), math.nan))
        users = per[0][0] + per[1][0]
        rps = users / (b - a) if b > a else 0.0
        p0 = failure_probability(rps, scenario.replicas, scenario.pod.capacity_rps, scenario.stable.error_rate,
                                 outage_rate(scenario, a))
        bins.append(TrafficBin(
            start=a, end=b, requests=(per[0][0], per[1][0], 0), failed=(per[0][1], per[1][1], 0),
            latency_p99=(per[0][2], per[1][2]), expected_stable_only_failed=users * p0,
        ))
    return bins


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}".strip()
    return f"{type(exc).__name__}: {exc}"
