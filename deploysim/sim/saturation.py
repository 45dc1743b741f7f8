"""Saturation in the simulated world: each version's ready pods use CPU and memory by the load
they serve (:mod:`deploysim.rules.saturation`), are throttled past their CPU limit and
OOM-killed past their memory limit.

The world calls three hooks: :meth:`PodUsage.account` as it accounts a stretch of traffic
(CPU, memory and capacity per ready pod into the open bin; a version past its memory limit is
killed), :meth:`PodUsage.throttle` for the latency factor of that stretch, and
:meth:`PodUsage.changed` after its state changes (a pod that became ready takes its share of
the load at once, so a version past its limit is killed then). :meth:`PodUsage.window` gives a
measurement's ``cpu``, ``memory`` and ``saturation`` per version.

An OOM-killed pod stays a pod of its ReplicaSet (the kubelet restarts the container; nothing
replaces the pod): it leaves the endpoints, waits the kubelet's crash-loop back-off
(:func:`~deploysim.rules.saturation.restart_backoff`), then starts again (``pod.startup``)
and becomes ready; its share of the requests goes to the version's other ready pods, and with
none left the version's requests find no endpoint and fail. Every kill is kept in
:attr:`PodUsage.kills`.

>>> from types import SimpleNamespace as NS
>>> from deploysim.scenario import load_scenario
>>> sc = load_scenario(overrides=["pod.resources.limits.cpu=500m", "candidate.cpu_per_request=0.02",
...                               "candidate.cpu_base=50m"])
>>> usage = PodUsage(NS(sc=sc))
>>> b = NS(usage=[[0.0] * 4, [0.0] * 4])
>>> usage.account(b, (0.0, 40.0), (0, 2), 10.0)  # 2 candidate pods at 20 rps each for 10 s
>>> w = usage.window([b], 1)
>>> round(w["cpu"], 3), round(w["saturation"], 3), w["memory"]
(0.45, 0.9, 0.0)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from deploysim.resources import costs_of
from deploysim.rules.saturation import oom_killed, pod_usage, restart_backoff, working_set

if TYPE_CHECKING:
    from deploysim.sim.world import Pod

VERSIONS = ("stable", "candidate")
CPU_USED, MEMORY, CAPACITY, POD_SECONDS = range(4)  # what a bin's ``usage`` holds per version


class PodUsage:
    """The saturation model of one simulated world (``world``: a :class:`~deploysim.sim.world.SimWorld`)."""

    def __init__(self, world: Any) -> None:
        sc = world.sc
        self.world = world
        self.resources = sc.pod.resources.parsed()
        self.costs = (costs_of(sc.stable), costs_of(sc.candidate))
        # nothing modelled: no numbers to measure, no kill to watch for
        self.active = any(c.cpu_modelled or c.memory_modelled for c in self.costs)
        #: every OOM kill: (time, pod id, version, seconds until the kubelet restarts it)
        self.kills: list[tuple[float, int, str, float]] = []
        self._backoff: dict[int, tuple[float, float]] = {}
        self._due = [False, False]

    # --- the hooks ---------------------------------------------------------------------------

    def throttle(self, i: int, offered_rps: float, ready: int) -> float:
        """The latency factor of version ``i``'s pods at ``offered_rps`` over ``ready`` pods."""
        if not self.active or ready <= 0 or self.resources.cpu_limit is None:
            return 1.0
        return pod_usage(offered_rps / ready, self.costs[i], self.resources).throttle

    def account(self, b: Any, offered: tuple[float, float], ready: tuple[int, int], seconds: float) -> None:
        """Add ``seconds`` of both versions' ready pods at ``offered`` rps to bin ``b``, and
        kill a version whose pods are past their memory limit at that load."""
        if not self.active or seconds <= 0:
            return
        capacity = self.resources.cpu_capacity or 0.0
        for i in (0, 1):
            if ready[i] <= 0:
                continue
            u = pod_usage(offered[i] / ready[i], self.costs[i], self.resources)
            pod_seconds = ready[i] * seconds
            row = b.usage[i]
            row[CPU_USED] += u.used * pod_seconds
            row[MEMORY] += u.memory * pod_seconds
            row[CAPACITY] += capacity * pod_seconds
            row[POD_SECONDS] += pod_seconds
            if u.oom:
                self._kill_soon(i)

    def changed(self) -> None:
        """After a change of pods or routing: kill a version past its memory limit at the
        load it serves now."""
        if not self.active or self.resources.memory_limit is None:
            return
        offered, ready = self._offered_now(), self.world._state_ready
        for i in (0, 1):
            if ready[i] > 0 and oom_killed(working_set(offered[i] / ready[i], self.costs[i]),
                                           self.resources.memory_limit):
                self._kill_soon(i)

    def window(self, bins: list[Any], i: int) -> dict[str, float]:
        """Version ``i``'s ``cpu`` (cores), ``memory`` (bytes) per ready pod and ``saturation``
        over ``bins``, time-weighted; nothing when the scenario models no costs."""
        if not self.active:
            return {}
        used = sum(b.usage[i][CPU_USED] for b in bins)
        memory = sum(b.usage[i][MEMORY] for b in bins)
        capacity = sum(b.usage[i][CAPACITY] for b in bins)
        pod_seconds = sum(b.usage[i][POD_SECONDS] for b in bins)
        if pod_seconds <= 0:
            return {}
        return {"cpu": used / pod_seconds, "memory": memory / pod_seconds,
                "saturation": used / capacity if capacity > 0 else math.nan}

    # --- OOM kills ------------------------------------------------------------------------------

    def _offered_now(self) -> tuple[float, float]:
        """Requests per second each version is offered in the world's current state, preview
        traffic to the idle colour included (as :meth:`Accounting.flush` accounts it)."""
        w = self.world
        rps = w.shape.rps(w.env.now)
        share, ready = w._state_share, w._state_ready
        preview = w.sc.strategy.preview_rps if (
            w.plan.routing == "active" and share[1] == 0.0 and ready[1] > 0) else 0.0
        return rps * share[0], rps * share[1] + preview

    def _kill_soon(self, i: int) -> None:
        """Kill version ``i``'s ready pods at this instant, once the world's step is done."""
        if self._due[i]:
            return
        self._due[i] = True
        self.world.env.timeout(0).callbacks.append(lambda _ev: self._kill(i))

    def _kill(self, i: int) -> None:
        from deploysim.sim.world import READY

        self._due[i] = False
        w = self.world
        w.flush()
        rs = w.rs[VERSIONS[i]]
        offered = self._offered_now()[i]
        if rs.ready <= 0 or not oom_killed(working_set(offered / rs.ready, self.costs[i]),
                                           self.resources.memory_limit):
            return  # the load moved on before the kill
        for pod in [p for p in rs.pods if p.state == READY]:
            self._oom_kill(pod)
        w._sync()

    def _oom_kill(self, pod: Pod) -> None:
        """The kernel kills the container; the kubelet restarts it after its back-off."""
        from deploysim.sim.world import STARTING

        w = self.world
        now = w.env.now
        pod.generation += 1  # its pending timers (crash, fail_after, min ready) do nothing now
        w._set_state(pod, STARTING)
        pod.ready_since = None
        wait, self._backoff[pod.id] = restart_backoff(self._backoff.get(pod.id), now)
        self.kills.append((now, pod.id, pod.version, wait))
        gen = pod.generation
        w.env.timeout(wait).callbacks.append(lambda _ev: self._restart(pod, gen))

    def _restart(self, pod: Pod, gen: int) -> None:
        from deploysim.sim.world import STARTING

        if pod.state != STARTING or pod.generation != gen:
            return  # deleted, or its node failed, while it waited
        self.world._start(pod)
