"""The simulated cluster: nodes, pods and their lifecycle, ReplicaSets, the Deployment
controller's rolling rules, endpoints and routing, and the traffic they serve.

State changes happen at events (a pod becomes ready, a node fails, an action); traffic is
accounted between events as expected counts per version and drawn per timeline bin (see
:mod:`deploysim.sim.sampling`), so a run costs the same at 1,000 or 100,000 rps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.controller import Action, Observation, VersionState
from deploysim.plan import Plan
from deploysim.scenario import Scenario, Version
from deploysim.sim.sampling import (
    PERCENTILES,
    mixture_percentiles,
    sample_counts,
    sample_percentiles,
)
from deploysim.sim.traffic import TrafficShape
from deploysim.strategies.rolling import (
    healthy_scale_down,
    new_rs_new_replicas,
    old_rs_scale_down_budget,
)

VERSIONS = ("stable", "candidate")
PENDING, STARTING, READY, TERMINATING, GONE = "pending", "starting", "ready", "terminating", "gone"
_DELETE_ORDER = {PENDING: 0, STARTING: 1, READY: 2}


@dataclass
class Pod:
    id: int
    version: str
    created: float
    state: str = PENDING
    node: int | None = None
    ready_since: float | None = None
    generation: int = 0  # bumps on restart, so stale timers do nothing


@dataclass
class Node:
    id: int
    capacity: int
    up: bool = True
    pods: set[int] = field(default_factory=set)


@dataclass
class ReplicaSet:
    version: str
    desired: int = 0
    pods: list[Pod] = field(default_factory=list)  # not terminating, not gone
    ready: int = 0  # pods in state READY, kept as pods change state


@dataclass
class Bin:
    """Expected traffic and state over one stretch of the timeline."""

    start: float
    end: float = 0.0
    # per channel: stable users, candidate users, preview (test traffic to the idle colour)
    lam: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # expected requests
    mu: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # expected failed
    loglat: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # lam-weighted log median
    baseline_mu: float = 0.0  # failures expected had the stable version served alone
    weight_time: float = 0.0  # integral of candidate share x 100 over time
    pods: tuple[int, int] = (0, 0)
    ready: tuple[int, int] = (0, 0)
    pods_total: int = 0
    # drawn later
    requests: tuple[int, ...] | None = None
    failed: tuple[int, ...] = (0, 0, 0)
    latency: tuple[tuple[float, ...], ...] = ((), (), ())


class SimWorld:
    """One simulated service, its two versions and the traffic to them."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, plan: Plan, rng: np.random.Generator) -> None:
        self.env = env
        self.sc = scenario
        self.plan = plan
        self.rng = rng
        self.shape = TrafficShape(scenario.traffic)
        self.versions: dict[str, Version] = {"stable": scenario.stable, "candidate": scenario.candidate}
        self.sigma = [scenario.stable.latency_sigma, scenario.candidate.latency_sigma,
                      scenario.candidate.latency_sigma]
        self.nodes = [Node(i, scenario.nodes.pods_per_node) for i in range(scenario.nodes_count)]
        self.rs = {v: ReplicaSet(v) for v in VERSIONS}
        self.pods: dict[int, Pod] = {}
        self._next_pod = 0
        self.pending: list[Pod] = []
        self.terminating = 0
        # the Deployment (rolling / recreate) or the rollout controller (canary / blue-green)
        self.deployment_template: str | None = None
        self.deployment_kind = "recreate" if plan.strategy == "recreate" else "rolling"
        self.router_weight = 0.0
        self.active = "stable"
        # progress deadline
        self.last_progress = 0.0
        self.deadline_exceeded = False
        self._deadline_timer_at: float | None = None
        # faults
        self.outage_rate = 0.0
        self.metrics_down = False
        # accounting
        self.bins: list[Bin] = []
        self.cur = Bin(start=0.0)
        self.last_flush = 0.0
        self.drawn = 0
        self.first_candidate_request_at: float | None = None
        self.abort_at: float | None = None
        self.recovered_at: float | None = None
        self.max_pods = 0
        self.min_available: int | None = None
        self.extra_pod_seconds = 0.0
        self.watch_window: tuple[float, float | None] = (math.inf, None)
        self.pod_trace: list[tuple[float, int, int, int, int, int, int]] | None = None
        self.changed = env.event()
        self.on_change: list[Callable[[], None]] = []

    # --- start ---------------------------------------------------------------------------

    def start(self) -> None:
        """The stable version serves with all its replicas ready before anything happens."""
        rs = self.rs["stable"]
        rs.desired = self.sc.replicas
        for _ in range(self.sc.replicas):
            pod = self._new_pod("stable")
            if self._schedule(pod):
                self._set_state(pod, READY)
                pod.ready_since = -3600.0
                self._arm_crash(pod)
        self.deployment_template = "stable" if self.plan.strategy in ("rolling", "recreate") else None
        self._snapshot()
        self.env.process(self._bins())
        for fault in self.sc.faults:
            self.env.process(self._fault(fault))

    # --- observation and actions --------------------------------------------------------

    def version_state(self, version: str) -> VersionState:
        rs = self.rs[version]
        return VersionState(desired=rs.desired, current=len(rs.pods), ready=rs.ready,
                            available=self._available(rs))

    def observe(self, **kw: object) -> Observation:
        return Observation(
            now=self.env.now,
            stable=self.version_state("stable"),
            candidate=self.version_state("candidate"),
            weight=self.share()[1] * 100,
            progress_deadline_exceeded=self.deadline_exceeded,
            **kw,  # type: ignore[arg-type]
        )

    def apply(self, action: Action) -> None:
        self.flush()
        a = action.args
        if action.kind in ("rolling_update", "recreate"):
            if self.deployment_template != a["version"]:
                self.deployment_template = a["version"]
                self.deployment_kind = "recreate" if action.kind == "recreate" else "rolling"
                self.deadline_exceeded = False
                self._progress()
        elif action.kind == "scale":
            if self.rs[a["version"]].desired != a["replicas"]:
                self.rs[a["version"]].desired = a["replicas"]
                self._progress()
        elif action.kind == "route":
            weight = float(a["weight"])
            if self.plan.routing == "active":
                self.active = "candidate" if weight >= 100 else "stable"
            self.router_weight = weight
        else:
            raise ValueError(f"the simulated world cannot do {action.kind!r}")
        self._sync()

    def mark_abort(self) -> None:
        if self.abort_at is None:
            self.abort_at = self.env.now
            self._check_recovered()

    # --- routing -------------------------------------------------------------------------

    def share(self) -> tuple[float, float]:
        """(stable, candidate) share of requests right now."""
        routing = self.plan.routing
        if routing == "active":
            return (0.0, 1.0) if self.active == "candidate" else (1.0, 0.0)
        if routing == "router":
            w = self.router_weight / 100
            return 1.0 - w, w
        rs_ready = self._ready_counts()
        total = rs_ready[0] + rs_ready[1]
        if total == 0:
            return 1.0, 0.0
        return rs_ready[0] / total, rs_ready[1] / total

    def _ready_counts(self) -> tuple[int, int]:
        return self.rs["stable"].ready, self.rs["candidate"].ready

    def _set_state(self, pod: Pod, state: str) -> None:
        """Change a pod's state, keeping its ReplicaSet's ready count."""
        if pod.state == READY and state != READY:
            self.rs[pod.version].ready -= 1
        elif state == READY and pod.state != READY:
            self.rs[pod.version].ready += 1
        pod.state = state

    # --- pods and nodes ------------------------------------------------------------------

    def _new_pod(self, version: str) -> Pod:
        pod = Pod(self._next_pod, version, self.env.now)
        self._next_pod += 1
        self.pods[pod.id] = pod
        self.rs[version].pods.append(pod)
        return pod

    def _schedule(self, pod: Pod) -> bool:
        best = None
        for node in self.nodes:
            if node.up and len(node.pods) < node.capacity and (best is None or len(node.pods) < len(best.pods)):
                best = node
        if best is None:
            if pod not in self.pending:
                self.pending.append(pod)
            return False
        best.pods.add(pod.id)
        pod.node = best.id
        pod.state = STARTING
        return True

    def _start(self, pod: Pod) -> None:
        """A scheduled pod starts; it becomes ready after startup + jitter, unless never ready."""
        if self.versions[pod.version].never_ready:
            return
        p = self.sc.pod
        delay = p.startup + (self.rng.uniform(0, p.startup_jitter) if p.startup_jitter else 0.0)
        gen = pod.generation
        self.env.timeout(delay).callbacks.append(lambda _ev: self._become_ready(pod, gen))

    def _become_ready(self, pod: Pod, gen: int) -> None:
        if pod.state != STARTING or pod.generation != gen:
            return
        self.flush()
        self._set_state(pod, READY)
        pod.ready_since = self.env.now
        self._arm_crash(pod)
        if self.plan.min_ready_seconds > 0:
            self.env.timeout(self.plan.min_ready_seconds).callbacks.append(lambda _ev: self._available_tick())
        self._progress()
        self._sync()

    def _available_tick(self) -> None:
        self.flush()
        self._progress()
        self._sync()

    def _arm_crash(self, pod: Pod) -> None:
        rate = self.versions[pod.version].crash_rate_per_hour
        if rate <= 0:
            return
        gen = pod.generation
        self.env.timeout(self.rng.exponential(3600.0 / rate)).callbacks.append(lambda _ev: self._crash(pod, gen))

    def _crash(self, pod: Pod, gen: int) -> None:
        if pod.state != READY or pod.generation != gen:
            return
        self.flush()
        pod.generation += 1
        self._set_state(pod, STARTING)
        pod.ready_since = None
        self._start(pod)  # the kubelet restarts the container
        self._sync()

    def _delete(self, pod: Pod) -> None:
        rs = self.rs[pod.version]
        rs.pods.remove(pod)
        pod.generation += 1
        if pod in self.pending:
            self.pending.remove(pod)
            self._set_state(pod, GONE)
            return
        self._set_state(pod, TERMINATING)
        self.terminating += 1
        self.env.timeout(self.sc.pod.termination).callbacks.append(lambda _ev: self._gone(pod))

    def _gone(self, pod: Pod) -> None:
        self.flush()
        pod.state = GONE
        self.terminating -= 1
        if pod.node is not None:
            self.nodes[pod.node].pods.discard(pod.id)
        self._sync()

    def _available(self, rs: ReplicaSet) -> int:
        min_ready = self.plan.min_ready_seconds
        if min_ready <= 0:
            return rs.ready
        now = self.env.now + 1e-9
        return sum(1 for p in rs.pods if p.state == READY and p.ready_since is not None
                   and now - p.ready_since >= min_ready)

    # --- controllers ---------------------------------------------------------------------

    def _sync(self) -> None:
        """Run the Deployment and ReplicaSet controllers until nothing changes (zero time)."""
        for _ in range(50):
            changed = False
            if self.deployment_template is not None:
                changed |= self._deployment_sync()
            changed |= self._replicaset_sync()
            if not changed:
                break
            if self.pod_trace is not None:
                self._trace()
        self._snapshot()
        self._check_deadline()
        self._notify()

    def _deployment_sync(self) -> bool:
        new = self.rs[self.deployment_template]  # type: ignore[index]
        old = self.rs["candidate" if self.deployment_template == "stable" else "stable"]
        replicas, surge, unavail = self.sc.replicas, self.plan.max_surge, self.plan.max_unavailable
        before = (new.desired, old.desired)
        if self.deployment_kind == "recreate":
            old.desired = 0
            old_alive = old.pods or any(
                p.state == TERMINATING for p in self.pods.values() if p.version == old.version
            )
            if not old_alive:
                new.desired = replicas
            return (new.desired, old.desired) != before
        # rolling: scale the new ReplicaSet up as far as surge allows
        new.desired = new_rs_new_replicas(replicas, surge, unavail, new.desired + old.desired, new.desired)
        if new.desired != before[0]:
            return True
        if old.desired > 0:
            new_available = self._available(new)
            budget = old_rs_scale_down_budget(replicas, surge, unavail, new.desired + old.desired,
                                              new.desired, new_available)
            if budget > 0:
                old_available = self._available(old)
                unhealthy = max(old.desired - old_available, 0)
                cleaned = min(budget, unhealthy)
                old.desired -= cleaned
                healthy = healthy_scale_down(replicas, surge, unavail, new_available + old_available)
                old.desired -= min(healthy, old.desired)
        return (new.desired, old.desired) != before

    def _replicaset_sync(self) -> bool:
        changed = False
        for rs in self.rs.values():
            while len(rs.pods) < rs.desired:
                pod = self._new_pod(rs.version)
                if self._schedule(pod):
                    self._start(pod)
                changed = True
            if len(rs.pods) > rs.desired:
                # the ReplicaSet deletes unscheduled, then not-ready, then the newest pods
                victims = sorted(rs.pods, key=lambda p: (_DELETE_ORDER[p.state], -(p.ready_since or 0.0), -p.id))
                for pod in victims[: len(rs.pods) - rs.desired]:
                    self._delete(pod)
                changed = True
        while self.pending:
            pod = self.pending[0]
            if not self._schedule(pod):
                break
            self.pending.pop(0)
            self._start(pod)
            changed = True
        return changed

    # --- progress deadline ----------------------------------------------------------------

    def _settled(self) -> bool:
        return all(rs.desired == len(rs.pods) == self._available(rs) for rs in self.rs.values())

    def _progress(self) -> None:
        self.last_progress = self.env.now

    def _check_deadline(self) -> None:
        if self._settled():
            return
        due = self.last_progress + self.plan.progress_deadline_seconds
        if self.env.now + 1e-9 >= due:
            if not self.deadline_exceeded:
                self.deadline_exceeded = True
                self._notify()
            return
        if self._deadline_timer_at is None or self._deadline_timer_at > due:
            self._deadline_timer_at = due

            def fire(_ev: object) -> None:
                self._deadline_timer_at = None
                self._check_deadline()

            self.env.timeout(due - self.env.now).callbacks.append(fire)

    # --- faults ---------------------------------------------------------------------------

    def _fault(self, fault):  # noqa: ANN001, ANN202 - a SimPy process
        yield self.env.timeout(fault.at)
        self.flush()
        if fault.kind == "node_failure":
            node = self.nodes[fault.node % len(self.nodes)]
            node.up = False
            for pod in [p for p in self.pods.values() if p.node == node.id and p.state not in (GONE,)]:
                if pod.state == TERMINATING:
                    continue
                self.rs[pod.version].pods.remove(pod)
                self._set_state(pod, GONE)
                pod.generation += 1
            node.pods.clear()
            self._sync()
        elif fault.kind == "dependency_outage":
            self.outage_rate = fault.error_rate
            self._snapshot()
            yield self.env.timeout(fault.duration)
            self.flush()
            self.outage_rate = 0.0
        elif fault.kind == "metrics_outage":
            self.metrics_down = True
            yield self.env.timeout(fault.duration)
            self.metrics_down = False

    # --- traffic accounting ----------------------------------------------------------------

    def _snapshot(self) -> None:
        """Remember the state the next stretch of traffic is served in."""
        ready = self._ready_counts()
        pods = (len(self.rs["stable"].pods), len(self.rs["candidate"].pods))
        self._state_ready = ready
        self._state_pods = pods
        self._state_share = self.share()
        total = pods[0] + pods[1]
        self.max_pods = max(self.max_pods, total)
        if self.pod_trace is not None:
            self._trace()
        start, end = self.watch_window
        if start <= self.env.now and end is None:
            serving = sum(r for r, s in zip(ready, self._state_share, strict=True) if s > 0)
            self.min_available = serving if self.min_available is None else min(self.min_available, serving)
        self._check_recovered()

    def _trace(self) -> None:
        """Keep pod counts after every controller step (each sync pass), for fidelity checks."""
        rs_s, rs_c = self.rs["stable"], self.rs["candidate"]
        self.pod_trace.append((  # type: ignore[union-attr]
            self.env.now, len(rs_s.pods), len(rs_c.pods), rs_s.ready, rs_c.ready,
            self._available(rs_s), self._available(rs_c),
        ))

    def _check_recovered(self) -> None:
        if self.abort_at is not None and self.recovered_at is None and self.share()[1] == 0.0:
            self.recovered_at = self.env.now

    def flush(self) -> None:
        """Account the traffic served since the last flush, in the state it was served in."""
        now = self.env.now
        a = self.last_flush
        if now <= a:
            return
        self.last_flush = now
        sc = self.sc
        total = self.shape.requests(a, now)
        rps = total / (now - a)
        share = self._state_share
        ready = self._state_ready
        b = self.cur
        preview = 0.0
        if self.plan.routing == "active" and share[1] == 0.0 and ready[1] > 0:
            preview = sc.strategy.preview_rps * (now - a)  # smoke tests through the preview service
        for i, version in enumerate(VERSIONS):
            lam = total * share[i]
            if lam <= 0 and not (i == 1 and preview > 0):
                continue
            spec = self.versions[version]
            median = spec.latency_ms or sc.pod.latency_ms
            if ready[i] == 0:
                p_fail = 1.0
                factor = 1.0
            else:
                rho = (rps * share[i] + (preview / (now - a) if i == 1 else 0.0)) / (ready[i] * sc.pod.capacity_rps)
                shed = max(0.0, 1.0 - 1.0 / rho) if rho > 1 else 0.0
                p_fail = 1.0 - (1.0 - shed) * (1.0 - spec.error_rate) * (1.0 - self.outage_rate)
                factor = 1.0 / math.sqrt(1.0 - min(rho, 0.9))
            loglat = math.log(median * factor)
            b.lam[i] += lam
            b.mu[i] += lam * p_fail
            b.loglat[i] += lam * loglat
            if i == 1 and preview > 0:
                b.lam[2] += preview
                b.mu[2] += preview * p_fail
                b.loglat[2] += preview * loglat
            if i == 1 and (lam > 0 or preview > 0) and self.first_candidate_request_at is None:
                self.first_candidate_request_at = a
        # failures had the stable version alone served it with all its replicas
        rho0 = rps / (sc.replicas * sc.pod.capacity_rps)
        shed0 = max(0.0, 1.0 - 1.0 / rho0) if rho0 > 1 else 0.0
        p0 = 1.0 - (1.0 - shed0) * (1.0 - sc.stable.error_rate) * (1.0 - self.outage_rate)
        b.baseline_mu += total * p0
        b.weight_time += share[1] * 100 * (now - a)
        existing = self._state_pods[0] + self._state_pods[1] + self.terminating
        start, end = self.watch_window
        if start <= a and end is None:
            self.extra_pod_seconds += max(existing - sc.replicas, 0) * (now - a)

    def close_bin(self) -> None:
        """End the current bin now (at a resolution tick or a measurement)."""
        self.flush()
        now = self.env.now
        if now <= self.cur.start:
            return
        b = self.cur
        b.end = now
        b.pods = self._state_pods
        b.ready = self._state_ready
        b.pods_total = b.pods[0] + b.pods[1] + self.terminating
        self.bins.append(b)
        self.cur = Bin(start=now)

    def _bins(self):  # noqa: ANN202 - a SimPy process
        res = self.sc.resolution
        while True:
            nxt = (math.floor(self.env.now / res + 1e-9) + 1) * res
            yield self.env.timeout(nxt - self.env.now)
            self.close_bin()

    def draw(self) -> None:
        """Draw requests, failures and latency percentiles for bins not drawn yet."""
        todo = self.bins[self.drawn:]
        if not todo:
            return
        lam = np.array([b.lam for b in todo])
        mu = np.array([b.mu for b in todo])
        with np.errstate(invalid="ignore", divide="ignore"):
            logmed = np.where(lam > 0, np.array([b.loglat for b in todo]) / np.where(lam > 0, lam, 1), 0.0)
        n, failed = sample_counts(self.rng, lam, mu)
        sig = np.broadcast_to(np.array(self.sigma), lam.shape)
        pct = [sample_percentiles(self.rng, n, logmed, sig, q) for q in PERCENTILES]
        for j, b in enumerate(todo):
            b.requests = tuple(int(x) for x in n[j])
            b.failed = tuple(int(x) for x in failed[j])
            b.latency = tuple(tuple(float(p[j, i]) for p in pct) for i in range(3))  # type: ignore[assignment]
        self.drawn = len(self.bins)

    # --- the simulated metrics provider ------------------------------------------------------

    def measure(self, start: float, end: float) -> Measurement:
        """Both versions over [start, end], as a metrics backend would report them."""
        self.close_bin()
        if self.metrics_down:
            return Measurement(start, end, error="metrics provider unavailable (injected outage)")
        self.draw()
        chosen = [b for b in self.bins if b.start >= start - 1e-9 and b.end <= end + 1e-9]
        versions = {}
        for i, version in enumerate(VERSIONS):
            # the candidate's metrics include test traffic through the preview service
            chans = (i, 2) if i == 1 else (i,)
            reqs = tuple(sum(b.requests[c] for c in chans) for b in chosen)  # type: ignore[index]
            errs = tuple(sum(b.failed[c] for c in chans) for b in chosen)
            p99s = tuple(_p99(b, chans) for b in chosen)
            n = sum(reqs)
            lam = np.array([b.lam[c] for b in chosen for c in chans])
            logmed = np.array([b.loglat[c] / b.lam[c] if b.lam[c] > 0 else 0.0 for b in chosen for c in chans])
            sig = np.full(len(lam), self.sigma[i])
            pct = mixture_percentiles(self.rng, lam, logmed, sig, n) if chosen else [math.nan] * 3
            versions[version] = VersionWindow(
                requests=n, errors=sum(errs), latency_p50=pct[0], latency_p95=pct[1], latency_p99=pct[2],
                seconds=end - start, series_requests=reqs, series_errors=errs, series_latency_p99=p99s,
            )
        return Measurement(start, end, versions)

    # --- notification -------------------------------------------------------------------------

    def _notify(self) -> None:
        if not self.changed.triggered:
            self.changed.succeed()


def _p99(b: Bin, chans: tuple[int, ...]) -> float:
    """The bin's p99 over channels: the busiest channel's (preview and users rarely overlap)."""
    best = max(chans, key=lambda c: (b.requests or (0, 0, 0))[c])
    return b.latency[best][2] if b.latency[best] else math.nan
