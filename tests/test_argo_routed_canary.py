"""An Argo Rollouts canary with trafficRouting as Argo runs it, and nothing silently assumed.

- scale-down delays: ``GetScaleDownDelaySecondsOrDefault`` / ``GetAbortScaleDownDelaySecondsOrDefault``
  (utils/defaults/defaults.go), ``shouldDelayScaleDownOnAbort`` (rollout/replicaset.go) and the
  refusals of ``ValidateRolloutStrategyCanary``;
- a routed canary without steps: full canary, then all traffic, then the stable down
  (``GetCurrentSetWeight``, ``CalculateReplicaCountsForTrafficRoutedCanary``, ``shouldFullPromote``);
- what Argo does that the rehearsal does not, named with its path: trafficRouting beyond the
  weights, ``workloadRef``, an autoscaler on the Rollout;
- traffic sized from the manifest's replicas.

The manifests are in the shapes of Argo Rollouts' docs (docs/features/canary.md,
docs/features/traffic-management/istio.md, nginx.md, alb.md, docs/features/hpa-support.md, the
workloadRef examples).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from deploysim.errors import ManifestError
from deploysim.manifests import (
    plan_from_manifests,
    rate_is_pinned,
    scaled_rate,
    scenario_from_manifests,
)
from deploysim.manifests.argo import canary_scale_down_delays, routed_canary_without_steps
from deploysim.plan import RollingUpdate, SetCanaryScale, SetWeight
from deploysim.sim import rehearse

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "data" / "manifests" / "argo-templates.yaml"
HEALTHY = ["candidate.error_rate=0.001", "duration=30m"]
FAILING = ["candidate.error_rate=0.2", "duration=30m"]
CANARY = "spec.strategy.canary"

ISTIO = """\
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        istio:
          virtualService:
            name: web-vsvc
            routes:
              - primary
"""
BASIC = """\
      maxSurge: "25%"
      maxUnavailable: 0
"""
STEPS = """\
      steps:
        - setWeight: 20
        - pause: {duration: 1m}
"""
# a failing candidate is caught by the analysis after a minute at 20%
ANALYSED = """\
      steps:
        - setWeight: 20
        - pause: {duration: 1m}
        - analysis:
            templates:
              - templateName: success-rate
            args:
              - name: service-name
                value: web
"""


def rollout(canary: str = ISTIO, steps: str = STEPS, name: str = "web", replicas: int | None = 10,
            template: bool = True, spec_extra: str = "") -> str:
    """A Rollout as the docs write one: ``canary`` and ``steps`` at the canary's indentation."""
    count = f"  replicas: {replicas}\n" if replicas is not None else ""
    pods = (f"  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n"
            f"        - name: {name}\n          image: registry.example.com/{name}:1.2.0\n") if template else ""
    return (f"apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: {name}\nspec:\n{count}"
            f"  selector:\n    matchLabels:\n      app: {name}\n{pods}{spec_extra}  strategy:\n    canary:\n{canary}{steps}")


