"""Saturation in rehearsal: a CPU regression caught by a saturation check while the error rate
stays flat, throttling that pushes p99 past its check, and an OOM-kill loop."""

from __future__ import annotations

import pytest

from deploysim.scenario import load_scenario
from deploysim.sim import engine
from deploysim.sim.engine import rehearse
from deploysim.sim.world import SimWorld

STABLE_CPU = 0.01  # cores·s per request: 20 rps per pod over a 50m base is 0.25 of a 500m limit


def scenario(candidate: dict, checks: list[dict], resources: dict | None = None, **top):
    data = {
        "service": "checkout", "replicas": 10, "duration": "1h", "start_at": "1m", "seed": 3,
        "traffic": {"rps": 200, "shape": "constant"},
        "pod": {"capacity_rps": 50, "startup": "10s", "startup_jitter": "2s",
                "resources": resources if resources is not None else {"limits": {"cpu": "500m"}}},
        "stable": {"image": "app:1.0.0", "error_rate": 0.001, "cpu_per_request": STABLE_CPU, "cpu_base": "50m"},
        "candidate": {"image": "app:1.1.0", "error_rate": 0.001, "cpu_per_request": STABLE_CPU, "cpu_base": "50m",
                      **candidate},
        "analysis": {"interval": "1m", "count": 3, "checks": checks},
        **top,
    }
    return load_scenario(data=data)


def measured(record, metric: str) -> list[float]:
    return [d["values"][metric] for d in record.decisions if d["kind"] == "measure" and metric in d.get("values", {})]


def failed_check(record) -> str:
    aborts = [d["reason"] for d in record.decisions if d["kind"] == "abort"]
    return aborts[0] if aborts else ""


SATURATION_CHECKS = [{"metric": "error_rate", "max": 0.01}, {"metric": "saturation", "max": 0.8}]


def test_doubled_cpu_per_request_is_aborted_by_saturation_while_the_error_rate_stays_flat() -> None:
    same = rehearse(scenario({}, SATURATION_CHECKS))
    doubled = rehearse(scenario({"cpu_per_request": 2 * STABLE_CPU}, SATURATION_CHECKS))
    for name, rec in (("same cost", same), ("doubled", doubled)):
        print(f"{name}: outcome {rec.summary['outcome']}, saturation {measured(rec, 'saturation')}, "
              f"error_rate {[round(x, 4) for x in measured(rec, 'error_rate')]}")
    assert same.summary["outcome"] == "promoted"
    assert max(measured(same, "saturation")) == pytest.approx(0.5)
    assert doubled.summary["outcome"] == "rolled_back"
    assert "saturation 0.9 > 0.8" in failed_check(doubled)
    # the error rate never broke its check: the saturation check alone caught it
    assert max(measured(doubled, "error_rate")) <= 0.01
    assert "error_rate" not in failed_check(doubled)
    # without the saturation check the same candidate is promoted
    blind = rehearse(scenario({"cpu_per_request": 2 * STABLE_CPU}, SATURATION_CHECKS[:1]))
    assert blind.summary["outcome"] == "promoted"


def test_the_replica_ratio_canary_sees_the_candidate_at_the_stable_load() -> None:
    # without a router the first step is 1 candidate pod of 11 endpoints (Argo's replica
    # counts at 5% of 10): it serves 200/11 rps, (0.05 + 18.2 x 0.02) / 0.5 = 0.83 saturated
    rec = rehearse(scenario({"cpu_per_request": 2 * STABLE_CPU}, SATURATION_CHECKS,
                            strategy={"kind": "canary", "traffic_router": False}))
    print("replica ratio:", rec.summary["outcome"], measured(rec, "saturation"))
    assert rec.summary["outcome"] == "rolled_back"
    assert measured(rec, "saturation") == [pytest.approx((0.05 + 200 / 11 * 2 * STABLE_CPU) / 0.5)]


LATENCY_CHECKS = [{"metric": "error_rate", "max": 0.01}, {"metric": "latency_p99", "max": 200.0}]


def test_throttling_past_the_cpu_limit_raises_p99_past_its_check() -> None:
    # 200/11 rps on the first candidate pod at 40 ms of a core: 0.78 cores against 500m, 1.55x slower
    hungry = {"cpu_per_request": 0.04}
    throttled = rehearse(scenario(hungry, LATENCY_CHECKS, strategy={"kind": "canary", "traffic_router": False}))
    unlimited = rehearse(scenario(hungry, LATENCY_CHECKS, resources={},
                                  strategy={"kind": "canary", "traffic_router": False}))
    p99_throttled, p99_unlimited = measured(throttled, "latency_p99"), measured(unlimited, "latency_p99")
    print(f"p99 with a 500m limit {[round(x) for x in p99_throttled]} ms: {throttled.summary['outcome']}; "
          f"without a limit {[round(x) for x in p99_unlimited]} ms: {unlimited.summary['outcome']}")
    assert throttled.summary["outcome"] == "rolled_back"
    assert "latency_p99" in failed_check(throttled)
    assert unlimited.summary["outcome"] == "promoted"
    assert min(p99_throttled) > 200.0 > max(p99_unlimited)
    # the same candidate's p99 is about 1.55x higher throttled (tails are drawn per window)
    assert 1.35 < p99_throttled[0] / p99_unlimited[0] < 1.75


