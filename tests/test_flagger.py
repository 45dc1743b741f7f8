"""Flagger's Canary: weight progression, ticks, the failed-checks rule, blue/green iterations.

Flagger's documented timings are what the rehearsal must reproduce: a healthy canary
promotes in about interval × steps (plus the first tick and two ticks of promotion), a
failing one rolls back interval × (threshold + 1) after its first request: ``advanceCanary``
compares failedChecks with the threshold at the start of the tick after the failing check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.errors import ManifestError
from deploysim.manifests import plan_from_manifests, scenario_from_manifests
from deploysim.plan import (
    Analyze,
    Pause,
    PromotePrimary,
    ScaleCandidate,
    SetCanaryScale,
    SetWeight,
    SwitchTraffic,
)
from deploysim.sim import rehearse
from deploysim.strategies.duration import expected_duration
from deploysim.strategies.flagger import flagger_plan, flagger_weights, promotion_ticks

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "manifests"
HEALTHY = ["candidate.error_rate=0.001"]
STARTUP_MAX = 30.0  # pod start-up 20 s + up to 10 s jitter in the default scenario


def load(*files: Path, overrides: list[str] | None = None):  # noqa: ANN201
    paths = [str(f) for f in files]
    scenario = scenario_from_manifests(paths, overrides=overrides or [])
    return scenario, plan_from_manifests(paths, scenario)


def canary(tmp_path: Path, analysis: str, extra: str = "", deployment: str = "replicas: 10") -> Path:
    f = tmp_path / "canary.yaml"
    f.write_text(f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec: {{{deployment}}}
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: app}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: app}}
  service: {{port: 80}}
{extra}
  analysis:
{analysis}
""")
    return f


def step_starts(rec, describe_prefix: str) -> list[float]:  # noqa: ANN001
    return [s["start"] for s in rec.steps if s["describe"].startswith(describe_prefix)]


# --- weight progression ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_weight", "step_weight", "step_weights", "weights"),
    [
        (50, 20, (), [20, 40, 60]),  # overshoots maxWeight by one step
        (50, 10, (), [10, 20, 30, 40, 50]),
        (30, 10, (), [10, 20, 30]),
        (100, 30, (), [30, 60, 90, 100]),  # never past 100
        (0, 25, (), [25, 50, 75, 100]),  # maxWeight defaults to 100
        (50, 5, (), list(range(5, 55, 5))),
        (0, 0, (1, 5, 10, 20, 50), [1, 5, 10, 20, 50]),
        (80, 0, (5, 10, 25, 50), [5, 10, 25, 50]),  # the last step weight is the max
        (0, 20, (10, 30), [20, 40]),  # stepWeight wins; maxWeight from stepWeights
        (0, 0, (10, 100), [10, 100]),
    ],
)
def test_flagger_weight_progression(max_weight: int, step_weight: int, step_weights: tuple[int, ...],
                                    weights: list[int]) -> None:
    assert flagger_weights(max_weight, step_weight, step_weights) == weights


def test_flagger_weights_need_a_step() -> None:
    with pytest.raises(ValueError, match="never grows"):
        flagger_weights(50, 0, ())


@pytest.mark.parametrize(("weight", "step", "ticks"), [(60, 0, 2), (50, 100, 2), (50, 20, 4), (100, 30, 5)])
def test_promotion_ticks(weight: int, step: int, ticks: int) -> None:
    assert promotion_ticks(weight, step) == ticks


def test_step_weight_promotion_adds_ticks(tmp_path: Path) -> None:
    f = canary(tmp_path, "    interval: 1m\n    maxWeight: 50\n    stepWeight: 25\n    stepWeightPromotion: 20\n")
    _, plan = load(f)
    # Promote (the primary rolls), 50% back in 20% steps, then the canary to zero
    assert plan.steps[-3:] == (PromotePrimary(60.0), Pause(60.0 * 3), ScaleCandidate(plan.replicas))