def write(tmp_path: Path, text: str, name: str = "rollout.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def plan_of(*files: Path, overrides: list[str] | None = None, scenario: Path | None = None):  # noqa: ANN201
    paths = [str(f) for f in files]
    s = scenario_from_manifests(paths, scenario_path=scenario, overrides=overrides or [])
    return s, plan_from_manifests(paths, s)


def warned(plan, path: str) -> str:  # noqa: ANN001
    """The one warning at ``path``."""
    hits = [w for w in plan.warnings if f"): {path}: " in w]
    assert len(hits) == 1, (path, plan.warnings)
    return hits[0]


def not_warned(plan, path: str) -> None:  # noqa: ANN001
    assert not [w for w in plan.warnings if f"): {path}" in w], plan.warnings


def at(trace: pd.DataFrame, t: float, column: str) -> int:
    """A pod count of the trace as it stood at time ``t``."""
    return int(trace[trace["time"] <= t + 1e-9].iloc[-1][column])


def first_time(trace: pd.DataFrame, after: float, column: str, value: int) -> float:
    rows = trace[(trace["time"] >= after - 1e-9) & (trace[column] == value)]
    assert len(rows), (column, value, after)
    return float(rows.iloc[0]["time"])


def step(rec, describe: str) -> dict:  # noqa: ANN001
    return next(s for s in rec.steps if s["describe"] == describe)


# --- 2. scale-down delays, as Argo's getters give them --------------------------------------------


@pytest.mark.parametrize(
    ("router", "delay", "abort", "dynamic", "expected"),
    [
        (True, None, None, False, (30.0, 30.0)),  # DefaultScaleDownDelaySeconds, DefaultAbortScaleDownDelaySeconds
        (True, 0, None, False, (0.0, 30.0)),
        (True, 600, 120, False, (600.0, 120.0)),
        (True, None, 0, False, (30.0, 0.0)),  # 0: the getter returns nil, no delay logic at all
        (False, None, None, False, (0.0, 0.0)),  # a basic canary's pods move with the weight
        (False, None, 45, False, (0.0, 0.0)),  # shouldDelayScaleDownOnAbort: "basic canary should not use this"
        (True, None, None, True, (0.0, 0.0)),  # dynamicStableScale: stable down with the traffic
        (True, None, 45, True, (0.0, 45.0)),  # ... unless abortScaleDownDelaySeconds is set (abortDelayWasSet)
    ],
)
def test_canary_scale_down_delays_follow_argos_getters(router: bool, delay: int | None, abort: int | None,
                                                       dynamic: bool, expected: tuple[float, float]) -> None:
    assert canary_scale_down_delays(router, delay, abort, dynamic) == expected


@pytest.mark.parametrize(
    ("canary", "keep", "abort_keep"),
    [
        (ISTIO, 30.0, 30.0),
        ("      scaleDownDelaySeconds: 0\n" + ISTIO, 0.0, 30.0),
        ("      scaleDownDelaySeconds: 120\n      abortScaleDownDelaySeconds: 90\n" + ISTIO, 120.0, 90.0),
        (BASIC, 0.0, 0.0),
    ],
)
def test_the_plan_carries_the_manifests_delays(tmp_path: Path, canary: str, keep: float, abort_keep: float) -> None:
    scenario, plan = plan_of(write(tmp_path, rollout(canary)))
    assert (plan.scale_down_delay, plan.abort_scale_down_delay) == (keep, abort_keep)
    # the scenario says the same (the record keeps it)
    assert (scenario.strategy.scale_down_delay_seconds, scenario.strategy.abort_scale_down_delay_seconds) == (
        keep, abort_keep)
    not_warned(plan, f"{CANARY}.scaleDownDelaySeconds")  # read, not "not simulated"


@pytest.mark.parametrize(
    ("canary", "path", "message"),
    [
        (BASIC + "      scaleDownDelaySeconds: 30\n", f"{CANARY}.scaleDownDelaySeconds",
         "got 30; Canary scaleDownDelaySeconds can only be used with traffic routing"),
        (BASIC + "      dynamicStableScale: true\n", f"{CANARY}.dynamicStableScale",
         "got true; Canary dynamicStableScale can only be used with traffic routing"),
        ("      dynamicStableScale: true\n      scaleDownDelaySeconds: 60\n" + ISTIO, f"{CANARY}.dynamicStableScale",
         "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds"),
        ("      scaleDownDelaySeconds: -5\n" + ISTIO, f"{CANARY}.scaleDownDelaySeconds", "got -5; must be 0 or more"),
    ],
)
def test_what_argo_refuses_about_delays_is_refused(tmp_path: Path, canary: str, path: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        plan_of(write(tmp_path, rollout(canary)))
    assert f"{path}: " in str(info.value) and message in str(info.value)


def test_abort_delay_without_a_router_is_named_as_ignored(tmp_path: Path) -> None:
    _, plan = plan_of(write(tmp_path, rollout(BASIC + "      abortScaleDownDelaySeconds: 60\n")))
    assert plan.abort_scale_down_delay == 0.0
    assert "ignored, as Argo Rollouts ignores it without trafficRouting" in warned(
        plan, f"{CANARY}.abortScaleDownDelaySeconds")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (STEPS, "with no setCanaryScale among the steps the aborted canary gets GetCurrentSetWeight's 0 replicas "
                "at once, as rehearsed"),
        ("      steps:\n        - setCanaryScale: {replicas: 3}\n        - setWeight: 20\n",
         f"an abort while {CANARY}.steps[0].setCanaryScale holds leaves the canary at that scale indefinitely"),
    ],
)
def test_abort_delay_zero_is_what_argos_code_does(tmp_path: Path, steps: str, message: str) -> None:
    _, plan = plan_of(write(tmp_path, rollout("      abortScaleDownDelaySeconds: 0\n" + ISTIO, steps)))
    assert plan.abort_scale_down_delay == 0.0
    assert message in warned(plan, f"{CANARY}.abortScaleDownDelaySeconds")


