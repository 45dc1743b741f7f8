"""Graceful shutdown: the kubelet's stop sequence (deploysim/rules/shutdown.py) and what the
endpoint lag costs in a rehearsal.

The rules follow pkg/kubelet/kuberuntime/kuberuntime_container.go ``killContainer``: the
preStop hook runs for at most the grace period, SIGTERM gets what is left but never less
than ``minimumGracePeriodInSeconds`` (2 s), then SIGKILL.
"""

from __future__ import annotations

from typing import Any

import pytest

from deploysim.errors import ScenarioError
from deploysim.rules.shutdown import (
    answers_for,
    exits_after,
    hook_seconds,
    stop_window,
    unanswered_seconds,
)
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse

REPLICAS, RPS, LAG = 10, 300.0, 3.0


def _scenario(*overrides: str, kind: str = "rolling", **pod: Any):
    """A healthy candidate rolled out under constant traffic; deleted pods stay routed for 3 s
    and their application stops answering at SIGTERM (drain 0)."""
    return load_scenario(data={
        "service": "web", "replicas": REPLICAS, "duration": "15m", "start_at": "1m", "seed": 11,
        "traffic": {"rps": RPS, "shape": "constant"},
        "pod": {"startup": "10s", "startup_jitter": 0, "termination": "5s", "capacity_rps": 100,
                "endpoint_lag": f"{LAG:g}s", "drain": 0, **pod},
        "stable": {"image": "web:1.0.0", "error_rate": 0.001},
        "candidate": {"image": "web:1.1.0", "error_rate": 0.001},
        "strategy": {"kind": kind, "max_surge": 1, "max_unavailable": 1, "background_analysis": False,
                     "traffic_router": False, "steps": [{"set_weight": 50}, {"pause": "1m"}, {"set_weight": 100}]},
    }, overrides=list(overrides))


# --- the rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(("pre_stop", "grace", "hook", "window"), [
    (0, 30, 0.0, 30.0), (5, 30, 5.0, 25.0), (29, 30, 29.0, 2.0), (40, 30, 30.0, 2.0), (5, 0, 0.0, 2.0),
])
def test_the_hook_uses_up_the_grace_period_and_sigterm_gets_at_least_two_seconds(pre_stop, grace, hook, window):
    assert (hook_seconds(pre_stop, grace), stop_window(pre_stop, grace)) == (hook, window)


@pytest.mark.parametrize(("pre_stop", "drain", "termination", "grace", "answers", "exits"), [
    (0, 5, 5, 30, 5.0, 5.0),      # the old world: answers until it exits, 5 s after deletion
    (0, 0, 5, 30, 0.0, 5.0),      # stops accepting at SIGTERM
    (5, 0, 5, 30, 5.0, 10.0),     # answers through the hook only
    (10, 30, 60, 30, 30.0, 30.0),  # SIGKILL at the grace period cuts the drain short
    (40, 10, 10, 30, 32.0, 32.0),  # a hook past the grace period: 2 s more after SIGTERM
])
def test_a_deleted_pod_answers_through_the_hook_and_its_drain(pre_stop, drain, termination, grace, answers, exits):
    assert answers_for(pre_stop, drain, termination, grace) == answers
    assert exits_after(pre_stop, termination, grace) == exits


def test_requests_fail_only_in_the_lag_past_the_answering():
    assert [unanswered_seconds(LAG, a) for a in (0.0, 1.0, 3.0, 5.0)] == [3.0, 2.0, 0.0, 0.0]


def test_shutdown_keys_are_checked():
    s = load_scenario(overrides=["pod.pre_stop=5s", "pod.endpoint_lag=2s", "pod.termination_grace_period=45"])
    assert (s.pod.pre_stop, s.pod.endpoint_lag, s.pod.termination_grace_period, s.pod.drain) == (5.0, 2.0, 45.0, None)
    d = load_scenario().pod
    assert (d.pre_stop, d.endpoint_lag, d.termination_grace_period) == (0.0, 0.0, 30.0)  # the old world
    with pytest.raises(ScenarioError, match="pod.endpoint_lag: got -1; a duration cannot be negative"):
        load_scenario(overrides=["pod.endpoint_lag=-1"])


# --- what the lag costs --------------------------------------------------------------------