def test_flagger_plan_shape() -> None:
    plan = flagger_plan(10, interval=60, threshold=5, weights=[20, 40, 60])
    assert plan.steps[:2] == (SetCanaryScale(100), Pause(60, tick=60))  # tick 1: the next tick, canary ready
    assert [s.weight for s in plan.steps if isinstance(s, SetWeight)] == [20, 40, 60]
    assert plan.steps[-3:] == (PromotePrimary(60), Pause(60), ScaleCandidate(10))  # Promoting, Finalising
    analyses = [s.analysis for s in plan.steps if isinstance(s, Analyze)]
    assert len(analyses) == 3
    assert {(a.count, a.count_successes, a.failure_budget, a.failure_limit) for a in analyses} == {
        (1, True, "flagger", 4)}
    assert plan.routing == "router" and plan.progress_deadline_abort is True


# --- the shipped Flagger canary, end to end ------------------------------------------------------


def test_flagger_canary_example_is_read_as_flagger_means_it() -> None:
    scenario, plan = load(EXAMPLES / "flagger-canary.yaml")
    assert (scenario.replicas, plan.replicas, scenario.service) == (10, 10, "podinfo")
    assert [s.weight for s in plan.steps if isinstance(s, SetWeight)] == [5, 10, 25, 50]
    spec = next(s for s in plan.steps if isinstance(s, Analyze)).analysis
    assert spec.interval == 60.0 and spec.failure_limit == 2  # threshold 3
    assert [(c.metric, c.min, c.max) for c in spec.checks] == [
        ("error_rate", None, 0.01),  # request-success-rate >= 99 %
        ("latency_p99", None, 500.0),  # request-duration <= 500 ms
        ("error_rate", None, 0.02),  # "100 - success %" <= 2
    ]
    assert plan.progress_deadline_seconds == 300.0
    assert any("webhooks[0]" in w and "load-test" in w for w in plan.warnings)


def test_flagger_canary_promotes_in_interval_times_steps() -> None:
    scenario, plan = load(EXAMPLES / "flagger-canary.yaml", overrides=HEALTHY)
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    interval, steps = 60.0, 4
    tick = rec.steps[0]["start"]  # tick 0: the new revision is seen, the canary scaled up to full size
    assert rec.steps[0]["end"] - rec.steps[0]["start"] <= min(STARTUP_MAX, interval)
    starts = [s["start"] for s in rec.steps if s["kind"] == "set_weight"]
    # tick 1 (the canary ready) sets the first weight; every passing tick after it the next; then promotion
    assert starts == pytest.approx([tick + interval * (1 + i) for i in range(steps)])
    promote = next(s for s in rec.steps if s["kind"] == "promote_primary")
    assert promote["start"] == pytest.approx(tick + interval * (steps + 1))  # Promote after the last check
    assert promote["end"] == pytest.approx(tick + interval * (steps + 2))  # the primary ready at the next tick
    done = next(d["at"] for d in rec.decisions if d["kind"] == "promote")
    assert done == pytest.approx(tick + interval * (steps + 3))
    # Flagger's documented "interval × (maxWeight / stepWeight)", plus 3 ticks: the start-up
    # is within tick 1
    ready = rec.steps[0]["end"]
    # the canary runs at full size from the start (the weight only moves traffic)
    trace = rec.pod_trace
    during = trace[(trace["time"] >= ready) & (trace["time"] < promote["start"])]
    assert (during["pods_candidate"] == 10).all() and (during["pods_stable"] == 10).all()
    # Promote: the primary's 10 pods roll to the new version within its surge, beside the
    # canary's 10, so the new version has up to 20 pods; Finalising scales the canary away
    rolling = trace[(trace["time"] >= promote["start"]) & (trace["time"] <= promote["end"])]
    assert rolling["pods_candidate"].max() == 20 and rolling["pods_stable"].iloc[-1] == 0
    assert (rolling["pods_candidate"] + rolling["pods_stable"]).max() <= 20 + 3  # maxSurge 25% of 10
    assert (rolling["available_candidate"] + rolling["available_stable"]).min() >= 10 + 8  # maxUnavailable 25%
    assert trace.iloc[-1]["pods_candidate"] == 10
    t = rec.timeline
    weights = t[(t["start"] >= starts[0]) & (t["time"] <= promote["start"])]["weight"].round(6).unique()
    assert sorted(weights) == [5.0, 10.0, 25.0, 50.0]
    # as the primary rolls, its share of requests moves to the new version with its ready pods
    shares = t[(t["start"] >= promote["start"]) & (t["time"] <= promote["end"])]["weight"].round(6)
    assert shares.is_monotonic_increasing and shares.iloc[0] >= 50.0 and shares.iloc[-1] == 100.0
    est = expected_duration(plan, scenario)
    # to tick 1 once the canary is ready, and the tick traffic goes back to the primary
    # (Promoting is the primary's roll)
    assert rec.summary["time_paused_seconds"] == pytest.approx(2 * interval - (ready - tick), abs=1e-3)  # as rounded
    assert rec.summary["time_paused_seconds"] == pytest.approx(est["paused_seconds"], abs=STARTUP_MAX / 2)
    assert rec.summary["time_in_analysis_seconds"] == pytest.approx(est["analysis_seconds"]) == steps * interval
    assert rec.summary["rollout_seconds"] == pytest.approx(est["total_seconds"], abs=STARTUP_MAX / 2)


