"""Flagger's ticks end to end in the rehearsal: when each check runs, the tick a failing
canary rolls back at, the promotion as the primary's rolling update, and tick 1 waiting for
the canary to be ready (fluxcd/flagger ``pkg/controller/scheduler.go``: ``advanceCanary``,
``runAB``, ``runBlueGreen``, ``runPromotionTrafficShift``; ``IsCanaryReady`` and
``IsPrimaryReady`` in ``pkg/canary/deployment_ready.go``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flagger_canaries import (
    HEALTHY,
    ISTIO_AB,
    ISTIO_PROGRESSIVE,
    KUBERNETES_BLUE_GREEN,
    decided,
    first,
    load,
    measures,
)

from deploysim.sim import rehearse
from deploysim.strategies.flagger import success_tick

# --- end to end: ticks, analyses and the rollback tick in the rehearsal -------------------------


def test_progressive_canary_ticks_end_to_end(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, ISTIO_PROGRESSIVE, overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    interval, weights = 60.0, [10, 20, 30, 40, 50]
    start = rec.steps[0]["start"]  # tick 0: the new revision is seen, the canary scaled up
    starts = [s["start"] for s in rec.steps if s["kind"] == "set_weight"]
    assert starts == pytest.approx([start + interval * (1 + i) for i in range(len(weights))])
    promote = first(rec, "promote_primary")  # Promote at tick 6, the primary ready at tick 7
    assert (promote["start"], promote["end"]) == pytest.approx((start + interval * 6, start + interval * 7))
    assert [d["at"] for d in measures(rec)] == pytest.approx([start + interval * (2 + i) for i in range(5)])
    assert decided(rec, "promote") == pytest.approx(start + interval * success_tick("canary", weights=weights))


@pytest.mark.parametrize(("threshold", "interval"), [(5, 60.0), (2, 60.0), (1, 30.0)])
def test_progressive_canary_rolls_back_at_the_tick_after_the_threshold(tmp_path: Path, threshold: int,
                                                                        interval: float) -> None:
    text = ISTIO_PROGRESSIVE.replace("    threshold: 5\n", f"    threshold: {threshold}\n").replace(
        "    interval: 1m\n    threshold", f"    interval: {interval:g}s\n    threshold")
    scenario, plan = load(tmp_path, text)  # the default candidate fails its checks
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    checks = measures(rec)
    assert len(checks) == threshold and all("Failed" in d["reason"] for d in checks)
    abort = decided(rec, "abort")
    assert abort - checks[-1]["at"] == pytest.approx(interval)  # k + 1: the tick after the failing one
    first_weight = first(rec, "set_weight")["start"]
    assert checks[0]["at"] - first_weight == pytest.approx(interval)
    # time to detect: the first request (tick 1) to the rollback (tick threshold + 2)
    assert rec.summary["time_to_detect_seconds"] == pytest.approx(interval * (threshold + 1), abs=1.0)
    assert [s["describe"] for s in rec.steps if s["kind"] == "set_weight"] == ["set weight to 10%"]


def test_ab_runs_exactly_iterations_analyses_end_to_end(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, ISTIO_AB, overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    interval, iterations = 60.0, 10
    start = rec.steps[0]["start"]  # tick 0
    checks = measures(rec)
    assert len(checks) == iterations
    assert [d["at"] for d in checks] == pytest.approx([start + interval * (2 + i) for i in range(iterations)])
    promote = first(rec, "promote_primary")
    assert promote["start"] == pytest.approx(start + interval * (iterations + 1))  # at the last check's tick
    assert decided(rec, "promote") == pytest.approx(start + interval * success_tick("ab", iterations=iterations))
    before = rec.timeline[rec.timeline["time"] <= promote["start"]]
    assert before["requests_candidate"].sum() == 0 and before["requests_preview"].sum() > 0
    assert_users_meet_the_new_version_as_the_primary_rolls(rec, promote, replicas=4)


def assert_users_meet_the_new_version_as_the_primary_rolls(rec, promote: dict, replicas: int) -> None:  # noqa: ANN001
    """During ``Promote`` the primary rolls within its surge (Kubernetes' default 25%/25% of 4:
    one pod more, one less), beside the canary's full-size set, and the users on the primary
    meet the new version in proportion to its new ready pods: some of them, then all."""
    t = rec.timeline
    during = t[(t["start"] >= promote["start"]) & (t["time"] <= promote["end"])]
    share = during["requests_candidate"] / (during["requests_candidate"] + during["requests_stable"])
    assert share.iloc[0] == 0.0 and ((share > 0.05) & (share < 0.95)).any()  # none, then some
    assert (share.diff().dropna() > -0.02).all()  # never back (requests are drawn: a bin's share is noisy)
    after = t[(t["start"] >= promote["end"]) & (t["requests_stable"] + t["requests_candidate"] > 0)]
    assert after["requests_stable"].sum() == 0  # then all
    primary_new = during["pods_candidate"] - replicas  # the canary keeps its pods
    primary_old = during["pods_stable"]
    assert (primary_new + primary_old).max() <= replicas + 1  # maxSurge 25% of 4
    assert (during["available_stable"] + during["available_candidate"] - replicas).min() >= replicas - 1
    assert (primary_old.iloc[-1], primary_new.iloc[-1]) == (0, replicas)


def test_ab_rolls_back_at_the_tick_after_the_threshold(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, ISTIO_AB)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    checks = measures(rec)
    assert len(checks) == 2  # threshold 2: "Halt ... Halt ... Rolling back" as the tutorial's events
    start = first(rec, "analyze")["start"]  # tick 1
    assert decided(rec, "abort") - start == pytest.approx(60.0 * 3)
    assert rec.timeline["requests_candidate"].sum() == 0


def test_kubernetes_blue_green_runs_iterations_plus_one_end_to_end(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, KUBERNETES_BLUE_GREEN, overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    interval, iterations = 30.0, 10
    start = rec.steps[0]["start"]  # tick 0
    assert len(measures(rec)) == iterations + 1
    promote = first(rec, "promote_primary")
    assert promote["start"] == pytest.approx(start + interval * (iterations + 2))
    # 4 pods at 25%/25% roll in more than one 30 s interval: IsPrimaryReady holds Promoting for
    # whole ticks, then Finalising (success_tick counts a roll within one interval)
    ticks = (promote["end"] - promote["start"]) / interval
    assert ticks == pytest.approx(round(ticks)) and round(ticks) >= 1
    tick = success_tick("blue-green", iterations=iterations, kubernetes=True) + round(ticks) - 1
    assert decided(rec, "promote") == pytest.approx(start + interval * tick)
    # the Service has selected the primary all along: its users meet the new version as it rolls
    assert_users_meet_the_new_version_as_the_primary_rolls(rec, promote, replicas=4)


def test_mesh_blue_green_promotes_the_primary_with_every_user_on_the_canary(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, ISTIO_AB.replace("    match:\n      - headers:\n          user-agent: "
                                                     "{regex: \".*Firefox.*\"}\n      - headers:\n          cookie: "
                                                     "{regex: \"^(.*?;)?(type=insider)(;.*)?$\"}\n", ""),
                          overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    switch, promote = first(rec, "switch_traffic"), first(rec, "promote_primary")
    assert promote["start"] - switch["start"] == pytest.approx(60.0)  # one check on all the traffic
    t = rec.timeline
    during = t[(t["start"] >= switch["start"]) & (t["time"] <= promote["end"])]
    assert during["requests_stable"].sum() == 0 and during["requests_candidate"].min() > 0
    assert during["pods_candidate"].max() == 8  # the canary's 4 and the primary's 4 new pods


@pytest.mark.parametrize(("startup", "tick1"), [("20s", 60.0), ("90s", 120.0), ("150s", 180.0)])
def test_tick_1_is_the_first_tick_at_which_the_canary_is_ready(tmp_path: Path, startup: str, tick1: float) -> None:
    # IsCanaryReady is asked at every tick and holds the tick until the canary is ready
    text = ISTIO_PROGRESSIVE.replace("progressDeadlineSeconds: 60", "progressDeadlineSeconds: 600")
    scenario, plan = load(tmp_path, text, overrides=[*HEALTHY, f"pod.startup={startup}", "pod.startup_jitter=0s"])
    rec = rehearse(scenario, plan)
    start = rec.steps[0]["start"]
    assert first(rec, "set_weight")["start"] - start == pytest.approx(tick1)
    assert all((d["at"] - start) % 60.0 == pytest.approx(0.0, abs=1e-6) for d in measures(rec))


def test_kubernetes_blue_green_rolls_back_at_the_tick_after_the_threshold(tmp_path: Path) -> None:
    scenario, plan = load(tmp_path, KUBERNETES_BLUE_GREEN)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    checks = measures(rec)
    assert len(checks) == 2
    assert decided(rec, "abort") - checks[-1]["at"] == pytest.approx(30.0)
    assert decided(rec, "abort") - first(rec, "analyze")["start"] == pytest.approx(30.0 * 3)


def test_match_with_iterations_0_moves_the_weights_end_to_end(tmp_path: Path) -> None:
    text = ISTIO_AB.replace("    iterations: 10\n", "    maxWeight: 50\n    stepWeight: 25\n")
    scenario, plan = load(tmp_path, text, overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    start = rec.steps[0]["start"]  # tick 0
    assert len(measures(rec)) == 2
    assert decided(rec, "promote") == pytest.approx(start + 60.0 * success_tick("canary", weights=[25, 50]))
