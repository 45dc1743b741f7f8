"""Argo Rollouts manifests read as Argo's controller reads them: step combinations
(``ValidateRolloutStrategyCanary``, ``hasMultipleStepsType``, ``completedCurrentCanaryStep``),
``startingStep`` counting the Rollout's own steps (``BeforeStartingStep``),
``maxTrafficWeight`` (``weightutil.MaxTrafficWeight``), and files as teams keep them: other
kinds beside the Rollout, several rollouts picked by name, ``kind: List``.

Every manifest here is written in the shape Argo Rollouts' documentation shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim import runbooks
from deploysim.cli import main
from deploysim.errors import EXIT_BAD_INPUT, EXIT_OK, ManifestError, ParameterError
from deploysim.manifests import plan_from_manifests, read_rollout, scenario_from_manifests
from deploysim.manifests.argo_steps import combination_error, traffic_percent
from deploysim.plan import Analyze, Pause, SetCanaryScale, SetWeight
from deploysim.sim import rehearse

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "data" / "manifests" / "argo-templates.yaml"
HEALTHY = ["candidate.error_rate=0.001"]

ISTIO = """\
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        managedRoutes:
          - name: header-route
          - name: mirror-route
        istio:
          virtualService:
            name: web-vsvc
            routes:
              - primary
"""
NGINX_1000 = """\
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        maxTrafficWeight: 1000
        nginx:
          stableIngress: web-stable
"""
GATEWAY_1000 = """\
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        maxTrafficWeight: 1000
        plugins:
          argoproj-labs/gatewayAPI:
            httpRoute: web-route
            namespace: default
"""
BACKGROUND = """\
      analysis:
        templates:
          - templateName: error-ratio
        startingStep: {start}
        args:
          - name: service-name
            value: web
"""
HEADER_ROUTE = """\
        - setHeaderRoute:
            name: header-route
            match:
              - headerName: version
                headerValue:
                  exact: "2"
"""
MIRROR_ROUTE = """\
        - setMirrorRoute:
            name: mirror-route
            percentage: 35
            match:
              - method:
                  exact: GET
"""
EXPERIMENT_NO_DURATION = """\
        - experiment:
            templates:
              - name: canary
                specRef: canary
"""
PLUGIN = """\
        - plugin:
            name: argoproj-labs/sample-step
            config:
              message: hello