def test_flagger_rolls_back_when_the_canary_misses_its_progress_deadline() -> None:
    scenario, plan = load(EXAMPLES / "flagger-canary.yaml", overrides=["candidate.never_ready=true"])
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "failed"
    abort = next(d for d in rec.decisions if d["kind"] == "abort")
    assert "ProgressDeadlineExceeded" in abort["reason"]
    assert abort["at"] - rec.steps[0]["start"] == pytest.approx(300.0)  # progressDeadlineSeconds


def test_flagger_canary_rolls_back_in_interval_times_threshold() -> None:
    scenario, plan = load(EXAMPLES / "flagger-canary.yaml")
    rec = rehearse(scenario, plan)
    s = rec.summary
    assert s["outcome"] == "rolled_back"
    assert s["time_to_detect_seconds"] == pytest.approx(60.0 * 4)  # interval × (threshold + 1)
    measures = [d for d in rec.decisions if d["kind"] == "measure"]
    assert [d["reason"].split(":")[1].split()[0] for d in measures] == ["Failed"] * 3
    # a failed check halts advancement: the weight never went past the first step
    assert [st["describe"] for st in rec.steps if st["kind"] == "set_weight"] == ["set weight to 5%"]
    assert rec.status["failed_checks"] == {"flagger": 3}
    assert rec.timeline["weight"].iloc[-1] == 0 and rec.timeline["ready_candidate"].iloc[-1] == 0


def test_failed_checks_add_up_over_the_rollout_and_each_halts_one_interval(tmp_path: Path) -> None:
    """Two short dependency outages hit two different steps: each failed check holds the
    weight one more interval; with threshold 3 the rollout survives two, and rolls back
    when a third comes, though no single step failed three times."""
    f = canary(tmp_path, "    interval: 1m\n    threshold: 3\n    maxWeight: 50\n    stepWeight: 10\n"
                         "    metrics:\n    - {name: request-success-rate, thresholdRange: {min: 99}}\n")
    base = ["candidate.error_rate=0.001", "traffic.shape=constant", "traffic.rps=300", "duration=40m"]
    healthy = rehearse(*load(f, overrides=base))
    assert healthy.summary["outcome"] == "promoted"
    tick = healthy.steps[0]["start"]  # tick 0; the ticks run every minute from it
    # 20 s outages inside the window at 20% (ticks 2-3), and, one interval of delay later,
    # inside the window at 30%: one failed check each
    outages = [tick + 60 * 2 + 20, tick + 60 * 4 + 20]
    faults = [f"faults.{i}.kind=dependency_outage" for i in range(2)] + [
        f"faults.{i}.at={at}" for i, at in enumerate(outages)] + [
        f"faults.{i}.duration=20s" for i in range(2)] + [f"faults.{i}.error_rate=0.5" for i in range(2)]
    rec = rehearse(*load(f, overrides=base + faults))
    assert rec.summary["outcome"] == "promoted"
    assert rec.status["failed_checks"] == {"flagger": 2}
    delay = (next(d["at"] for d in rec.decisions if d["kind"] == "promote")
             - next(d["at"] for d in healthy.decisions if d["kind"] == "promote"))
    assert delay == pytest.approx(2 * 60.0, abs=0.01)
    held = [s for s in rec.steps if s["kind"] == "analyze" and s["end"] - s["start"] > 60.5]
    assert [s["describe"].split("at ")[1].split("%")[0] for s in held] == ["20", "30"]
    # a third outage, at another step: the budget is spent and the canary rolls back
    third = faults + ["faults.2.kind=dependency_outage", f"faults.2.at={tick + 60 * 6 + 20}",
                      "faults.2.duration=20s", "faults.2.error_rate=0.5"]
    rec3 = rehearse(*load(f, overrides=base + third))
    assert rec3.summary["outcome"] == "rolled_back"
    assert rec3.status["failed_checks"] == {"flagger": 3}
    abort = next(d for d in rec3.decisions if d["kind"] == "abort")
    assert "3 failed" in abort["reason"]


