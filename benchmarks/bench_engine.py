"""Engine speed: the reference scenario, against a naive one-event-per-request model.

Reference: 2 hours simulated, 100 replicas, 10,000 rps, a canary with five steps and an
analysis every minute. Speeds are printed as multiples of real time (simulated seconds per
wall second), measured in this run, with their ratio; then the same scenario at 1,000 and
100,000 rps, to show that a run's cost does not grow with the request rate.

    .venv/bin/python benchmarks/bench_engine.py [--repeats 5] [--naive-seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import simpy

from deploysim.scenario import load_scenario
from deploysim.sim import rehearse


def reference(rps: float = 10_000.0):
    steps = []
    for weight in (5, 10, 25, 50, 75):
        steps += [{"set_weight": weight}, {"pause": "5m"}, {"analysis": True}]
    steps.append({"set_weight": 100})
    return load_scenario(data={
        "service": "reference", "replicas": 100, "duration": "2h", "seed": 1,
        "traffic": {"rps": rps, "shape": "diurnal", "peak_factor": 1.5},
        "pod": {"capacity_rps": rps / 50, "startup": "20s"},
        "stable": {"error_rate": 0.001}, "candidate": {"error_rate": 0.001},
        "strategy": {"kind": "canary", "traffic_router": True, "steps": steps},
        "analysis": {"interval": "1m", "count": 5},
    })


def engine_speed(rps: float, repeats: int) -> tuple[float, float]:
    """(median wall seconds, multiple of real time) for the reference scenario at ``rps``."""
    scenario = reference(rps)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rec = rehearse(scenario)
        walls.append(time.perf_counter() - t0)
        assert rec.summary["outcome"] == "promoted", rec.summary
    wall = statistics.median(walls)
    return wall, scenario.duration / wall


def naive_speed(rps: float, sim_seconds: float) -> float:
    """A SimPy model with one event per request: the model deploysim avoids."""
    env = simpy.Environment()
    rng = np.random.default_rng(1)
    counts = {"stable": [0, 0], "candidate": [0, 0]}
    weight = 0.05

    def requests():
        while True:
            yield env.timeout(rng.exponential(1.0 / rps))
            version = "candidate" if rng.random() < weight else "stable"
            failed = rng.random() < 0.001
            rng.lognormal(np.log(40.0), 0.5)  # the request's latency
            counts[version][0] += 1
            counts[version][1] += failed

    env.process(requests())
    t0 = time.perf_counter()
    env.run(until=sim_seconds)
    return sim_seconds / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--naive-seconds", type=float, default=20.0,
                    help="simulated seconds for the naive model (it is slow)")
    args = ap.parse_args()

    rehearse(reference())  # warm up imports and caches
    wall, speed = engine_speed(10_000, args.repeats)
    naive = naive_speed(10_000, args.naive_seconds)
    print("reference: 2h simulated, 100 replicas, 10,000 rps, 5-step canary, analysis every minute")
    print(f"  deploysim engine : {wall * 1000:8.1f} ms per run  = {speed:>12,.0f} x real time")
    print(f"  naive per-request: {naive:>31,.1f} x real time  ({args.naive_seconds:g} s simulated)")
    print(f"  ratio engine / naive: {speed / naive:,.0f}")
    print("cost against request rate (same scenario):")
    base_wall = None
    for rps in (1_000, 10_000, 100_000):
        w, s = engine_speed(rps, args.repeats)
        base_wall = base_wall or w
        print(f"  {rps:>7,} rps: {w * 1000:8.1f} ms = {s:>12,.0f} x real time, wall ratio to 1,000 rps {w / base_wall:.2f}")


if __name__ == "__main__":
    main()