def test_dynamic_stable_scale_is_named_and_keeps_nothing_at_promotion(tmp_path: Path) -> None:
    _, plan = plan_of(write(tmp_path, rollout("      dynamicStableScale: true\n" + ISTIO)))
    assert (plan.scale_down_delay, plan.abort_scale_down_delay) == (0.0, 0.0)
    note = warned(plan, f"{CANARY}.dynamicStableScale")
    assert "not simulated: Argo Rollouts scales the stable down as the canary's weight grows" in note


# end to end: the old stable after promotion, read from the record's pod samples

@pytest.mark.parametrize(
    ("extra", "keep"),
    [("", 30.0), ("      scaleDownDelaySeconds: 0\n", 0.0), ("      scaleDownDelaySeconds: 120\n", 120.0),
     ("      dynamicStableScale: true\n", 0.0)],
)
def test_old_stable_stays_its_delay_after_all_traffic_moved(tmp_path: Path, extra: str, keep: float) -> None:
    scenario, plan = plan_of(write(tmp_path, rollout(extra + ISTIO)), overrides=HEALTHY)
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    moved = step(rec, "set weight to 100%")["end"]  # the router reports all traffic on the candidate
    trace = rec.pod_trace
    assert at(trace, moved - 1e-3, "pods_stable") == 10 and at(trace, moved - 1e-3, "pods_candidate") == 10
    if keep:
        assert at(trace, moved + keep - 1.0, "pods_stable") == 10  # still up, ready for a rollback
        assert at(trace, moved + keep - 1.0, "ready_stable") == 10
    gone = first_time(trace, moved, "pods_stable", 0)
    assert gone == pytest.approx(moved + keep, abs=1.0)
    promoted = next(d for d in rec.decisions if d["kind"] == "promote")
    assert promoted["at"] >= gone - 1e-6  # the rollout ends once the stable is down
    t = rec.timeline
    after = t[t["start"] >= moved + 10.0]
    assert set(after["weight"]) == {100.0} and after["requests_stable"].sum() == 0


# end to end: the aborted canary

@pytest.mark.parametrize(
    ("extra", "keep"),
    [("", 30.0), ("      abortScaleDownDelaySeconds: 0\n", 0.0), ("      abortScaleDownDelaySeconds: 90\n", 90.0)],
)
def test_aborted_canary_stays_its_abort_delay_after_traffic_went_back(tmp_path: Path, extra: str, keep: float) -> None:
    scenario, plan = plan_of(write(tmp_path, rollout(extra + ISTIO, ANALYSED)), TEMPLATES, overrides=FAILING)
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "rolled_back"
    abort = next(d for d in rec.decisions if d["kind"] == "abort")["at"]
    trace = rec.pod_trace
    assert at(trace, abort - 1e-3, "pods_candidate") == 2  # 20% of 10
    if keep:
        assert at(trace, abort + keep - 1.0, "pods_candidate") == 2
    assert first_time(trace, abort, "pods_candidate", 0) == pytest.approx(abort + keep, abs=1.0)
    # traffic goes back at once, whatever the delay: the kept pods serve no one
    assert rec.summary["time_to_recover_seconds"] == pytest.approx(0.0, abs=1.0)
    t = rec.timeline
    assert t[t["start"] >= abort + 1.0]["requests_candidate"].sum() == 0
    done = next(d for d in rec.decisions if d["kind"] == "complete")
    assert done["at"] == pytest.approx(abort + keep, abs=1.0)


# --- 3. a routed canary without steps --------------------------------------------------------------


