"""Canary, blue-green and recreate end to end in the simulator, and repeatability."""

from __future__ import annotations

import json

import pytest

from deploysim.scenario import load_scenario
from deploysim.sim import rehearse

CANARY = [
    "strategy.kind=canary", "stable.error_rate=0.001", "duration=45m", "start_at=1m",
    "traffic.shape=constant", "traffic.rps=200",
]


def test_canary_with_failing_candidate_is_rolled_back():
    rec = rehearse(load_scenario(overrides=[*CANARY, "candidate.error_rate=0.05"]))
    s = rec.summary
    assert s["outcome"] == "rolled_back" and s["rolled_back"] is True
    assert s["time_to_detect_seconds"] is not None and s["time_to_detect_seconds"] > 0
    # caught at the first analysis: 2 minutes of pause plus one interval after the 5% step
    # the 2 min pause, then the first measurement as the analysis starts (Argo's
    # generateMetricTasks), looking back over the last minute of the pause
    assert s["time_to_detect_seconds"] == pytest.approx(120, abs=1)
    assert s["time_to_recover_seconds"] == 0.0  # a router sends the weight back at once
    assert rec.timeline["weight"].iloc[-1] == 0.0
    assert rec.timeline["ready_candidate"].iloc[-1] == 0
    assert [d["kind"] for d in rec.decisions].count("abort") == 1


def test_same_canary_with_healthy_candidate_is_promoted():
    rec = rehearse(load_scenario(overrides=[*CANARY, "candidate.error_rate=0.001"]))
    s = rec.summary
    assert s["outcome"] == "promoted"
    assert s["time_to_detect_seconds"] is None and s["time_to_recover_seconds"] is None
    weights = [d["reason"] for d in rec.decisions if d["kind"] == "step" and "weight" in d["reason"]]
    assert [w.split("to ")[-1] for w in weights] == ["5%", "25%", "50%", "100%"]
    last = rec.timeline.iloc[-1]
    assert last["weight"] == 100 and last["pods_stable"] == 0 and last["ready_candidate"] == 10
    assert s["time_paused_seconds"] == pytest.approx(3 * 120)
    # three analyses of count 3: measured at 0, 1 and 2 min into each
    assert s["time_in_analysis_seconds"] == pytest.approx(3 * 2 * 60)


