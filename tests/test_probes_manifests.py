"""Probes and shutdown read from the pod template of every manifest kind, and written as the
annotations the KWOK stages read on a local control plane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploysim.errors import ManifestError
from deploysim.kube.kwok import (
    KWOK_NEVER_READY,
    KWOK_PROBES,
    KWOK_READY_DELAY,
    KWOK_READY_JITTER,
    KWOK_TERMINATE_DELAY,
    pod_annotations,
)
from deploysim.manifests import plan_from_manifests, scenario_from_manifests
from deploysim.manifests.pod_template import exec_sleep
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse

CONTAINER = """\
        - name: web
          image: registry.example.com/web:1.2.0
          readinessProbe:
            httpGet: {path: /ready, port: 8080}
            initialDelaySeconds: 2
            periodSeconds: 5
          livenessProbe:
            tcpSocket: {port: 8080}
            periodSeconds: 20
            failureThreshold: 6
          startupProbe:
            httpGet: {path: /healthz, port: 8080}
            failureThreshold: 30
          lifecycle:
            preStop:
              sleep: {seconds: 7}
"""
TEMPLATE = """\
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 40
      containers:
""" + CONTAINER
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
""" + TEMPLATE
ROLLOUT = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
""" + TEMPLATE + """\
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {duration: 1m}}]
"""
CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 2, maxWeight: 50, stepWeight: 25}
"""
EXPECTED = {
    "readiness": {"initial_delay": 2.0, "period": 5.0, "timeout": 1.0, "success_threshold": 1, "failure_threshold": 3},
    "liveness": {"initial_delay": 0.0, "period": 20.0, "timeout": 1.0, "success_threshold": 1, "failure_threshold": 6},
    "startup": {"initial_delay": 0.0, "period": 10.0, "timeout": 1.0, "success_threshold": 1, "failure_threshold": 30},
}


def _write(tmp_path, *docs: str):
    path = tmp_path / "manifests.yaml"
    path.write_text("---\n".join(docs))
    return path


def _probes(scenario) -> dict:
    p = scenario.pod.probes
    return {name: getattr(p, name).model_dump(exclude={"dependency"}) for name in ("readiness", "liveness", "startup")}


@pytest.mark.parametrize("docs", [(DEPLOYMENT,), (ROLLOUT,), (CANARY, DEPLOYMENT)], ids=["deployment", "argo", "flagger"])
def test_probes_prestop_and_grace_period_come_from_the_pod_template(tmp_path, docs):
    s = scenario_from_manifests(_write(tmp_path, *docs))
    assert _probes(s) == EXPECTED
    assert (s.pod.pre_stop, s.pod.termination_grace_period) == (7.0, 40.0)
    assert s.pod.endpoint_lag == 0.0 and s.pod.drain is None  # the application's, not the manifest's


def test_an_argo_workload_ref_takes_the_deployments_template(tmp_path):
    rollout = ROLLOUT.replace(TEMPLATE, "  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n")
    s = scenario_from_manifests(_write(tmp_path, rollout, DEPLOYMENT.replace("replicas: 4", "replicas: 0")))
    assert _probes(s) == EXPECTED and s.pod.pre_stop == 7.0


def test_a_template_without_probes_keeps_the_scenarios_and_overrides_win(tmp_path):
    bare = DEPLOYMENT.replace(CONTAINER, "        - {name: web, image: registry.example.com/web:1.2.0}\n")
    assert scenario_from_manifests(_write(tmp_path, bare)).pod.probes is None
    s = scenario_from_manifests(_write(tmp_path, DEPLOYMENT), overrides=["pod.probes.readiness.dependency=true",
                                                                          "pod.endpoint_lag=2s"])
    assert s.pod.probes.readiness.dependency and s.pod.probes.readiness.period == 5.0 and s.pod.endpoint_lag == 2.0


@pytest.mark.parametrize(("hook", "seconds"), [
    ("exec: {command: [sleep, '15']}", 15.0),
    ("exec: {command: [/bin/sh, -c, 'sleep 5 && nginx -s quit']}", 5.0),
    ("sleep: {seconds: 0}", 0.0),
])
def test_a_prestop_hook_that_sleeps_is_read(tmp_path, hook, seconds):
    doc = DEPLOYMENT.replace("sleep: {seconds: 7}", hook)
    assert scenario_from_manifests(_write(tmp_path, doc)).pod.pre_stop == seconds


def test_a_prestop_hook_of_unknown_length_is_named(tmp_path):
    doc = DEPLOYMENT.replace("sleep: {seconds: 7}", "httpGet: {path: /drain, port: 8080}")
    path = _write(tmp_path, doc)
    s = scenario_from_manifests(path)
    assert s.pod.pre_stop == 0.0  # the scenario's
    plan = plan_from_manifests(path, s)
    hits = [w for w in plan.warnings if "spec.template.spec.containers[0].lifecycle.preStop:" in w]
    assert len(hits) == 1 and "its length is not known" in hits[0] and "(document 1)" in hits[0]


def test_probes_of_a_second_container_are_named_not_simulated(tmp_path):
    sidecar = "        - name: proxy\n          image: envoy:1.30\n          readinessProbe: {tcpSocket: {port: 15000}}\n"
    plan = plan_from_manifests(path := _write(tmp_path, DEPLOYMENT + sidecar), scenario_from_manifests(path))
    assert any("spec.template.spec.containers[1]: probes of containers after the first are not simulated" in w
               for w in plan.warnings)