@pytest.mark.parametrize("canary", [ISTIO, "      maxSurge: 1\n      maxUnavailable: 0\n" + ISTIO])
def test_routed_canary_without_steps_is_full_canary_then_all_traffic_then_stable_down(tmp_path: Path,
                                                                                      canary: str) -> None:
    scenario, plan = plan_of(write(tmp_path, rollout(canary, steps="")), overrides=HEALTHY)
    assert scenario.strategy.kind == "canary"
    assert plan.strategy == "canary" and plan.routing == "router"
    assert plan.steps == routed_canary_without_steps() == (SetCanaryScale(100), SetWeight(100))
    assert not any("rolling update" in w for w in plan.warnings)
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    full = step(rec, "scale candidate to 100% of replicas")["end"]
    moved = step(rec, "set weight to 100%")["end"]
    trace, t = rec.pod_trace, rec.timeline
    # the whole canary is up (maxSurge does not bound a routed canary) before any request reaches it
    assert at(trace, full, "available_candidate") == 10 and at(trace, full, "pods_stable") == 10
    assert trace["pods_candidate"].max() == 10 and (trace["pods_stable"] + trace["pods_candidate"]).max() == 20
    before = t[t["time"] <= full + 1e-9]
    assert set(before["weight"]) == {0.0} and before["requests_candidate"].sum() == 0
    # then all traffic at once, then the stable 30 s later (scaleDownDelaySeconds' default)
    assert set(t[t["start"] >= moved]["weight"]) == {100.0}
    assert first_time(trace, moved, "pods_stable", 0) == pytest.approx(moved + 30.0, abs=1.0)


def test_basic_canary_without_steps_stays_a_rolling_update(tmp_path: Path) -> None:
    scenario, plan = plan_of(write(tmp_path, rollout(BASIC, steps="")))
    assert scenario.strategy.kind == "rolling"
    assert plan.steps == (RollingUpdate(),) and plan.routing == "replica_ratio"
    assert (plan.max_surge, plan.max_unavailable) == ("25%", 0)


# --- 4. nothing silently assumed: trafficRouting -------------------------------------------------------

DESTINATION_RULE = """\
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        managedRoutes:
          - name: header-route
        istio:
          virtualService:
            name: web-vsvc
            routes:
              - primary
            tlsRoutes:
              - port: 443
                sniHosts:
                  - web.example.com
          destinationRule:
            name: web-destrule
            canarySubsetName: canary
            stableSubsetName: stable
"""
NGINX = """\
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        nginx:
          stableIngress: web-ingress
          additionalIngressAnnotations:
            canary-by-header: X-Canary
            canary-by-header-value: iwantsit
"""
ALB = """\
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        alb:
          ingress: web-ingress
          servicePort: 443
"""
MIXED = """\
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        nginx:
          stableIngress: web-ingress
        smi:
          trafficSplitName: web-split
"""
ROUTING = f"{CANARY}.trafficRouting"


@pytest.mark.parametrize(
    ("canary", "router", "route", "notes"),
    [
        (DESTINATION_RULE, None, None, {
            f"{ROUTING}.managedRoutes": "not simulated: the header and mirror routes it names",
            f"{ROUTING}.istio": "through a Gateway API HTTPRoute (or NGINX Ingress) instead",
            f"{ROUTING}.istio.destinationRule": "splits by the DestinationRule's subsets",
            f"{ROUTING}.istio.virtualService.tlsRoutes": "Argo Rollouts weights these routes too",
        }),
        (NGINX, "nginx-ingress", "web-ingress", {
            f"{ROUTING}.nginx.additionalIngressAnnotations": "not simulated",
        }),
        (ALB, None, None, {f"{ROUTING}.alb": "the rehearsal's exact weights are the same"}),
        (MIXED, "nginx-ingress", "web-ingress", {
            f"{ROUTING}.smi": "through the NGINX Ingress canary annotations instead",
        }),
    ],
)
def test_traffic_routing_beyond_the_weights_is_named(tmp_path: Path, canary: str, router: str | None,
                                                     route: str | None, notes: dict[str, str]) -> None:
    _, plan = plan_of(write(tmp_path, rollout(canary)))
    assert (plan.routing, plan.router, plan.route) == ("router", router, route)
    routing_notes = [w for w in plan.warnings if f"): {ROUTING}" in w]
    assert len(routing_notes) == len(notes), routing_notes
    for path, text in notes.items():
        assert text in warned(plan, path)