def test_replica_ratio_canary_weight_follows_ready_pods():
    rec = rehearse(load_scenario(overrides=[*CANARY, "strategy.traffic_router=false",
                                            "candidate.error_rate=0.001"]), trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    t = rec.timeline
    both = t[(t["ready_candidate"] > 0) & (t["ready_stable"] > 0) & (t["pods_candidate"] == t["ready_candidate"])]
    share = both["ready_candidate"] / (both["ready_candidate"] + both["ready_stable"]) * 100
    assert (abs(both["weight"] - share) < 1e-6).sum() > len(both) * 0.8



@pytest.mark.parametrize("weights", [[20], [25, 50, 75]])
def test_replica_ratio_canary_keeps_min_available_and_stays_within_the_surge(weights):
    """10 replicas at 25%/25%: never fewer than 8 serving pods nor more than 13 pods, as Argo's
    CalculateReplicaCountsForBasicCanary moves them (at once, 20% to 100% left 2 serving)."""
    steps = [s for w in weights for s in ({"set_weight": w}, {"pause": "2m"})] + [{"set_weight": 100}]
    rec = rehearse(load_scenario(overrides=[
        *CANARY, "candidate.error_rate=0.001", "replicas=10", "strategy.traffic_router=false",
        "strategy.max_surge=25%", "strategy.max_unavailable=25%", f"strategy.steps={json.dumps(steps)}",
    ]), trace_pods=True)
    s = rec.summary
    assert s["outcome"] == "promoted"
    assert s["min_available"] == 8
    assert 10 < s["max_pods"] <= 13
    trace = rec.pod_trace
    assert (trace["available_stable"] + trace["available_candidate"]).min() == 8
    assert (trace["pods_stable"] + trace["pods_candidate"]).max() <= 13


BLUE_GREEN = [
    "strategy.kind=blue-green", "duration=40m", "start_at=1m", "traffic.shape=constant",
    "strategy.pre_promotion_analysis=false", "strategy.scale_down_delay_seconds=10m",
    "analysis.count=3", "pod.startup=30s",
]


def test_blue_green_rollback_within_scale_down_delay_is_instant():
    rec = rehearse(load_scenario(overrides=[*BLUE_GREEN, "candidate.error_rate=0.05"]), trace_pods=True)
    s = rec.summary
    assert s["outcome"] == "rolled_back"
    assert s["time_to_recover_seconds"] == 0.0
    switch = next(d["at"] for d in rec.decisions if "switch the active" in d["reason"])
    abort = next(d["at"] for d in rec.decisions if d["kind"] == "abort")
    # aborted inside the scale-down delay; the post-promotion analysis measures as it starts
    assert switch <= abort < switch + 600
    # no cold start: the old colour stayed ready the whole time, so nothing had to start
    trace = rec.pod_trace
    assert trace["ready_stable"].min() == 10
    t = rec.timeline
    after = t[t["start"] >= abort]
    assert (after["requests_candidate"] == 0).all()
    assert after["failed_stable"].sum() < 0.01 * after["requests_stable"].sum()


def test_blue_green_extra_pod_seconds_reflect_the_second_colour():
    rec = rehearse(load_scenario(overrides=[*BLUE_GREEN, "candidate.error_rate=0.001"]))
    s = rec.summary
    assert s["outcome"] == "promoted"
    assert s["max_pods"] == 20
    # a full second colour (10 pods) from its creation until the old one is gone
    lower = 10 * (s["rollout_seconds"] - 60)
    assert lower < s["extra_pod_seconds"] <= 10 * (s["rollout_seconds"] + 10 + 1)


def test_recreate_has_downtime_and_no_extra_pods():
    # no background analysis: the first candidate pods up take all the traffic and shed some
    # (an error-rate check would see it); this is about the pods
    rec = rehearse(load_scenario(overrides=["strategy.kind=recreate", "candidate.error_rate=0.001",
                                            "duration=20m", "traffic.shape=constant",
                                            "strategy.background_analysis=false"]))
    s = rec.summary
    assert s["outcome"] == "promoted"
    assert s["min_available"] == 0 and s["extra_pod_seconds"] == 0.0 and s["max_pods"] == 10
    assert s["rollout_attributable_failures"] > 1000  # every request failed while nothing was up


def _summary_without_wall(rec):
    return {k: v for k, v in rec.summary.items() if k != "wall_seconds"}


def test_same_seed_gives_identical_summary_and_another_seed_changes_it(tmp_path):
    s1 = load_scenario(overrides=["duration=1h"])
    a, b = rehearse(s1), rehearse(s1)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    ja = json.loads((tmp_path / "a" / "summary.json").read_text())
    jb = json.loads((tmp_path / "b" / "summary.json").read_text())
    ja.pop("wall_seconds"), jb.pop("wall_seconds")  # engine time is measured, not simulated
    assert ja == jb
    assert (tmp_path / "a" / "timeline.csv").read_text() == (tmp_path / "b" / "timeline.csv").read_text()
    c = rehearse(s1.with_seed(s1.seed + 1))
    assert _summary_without_wall(c) != _summary_without_wall(a)


def test_node_failure_restarts_pods_elsewhere():
    rec = rehearse(load_scenario(overrides=[
        "strategy.kind=rolling", "candidate.error_rate=0.001", "duration=20m", "start_at=15m",
        "nodes.count=3", "nodes.pods_per_node=10", "faults.0.kind=node_failure", "faults.0.at=2m",
        "faults.0.node=0", "traffic.shape=constant"]), trace_pods=True)
    trace = rec.pod_trace
    at_fault = trace[trace["time"] >= 120].iloc[0]
    assert at_fault["ready_stable"] < 10
    back = trace[trace["time"] >= 200].iloc[0]
    assert back["ready_stable"] == 10


def test_dependency_outage_fails_requests_of_both_versions():
    rec = rehearse(load_scenario(overrides=[
        "strategy.kind=rolling", "candidate.error_rate=0.001", "duration=20m", "traffic.shape=constant",
        "faults.0.kind=dependency_outage", "faults.0.at=10m", "faults.0.duration=2m", "faults.0.error_rate=0.5"]))
    t = rec.timeline
    window = t[(t["start"] >= 600) & (t["time"] <= 720)]
    rate = window[["failed_stable", "failed_candidate"]].sum().sum() / window[["requests_stable", "requests_candidate"]].sum().sum()
    assert rate == pytest.approx(0.5, abs=0.03)


def test_candidate_crashes_show_as_lost_ready_pods():
    rec = rehearse(load_scenario(overrides=[
        "strategy.kind=rolling", "candidate.crash_rate_per_hour=30", "candidate.error_rate=0.001",
        "duration=1h", "traffic.shape=constant", "strategy.background_analysis=false"]), trace_pods=True)
    t = rec.pod_trace
    late = t[t["time"] > 1200]
    assert (late["ready_candidate"] < late["pods_candidate"]).any()