"""


def rollout(steps: str, canary: str = ISTIO, name: str = "web", replicas: int = 10) -> str:
    """A Rollout as the docs write one, with ``steps`` (YAML list items at 8 spaces)."""
    return f"""\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: {name}
          image: registry.example.com/{name}:1.2.0
  strategy:
    canary:
{canary}      steps:
{steps}"""


def write(tmp_path: Path, text: str, name: str = "rollout.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def plan_of(*files: Path, overrides: list[str] | None = None, name: str | None = None):  # noqa: ANN201
    paths = [str(f) for f in files]
    scenario = scenario_from_manifests(paths, overrides=overrides or [], name=name)
    return scenario, plan_from_manifests(paths, scenario, name=name)


def warned(plan, path: str) -> str:  # noqa: ANN001
    """The warning at ``path`` (one, and it must be there)."""
    hits = [w for w in plan.warnings if f"): {path}: " in w]
    assert len(hits) == 1, (path, plan.warnings)
    return hits[0]


# --- A. startingStep counts the Rollout's steps ------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "start", "plan_start", "why"),
    [
        # a dropped step before startingStep moves it one plan step earlier
        ("        - setWeight: 10\n" + HEADER_ROUTE + "        - setWeight: 50\n        - pause: {duration: 1m}\n",
         2, 1, "the plan has no step for spec.strategy.canary.steps[1] (setHeaderRoute)"),
        (MIRROR_ROUTE + "        - setWeight: 10\n        - pause: {duration: 1m}\n",
         1, 0, "the plan has no step for spec.strategy.canary.steps[0] (setMirrorRoute)"),
        (PLUGIN + "        - setWeight: 10\n        - pause: {duration: 1m}\n",
         2, 1, "the plan has no step for spec.strategy.canary.steps[0] (plugin)"),
        ("        - setWeight: 10\n" + EXPERIMENT_NO_DURATION + "        - setWeight: 50\n",
         2, 1, "the plan has no step for spec.strategy.canary.steps[1] (experiment)"),
        # two dropped steps
        (HEADER_ROUTE + MIRROR_ROUTE + "        - setWeight: 10\n        - pause: {duration: 1m}\n",
         3, 1, "steps[0] (setHeaderRoute), spec.strategy.canary.steps[1] (setMirrorRoute)"),
        # a step that is two plan steps moves it one later
        ("        - setCanaryScale: {replicas: 1}\n          setWeight: 10\n        - pause: {duration: 1m}\n"
         "        - setWeight: 50\n",
         2, 3, "spec.strategy.canary.steps[0] (setWeight + setCanaryScale) runs as two plan steps"),
        # a dropped step after startingStep changes nothing
        ("        - setWeight: 10\n        - pause: {duration: 1m}\n" + HEADER_ROUTE, 1, 1, None),
        ("        - setWeight: 10\n        - pause: {duration: 1m}\n        - setWeight: 50\n", 2, 2, None),
    ],
)
def test_starting_step_counts_the_rollouts_steps(tmp_path: Path, steps: str, start: int, plan_start: int,
                                                 why: str | None) -> None:
    f = write(tmp_path, rollout(steps, ISTIO + BACKGROUND.format(start=start)))
    _, plan = plan_of(f, TEMPLATES)
    assert plan.background_start == plan_start
    notes = [w for w in plan.warnings if "analysis.startingStep" in w]
    if why is None:
        assert notes == []
    else:
        assert len(notes) == 1 and why in notes[0]
        assert f"starts at the plan's step {plan_start + 1}" in notes[0]
        assert f"in the background from step {plan_start + 1}:" in "\n".join(plan.describe())


def test_starting_step_at_the_end_lands_on_the_final_promotion(tmp_path: Path) -> None:
    f = write(tmp_path, rollout("        - setWeight: 10\n" + HEADER_ROUTE, ISTIO + BACKGROUND.format(start=2)))
    _, plan = plan_of(f, TEMPLATES)
    assert plan.steps == (SetWeight(10), SetWeight(100))
    assert plan.background_start == 1
    assert "at the final promotion to 100%" in warned(plan, "spec.strategy.canary.analysis.startingStep")


def test_starting_step_beyond_the_rollouts_steps_is_refused(tmp_path: Path) -> None:
    # 3 steps in the Rollout, 2 in the plan: the bound is the Rollout's
    f = write(tmp_path, rollout("        - setWeight: 10\n" + HEADER_ROUTE + "        - setWeight: 50\n",
                                ISTIO + BACKGROUND.format(start=3)))
    _, plan = plan_of(f, TEMPLATES)
    assert plan.background_start == 2
    f = write(tmp_path, rollout("        - setWeight: 10\n" + HEADER_ROUTE + "        - setWeight: 50\n",
                                ISTIO + BACKGROUND.format(start=4)))
    with pytest.raises(ManifestError, match="startingStep: got 4; the canary has 3 steps"):
        plan_of(f, TEMPLATES)


def test_background_analysis_starts_with_the_step_the_rollout_names(tmp_path: Path) -> None:
    # startingStep 2 is "setWeight: 50": the background analysis measures from that step on,
    # not from the pause after it (where it would start if the dropped header route counted)
    steps = "        - setWeight: 10\n" + HEADER_ROUTE + "        - setWeight: 50\n        - pause: {duration: 5m}\n"
    f = write(tmp_path, rollout(steps, ISTIO + BACKGROUND.format(start=2)))
    scenario, plan = plan_of(f, TEMPLATES, overrides=HEALTHY)
    assert plan.steps[plan.background_start] == SetWeight(50)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    at_50 = next(s for s in rec.steps if s["describe"] == "set weight to 50%")
    pause = next(s for s in rec.steps if s["kind"] == "pause")
    first = next(d for d in rec.decisions if d["kind"] == "measure" and d["reason"].startswith("background"))
    # the run starts with the 50% step and measures as it starts; had it started with the
    # pause, that would be when the pause began
    assert at_50["end"] == pause["start"] > at_50["start"]
    assert first["at"] == pytest.approx(at_50["start"])
    assert not any(d["kind"] == "measure" and d["reason"].startswith("background")
                   for d in rec.decisions if d["at"] < at_50["start"])


# --- B. step combinations: what Argo accepts, it compiles; what it refuses, with its reason ----


@pytest.mark.parametrize(
    ("keys", "refused"),
    [
        (["setCanaryScale", "setHeaderRoute"], False),
        (["setCanaryScale", "pause"], False),
        (["setCanaryScale", "setWeight"], False),
        (["setCanaryScale", "analysis"], False),
        (["setWeight", "setHeaderRoute", "setMirrorRoute", "plugin"], False),
        (["setWeight", "pause"], True),
        (["pause", "analysis"], True),
        (["setWeight", "experiment"], True),
        (["experiment", "analysis"], True),
        (["setWeight", "setCanaryScale", "pause"], True),
        ([], True),
    ],
)
def test_combinations_follow_has_multiple_steps_type(keys: list[str], refused: bool) -> None:
    why = combination_error(keys)
    assert (why is not None) == refused
    if why:
        assert "Step must have one of the following set: experiment, setWeight, setCanaryScale or pause" in why


SCALE = "        - setCanaryScale:\n            replicas: 2\n"


@pytest.mark.parametrize(
    ("step", "plan_steps", "warnings"),
    [
        # setCanaryScale + setHeaderRoute: the scale runs, the header route is named
        (SCALE + "          setHeaderRoute:\n            name: header-route\n            match:\n"
         "              - headerName: version\n                headerValue: {exact: \"2\"}\n",
         [SetCanaryScale(20)], {"steps[0].setHeaderRoute": "not simulated; the rest of the step is rehearsed"}),
        # setCanaryScale + pause: Argo ends the step by the pause (checked first)
        (SCALE + "          pause: {duration: 1m}\n", [SetCanaryScale(20), Pause(60.0)],
         {"steps[0].pause": "Argo Rollouts starts it with the step"}),
        # setCanaryScale + setWeight: both set at once; the scale first, so the weight never resizes it
        (SCALE + "          setWeight: 30\n", [SetCanaryScale(20), SetWeight(30)], {}),
        # setCanaryScale + analysis: the step ends at the scale and Argo cancels its AnalysisRun
        (SCALE + "          analysis:\n            templates:\n              - templateName: error-ratio\n"
         "            args:\n              - {name: service-name, value: web}\n",
         [SetCanaryScale(20)], {"steps[0].analysis": "cancels the step's AnalysisRun"}),
        (SCALE + "          experiment:\n            duration: 5m\n            templates:\n"
         "              - {name: canary, specRef: canary}\n",
         [SetCanaryScale(20)], {"steps[0].experiment": "the rehearsal does not hold for it"}),
        # setWeight with header and mirror routes: the weight runs
        ("        - setWeight: 20\n          setHeaderRoute:\n            name: header-route\n"
         "          setMirrorRoute:\n            name: mirror-route\n            percentage: 10\n",
         [SetWeight(20)], {"steps[0].setHeaderRoute": "the rest of the step is rehearsed",
                           "steps[0].setMirrorRoute": "the rest of the step is rehearsed"}),
        # header and mirror routes alone: nothing to run
        ("        - setHeaderRoute:\n            name: header-route\n          setMirrorRoute:\n"
         "            name: mirror-route\n        - setWeight: 20\n",
         [SetWeight(20)], {"steps[0].setHeaderRoute": "the step is skipped",
                           "steps[0].setMirrorRoute": "the step is skipped"}),
    ],
)
def test_combined_steps_argo_accepts_compile(tmp_path: Path, step: str, plan_steps: list, warnings: dict) -> None:
    f = write(tmp_path, rollout(step))
    _, plan = plan_of(f, TEMPLATES)
    assert list(plan.steps) == [*plan_steps, SetWeight(100)]
    for path, text in warnings.items():
        assert text in warned(plan, f"spec.strategy.canary.{path}")
    assert not any(isinstance(s, Analyze) for s in plan.steps)


@pytest.mark.parametrize(
    ("step", "names"),
    [
        ("        - setWeight: 20\n          pause: {duration: 1m}\n", "setWeight and pause"),
        ("        - pause: {}\n          analysis:\n            templates: [{templateName: error-ratio}]\n",
         "pause and analysis"),
        ("        - setWeight: 20\n          experiment:\n            duration: 1m\n            templates:\n"
         "              - {name: canary, specRef: canary}\n", "setWeight and experiment"),
        (SCALE + "          setWeight: 20\n          pause: {}\n", "setWeight and pause"),
    ],
)
def test_combined_steps_argo_refuses_are_refused_with_its_reason(tmp_path: Path, step: str, names: str) -> None:
    f = write(tmp_path, rollout(step))
    with pytest.raises(ManifestError) as info:
        plan_of(f, TEMPLATES)
    assert info.value.path == "spec.strategy.canary.steps[0]"
    assert f"got {names} in one step" in str(info.value)
    assert '("Step must have one of the following set: experiment, setWeight, setCanaryScale or pause")' in str(
        info.value)


def test_a_scaled_step_with_a_header_route_rehearses_the_scale(tmp_path: Path) -> None:
    steps = (SCALE + "          setHeaderRoute:\n            name: header-route\n            match:\n"
             "              - headerName: version\n                headerValue: {exact: \"2\"}\n"
             "        - setWeight: 10\n        - pause: {duration: 2m}\n")
    scenario, plan = plan_of(write(tmp_path, rollout(steps)), overrides=HEALTHY)
    rec = rehearse(scenario, plan, trace_pods=True)
    assert rec.summary["outcome"] == "promoted"
    at_10 = next(s for s in rec.steps if s["describe"] == "set weight to 10%")
    trace = rec.pod_trace
    # 2 of 10 pods from the setCanaryScale, held through the 10% weight
    assert trace[trace["time"] <= at_10["end"]].iloc[-1]["pods_candidate"] == 2


# --- C. maxTrafficWeight, and setCanaryScale without a router ----------------------------------


@pytest.mark.parametrize(
    ("weight", "total", "percent", "exact"),
    [(10, 100, 10, True), (100, 1000, 10, True), (250, 1000, 25, True), (1000, 1000, 100, True),
     (15, 1000, 2, False), (14, 1000, 1, False), (2, 1000, 1, False), (999, 1000, 99, False),
     (1, 3, 33, False), (2, 3, 67, False), (0, 1000, 0, True), (5, 10, 50, True)],
)
def test_traffic_percent_is_weight_over_max_traffic_weight(weight: int, total: int, percent: int,
                                                           exact: bool) -> None:
    assert traffic_percent(weight, total) == (percent, exact)


@pytest.mark.parametrize("canary", [NGINX_1000, GATEWAY_1000])
def test_set_weight_counts_out_of_max_traffic_weight(tmp_path: Path, canary: str) -> None:
    steps = ("        - setWeight: 10\n        - pause: {duration: 1m}\n        - setWeight: 250\n"
             "        - pause: {duration: 1m}\n        - setWeight: 15\n        - setWeight: 1000\n")
    _, plan = plan_of(write(tmp_path, rollout(steps, canary)))
    # 10 of 1000 is 1%, 250 is 25%, 1000 is everything; no second promotion is added
    assert list(plan.steps) == [SetWeight(1), Pause(60.0), SetWeight(25), Pause(60.0), SetWeight(2), SetWeight(100)]
    assert "15 of maxTrafficWeight 1000 is 1.5% of requests" in warned(plan, "spec.strategy.canary.steps[4].setWeight")
    assert not any("maxTrafficWeight" in w for w in plan.warnings if "steps[4]" not in w)


def test_max_traffic_weight_rehearses_the_share_of_requests(tmp_path: Path) -> None:
    steps = "        - setWeight: 200\n        - pause: {duration: 3m}\n"
    scenario, plan = plan_of(write(tmp_path, rollout(steps, NGINX_1000)), overrides=HEALTHY)
    rec = rehearse(scenario, plan)
    assert rec.summary["outcome"] == "promoted"
    pause = next(s for s in rec.steps if s["kind"] == "pause")
    t = rec.timeline
    during = t[(t["time"] > pause["start"] + 10.0) & (t["time"] <= pause["end"])]  # bins end at "time"
    assert set(during["weight"]) == {20}
    share = during["requests_candidate"].sum() / (during["requests_candidate"].sum() + during["requests_stable"].sum())
    assert 0.17 < share < 0.23


@pytest.mark.parametrize(
    ("canary", "steps", "path", "message"),
    [
        (NGINX_1000, "        - setWeight: 1500\n", "spec.strategy.canary.steps[0].setWeight",
         'got 1500; a weight is a whole number from 0 to 1000, the trafficRouting.maxTrafficWeight '
         '("SetWeight needs to be between 0 and 1000")'),
        (ISTIO.replace("      trafficRouting:\n", "      trafficRouting:\n        maxTrafficWeight: 1000\n"),
         "        - setWeight: 10\n", "spec.strategy.canary.trafficRouting.maxTrafficWeight",
         "got 1000; Canary maxTrafficWeight in traffic routing only support in Nginx and Plugins"),
        (NGINX_1000.replace("1000", "0"), "        - setWeight: 0\n",
         "spec.strategy.canary.trafficRouting.maxTrafficWeight", "got 0; must be 1 or more"),
        ("", SCALE + "        - setWeight: 20\n", "spec.strategy.canary.steps[0].setCanaryScale",
         "SetCanaryScale requires TrafficRouting to be set (Argo Rollouts refuses the Rollout at "
         "spec.strategy.canary.trafficRouting)"),
        ("", "        - setWeight: 20\n        - setCanaryScale:\n            matchTrafficWeight: true\n",
         "spec.strategy.canary.steps[1].setCanaryScale", "SetCanaryScale requires TrafficRouting to be set"),
    ],
)
def test_what_argo_refuses_about_weights_and_scale(tmp_path: Path, canary: str, steps: str, path: str,
                                                   message: str) -> None:
    f = write(tmp_path, rollout(steps, canary))
    with pytest.raises(ManifestError) as info:
        plan_of(f)
    assert (info.value.file, info.value.document, info.value.path) == (str(f), 1, path)
    assert message in str(info.value)


def test_without_max_traffic_weight_weights_stay_percents(tmp_path: Path) -> None:
    _, plan = plan_of(write(tmp_path, rollout("        - setWeight: 40\n", NGINX_1000.replace(
        "        maxTrafficWeight: 1000\n", ""))))
    assert list(plan.steps) == [SetWeight(40), SetWeight(100)]
    with pytest.raises(ManifestError, match="got 150; a weight is a whole number from 0 to 100"):
        plan_of(write(tmp_path, rollout("        - setWeight: 150\n", ISTIO)))


# --- D. files as teams keep them ---------------------------------------------------------------

COMPANIONS = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: web-vsvc
spec:
  hosts: [web]
  http:
    - name: primary
      route:
        - destination: {host: web-stable}
          weight: 100
        - destination: {host: web-canary}
          weight: 0
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: web-destrule
spec:
  host: web
---
apiVersion: v1
kind: Service
metadata:
  name: web-stable
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules: [{host: web.example.com}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data: {LOG_LEVEL: info}
"""
UNKNOWN = """\
apiVersion: argoproj.io/v1alpha1
kind: Experiment
metadata:
  name: web-experiment
spec:
  duration: 20m
  templates:
    - name: baseline
      selector: {matchLabels: {app: web}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web-tls
spec:
  secretName: web-tls
"""


