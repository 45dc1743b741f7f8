"""The simulated cluster: nodes, pods and their lifecycle, ReplicaSets, the Deployment
controller's rolling rules, endpoints and routing, and the traffic they serve.

State changes happen at events (a pod becomes ready, a node fails, an action); traffic is
accounted between events as expected counts per version and drawn per timeline bin (see
:mod:`deploysim.sim.accounting`), so a run costs the same at 1,000 or 100,000 rps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from deploysim.controller import Action, Decision, Observation, VersionState
from deploysim.plan import Plan
from deploysim.record import Samples
from deploysim.rules.canary import replica_ratio_shares
from deploysim.rules.deployment import (
    is_available,
    new_rs_new_replicas,
    old_rs_new_replicas,
    progress_deadline_at,
    progress_deadline_exceeded,
    recreate_new_replicas,
    replicas_settled,
)
from deploysim.rules.service import combined_outage
from deploysim.scenario import Scenario, Version
from deploysim.sim.accounting import VERSIONS, Accounting, Bin
from deploysim.sim.probes import ProbeState, Probing
from deploysim.sim.saturation import PodUsage
from deploysim.sim.shutdown import Shutdown
from deploysim.sim.traffic import TrafficShape

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
    serving: bool = False  # its application answers (a ready pod that does not fails its requests)
    probe: ProbeState | None = None  # the kubelet's probe state, for a version with probes (sim/probes.py)


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
    mute: int = 0  # of those, pods whose application does not answer


class SimWorld(Accounting, Probing, Shutdown):
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
        self.outages: list[float] = []  # error rates of the dependency outages going on
        self.outage_rate = 0.0
        self.metrics_down = False
        # accounting
        self.bins: list[Bin] = []
        self.cur = Bin(start=0.0)
        self.last_flush = 0.0
        self.drawn = 0
        self.emitted = Samples()  # every change of pods or routing; bins when the run ends
        self.pod_trace: list[tuple[float, int, int, int, int, int, int]] | None = None
        self.changed = env.event()
        self.on_change: list[Callable[[], None]] = []
        self._init_probing()
        self._init_shutdown()
        self.usage = PodUsage(self)  # CPU, memory, throttling and OOM kills (sim/saturation.py)

    # --- start ---------------------------------------------------------------------------

    def start(self) -> None:
        """The stable version serves with all its replicas ready before anything happens."""
        rs = self.rs["stable"]
        rs.desired = self.sc.replicas
        for _ in range(self.sc.replicas):
            pod = self._new_pod("stable")
            if self._schedule(pod):
                pod.serving = True
                self._set_state(pod, READY)
                pod.ready_since = -3600.0
                if self._probed("stable"):
                    pod.probe = ProbeState(grid=-3600.0, container=-3600.0, started=-3600.0, armed=True)
                self._arm_hang(pod)
                self._arm_crash(pod)
                self._arm_fail(pod)
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

    # --- what the drive loop needs of a world ---------------------------------------------

    def begin(self) -> None:
        """The rollout starts now: account the traffic so far and sample the state it starts in."""
        self.flush()
        self._snapshot()

    def now(self) -> float:
        return self.env.now

    def wait_until(self, t: float | None) -> simpy.Event:
        """An event for the loop to yield: the world changed, or the time ``t`` came."""
        self.changed = self.env.event()
        events = [self.changed]
        if t is not None:
            events.append(self.env.timeout(max(t - self.env.now, 0.0)))
        return self.env.any_of(events)

    def mark(self, decisions: list[Decision]) -> None:
        self.close_bin()  # an analysis window starts at a decision: let a bin start there too

    # --- routing -------------------------------------------------------------------------

    def share(self) -> tuple[float, float]:
        """(stable, candidate) share of requests right now."""
        routing = self.plan.routing
        if routing == "active":
            if 0.0 < self.router_weight < 100.0:  # a Service over a primary rolling to the candidate
                w = self.router_weight / 100
                return 1.0 - w, w
            return (0.0, 1.0) if self.active == "candidate" else (1.0, 0.0)
        if routing == "router":
            w = self.router_weight / 100
            return 1.0 - w, w
        return replica_ratio_shares(*self._endpoint_counts())

    def _ready_counts(self) -> tuple[int, int]:
        return self.rs["stable"].ready, self.rs["candidate"].ready

    def _set_state(self, pod: Pod, state: str) -> None:
        """Change a pod's state, keeping its ReplicaSet's ready count (and of those, the mute)."""
        rs = self.rs[pod.version]
        if pod.state == READY and state != READY:
            rs.ready -= 1
            rs.mute -= not pod.serving
        elif state == READY and pod.state != READY:
            rs.ready += 1
            rs.mute += not pod.serving
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
        if self._probed(pod.version):
            self._start_probed(pod)  # the kubelet's probes decide (sim/probes.py)
            return
        if self.versions[pod.version].never_ready:
            return
        p = self.sc.pod
        delay = p.startup + (self.rng.uniform(0, p.startup_jitter) if p.startup_jitter else 0.0)
        gen = pod.generation
        self.env.timeout(delay).callbacks.append(lambda _ev: self._become_ready(pod, gen))

    def _become_ready(self, pod: Pod, gen: int, probed_in: bool = False) -> None:
        if pod.state != STARTING or pod.generation != gen:
            return
        if not probed_in and self._kept_out(pod):
            return
        self.flush()
        if not self._probed(pod.version):  # ready exactly when the application serves
            pod.serving = True
            self._arm_hang(pod)
        self._set_state(pod, READY)
        pod.ready_since = self.env.now
        if self._first_ready(pod):
            self._arm_crash(pod)
            self._arm_fail(pod)
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
        self.crashes += 1
        self._set_state(pod, STARTING)
        pod.ready_since = None
        self._start(pod)  # the kubelet restarts the container
        self._sync()

    def _arm_fail(self, pod: Pod) -> None:
        """A ready pod of a version with ``fail_after`` fails that long after it became ready
        (for the stable pods already serving at the start: that long after the start)."""
        after = self.versions[pod.version].fail_after
        if after is None:
            return
        gen = pod.generation
        self.env.timeout(after).callbacks.append(lambda _ev: self._fail(pod, gen))

    def _fail(self, pod: Pod, gen: int) -> None:
        """The pod's phase becomes Failed, as KWOK's pod-fail stage sets it: it is not ready,
        leaves the endpoints, frees its place on the simulated node, and its ReplicaSet no
        longer counts it, so the sync creates a replacement that starts from scratch. A failed pod is not active for the
        ReplicaSet controller (kubernetes/kubernetes pkg/controller/controller_utils.go
        ``IsPodActive`` / ``FilterActivePods``), and ``manageReplicas`` in
        pkg/controller/replicaset/replica_set.go creates ``spec.replicas`` minus the active
        pods. A failure is no progress for the Deployment controller (``DeploymentProgressing``
        counts only more updated, ready or available pods, or fewer old ones)."""
        if pod.state != READY or pod.generation != gen:
            return
        self.flush()
        pod.generation += 1
        self.rs[pod.version].pods.remove(pod)
        self._set_state(pod, GONE)
        pod.ready_since = None
        if pod.node is not None:
            self.nodes[pod.node].pods.discard(pod.id)
        self._sync()

    def _delete(self, pod: Pod) -> None:
        rs = self.rs[pod.version]
        rs.pods.remove(pod)
        pod.generation += 1
        if pod in self.pending:
            self.pending.remove(pod)
            self._set_state(pod, GONE)
            return
        routed = pod.state == READY
        self._set_state(pod, TERMINATING)
        self.terminating += 1
        self._terminate(pod, routed)  # gone when it exits; routed to for the endpoint lag (sim/shutdown.py)

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
        now = self.env.now
        return sum(1 for p in rs.pods if p.state == READY and is_available(p.ready_since, now, min_ready))

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
            new.desired = recreate_new_replicas(replicas, new.desired, bool(old_alive))
            return (new.desired, old.desired) != before
        # rolling: scale the new ReplicaSet up as far as surge allows
        new.desired = new_rs_new_replicas(replicas, surge, unavail, new.desired + old.desired, new.desired)
        if new.desired != before[0]:
            return True
        if old.desired > 0:
            old.desired = old_rs_new_replicas(replicas, surge, unavail, new.desired, self._available(new),
                                              old.desired, self._available(old))
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
        return all(replicas_settled(rs.desired, len(rs.pods), self._available(rs)) for rs in self.rs.values())

    def _progress(self) -> None:
        self.last_progress = self.env.now

    def _check_deadline(self) -> None:
        if self._settled():
            return
        due = progress_deadline_at(self.last_progress, self.plan.progress_deadline_seconds)
        if progress_deadline_exceeded(self.env.now, self.last_progress, self.plan.progress_deadline_seconds):
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
            self.outages.append(fault.error_rate)
            self.outage_rate = combined_outage(self.outages)
            self._dependency_changed()  # readiness checks that call the dependency (sim/probes.py)
            self._snapshot()
            yield self.env.timeout(fault.duration)
            self.flush()
            self.outages.remove(fault.error_rate)
            self.outage_rate = combined_outage(self.outages)
        elif fault.kind == "metrics_outage":
            self.metrics_down = True
            yield self.env.timeout(fault.duration)
            self.metrics_down = False

    # --- notification -------------------------------------------------------------------------

    def _notify(self) -> None:
        if not self.changed.triggered:
            self.changed.succeed()