@pytest.fixture
def worlds(monkeypatch):
    kept: list[SimWorld] = []

    class Kept(SimWorld):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            kept.append(self)

    monkeypatch.setattr(engine, "SimWorld", Kept)
    return kept


def test_memory_past_the_limit_is_an_oom_kill_loop(worlds) -> None:
    # 100Mi + 8Mi per rps: 260Mi at a pod's 20 rps, past a 256Mi limit; the stable's 4Mi is 180Mi
    memory = {"limits": {"cpu": "500m", "memory": "256Mi"}}
    leaky = {"memory_base": "100Mi", "memory_per_rps": "8Mi"}
    base = {"stable": {"image": "app:1.0.0", "error_rate": 0.001, "memory_base": "100Mi", "memory_per_rps": "4Mi"}}
    steps = [{"set_weight": 50}, {"pause": "20m"}, {"analysis": True}, {"set_weight": 100}]
    strategy = {"kind": "canary", "traffic_router": True, "steps": steps}
    checks = [{"metric": "error_rate", "max": 0.01}]
    leak = rehearse(scenario(leaky, checks, resources=memory, strategy=strategy, **base))
    world = worlds[-1]
    fine = rehearse(scenario({"memory_base": "100Mi", "memory_per_rps": "4Mi"}, checks, resources=memory,
                             strategy=strategy, **base))
    kills = [k for k in world.usage.kills if k[2] == "candidate"]
    first_pod = kills[0][1]
    waits = [wait for _, pod, _, wait in kills if pod == first_pod]
    print(f"OOM kills: {len(kills)} of {len({k[1] for k in kills})} candidate pods; one pod's restart waits {waits}; "
          f"failed requests {leak.summary['failed_requests']} (same memory as stable: {fine.summary['failed_requests']})")
    assert not [k for k in world.usage.kills if k[2] == "stable"]
    assert not worlds[-1].usage.kills  # the candidate within its limit is never killed
    # the kubelet's back-off between restarts: at once, then 10 s doubling
    assert waits[:5] == [0.0, 10.0, 20.0, 40.0, 80.0]
    # while its pods restart the candidate's share finds no endpoint: those requests fail
    assert leak.summary["failed_requests"] > 10 * fine.summary["failed_requests"]
    assert leak.summary["outcome"] == "rolled_back"
    assert fine.summary["outcome"] == "promoted"


def test_cpu_and_memory_are_measured_per_ready_pod() -> None:
    checks = [{"metric": "cpu", "max": 10.0}, {"metric": "memory", "max": 2.0**40}]
    rec = rehearse(scenario({"memory_base": "64Mi", "memory_per_rps": "1Mi"}, checks,
                            strategy={"kind": "canary", "traffic_router": False}))
    cpu, memory = measured(rec, "cpu"), measured(rec, "memory")
    print(f"cpu {cpu} cores, memory {[m / 2**20 for m in memory]} MiB per candidate pod")
    # the first step's pod serves 200/11 rps (1 of 11 endpoints), the last ones 20 rps each
    assert cpu[0] == pytest.approx(0.05 + 200 / 11 * STABLE_CPU) and cpu[-1] == pytest.approx(0.25)
    assert memory[0] == pytest.approx((64 + 200 / 11) * 2**20) and memory[-1] == pytest.approx(84 * 2**20)
    assert rec.summary["outcome"] == "promoted"


def test_costs_without_limits_change_no_request_failure_or_latency(worlds) -> None:
    # a CPU and memory model with nothing to limit it: the same draws, the same record
    checks = [{"metric": "error_rate", "max": 0.01}]
    plain = {"image": "app:1.0.0", "error_rate": 0.001}
    bare = rehearse(scenario({"cpu_per_request": 0.0, "cpu_base": 0.0}, checks, resources={}, stable=plain))
    costly = rehearse(scenario({"cpu_per_request": 0.04, "memory_per_rps": "8Mi"}, checks, resources={}))
    assert worlds[0].usage.active is False and worlds[1].usage.active is True
    assert not worlds[1].usage.kills
    drop = ["wall_seconds"]
    assert {k: v for k, v in bare.summary.items() if k not in drop} == \
        {k: v for k, v in costly.summary.items() if k not in drop}
    assert bare.timeline.equals(costly.timeline)
    assert measured(costly, "error_rate") == measured(bare, "error_rate")


def test_the_mann_whitney_judge_holds_a_saturation_check_to_its_bound() -> None:
    # no per-bin series to compare for saturation: its bound judges it, as in the threshold judge
    rec = rehearse(scenario({"cpu_per_request": 2 * STABLE_CPU}, SATURATION_CHECKS,
                            analysis={"interval": "1m", "count": 3, "judge": "mann_whitney",
                                      "checks": SATURATION_CHECKS}))
    print("mann_whitney:", rec.summary["outcome"], failed_check(rec))
    assert rec.summary["outcome"] == "rolled_back"
    assert "saturation 0.9 > 0.8" in failed_check(rec)