# --- 4. workloadRef ------------------------------------------------------------------------------------

WORKLOAD_REF = """\
  workloadRef:
    apiVersion: apps/v1
    kind: {kind}
    name: web
{scale_down}"""


def deployment(replicas: int) -> str:
    return (f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n"
            "  selector:\n    matchLabels:\n      app: web\n  strategy:\n    type: Recreate\n  template:\n"
            "    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n"
            "          image: registry.example.com/web:1.2.0\n")


def referring(kind: str = "Deployment", scale_down: str = "", replicas: int | None = 5) -> str:
    ref = WORKLOAD_REF.format(kind=kind, scale_down=f"    scaleDown: {scale_down}\n" if scale_down else "")
    return rollout(replicas=replicas, template=False, spec_extra=ref)


@pytest.mark.parametrize(
    ("own", "scale_down", "note"),
    [
        (0, "", None),  # the migration shape: the Deployment scaled to 0
        (0, "onsuccess", None),
        (3, "", "has 3 pods of its own that keep running beside the Rollout's (scaleDown: never)"),
        (3, "progressively", "go as the Rollout's pods become available (scaleDown: progressively)"),
    ],
)
def test_workload_ref_takes_the_template_and_names_the_deployments_own_pods(tmp_path: Path, own: int,
                                                                            scale_down: str, note: str | None) -> None:
    scenario, plan = plan_of(write(tmp_path, referring(scale_down=scale_down) + deployment(own)))
    # replicas and strategy are the Rollout's (5, canary), not the Deployment's (own, Recreate)
    assert scenario.replicas == 5 and plan.replicas == 5 and plan.strategy == "canary"
    if note is None:
        not_warned(plan, "spec.workloadRef")
    else:
        assert note in warned(plan, "spec.workloadRef")