def test_a_prestop_shorter_than_the_endpoint_lag_fails_requests_one_that_covers_it_does_not():
    short = rehearse(_scenario(pre_stop="1s")).summary
    none = rehearse(_scenario()).summary
    covers = rehearse(_scenario(pre_stop="5s")).summary
    print(f"\nrolling update with a {LAG:g} s endpoint lag, application stopping at SIGTERM: rollout-attributable "
          f"failures with no preStop {none['rollout_attributable_failures']:g}, preStop 1 s "
          f"{short['rollout_attributable_failures']:g}, preStop 5 s {covers['rollout_attributable_failures']:g}")
    # each of the 10 old pods is routed to for 3 s after its deletion; about 1/11 of 300 rps
    # reaches each endpoint while the rollout surges one pod
    per_pod = RPS / (REPLICAS + 1)
    assert none["rollout_attributable_failures"] == pytest.approx(REPLICAS * LAG * per_pod, rel=0.25)
    assert short["rollout_attributable_failures"] == pytest.approx(
        none["rollout_attributable_failures"] * (LAG - 1) / LAG, rel=0.15)
    assert abs(covers["rollout_attributable_failures"]) < 0.05 * none["rollout_attributable_failures"]
    # the hook keeps each old pod 5 s longer: the cost of covering the lag is pod-seconds
    assert covers["extra_pod_seconds"] > none["extra_pod_seconds"]


def test_the_applications_drain_covers_the_lag_too():
    drained = rehearse(_scenario(drain="5s")).summary  # keeps answering 5 s after SIGTERM (exits at 5)
    none = rehearse(_scenario()).summary
    assert abs(drained["rollout_attributable_failures"]) < 0.05 * none["rollout_attributable_failures"]
    no_lag = rehearse(_scenario(endpoint_lag=0)).summary
    assert abs(no_lag["rollout_attributable_failures"]) < 0.05 * none["rollout_attributable_failures"]


def test_a_grace_period_shorter_than_the_prestop_leaves_the_lag_uncovered():
    cut = rehearse(_scenario(pre_stop="10s", endpoint_lag="8s", termination_grace_period=4)).summary
    whole = rehearse(_scenario(pre_stop="10s", endpoint_lag="8s")).summary
    # SIGKILL at 4 + 2 s: the pod stops answering 6 s into an 8 s lag
    assert cut["rollout_attributable_failures"] > 10 * max(abs(whole["rollout_attributable_failures"]), 10.0)


def test_the_failures_are_the_old_versions_and_fall_in_the_rollout():
    rec = rehearse(_scenario())
    t = rec.timeline
    extra = t.failed_stable - t.expected_stable_only_failed
    assert extra[t.time <= 60].sum() < 50  # nothing before the rollout starts at 1 m
    assert extra[(t.time > 60) & (t.time <= 60 + 120)].sum() > 0.9 * rec.summary["rollout_attributable_failures"]
    # the candidate's pods are never deleted here: it fails only its error rate (0.1%)
    assert t.failed_candidate.sum() < 0.002 * t.requests_candidate.sum()


@pytest.mark.parametrize("kind", ["canary", "recreate", "blue-green"])
def test_every_strategy_pays_the_lag_where_it_deletes_routed_pods(kind):
    lagged = rehearse(_scenario(kind=kind)).summary
    covered = rehearse(_scenario(kind=kind, pre_stop="5s")).summary
    print(f"\n{kind}: rollout-attributable failures with the lag {lagged['rollout_attributable_failures']:g}, "
          f"covered by preStop {covered['rollout_attributable_failures']:g}")
    if kind == "blue-green":
        # the old colour takes no requests once the switch is made, so deleting it costs nothing
        assert lagged["rollout_attributable_failures"] == pytest.approx(covered["rollout_attributable_failures"],
                                                                        abs=30)
    elif kind == "recreate":
        # everything is deleted at once; the hook keeps the old pods answering 3 s of the lag,
        # but the new ones only start once the old are gone
        assert lagged["failed_requests"] > 0 and covered["rollout_seconds"] > lagged["rollout_seconds"]
    else:
        assert lagged["rollout_attributable_failures"] > 200
        assert covered["rollout_attributable_failures"] < 0.1 * lagged["rollout_attributable_failures"]
