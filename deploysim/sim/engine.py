"""Rehearse one scenario: build the world, let the controller walk the plan, keep the record.

>>> from deploysim.scenario import load_scenario
>>> rec = rehearse(load_scenario(overrides=["duration=20m", "strategy.kind=rolling"]))
>>> rec.summary["outcome"] in ("promoted", "rolled_back")
True
"""

from __future__ import annotations

import time

import numpy as np
import simpy

from deploysim.controller import TERMINAL_PHASES, Decision, initial_status, reconcile
from deploysim.plan import Plan
from deploysim.record import Record, build_record
from deploysim.scenario import Scenario
from deploysim.sim.world import SimWorld
from deploysim.strategies import compile_plan


class _Driver:
    """The controller's loop in simulated time: observe, reconcile, act, wait for a change."""

    def __init__(self, env: simpy.Environment, world: SimWorld, plan: Plan, scenario: Scenario) -> None:
        self.env = env
        self.world = world
        self.plan = plan
        self.sc = scenario
        self.status = initial_status()
        self.decisions: list[Decision] = []
        self.paused_since: float | None = None

    def _approved(self) -> bool:
        if self.status["phase"] != "Paused":
            self.paused_since = None
            return False
        if self.paused_since is None:
            self.paused_since = self.env.now
        after = self.sc.approve_after()
        return after is not None and self.env.now - self.paused_since >= after - 1e-9

    def run(self):  # noqa: ANN201 - a SimPy process
        env, world = self.env, self.world
        yield env.timeout(self.sc.start_at)
        world.watch_window = (env.now, None)
        world.flush()
        world._snapshot()
        measurements: dict = {}
        while True:
            obs = world.observe(measurements=measurements, promote_requested=self._approved())
            result = reconcile(self.plan, self.status, obs)
            self.status = result.status
            self.decisions.extend(result.decisions)
            if self.status["phase"] == "Paused" and self.paused_since is None:
                self.paused_since = env.now  # a gate's clock starts when the rollout pauses
            if any(d.kind == "abort" for d in result.decisions):
                world.mark_abort()
            if result.decisions:
                world.close_bin()  # an analysis window starts here: let a bin start here too
            measurements = {}
            for action in result.actions:
                if action.kind == "measure":
                    a = action.args
                    measurements[a["analysis"]] = world.measure(a["start"], a["end"])
                else:
                    world.apply(action)
            if self.status["phase"] in TERMINAL_PHASES:
                world.flush()
                world.watch_window = (world.watch_window[0], env.now)
                return
            if measurements or result.actions:
                continue  # act on what was just measured or changed, at the same instant
            wake = result.requeue_at
            if self.status["phase"] == "Paused" and self.paused_since is not None:
                after = self.sc.approve_after()
                if after is not None:
                    gate = self.paused_since + after
                    wake = gate if wake is None else min(wake, gate)
            world.changed = env.event()
            events = [world.changed]
            if wake is not None:
                events.append(env.timeout(max(wake - env.now, 0.0)))
            yield env.any_of(events)


def rehearse(scenario: Scenario, plan: Plan | None = None, trace_pods: bool = False) -> Record:
    """Run the scenario's rollout in the simulator and return its record.

    ``trace_pods`` also keeps every change of pod counts (``record.pod_trace``), for tests
    and fidelity checks that need more than the timeline's bins.
    """
    plan = plan or compile_plan(scenario)
    t0 = time.perf_counter()
    env = simpy.Environment()
    rng = np.random.default_rng(scenario.seed)
    world = SimWorld(env, scenario, plan, rng)
    if trace_pods:
        world.pod_trace = []
    world.start()
    driver = _Driver(env, world, plan, scenario)
    env.process(driver.run())
    env.run(until=scenario.duration)
    world.close_bin()
    world.draw()
    wall = time.perf_counter() - t0
    return build_record(scenario, plan, world, driver.status, driver.decisions, wall)