def test_workload_ref_to_a_deployment_not_given_is_named(tmp_path: Path) -> None:
    _, plan = plan_of(write(tmp_path, referring()))
    assert "Deployment 'web' is not among the manifests" in warned(plan, "spec.workloadRef")


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (referring(kind="StatefulSet"), "spec.workloadRef.kind", "got 'StatefulSet'; Argo Rollouts takes a pod "
         "template from one of Deployment, ReplicaSet, PodTemplate"),
        (referring(scale_down="sometimes"), "spec.workloadRef.scaleDown",
         "got 'sometimes'; allowed: never, onsuccess, progressively"),
        (rollout(spec_extra=WORKLOAD_REF.format(kind="Deployment", scale_down="")), "spec.template",
         "template must be empty for workload reference rollout"),
    ],
)
def test_what_argo_refuses_about_workload_ref_is_refused(tmp_path: Path, text: str, path: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        plan_of(write(tmp_path, text))
    assert f"{path}: " in str(info.value) and message in str(info.value)


# --- 4. an autoscaler on the Rollout --------------------------------------------------------------------


def hpa(target: str) -> str:
    return (f"---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: hpa-{target}\n"
            "spec:\n  maxReplicas: 6\n  minReplicas: 2\n  scaleTargetRef:\n    apiVersion: argoproj.io/v1alpha1\n"
            f"    kind: Rollout\n    name: {target}\n  targetCPUUtilizationPercentage: 80\n")


def test_an_autoscaler_of_the_rollout_is_named_and_replicas_stay_fixed(tmp_path: Path) -> None:
    _, plan = plan_of(write(tmp_path, rollout(replicas=4) + hpa("web")))
    note = warned(plan, "spec.scaleTargetRef")
    assert note.startswith("rollout.yaml (document 2): ")  # the autoscaler's own document
    assert "scales Rollout 'web' between 2 and 6 replicas; not simulated: the rehearsal keeps 4 replicas" in note
    assert plan.replicas == 4


def test_an_autoscaler_of_another_workload_changes_nothing(tmp_path: Path) -> None:
    _, plan = plan_of(write(tmp_path, rollout() + hpa("billing")))
    not_warned(plan, "spec.scaleTargetRef")


# --- 5. traffic sized from the manifest's replicas ------------------------------------------------------


@pytest.mark.parametrize(
    ("rps", "scenario_replicas", "replicas", "expected"),
    [(300, 10, 1, 30.0), (300, 10, 3, 90.0), (200.0, 10, 25, 500.0), (300, 10, 10, None), (300, 10, 0, None),
     ("lots", 10, 1, None), (True, 10, 1, None)],
)
def test_scaled_rate_keeps_the_rate_per_pod(rps: object, scenario_replicas: int, replicas: int,
                                            expected: float | None) -> None:
    assert scaled_rate(rps, scenario_replicas, replicas) == expected


@pytest.mark.parametrize(
    ("data", "overrides", "own", "pinned"),
    [
        ({"replicas": 10, "traffic": {"rps": 300}}, [], False, False),  # the built-in scenario
        ({"replicas": 10, "traffic": {"rps": 300}}, [], True, False),  # a file sized for its replicas
        ({"traffic": {"rps": 300}}, [], True, True),  # a file's rate for the service, whatever its size
        ({"replicas": 10}, ["traffic.rps=40"], False, True),
        ({"replicas": 10}, ["traffic={rps: 40}"], False, True),
        ({"replicas": 10}, ["traffic.shape=constant"], False, False),
    ],
)
def test_rate_is_pinned_by_the_user_only(data: dict, overrides: list[str], own: bool, pinned: bool) -> None:
    assert rate_is_pinned(data, overrides, own_file=own) is pinned


@pytest.mark.parametrize(
    ("replicas", "overrides", "scenario_text", "rps"),
    [
        (1, [], None, 30.0),  # the built-in 300 rps for 10 pods
        (10, [], None, 300.0),
        (4, ["replicas=8"], None, 240.0),  # --set replicas wins, and the rate follows it
        (1, ["traffic.rps=500"], None, 500.0),
        (2, [], "replicas: 4\ntraffic: {rps: 100}\n", 50.0),
        (2, [], "traffic: {rps: 100}\n", 100.0),
    ],
)
def test_scenario_traffic_follows_the_manifests_replicas(tmp_path: Path, replicas: int, overrides: list[str],
                                                         scenario_text: str | None, rps: float) -> None:
    own = write(tmp_path, scenario_text, "scenario.yaml") if scenario_text else None
    scenario, _ = plan_of(write(tmp_path, rollout(replicas=replicas)), overrides=overrides, scenario=own)
    assert scenario.traffic.rps == pytest.approx(rps)


def test_a_trace_is_replayed_as_recorded(tmp_path: Path) -> None:
    trace = write(tmp_path, "timestamp,rps\n0,80\n3600,120\n", "trace.csv")
    own = write(tmp_path, f"traffic: {{shape: trace, trace: {trace}, rps: 300}}\n", "scenario.yaml")
    scenario, _ = plan_of(write(tmp_path, rollout(replicas=1)), scenario=own)
    assert scenario.traffic.rps == 300.0 and scenario.traffic.shape == "trace"


def test_one_replica_gets_one_pods_traffic_and_an_overload_is_named(tmp_path: Path) -> None:
    f = write(tmp_path, rollout(replicas=1))
    scenario, plan = plan_of(f, overrides=HEALTHY)
    assert scenario.traffic.rps == 30.0
    assert not any(w.startswith("traffic: ") for w in plan.warnings)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    t = rec.timeline
    failed = (t["failed_stable"] + t["failed_candidate"]).sum() / (t["requests_stable"] + t["requests_candidate"]).sum()
    assert failed < 0.01  # the stable's 0.1% and the candidate's, nothing shed
    # the rate pinned at ten pods' worth: named, and most requests are shed
    scenario, plan = plan_of(f, overrides=[*HEALTHY, "traffic.rps=300"])
    note = next(w for w in plan.warnings if w.startswith("traffic: "))
    assert "600 rps at the peak (diurnal) is more than 1 replica serves (100 rps each): 83% of requests fail" in note
    rec = rehearse(scenario, plan)
    t = rec.timeline
    failed = (t["failed_stable"] + t["failed_candidate"]).sum() / (t["requests_stable"] + t["requests_candidate"]).sum()
    assert failed > 0.5
