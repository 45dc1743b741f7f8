"""Argo Rollouts and Deployment manifests in, the same plan out; errors and warnings by path.

Tests mirror deploysim/manifests/ (documents, queries, argo, deployment; and the replica-ratio
rule the Argo canary relies on in deploysim/rules/canary.py). Flagger has its own file,
tests/test_flagger.py; durations are read by deploysim/durations.py (tests/test_durations.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploysim.cli import main
from deploysim.errors import ManifestError
from deploysim.manifests import (
    READERS,
    classify_query,
    condition_bounds,
    plan_from_manifests,
    query_window,
    scenario_from_manifests,
)
from deploysim.manifests.documents import ROLLOUT_KINDS
from deploysim.plan import (
    Analyze,
    Pause,
    RollingUpdate,
    ScaleCandidate,
    ScaleDownStable,
    SetCanaryScale,
    SetWeight,
)
from deploysim.rules.canary import basic_canary_replicas
from deploysim.sim import rehearse
from deploysim.strategies.duration import expected_duration

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "manifests"
FIXTURES = Path(__file__).parent / "manifests"
TEMPLATES = EXAMPLES / "argo-templates.yaml"
HEALTHY = ["candidate.error_rate=0.001"]


def load(*files: Path | str, overrides: list[str] | None = None):  # noqa: ANN201
    """(scenario, plan) from manifests, as the CLI builds them."""
    paths = [str(f) for f in files]
    scenario = scenario_from_manifests(paths, overrides=overrides or [])
    return scenario, plan_from_manifests(paths, scenario)


def steps_of(record, kind: str) -> list[dict]:  # noqa: ANN001
    return [s for s in record.steps if s["kind"] == kind]


# --- Argo's replica-ratio rounding ----------------------------------------------------------


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "expected"),
    [
        (10, 41, 0, (4, 6)),  # 4/10 = 40% is nearest 41%
        (10, 41, 1, (4, 6)),  # surging to 11 pods gets no nearer
        (5, 10, 0, (1, 4)),  # 0.5 pods: never 0 between 1% and 99%, so 20%
        (5, 10, 1, (1, 5)),  # with surge, 1 of 6 (16.7%) is nearer
        (10, 5, 0, (1, 9)),  # exactly half a pod: the larger canary
        (10, 5, 1, (1, 10)),  # 1 of 11 (9.1%) is nearer 5% than 1 of 10
        (10, 99, 0, (9, 1)),  # the stable keeps a pod until 100%
        (10, 99, 1, (10, 1)),
        (3, 50, 0, (2, 1)),  # 1.5 pods: a tie goes to the larger canary
        (3, 50, 1, (2, 2)),  # with surge, 2 of 4 is exactly 50%
        (1, 20, 1, (1, 1)),  # Argo: "do not scale newRS down to zero on non-zero weight"
        (1, 20, 0, (0, 1)),  # one replica and no surge: 0 is allowed
        (10, 0, 1, (0, 10)),
        (10, 100, 1, (10, 0)),
        (10, 30, 3, (3, 7)),
    ],
)
def test_basic_canary_replicas_follow_argo(replicas: int, weight: int, surge: int, expected: tuple[int, int]) -> None:
    assert basic_canary_replicas(replicas, weight, surge) == expected


def test_five_replicas_without_surge_cannot_go_below_20_percent() -> None:
    for weight in range(1, 30):
        candidate, stable = basic_canary_replicas(5, weight)
        assert candidate + stable == 5
        assert candidate >= 1 and candidate / 5 >= 0.2


# --- small readers ---------------------------------------------------------------------------


def test_every_rollout_kind_has_one_reader() -> None:
    assert set(READERS) == set(ROLLOUT_KINDS) == {"Rollout", "Canary", "Deployment"}


@pytest.mark.parametrize(
    ("query", "seconds"),
    [('sum(rate(http_requests_total{code=~"5.."}[5m]))', 300.0),
     ("rate(requests[30s])", 30.0),
     ("rate(requests[1d])", 86400.0),  # PromQL ranges count days, Go durations do not
     ("sum(requests)", None)],
)
def test_query_window(query: str, seconds: float | None) -> None:
    assert query_window(query) == seconds


@pytest.mark.parametrize(
    ("condition", "failure", "bounds"),
    [
        ("result[0] >= 0.95", False, (0.95, None)),
        ("result < 0.01", False, (None, 0.01)),
        ("result[0] <= 500 && result[0] >= 1", False, (1.0, 500.0)),
        ("result[0] <= 500 and result[0] >= 1", False, (1.0, 500.0)),
        ("0.95 <= result[0]", False, (0.95, None)),
        ("asFloat(result) > 0.9", False, (0.9, None)),
        ("len(result) == 0 || result[0] < 0.05", False, (None, 0.05)),
        ("result[0] > 0.02", True, (None, 0.02)),
        ("result[0] < 0.9 || result[0] > 2", True, (0.9, 2.0)),
        ("result[0] < 0.1 || result[0] > 0.9", False, None),  # not one interval
        ("result.status == 'ok'", False, None),
        ("result[0] == 1", False, None),
    ],
)
def test_condition_bounds(condition: str, failure: bool, bounds: tuple | None) -> None:
    assert condition_bounds(condition, failure=failure) == bounds


@pytest.mark.parametrize(
    ("query", "metric", "scale"),
    [
        ('sum(rate(http_requests_total{status=~"5.*"}[5m])) / sum(rate(http_requests_total[5m]))', "error_rate", 1.0),
        ('sum(irate(istio_requests_total{response_code!~"5.*"}[1m])) / sum(irate(istio_requests_total[1m]))',
         "success_rate", 1.0),
        ('100 * sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))', "error_rate", 0.01),
        ('histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[1m])) by (le))', "latency_p99",
         1000.0),
        ('histogram_quantile(0.95, sum(rate(latency_ms_bucket[1m])) by (le))', "latency_p95", 1.0),
        ('histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[1m])) by (le)) * 1000',
         "latency_p99", 1.0),
        ('sum(rate(http_requests_total{app="x"}[1m]))', "request_rate", 1.0),
    ],
)
def test_queries_map_to_what_they_measure(query: str, metric: str, scale: float) -> None:
    measures = classify_query(query)
    assert measures is not None and (measures.metric, measures.scale) == (metric, scale)


@pytest.mark.parametrize("query", ["avg(rate(container_cpu_usage_seconds_total[1m]))",
                                   "histogram_quantile(0.9, sum(rate(x_bucket[1m])) by (le))",
                                   "up{job='checkout'}"])
def test_queries_the_simulator_does_not_model(query: str) -> None:
    assert classify_query(query) is None


# --- the shipped Argo examples, end to end ------------------------------------------------------


def test_argo_canary_plan_from_the_examples() -> None:
    scenario, plan = load(EXAMPLES / "argo-canary.yaml", TEMPLATES)
    assert (plan.strategy, plan.routing, plan.replicas, scenario.replicas) == ("canary", "router", 10, 10)
    assert scenario.service == "checkout" and scenario.strategy.traffic_router is True
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["set_weight", "pause", "analyze", "set_weight", "pause", "set_weight", "pause", "analyze",
                     "set_weight"]
    assert [s.weight for s in plan.steps if isinstance(s, SetWeight)] == [5, 25, 50, 100]
    assert [s.seconds for s in plan.steps if isinstance(s, Pause)] == [120.0, 120.0, None]
    step3 = plan.steps[2].analysis
    assert (step3.interval, step3.count, step3.failure_limit) == (60.0, 3, 0)
    assert {(c.metric, c.max) for c in step3.checks} == {("error_rate", 0.01), ("latency_p99", 400.0)}
    assert plan.background is not None and plan.background.count is None
    assert plan.background_start == 3 and plan.background.failure_limit == 2
    assert [(c.metric, c.max) for c in plan.background.checks] == [("error_rate", 0.02)]
    assert plan.progress_deadline_abort is True and plan.max_unavailable == 0


def test_argo_canary_with_a_failing_candidate_aborts_at_the_first_analysis() -> None:
    scenario, plan = load(EXAMPLES / "argo-canary.yaml", TEMPLATES)
    rec = rehearse(scenario, plan, trace_pods=True)
    s = rec.summary
    assert s["outcome"] == "rolled_back"
    analysis = steps_of(rec, "analyze")[0]
    assert analysis["result"] == "aborted"
    abort = next(d for d in rec.decisions if d["kind"] == "abort")
    assert abort["at"] == pytest.approx(analysis["start"])  # the first measurement, as it starts, fails
    assert "error_rate" in abort["reason"]
    assert s["time_to_detect_seconds"] == pytest.approx(120, abs=0.01)  # the pause, then the first measurement
    # with a router the stable version stays at full size the whole time
    assert rec.pod_trace["pods_stable"].min() == 10
    assert rec.timeline["weight"].iloc[-1] == 0


def test_argo_canary_with_a_healthy_candidate_matches_the_estimate() -> None:
    scenario, plan = load(EXAMPLES / "argo-canary.yaml", TEMPLATES, overrides=HEALTHY)
    rec = rehearse(scenario, plan, trace_pods=True)
    s = rec.summary
    assert s["outcome"] == "promoted"
    weights = [d["reason"].split("to ")[-1] for d in rec.decisions if d["kind"] == "step" and "weight" in d["reason"]]
    assert weights == ["5%", "25%", "50%", "100%"]
    assert any(d["kind"] == "pause" and "manual gate" in d["reason"] for d in rec.decisions)
    est = expected_duration(plan, scenario)
    assert s["time_paused_seconds"] == pytest.approx(est["paused_seconds"]) == 240.0
    assert s["time_in_analysis_seconds"] == pytest.approx(est["analysis_seconds"]) == 240.0
    assert s["rollout_seconds"] == pytest.approx(est["total_seconds"], abs=30)
    last_step = max(step["end"] for step in rec.steps)
    trace = rec.pod_trace
    assert trace[trace["time"] < last_step]["pods_stable"].min() == 10  # router: stable at full size to the end
    bg = rec.status["background"]
    assert bg["phase"] == "Successful" and bg["taken"] >= 5  # watched from step 4 to the end


def test_argo_replica_ratio_canary_moves_pods_by_the_weight() -> None:
    scenario, plan = load(EXAMPLES / "argo-canary-basic.yaml", TEMPLATES, overrides=HEALTHY)
    assert (plan.routing, plan.max_surge, plan.min_ready_seconds) == ("replica_ratio", 1, 5.0)
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    trace = rec.pod_trace
    for step in steps_of(rec, "set_weight"):
        weight = int(step["describe"].split("to ")[1].rstrip("%"))
        candidate, stable = basic_canary_replicas(10, weight, 1)
        at_end = trace[trace["time"] <= step["end"]].iloc[-1]
        assert (at_end["available_candidate"], at_end["pods_stable"]) == (candidate, stable), weight
    t = rec.timeline
    held = t[(t["start"] > steps_of(rec, "pause")[1]["start"]) & (t["time"] <= steps_of(rec, "pause")[1]["end"])]
    assert held["weight"].round(6).unique().tolist() == [40.0]  # 4 of 10 ready pods
    assert [p["end"] - p["start"] for p in steps_of(rec, "pause")] == pytest.approx([60.0] * 4)
    assert rec.summary["time_paused_seconds"] == pytest.approx(expected_duration(plan, scenario)["paused_seconds"])
    assert rec.status["background"]["taken"] >= 4


def test_argo_blue_green_example() -> None:
    scenario, plan = load(EXAMPLES / "argo-bluegreen.yaml", TEMPLATES, overrides=HEALTHY)
    assert plan.routing == "active" and plan.scale_down_delay == 300.0
    assert [type(s) for s in plan.steps] == [ScaleCandidate, Analyze, Pause, ScaleCandidate, type(plan.steps[4]),
                                             Analyze, ScaleDownStable]
    assert plan.steps[0].replicas == 3 and plan.steps[3].replicas == 10
    pre = plan.steps[1].analysis
    assert any("datadog" in n for n in pre.not_simulated)
    assert any("checkout-conversion" in w and "document 4" in w for w in plan.warnings)
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    switch = next(s for s in rec.steps if s["kind"] == "switch_traffic")
    pause = steps_of(rec, "pause")[0]
    assert pause["end"] - pause["start"] == pytest.approx(60.0)
    before = rec.timeline[rec.timeline["time"] <= switch["start"]]
    assert before["requests_candidate"].sum() == 0 and before["requests_preview"].sum() > 0
    end = next(d["at"] for d in rec.decisions if d["kind"] == "promote")
    # post analysis (3 measurements a minute apart, the first at once), then the delay
    assert end - switch["start"] == pytest.approx(120 + 300, abs=0.01)
    est = expected_duration(plan, scenario)
    assert rec.summary["time_paused_seconds"] == pytest.approx(est["paused_seconds"])
    assert rec.summary["time_in_analysis_seconds"] == pytest.approx(est["analysis_seconds"])


def test_argo_blue_green_failing_candidate_is_caught_on_the_preview() -> None:
    scenario, plan = load(EXAMPLES / "argo-bluegreen.yaml", TEMPLATES)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    assert not any(s["kind"] == "switch_traffic" for s in rec.steps)
    assert rec.timeline["requests_candidate"].sum() == 0  # users never saw it


def test_argo_blue_green_without_preview_service_or_auto_promotion(tmp_path: Path) -> None:
    f = tmp_path / "bg.yaml"
    f.write_text("""
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: gate}
spec:
  replicas: 4
  strategy:
    blueGreen:
      activeService: gate-active
      autoPromotionEnabled: false
      autoPromotionSeconds: 30
