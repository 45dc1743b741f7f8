"""Rehearse one scenario: build the world, let the drive loop walk the plan, keep the record.

>>> from deploysim.scenario import load_scenario
>>> rec = rehearse(load_scenario(overrides=["duration=20m", "strategy.kind=rolling"]))
>>> rec.summary["outcome"] in ("promoted", "rolled_back")
True
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import simpy

from deploysim.controller import Decision
from deploysim.driver import Drive, drive
from deploysim.plan import Plan
from deploysim.record import Record, build_record
from deploysim.scenario import Scenario
from deploysim.sim.world import SimWorld
from deploysim.strategies import compile_plan

POD_TRACE_COLUMNS = ["time", "pods_stable", "pods_candidate", "ready_stable", "ready_candidate",
                     "available_stable", "available_candidate"]


def rehearse(
    scenario: Scenario,
    plan: Plan | None = None,
    trace_pods: bool = False,
    on_decision: Callable[[Decision], None] | None = None,
) -> Record:
    """Run the scenario's rollout in the simulator and return its record.

    ``trace_pods`` also keeps every change of pod counts (``record.pod_trace``), for tests
    and fidelity checks that need more than the timeline's bins.
    """
    from deploysim.providers.simulated import SimulatedProvider

    plan = plan or compile_plan(scenario)
    t0 = time.perf_counter()
    env = simpy.Environment()
    rng = np.random.default_rng(scenario.seed)
    world = SimWorld(env, scenario, plan, rng)
    if trace_pods:
        world.pod_trace = []
    world.start()
    run = Drive(plan, approve_after=scenario.approve_after(),
                approve_inconclusive_after=scenario.approve_after("approve_inconclusive"),
                limit=scenario.duration, on_decision=on_decision)

    def process():  # noqa: ANN202 - a SimPy process
        yield env.timeout(scenario.start_at)
        world.begin()
        yield from drive(world, run, SimulatedProvider(world))

    env.process(process())
    env.run(until=scenario.duration)
    world.close_bin()
    wall = time.perf_counter() - t0
    record = build_record(world.samples(), plan, scenario, run.status, run.decisions, world="sim",
                          wall_seconds=wall, simulated_seconds=env.now)
    if world.pod_trace is not None:
        record.pod_trace = pd.DataFrame(world.pod_trace, columns=POD_TRACE_COLUMNS)
    return record