def test_metric_query_errors_are_failed_checks_in_flagger(tmp_path: Path) -> None:
    f = canary(tmp_path, "    interval: 1m\n    threshold: 5\n    stepWeight: 25\n"
                         "    metrics:\n    - {name: request-success-rate, thresholdRange: {min: 99}}\n")
    scenario, plan = load(f, overrides=[*HEALTHY, "faults.0.kind=metrics_outage", "faults.0.at=7m",
                                        "faults.0.duration=150s"])
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    errors = [d for d in rec.decisions if d["kind"] == "measure" and "Error" in d["reason"]]
    assert len(errors) == rec.status["failed_checks"]["flagger"] in (2, 3)


def test_confirm_promotion_gate_waits_for_a_person(tmp_path: Path) -> None:
    f = canary(tmp_path, "    interval: 30s\n    stepWeight: 50\n    webhooks:\n"
                         "    - {name: approve, type: confirm-promotion, url: http://gate/}\n")
    scenario, plan = load(f, overrides=[*HEALTHY, "approve=never"])
    # after the last analysis, before promotion, acted on at the next tick
    assert plan.steps.index(Pause(None)) == len(plan.steps) - 5
    assert plan.steps[-4:-2] == (Pause(0.0, tick=30.0), PromotePrimary(30.0))
    assert rehearse(scenario, plan).summary["outcome"] == "paused"
    scenario, plan = load(f, overrides=[*HEALTHY, "approve=5m"])
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted" and rec.summary["time_paused_seconds"] >= 300


# --- blue/green -------------------------------------------------------------------------------


def test_flagger_blue_green_example_runs_its_iterations() -> None:
    scenario, plan = load(EXAMPLES / "flagger-bluegreen.yaml", overrides=HEALTHY)
    assert plan.strategy == "blue-green" and plan.routing == "active"
    analysis = next(s for s in plan.steps if isinstance(s, Analyze)).analysis
    assert (analysis.count, analysis.interval, analysis.failure_limit) == (6, 30.0, 1)  # iterations + promotion tick
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    tick, interval, iterations = rec.steps[0]["start"], 30.0, 5
    promote = next(s for s in rec.steps if s["kind"] == "promote_primary")
    assert promote["start"] == pytest.approx(tick + interval * (iterations + 2))
    assert (promote["end"] - tick) % interval == pytest.approx(0.0, abs=1e-6)  # IsPrimaryReady at a tick
    done = next(d["at"] for d in rec.decisions if d["kind"] == "promote")
    assert done == pytest.approx(promote["end"] + interval)  # Finalising, then Succeeded at the next tick
    users_before = rec.timeline[rec.timeline["time"] <= promote["start"]]["requests_candidate"].sum()
    assert users_before == 0 and rec.timeline["requests_preview"].sum() > 0  # only test traffic before


def test_flagger_blue_green_failing_candidate_rolls_back_before_users_see_it() -> None:
    scenario, plan = load(EXAMPLES / "flagger-bluegreen.yaml")
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    analysis = next(s for s in rec.steps if s["kind"] == "analyze")
    abort = next(d["at"] for d in rec.decisions if d["kind"] == "abort")
    assert abort - analysis["start"] == pytest.approx(30.0 * 3)  # interval × (threshold + 1)
    assert rec.timeline["requests_candidate"].sum() == 0