""")
    scenario, plan = load(f, overrides=[*HEALTHY, "approve=never"])
    assert scenario.strategy.preview_rps == 0.0 and scenario.strategy.auto_promotion_seconds is None
    assert [s.kind for s in plan.steps] == ["scale_candidate", "pause", "switch_traffic", "scale_down_stable"]
    assert plan.steps[1].seconds is None and plan.steps[3].delay == 30.0  # Argo's default delay
    assert any("autoPromotionSeconds" in w for w in plan.warnings)
    assert rehearse(scenario, plan).summary["outcome"] == "paused"


def test_deployment_example_rolls_without_analysis() -> None:
    scenario, plan = load(EXAMPLES / "deployment.yaml")
    assert (plan.strategy, plan.max_surge, plan.max_unavailable, plan.min_ready_seconds) == ("rolling", 2, 0, 10.0)
    assert plan.steps == (RollingUpdate(),) and plan.background is None
    assert plan.progress_deadline_abort is False and plan.progress_deadline_seconds == 300.0
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "promoted"  # nothing watches it: the bad release goes out
    est = expected_duration(plan, scenario)["total_seconds"]  # 5 waves of 2 pods, 35 s each
    assert est == pytest.approx(175.0) and rec.summary["rollout_seconds"] == pytest.approx(est, rel=0.15)
    assert rec.summary["rollout_attributable_failures"] > 1000
    trace = rec.pod_trace
    assert (trace["pods_stable"] + trace["pods_candidate"]).max() <= 12  # maxSurge 2
    assert (trace["available_stable"] + trace["available_candidate"]).min() >= 10  # maxUnavailable 0


def test_recreate_deployment_and_kubernetes_defaults(tmp_path: Path) -> None:
    f = tmp_path / "d.yaml"
    f.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
                 "spec: {replicas: 3, strategy: {type: Recreate}}\n")
    _, plan = load(f)
    assert plan.strategy == "recreate" and plan.progress_deadline_seconds == 600.0
    g = tmp_path / "e.yaml"
    g.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n")
    scenario, plan = load(g)
    assert (plan.max_surge, plan.max_unavailable, scenario.replicas) == ("25%", "25%", 1)


def test_dry_run_metrics_and_cluster_templates(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(ROLLOUT_HEAD + """spec:
  replicas: 4
  strategy:
    canary:
      steps:
      - setWeight: 50
      - analysis:
          templates: [{templateName: shared, clusterScope: true}, {templateName: local}]
          dryRun: [{metricName: "lat.*"}]
      - analysis:
          templates: [{templateName: local}]
          dryRun: [{metricName: ".*"}]
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: shared}
spec:
  metrics:
  - name: errors
    interval: 1m
    count: 2
    successCondition: result[0] < 0.05
    provider: {prometheus: {query: 'sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))'}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: local}
