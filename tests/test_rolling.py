"""Rolling updates in the simulator: the Deployment controller's bounds held, pod by pod.

The rules themselves are table-tested in tests/test_rules_deployment.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploysim.rules.deployment import max_surge, max_unavailable
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse
from deploysim.strategies import compile_plan


def _rolling(replicas, surge, unavailable, **extra):
    overrides = [f"replicas={replicas}", "strategy.kind=rolling", f"strategy.max_surge={surge}",
                 f"strategy.max_unavailable={unavailable}", "strategy.background_analysis=false",
                 "candidate.error_rate=0.001", "duration=30m", "start_at=1m", "traffic.shape=constant"]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return rehearse(load_scenario(overrides=overrides), trace_pods=True)


def test_ten_replicas_25_25_stays_within_13_pods_and_8_available():
    rec = _rolling(10, "25%", "25%")
    assert rec.summary["outcome"] == "promoted"
    trace = rec.pod_trace
    pods = trace["pods_stable"] + trace["pods_candidate"]
    available = trace["available_stable"] + trace["available_candidate"]
    assert pods.max() == 13  # the surge is used, and never exceeded
    assert available.min() == 8  # the budget is used, and never exceeded
    assert rec.summary["max_pods"] == 13


def test_three_replicas_no_surge_goes_old_minus_one_then_new_plus_one():
    rec = _rolling(3, 0, "1%")
    trace = rec.pod_trace
    # distinct (stable, candidate) pod counts in order of time
    seq = []
    for s, c in zip(trace["pods_stable"], trace["pods_candidate"], strict=True):
        if not seq or seq[-1] != (s, c):
            seq.append((s, c))
    assert seq == [(3, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (0, 3)]
    assert (trace["pods_stable"] + trace["pods_candidate"]).max() == 3


def test_min_ready_seconds_delays_availability_and_the_rollout():
    fast = _rolling(4, 1, 0)
    slow = _rolling(4, 1, 0, **{"strategy.min_ready_seconds": "30s"})
    assert slow.summary["rollout_seconds"] >= fast.summary["rollout_seconds"] + 4 * 30 - 1


def test_progress_deadline_fails_a_never_ready_rollout():
    rec = _rolling(4, 1, 0, **{"candidate.never_ready": "true", "strategy.progress_deadline_seconds": "2m"})
    assert rec.summary["outcome"] == "failed"
    abort = [d for d in rec.decisions if d["kind"] == "abort"]
    assert abort and "ProgressDeadlineExceeded" in abort[0]["reason"]
    # the deadline is counted from the last progress, the new pod's creation at the start
    assert abort[0]["at"] == pytest.approx(60 + 120, abs=1)
    assert rec.summary["min_available"] >= 4 - 0  # maxUnavailable 0: stable kept serving


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    replicas=st.integers(1, 30),
    surge=st.one_of(st.integers(0, 5), st.sampled_from(["0%", "10%", "25%", "50%", "100%"])),
    unavailable=st.one_of(st.integers(0, 5), st.sampled_from(["0%", "10%", "25%", "50%"])),
)
def test_availability_bounds_hold_for_any_rolling_parameters(replicas, surge, unavailable):
    """Never fewer than replicas - maxUnavailable available, never more than replicas + maxSurge pods."""
    rec = _rolling(replicas, surge, unavailable)
    s_up, u_down = max_surge(surge, unavailable, replicas), max_unavailable(surge, unavailable, replicas)
    trace = rec.pod_trace
    pods = trace["pods_stable"] + trace["pods_candidate"]
    available = trace["available_stable"] + trace["available_candidate"]
    assert pods.max() <= replicas + s_up
    assert available.min() >= replicas - u_down
    assert rec.summary["outcome"] == "promoted"
    assert trace["pods_candidate"].iloc[-1] == replicas and trace["pods_stable"].iloc[-1] == 0


def test_rolling_and_recreate_compile_to_the_deployments_own_step():
    sc = load_scenario(overrides=["strategy.kind=rolling", "strategy.max_surge=2", "strategy.max_unavailable=0",
                                  "strategy.min_ready_seconds=5s", "strategy.progress_deadline_seconds=2m",
                                  "strategy.background_analysis=true"])
    plan = compile_plan(sc)
    assert [s.kind for s in plan.steps] == ["rolling_update"]
    assert (plan.routing, plan.max_surge, plan.max_unavailable) == ("replica_ratio", 2, 0)
    assert (plan.min_ready_seconds, plan.progress_deadline_seconds) == (5.0, 120.0)
    assert plan.background is not None and plan.background.name == "background"
    recreate = compile_plan(load_scenario(overrides=["strategy.kind=recreate", "strategy.background_analysis=false"]))
    assert [s.kind for s in recreate.steps] == ["recreate"]
    assert (recreate.background, recreate.max_surge, recreate.max_unavailable) == (None, "25%", "25%")