@pytest.mark.parametrize(("field", "value", "says"), [
    ("periodSeconds: 5", "periodSeconds: 0", "readinessProbe.periodSeconds"),
    ("initialDelaySeconds: 2", "initialDelaySeconds: -1", "readinessProbe.initialDelaySeconds"),
    ("failureThreshold: 6", "failureThreshold: many", "livenessProbe.failureThreshold"),
    ("terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: -5", "spec.terminationGracePeriodSeconds"),
])
def test_a_bad_probe_field_names_its_path(tmp_path, field, value, says):
    with pytest.raises(ManifestError) as err:
        scenario_from_manifests(_write(tmp_path, DEPLOYMENT.replace(field, value)))
    assert f"spec.template.spec.{'containers[0].' if 'Probe' in says else ''}{says.removeprefix('spec.')}" in str(err.value)


def test_exec_sleep_reads_the_first_sleep_of_a_command():
    assert exec_sleep(["sh", "-c", "echo bye; sleep 3"]) == 3.0
    assert exec_sleep(["sh", "-c", "sleeper 3"]) is None and exec_sleep("sleep 3") is None


def test_a_manifests_readiness_probe_is_rehearsed(tmp_path):
    bare = DEPLOYMENT.replace(CONTAINER, "        - {name: web, image: registry.example.com/web:1.2.0}\n")
    sets = ["pod.startup=20s", "pod.startup_jitter=0", "duration=20m", "traffic.shape=constant",
            "candidate.error_rate=0.001"]  # a healthy candidate: only the readiness probe differs
    as_written = rehearse(scenario_from_manifests(_write(tmp_path, bare), overrides=[*sets, "pod.probes={}"]))
    probed = rehearse(scenario_from_manifests(_write(tmp_path, DEPLOYMENT), overrides=sets))
    print(f"\nthe Deployment without a readiness probe: {as_written.summary['rollout_attributable_failures']:g} "
          f"rollout-attributable failures; with its probe: {probed.summary['rollout_attributable_failures']:g}")
    assert as_written.summary["rollout_attributable_failures"] > 1000
    assert probed.summary["rollout_attributable_failures"] < 0.05 * as_written.summary["rollout_attributable_failures"]


# --- on a local control plane ---------------------------------------------------------------


def test_kwok_annotations_carry_the_readiness_and_startup_timing():
    s = load_scenario(overrides=["pod.probes={readiness: {initial_delay: 2s, period: 4s, success_threshold: 2}, "
                                 "startup: {period: 5s}, liveness: {period: 3s}}", "pod.startup=3s"])
    ann = pod_annotations(s, "candidate")
    assert json.loads(ann[KWOK_PROBES]) == {
        "readiness": {"initial_delay": 2000, "period": 4000, "success_threshold": 2},
        "startup": {"initial_delay": 0, "period": 5000, "success_threshold": 1}}
    assert ann[KWOK_READY_DELAY] == "3000ms"  # when the application answers; the stages put Ready on the grid
    assert pod_annotations(load_scenario(), "candidate")[KWOK_PROBES] is None  # removed: ready when serving


def test_kwok_makes_a_pod_without_readiness_or_startup_probe_ready_at_once():
    s = load_scenario(overrides=["candidate.probes={liveness: {}}", "candidate.never_ready=true"])
    ann = pod_annotations(s, "candidate")
    assert (ann[KWOK_READY_DELAY], ann[KWOK_READY_JITTER], ann[KWOK_NEVER_READY], ann[KWOK_PROBES]) == \
        ("0ms", "0ms", "false", None)
    assert pod_annotations(s, "stable")[KWOK_READY_DELAY] == "20000ms"  # the stable has no probes of its own


def test_kwok_keeps_a_deleted_pod_for_its_hook_and_exit():
    s = load_scenario(overrides=["pod.pre_stop=5s", "pod.termination=4s"])
    assert pod_annotations(s, "candidate")[KWOK_TERMINATE_DELAY] == "9000ms"
    assert pod_annotations(load_scenario(), "candidate")[KWOK_TERMINATE_DELAY] == "10000ms"  # as before


def test_the_stages_read_the_annotations_they_are_given():
    import yaml

    import deploysim.kube

    folder = Path(deploysim.kube.__file__).parent / "stages"
    stages = {p.name: yaml.safe_load(p.read_text()) for p in folder.glob("pod-*.yaml")}
    keys = {name: [e["key"] for e in st["spec"]["selector"]["matchExpressions"]] for name, st in stages.items()}
    probed = f'.metadata.annotations["{KWOK_PROBES}"]'
    assert probed in keys["pod-probe-clock.yaml"] and probed in keys["pod-serving.yaml"]
    assert any(KWOK_PROBES in k and "serving-ms" in k for k in keys["pod-ready.yaml"])  # waits for the application
    ready = stages["pod-ready.yaml"]["spec"]["delay"]
    for expr in (ready["durationFrom"]["expressionFrom"], ready["jitterDurationFrom"]["expressionFrom"]):
        assert "fromjson" in expr and "started-ms" in expr and "serving-ms" in expr