spec:
  metrics:
  - name: latency
    interval: 1m
    count: 2
    successCondition: result[0] < 0.3
    provider: {prometheus: {query: 'histogram_quantile(0.99, sum(rate(d_seconds_bucket[1m])) by (le))'}}
""")
    _, plan = load(f)
    first, second = (s.analysis for s in plan.steps if isinstance(s, Analyze))
    assert [(c.metric, c.max) for c in first.checks] == [("error_rate", 0.05)]  # latency is a dry run
    assert first.dry_run is False and second.dry_run is True
    assert any("'latency' is a dry run" in w for w in plan.warnings)


@pytest.mark.parametrize(("abort", "outcome"), [("false", "incomplete"), ("true", "failed")])
def test_progress_deadline_aborts_only_when_asked(tmp_path: Path, abort: str, outcome: str) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(ROLLOUT_HEAD + f"spec: {{replicas: 4, progressDeadlineSeconds: 120, progressDeadlineAbort: {abort}, "
                 "strategy: {canary: {steps: [{setWeight: 50}]}}}\n")
    rec = rehearse(*load(f, overrides=["candidate.never_ready=true", "duration=20m"]))
    assert rec.summary["outcome"] == outcome
    if outcome == "failed":
        abort_at = next(d["at"] for d in rec.decisions if d["kind"] == "abort")
        assert abort_at - rec.steps[0]["start"] == pytest.approx(120.0)


def test_set_overrides_still_win_over_the_manifest() -> None:
    scenario, plan = load(EXAMPLES / "deployment.yaml", overrides=["replicas=4", "traffic.rps=50"])
    assert scenario.replicas == plan.replicas == 4 and scenario.traffic.rps == 50
    assert any("spec.replicas is 10" in w for w in plan.warnings)


# --- controller semantics through manifests ---------------------------------------------------


@pytest.mark.parametrize(("outage", "outcome"), [("3m", "promoted"), ("5m", "rolled_back")])
def test_consecutive_error_limit_counts_provider_errors(outage: str, outcome: str) -> None:
    """consecutiveErrorLimit 4 with a 1 m interval: 3 minutes without metrics are
    tolerated, 5 minutes make 5 errors in a row and the analysis errors out."""
    scenario, plan = load(FIXTURES / "argo-outage.yaml", overrides=[
        *HEALTHY, "faults.0.kind=metrics_outage", "faults.0.at=10m", f"faults.0.duration={outage}"])
    assert plan.background.consecutive_error_limit == 4
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == outcome
    errors = [m for m in rec.status["background"]["measurements"] if m["phase"] == "Error"]
    assert len(errors) == (3 if outage == "3m" else 5)
    if outcome == "rolled_back":
        abort = next(d for d in rec.decisions if d["kind"] == "abort")
        assert "Error" in abort["reason"] and "consecutive provider errors" in abort["reason"]


def test_an_analysis_before_any_traffic_has_no_data_and_errs_out() -> None:
    """An analysis step before the candidate serves a request: the query has no series, an
    Error in Argo's Prometheus provider, measured again every interval until
    consecutiveErrorLimit (4) is passed; the run errs and the rollout is aborted."""
    scenario, plan = load(FIXTURES / "argo-inconclusive.yaml", overrides=HEALTHY)
    assert [(c.metric, c.max) for c in plan.steps[0].analysis.checks] == [("error_rate", 0.05)]  # 95% success
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "rolled_back"
    measures = [d for d in rec.decisions if d["kind"] == "measure"]
    assert len(measures) == 5 and all("no data" in d["reason"] for d in measures)
    assert [round(b["at"] - a["at"]) for a, b in zip(measures, measures[1:], strict=False)] == [30] * 4
    abort = next(d for d in rec.decisions if d["kind"] == "abort")
    assert "Error" in abort["reason"] and abort["at"] == measures[-1]["at"]


def test_unsupported_fields_are_named_with_their_path() -> None:
    scenario, plan = load(FIXTURES / "argo-unsupported.yaml", overrides=HEALTHY)
    text = "\n".join(plan.warnings)
    for path in ("spec.rollbackWindow", "spec.strategy.canary.dynamicStableScale",
                 "spec.strategy.canary.steps[2].setHeaderRoute", "spec.strategy.canary.steps[3].experiment",
                 "spec.metrics[1]", "spec.metrics[2]"):
        assert path in text, path
    analysis = next(s for s in plan.steps if isinstance(s, Analyze)).analysis
    assert [(c.metric, c.max) for c in analysis.checks] == [("latency_p99", 250.0)]  # milliseconds as given
    assert len(analysis.not_simulated) == 2
    assert plan.steps[0] == SetCanaryScale(25)  # 2 of 8 replicas
    assert SetCanaryScale(None) in plan.steps  # matchTrafficWeight
    assert Pause(300.0) in plan.steps  # the experiment's duration is held
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    trace = rec.pod_trace
    at_10 = next(s for s in rec.steps if s["describe"] == "set weight to 10%")
    at_50 = next(s for s in rec.steps if s["describe"] == "set weight to 50%")
    # setCanaryScale holds the canary at 2 pods through the 10% step, then it follows the weight
    assert trace[trace["time"] <= at_10["end"]].iloc[-1]["pods_candidate"] == 2
    assert trace[trace["time"] < at_50["end"]].iloc[-1]["pods_candidate"] == 4  # just before the 100% step


# --- errors: file, document and path, before anything runs --------------------------------------

ROLLOUT_HEAD = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n"


@pytest.mark.parametrize(
    ("text", "document", "path", "message"),
    [
        ("apiVersion: argoproj.io/v1alpha1\nkind: Rolout\n", 1, "kind",
         "no rollout among the manifests; expected one of Rollout, Canary, Deployment beside the templates and "
         "companions; rollout.yaml (document 1): kind: Rolout '' skipped (did you mean Rollout?)"),
        ("apiVersion: apps/v1\nkind: Rollout\n", 1, "apiVersion", "argoproj.io"),
        ("kind: Service\napiVersion: v1\n---\n" + ROLLOUT_HEAD
         + "spec:\n  strategy:\n    canary:\n      steps:\n      - setWeight: 10\n      - pauze: {duration: 1m}\n",
         2, "spec.strategy.canary.steps[1]", "unknown step type 'pauze'; allowed: setWeight, pause"),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {steps: [{}]}}}\n", 1, "spec.strategy.canary.steps[0]",
         'got an empty step; "Step must have one of the following set'),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {steps: [{setWeight: 150}]}}}\n", 1,
         "spec.strategy.canary.steps[0].setWeight", "got 150"),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {steps: [{pause: {duration: 5 minutes}}]}}}\n", 1,
         "spec.strategy.canary.steps[0].pause.duration", "got '5 minutes'"),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {steps: [{pause: }]}}}\n", 1, "spec.strategy.canary.steps[0].pause",
         "pause: {} waits"),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {}, blueGreen: {activeService: a}}}\n", 1, "spec.strategy",
         "exactly one of canary, blueGreen"),
        (ROLLOUT_HEAD + "spec: {strategy: {blueGreen: {previewService: p}}}\n", 1,
         "spec.strategy.blueGreen.activeService", "missing"),
        (ROLLOUT_HEAD + "spec: {replicas: 0, strategy: {canary: {}}}\n", 1, "spec.replicas", "1 or more"),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {maxSurge: 0, maxUnavailable: 0}}}\n", 1, "spec.strategy.canary",
         "cannot both be 0"),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {maxSurge: 150%}}}\n", 1, "spec.strategy.canary.maxSurge",
         "between 0% and 100%"),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {steps: [{analysis: {templates: [{templateName: nope}]}}]}}}\n",
         1, "spec.strategy.canary.steps[0].analysis.templates[0].templateName",
         "AnalysisTemplate 'nope' is not among the manifests"),
        (ROLLOUT_HEAD + "spec: {progressDeadlineSeconds: 10, minReadySeconds: 30, strategy: {canary: {}}}\n", 1,
         "spec.progressDeadlineSeconds", "greater than minReadySeconds"),
        (ROLLOUT_HEAD + "spec: [1, 2\n", 1, "(yaml)", "not valid YAML"),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
         "spec: {strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}}\n", 1, "spec.strategy.rollingUpdate",
         "only be set when type is RollingUpdate"),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {strategy: {type: BlueGreen}}\n", 1,
         "spec.strategy.type", "allowed: RollingUpdate, Recreate"),
        ("- just\n- a list\n", 1, "(document)", "a manifest is a mapping"),
        ("kind: Service\napiVersion: v1\nmetadata: {name: checkout}\n", 1, "kind",
         "no rollout among the manifests; expected one of Rollout, Canary, Deployment"),
        (ROLLOUT_HEAD + "spec: {strategy: {canary: {}}}\n---\n" + ROLLOUT_HEAD + "spec: {strategy: {canary: {}}}\n",
         2, "metadata.name", "several rollouts among the manifests: Rollout 'r' (rollout.yaml, document 1); "
         "Rollout 'r' (rollout.yaml, document 2); pick one by name"),
    ],
)
def test_malformed_manifests_name_file_document_and_path(tmp_path: Path, text: str, document: int, path: str,
                                                         message: str) -> None:
    f = tmp_path / "rollout.yaml"
    f.write_text(text)
    with pytest.raises(ManifestError) as info:
        load(f)
    err = info.value
    assert (err.file, err.document, err.path) == (str(f), document, path)
    assert message in str(err)
    assert str(err).startswith(f"{f} (document {document}): {path}: ")


@pytest.mark.parametrize(
    ("metric", "path", "message"),
    [
        ("{name: m, count: 3, provider: {prometheus: {query: up}}}", "spec.metrics[0].interval",
         "count 3 needs an interval"),
        ("{name: m, provider: {prometus: {query: up}}}", "spec.metrics[0].provider", "unknown provider 'prometus'"),
        ("{name: m, interval: 1 minute, provider: {prometheus: {query: up}}}", "spec.metrics[0].interval",
         "got '1 minute'; a duration like 30s, 5m, 1h or 1h30m (a bare number is seconds)"),
        ("{name: m, interval: 1d, provider: {prometheus: {query: up}}}", "spec.metrics[0].interval",
         "got '1d'; a duration like 30s, 5m, 1h or 1h30m (a bare number is seconds); unit d is not one of"),
        ("{name: m, failureLimit: many, provider: {web: {url: x}}}", "spec.metrics[0].failureLimit", "got 'many'"),
    ],
)
def test_malformed_analysis_templates(tmp_path: Path, metric: str, path: str, message: str) -> None:
    rollout = tmp_path / "rollout.yaml"
    rollout.write_text(ROLLOUT_HEAD + "spec: {strategy: {canary: {steps: [{analysis: {templates: "
                       "[{templateName: t}]}}]}}}\n")
    template = tmp_path / "template.yaml"
    template.write_text("apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\n"
                        f"spec:\n  metrics:\n  - {metric}\n")
    with pytest.raises(ManifestError) as info:
        load(rollout, template)
    assert (info.value.file, info.value.document, info.value.path) == (str(template), 1, path)
    assert message in str(info.value)


def test_missing_file_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read the file"):
        load(tmp_path / "nope.yaml")


# --- the command line ------------------------------------------------------------------------


def test_cli_plan_prints_the_plan_duration_and_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--manifest", str(EXAMPLES / "argo-bluegreen.yaml"), "--manifest", str(TEMPLATES)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "blue-green rollout of 10 replicas" in out
    assert "2. threshold analysis 'pre-promotion' 3x every 1m" in out
    assert "expected duration with a healthy candidate: 650 s (paused 60 s, in analysis 240 s" in out
    assert "old colour kept 300 s" in out
    assert err.count("deploysim: warning:") == 1 and "checkout-conversion" in err


def test_cli_rehearse_writes_a_report_for_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rehearse", "-m", str(EXAMPLES / "flagger-canary.yaml"), "--set", "duration=30m",
                 "--out", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == 1 and "canary rollout of podinfo: rolled_back" in out  # 1: not promoted
    assert "expected with a healthy candidate" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["time_to_detect_seconds"] == 240.0  # interval × (threshold + 1)


def test_cli_bad_manifest_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "rollout.yaml"
    f.write_text(ROLLOUT_HEAD + "spec: {strategy: {canary: {steps: [{setWeight: 150}]}}}\n")
    assert main(["rehearse", "--manifest", str(f), "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and not (tmp_path / "out").exists()
    assert err.strip().count("\n") == 0
    assert "(document 1): spec.strategy.canary.steps[0].setWeight: got 150" in err


def test_cli_bad_manifest_has_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    f = tmp_path / "rollout.yaml"
    f.write_text(ROLLOUT_HEAD + "spec: {strategy: {canary: {steps: [{pause: {duration: 5 minutes}}]}}}\n")
    proc = subprocess.run([sys.executable, "-m", "deploysim.cli", "plan", "--manifest", str(f)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "steps[0].pause.duration: got '5 minutes'" in proc.stderr