def test_mesh_blue_green_switches_after_the_iterations(tmp_path: Path) -> None:
    f = canary(tmp_path, "    interval: 1m\n    iterations: 3\n    threshold: 2\n", extra="  provider: istio")
    scenario, plan = load(f, overrides=HEALTHY)
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["scale_candidate", "pause", "analyze", "switch_traffic", "analyze", "promote_primary", "pause",
                     "scale_candidate"]
    assert plan.steps[2].analysis.count == 3 and plan.steps[4].analysis.count == 1
    assert rehearse(scenario, plan).summary["outcome"] == "promoted"


def test_kubernetes_provider_without_iterations_runs_ten(tmp_path: Path) -> None:
    f = canary(tmp_path, "    interval: 1m\n    stepWeight: 10\n", extra="  provider: kubernetes")
    _, plan = load(f)
    # nothing to route: the Service selects the primary, which rolls to the new template
    assert not any(isinstance(s, SwitchTraffic) for s in plan.steps)
    assert any(isinstance(s, PromotePrimary) for s in plan.steps)
    assert next(s for s in plan.steps if isinstance(s, Analyze)).analysis.count == 11
    assert any("10 blue/green iterations" in w for w in plan.warnings)


def test_skip_analysis_promotes_at_the_first_tick(tmp_path: Path) -> None:
    f = canary(tmp_path, "    interval: 1m\n    stepWeight: 10\n", extra="  skipAnalysis: true",
               deployment="replicas: 4, strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}")
    scenario, plan = load(f)
    assert plan.strategy == "rolling" and plan.max_surge == 1 and plan.background is None
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"  # nothing looked at it
    assert rec.steps[1]["start"] - rec.steps[0]["start"] == pytest.approx(60.0)


def test_missing_target_deployment_uses_the_scenarios_replicas(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: c}\n"
                 "spec: {targetRef: {kind: Deployment, name: other}, analysis: {stepWeight: 50}}\n")
    scenario, plan = load(f, overrides=["replicas=6"])
    assert plan.replicas == 6
    assert any("spec.targetRef" in w and "'other'" in w for w in plan.warnings)
    assert next(s for s in plan.steps if isinstance(s, Analyze)).analysis.interval == 60.0  # Flagger's default


@pytest.mark.parametrize(
    ("analysis", "path", "message"),
    [
        ("    interval: 5 minutes\n    stepWeight: 10\n", "spec.analysis.interval",
         "got '5 minutes'; a duration like 30s"),
        ("    interval: 60\n    stepWeight: 10\n", "spec.analysis.interval", "needs a unit"),
        ("    stepWeights: [10, 5, 50]\n", "spec.analysis.stepWeights[1]", "must grow"),
        ("    stepWeights: [10, 150]\n", "spec.analysis.stepWeights[1]", "from 1 to 100"),
        ("    maxWeight: 150\n    stepWeight: 10\n", "spec.analysis.maxWeight", "from 0 to 100"),
        ("    maxWeight: 50\n", "spec.analysis", "needs stepWeight, stepWeights or iterations"),
        ("    stepWeight: 10\n    metrics:\n    - {name: custom, thresholdRange: {max: 1}}\n",
         "spec.analysis.metrics[0]", "no templateRef or query"),
        ("    stepWeight: 10\n    metrics:\n    - {name: m, templateRef: {name: gone}, thresholdRange: {max: 1}}\n",
         "spec.analysis.metrics[0].templateRef.name", "MetricTemplate 'gone' is not among the manifests"),
        ("    stepWeight: 10\n    webhooks:\n    - {name: h, type: pre-rolout, url: x}\n",
         "spec.analysis.webhooks[0].type", "unknown webhook type 'pre-rolout'"),
    ],
)
def test_malformed_flagger_canaries(tmp_path: Path, analysis: str, path: str, message: str) -> None:
    f = canary(tmp_path, analysis)
    with pytest.raises(ManifestError) as info:
        load(f)
    assert (info.value.document, info.value.path) == (2, path)
    assert message in str(info.value)