def test_other_kinds_beside_the_rollout_are_skipped_and_unknown_ones_named(tmp_path: Path) -> None:
    f = write(tmp_path, COMPANIONS + "---\n" + UNKNOWN + "---\n" + rollout("        - setWeight: 20\n"), "all.yaml")
    _, plan = plan_of(f)
    assert list(plan.steps) == [SetWeight(20), SetWeight(100)]
    skipped = [w for w in plan.warnings if "skipped" in w]
    assert [w.split(": ", 1)[0] for w in skipped] == ["all.yaml (document 6)", "all.yaml (document 7)"]
    assert "kind: Experiment 'web-experiment' skipped" in skipped[0]
    assert "kind: Certificate 'web-tls' skipped" in skipped[1]
    # the companions (VirtualService, DestinationRule, Service, Ingress, ConfigMap) change nothing rehearsed
    assert not any(k in w for w in plan.warnings for k in ("web-vsvc'", "web-destrule", "web-config"))


def test_a_misspelt_kind_alone_is_no_rollout_and_says_what_it_may_be(tmp_path: Path) -> None:
    f = write(tmp_path, rollout("        - setWeight: 20\n").replace("kind: Rollout", "kind: Rolout"))
    with pytest.raises(ManifestError) as info:
        plan_of(f)
    assert "no rollout among the manifests" in str(info.value)
    assert "kind: Rolout 'web' skipped (did you mean Rollout?)" in str(info.value)


CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo-app
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo-app
spec:
  replicas: 4
  selector: {matchLabels: {app: podinfo}}
  template:
    metadata: {labels: {app: podinfo}}
    spec:
      containers: [{name: podinfo, image: "ghcr.io/stefanprodan/podinfo:6.0.0"}]
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 3
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers: [{name: worker, image: "worker:2.0.1"}]
"""


@pytest.fixture
def several(tmp_path: Path) -> Path:
    return write(tmp_path, "\n---\n".join([
        rollout("        - setWeight: 20\n", name="web"),
        rollout("        - setWeight: 40\n        - pause: {duration: 1m}\n", name="api", replicas=4),
        CANARY, DEPLOYMENT]), "several.yaml")


@pytest.mark.parametrize(
    ("name", "source", "first_step"),
    [("web", "Rollout web", SetWeight(20)), ("api", "Rollout api", SetWeight(40)),
     ("podinfo", "Canary podinfo", None), ("worker", "Deployment worker", None)],
)
def test_a_name_picks_one_rollout_among_several(several: Path, name: str, source: str, first_step) -> None:  # noqa: ANN001
    imported = read_rollout(several, name=name)
    assert imported.source == source
    scenario, plan = plan_of(several, name=name)
    assert scenario.service == name
    if first_step is not None:
        assert plan.steps[0] == first_step
    if name == "api":
        assert plan.replicas == 4


def test_several_rollouts_without_a_name_are_listed(several: Path) -> None:
    with pytest.raises(ManifestError) as info:
        plan_of(several)
    text = str(info.value)
    assert "several rollouts among the manifests: Rollout 'web' (several.yaml, document 1); Rollout 'api' " \
           "(several.yaml, document 2); Canary 'podinfo' (several.yaml, document 3); pick one by name" in text


@pytest.mark.parametrize(
    ("name", "path", "message"),
    [("nope", "metadata.name", "got 'nope'; no Rollout, Canary or Deployment of that name among the manifests "
                               "(there: Rollout 'web' (several.yaml, document 1); Rollout 'api'"),
     ("podinfo-app", "spec.targetRef.name", "the name given, 'podinfo-app', is this Canary's target")],
)
def test_a_wrong_name_says_what_there_is(several: Path, name: str, path: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        plan_of(several, name=name)
    assert info.value.path == path
    assert message in str(info.value)


def test_two_deployments_alone_need_a_name(tmp_path: Path) -> None:
    f = write(tmp_path, DEPLOYMENT + "---\n" + DEPLOYMENT.replace("worker", "mailer"))
    with pytest.raises(ManifestError, match="several rollouts among the manifests: Deployment 'worker'"):
        plan_of(f)
    _, plan = plan_of(f, name="mailer")
    assert plan.strategy == "rolling" and plan.replicas == 3


LIST = """\
apiVersion: v1
kind: List
items:
{items}"""


def _items(*docs: str) -> str:
    return "".join("- " + "\n  ".join(doc.rstrip("\n").splitlines()) + "\n" for doc in docs)


def test_a_list_document_is_read_item_by_item(tmp_path: Path) -> None:
    f = write(tmp_path, LIST.format(items=_items(UNKNOWN.split("---\n")[0], rollout("        - setWeight: 30\n"))))
    _, plan = plan_of(f)
    assert list(plan.steps) == [SetWeight(30), SetWeight(100)]
    assert "rollout.yaml (document 1): items[0].kind: Experiment 'web-experiment' skipped" in "\n".join(plan.warnings)


def test_a_list_with_templates_and_a_rollout_beside_another_file(tmp_path: Path) -> None:
    steps = "        - setWeight: 10\n        - analysis:\n            templates:\n" \
            "              - templateName: error-ratio\n            args:\n              - {name: service-name, value: web}\n"
    templates = [d for d in TEMPLATES.read_text().split("---\n") if "kind: AnalysisTemplate" in d]
    f = write(tmp_path, LIST.format(items=_items(*templates)), "templates.yaml")
    g = write(tmp_path, LIST.format(items=_items(rollout(steps), rollout(steps, name="other"))), "rollouts.yaml")
    _, plan = plan_of(g, f, name="other")
    assert isinstance(plan.steps[1], Analyze)


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (LIST.format(items=_items(rollout("        - setWeight: 150\n"))), "items[0].spec.strategy.canary.steps[0].setWeight",
         "got 150"),
        (LIST.format(items="- just a string\n"), "items[0]", "an item is a mapping"),
        (LIST.replace("apiVersion: v1", "apiVersion: v2").format(items=""), "apiVersion", "a List is v1"),
        ("apiVersion: v1\nkind: List\nitems: {a: 1}\n", "items", "a List's items are a list"),
    ],
)
def test_list_errors_name_the_item(tmp_path: Path, text: str, path: str, message: str) -> None:
    f = write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        plan_of(f)
    assert (info.value.document, info.value.path) == (1, path)
    assert message in str(info.value)


# --- the command line and the runbooks ------------------------------------------------------------


def test_cli_plan_and_rehearse_take_a_name(several: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-m", str(several), "--name", "api"]) == EXIT_OK
    out, _ = capsys.readouterr()
    assert "canary rollout of 4 replicas" in out and "1. set weight to 40%" in out
    assert main(["plan", "-m", str(several)]) == EXIT_BAD_INPUT
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "several rollouts among the manifests" in err and "--name" in err
    code = main(["rehearse", "-m", str(several), "--name", "web", "--set", "candidate.error_rate=0.001",
                 "--set", "duration=30m", "--out", str(tmp_path / "out")])
    out, _ = capsys.readouterr()
    assert code == EXIT_OK and "canary rollout of web: promoted" in out
    assert main(["plan", "--name", "web"]) == EXIT_BAD_INPUT
    _, err = capsys.readouterr()
    assert "--name: got 'web'; picks a rollout among the --manifest files" in err


def test_runbook_manifest_name_picks_the_rollout(several: Path) -> None:
    run = runbooks.validate_parameters("canary", {"manifest": str(several), "manifest_name": "api"})
    assert (run.plan.replicas, run.plan.steps[0]) == (4, SetWeight(40))
    assert run.scenario.service == "api"
    with pytest.raises(ParameterError, match="parameter 'manifest': .*several rollouts among the manifests"):
        runbooks.validate_parameters("canary", {"manifest": str(several)})
    with pytest.raises(ParameterError, match="parameter 'manifest_name': picks a rollout among the manifest files"):
        runbooks.validate_parameters("canary", {"manifest_name": "api"})
    with pytest.raises(ParameterError, match="describes a rolling rollout; this is the canary runbook"):
        runbooks.validate_parameters("canary", {"manifest": str(several), "manifest_name": "worker"})
