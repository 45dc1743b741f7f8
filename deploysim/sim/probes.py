"""Probes in the simulated world: when a pod of a version with ``probes`` is ready, when its
application answers, when it hangs, and when the kubelet restarts it.

A pod's state (``READY`` or not) is its Ready condition: what the endpoints and the
Deployment controller see. Whether its application answers is ``Pod.serving``; a ready pod
that does not answer takes its share of requests and fails them (``ReplicaSet.mute``, read
by the accounting through :func:`deploysim.rules.probes.with_silent_endpoints`).

- A version without ``probes`` (the default) is ready exactly when its application serves,
  as it always was; a hang takes it out of the endpoints at once, and nothing restarts it.
- With ``probes``: the container starts, the application answers ``pod.startup`` (+ jitter)
  later, and the Ready condition follows the rules of :mod:`deploysim.rules.probes`. With
  no readiness probe the pod is ready as soon as its container has started, so requests
  routed to it before its application answers fail.
- ``hang_rate_per_hour``: a serving pod stops answering at that rate. The readiness probe
  takes it out ``failure_threshold`` probes later; the liveness probe has the kubelet kill
  the container (a graceful stop, :func:`deploysim.rules.shutdown.exits_after`) and start it
  again after the restart back-off (CrashLoopBackOff). Many hangs make a restart storm.
- ``readiness.dependency``: during a ``dependency_outage`` each readiness probe fails with
  the outage's error rate; ``failure_threshold`` failures in a row take the pod out of
  rotation, ``success_threshold`` successes bring it back.

Not simulated: probes of a crash (``crash_rate_per_hour`` restarts at once, as before) and
restart back-off on the local control plane (its KWOK stages honour readiness timing only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from deploysim.rules.probes import (
    BackOff,
    failure_detected,
    readiness_passes,
    restart_after,
    startup_result,
    tick_after,
)
from deploysim.rules.shutdown import exits_after
from deploysim.scenario import Probes

if TYPE_CHECKING:
    from deploysim.sim.world import Pod, SimWorld

READY, STARTING = "ready", "starting"  # as deploysim.sim.world names them


@dataclass
class ProbeState:
    """What the kubelet keeps for one pod of a version with probes."""

    grid: float  # when the probe workers started: the phase of every probe's ticks
    container: float = 0.0  # when the current container started
    started: float = math.inf  # when it counted as started (startup probe passed)
    hung: bool = False
    out: bool = False  # kept out of rotation by a readiness check on a failing dependency
    armed: bool = False  # the container's crash and fail_after timers are set (at its first Ready)
    watching: int | None = None  # the generation a dependency watch runs for
    backoff: BackOff | None = None
    restarts: int = 0  # the container's restartCount


class Probing:
    """The probe half of :class:`deploysim.sim.world.SimWorld` (a mixin, as the accounting is)."""

    def _init_probing(self: SimWorld) -> None:
        pod = self.sc.pod
        self.probes: dict[str, Probes | None] = {
            v: spec.probes if spec.probes is not None else pod.probes for v, spec in self.versions.items()}
        self.restarts = 0  # containers the kubelet restarted after a failed liveness or startup probe
        self.crashes = 0  # containers that crashed (``crash_rate_per_hour``) and were restarted at once

    def _restart_count(self: SimWorld) -> int:
        """Container restarts so far, what the pods' ``restartCount`` adds up to: liveness and
        startup probe kills, OOM kills (sim/saturation.py) and crashes."""
        return self.restarts + len(self.usage.kills) + self.crashes

    def _last_restarts(self: SimWorld) -> None:
        """At the end of the run: sample a restart counted since the last change of state
        (a liveness kill is counted as the kubelet decides it, before the container exits)."""
        states = self.emitted.states
        if states and states[-1].restarts != self._restart_count():
            self.emitted.add_state(replace(states[-1], t=self.env.now, restarts=self._restart_count()))

    def _probed(self: SimWorld, version: str) -> bool:
        return self.probes[version] is not None

    def _set_serving(self: SimWorld, pod: Pod, serving: bool) -> None:
        """Whether the pod's application answers, keeping its ReplicaSet's count of ready pods that do not."""
        if pod.serving == serving:
            return
        if pod.state == READY:
            self.rs[pod.version].mute += -1 if serving else 1
        pod.serving = serving

    def _app_up_after(self: SimWorld, pod: Pod) -> float:
        """Seconds from container start until the application answers (never: inf)."""
        if self.versions[pod.version].never_ready:
            return math.inf
        p = self.sc.pod
        return p.startup + (self.rng.uniform(0, p.startup_jitter) if p.startup_jitter else 0.0)

    def _at(self: SimWorld, t: float, then, *args) -> None:  # noqa: ANN001 - a callback
        """Call ``then(*args)`` at time ``t`` (now if it has passed)."""
        self.env.timeout(max(t - self.env.now, 0.0)).callbacks.append(lambda _ev: then(*args))

    # --- a container starts --------------------------------------------------------------

    def _start_probed(self: SimWorld, pod: Pod) -> None:
        """A container of a probed version starts now: schedule its application, its start,
        its readiness and any kill while it starts."""
        spec = self.probes[pod.version]
        now = self.env.now
        if pod.probe is None:
            pod.probe = ProbeState(grid=now)
        st = pod.probe
        st.container, st.hung, st.started, st.armed, st.out = now, False, math.inf, False, False
        self._set_serving(pod, False)
        app_up = now + self._app_up_after(pod)
        gen = pod.generation
        started, kill = now, math.inf
        if spec.startup is not None:
            ok, at = startup_result(app_up, spec.startup, now, st.grid)
            started, kill = (at, math.inf) if ok else (math.inf, at)
        if spec.liveness is not None and not math.isinf(started):
            # an application not yet listening fails its liveness probes from the start
            at = failure_detected(started, spec.liveness, now, st.grid, until=app_up, timed_out=False)
            kill = at if at is not None else kill
        st.started = started
        if spec.readiness is None:
            ready = started
        else:
            ready = readiness_passes(app_up, spec.readiness, started, now, st.grid)
        if app_up < kill:
            self._at(app_up, self._serve, pod, gen)
        if ready < kill:
            self._at(ready, self._become_ready, pod, gen)
        if not math.isinf(kill):
            self._at(kill, self._kill, pod, gen)

    def _first_ready(self: SimWorld, pod: Pod) -> bool:
        """Whether this is the container's first Ready (its crash and fail_after timers are
        set then; a pod back in rotation keeps the ones it has)."""
        st = pod.probe
        if st is None:
            return True
        first, st.armed = not st.armed, True
        return first

    def _serve(self: SimWorld, pod: Pod, gen: int) -> None:
        """The application answers from now on."""
        if pod.generation != gen or pod.state not in (READY, STARTING):
            return
        self.flush()
        self._set_serving(pod, True)
        self._arm_hang(pod)
        self._snapshot()

    # --- hangs ---------------------------------------------------------------------------

    def _arm_hang(self: SimWorld, pod: Pod) -> None:
        rate = self.versions[pod.version].hang_rate_per_hour
        if rate <= 0:
            return
        gen = pod.generation
        self.env.timeout(self.rng.exponential(3600.0 / rate)).callbacks.append(lambda _ev: self._hang(pod, gen))

    def _hang(self: SimWorld, pod: Pod, gen: int) -> None:
        """The application stops answering. Without probes the pod leaves the endpoints at
        once and stays; with them, the readiness and liveness probes find it."""
        if pod.generation != gen or not pod.serving:
            return
        self.flush()
        self._set_serving(pod, False)
        spec = self.probes[pod.version]
        if spec is None:
            if pod.state == READY:
                self._set_state(pod, STARTING)
                pod.ready_since = None
            self._sync()
            return
        st = pod.probe
        st.hung = True  # type: ignore[union-attr]
        now = self.env.now
        if spec.readiness is not None:
            at = failure_detected(max(now, st.started), spec.readiness, st.container, st.grid)  # type: ignore[union-attr]
            self._at(at, self._unready, pod, gen)  # type: ignore[arg-type]
        if spec.liveness is not None:
            at = failure_detected(max(now, st.started), spec.liveness, st.container, st.grid)  # type: ignore[union-attr]
            self._at(at, self._kill, pod, gen)  # type: ignore[arg-type]
        self._snapshot()

    def _unready(self: SimWorld, pod: Pod, gen: int) -> None:
        """The readiness probe failed ``failure_threshold`` times: out of the endpoints."""
        if pod.generation != gen or pod.state != READY:
            return
        self.flush()
        self._set_state(pod, STARTING)
        pod.ready_since = None
        self._sync()

    # --- restarts ------------------------------------------------------------------------

    def _kill(self: SimWorld, pod: Pod, gen: int) -> None:
        """A failed liveness or startup probe: the kubelet stops the container as it would on
        deletion (preStop, SIGTERM, the grace period), then starts it after the back-off."""
        if pod.generation != gen or pod.state not in (READY, STARTING):
            return
        p = self.sc.pod
        self.restarts += 1
        pod.probe.restarts += 1  # type: ignore[union-attr]
        self._at(self.env.now + exits_after(p.pre_stop, p.termination, p.termination_grace_period),
                 self._exited, pod, gen)

    def _exited(self: SimWorld, pod: Pod, gen: int) -> None:
        if pod.generation != gen or pod.state not in (READY, STARTING):
            return
        self.flush()
        pod.generation += 1
        self._set_serving(pod, False)
        if pod.state == READY:
            self._set_state(pod, STARTING)
        pod.ready_since = None
        st = pod.probe
        at, st.backoff = restart_after(self.env.now, st.backoff)  # type: ignore[union-attr]
        self._at(at, self._restart, pod, pod.generation)
        self._sync()

    def _restart(self: SimWorld, pod: Pod, gen: int) -> None:
        if pod.generation != gen or pod.state != STARTING:
            return
        self._start_probed(pod)

    # --- a readiness check on the dependency ---------------------------------------------

    def _checks_dependency(self: SimWorld, pod: Pod) -> bool:
        spec = self.probes[pod.version]
        return spec is not None and spec.readiness is not None and spec.readiness.dependency

    def _kept_out(self: SimWorld, pod: Pod) -> bool:
        """At a readiness success during a dependency outage: the probe's own call to the
        dependency may fail, keeping the pod out; a watch then probes it until it passes."""
        if not self._checks_dependency(pod) or self.outage_rate <= 0:
            return False
        if self.rng.random() >= self.outage_rate:
            return False
        pod.probe.out = True  # type: ignore[union-attr]
        self._watch(pod)
        return True

    def _dependency_changed(self: SimWorld) -> None:
        """A dependency outage began or ended: watch every ready pod whose readiness checks it."""
        if self.outage_rate <= 0:
            return
        for rs in self.rs.values():
            for pod in rs.pods:
                if pod.state == READY and self._checks_dependency(pod):
                    self._watch(pod)

    def _watch(self: SimWorld, pod: Pod) -> None:
        if pod.probe.watching != pod.generation:  # type: ignore[union-attr]
            pod.probe.watching = pod.generation  # type: ignore[union-attr]
            self.env.process(self._dependency_probes(pod, pod.generation))

    def _dependency_probes(self: SimWorld, pod: Pod, gen: int):  # noqa: ANN202 - a SimPy process
        """The pod's readiness probes while the dependency fails (and until it is back in)."""
        probe = self.probes[pod.version].readiness  # type: ignore[union-attr]
        st = pod.probe
        fails = oks = 0
        while pod.generation == gen and not st.hung:
            now = self.env.now
            yield self.env.timeout(tick_after(now, probe.period, st.grid) - now)
            if pod.generation != gen or st.hung:
                break
            failed = self.outage_rate > 0 and self.rng.random() < self.outage_rate
            fails, oks = (fails + 1, 0) if failed else (0, oks + 1)
            if pod.state == READY and fails >= probe.failure_threshold:
                self.flush()
                st.out = True
                self._set_state(pod, STARTING)
                pod.ready_since = None
                self._sync()
            elif st.out and oks >= probe.success_threshold and pod.state == STARTING:
                st.out = False
                self._become_ready(pod, gen, probed_in=True)
            if self.outage_rate <= 0 and not st.out:
                break
        if st.watching == gen:
            st.watching = None
