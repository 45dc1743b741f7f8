"""The lint rules one by one, as tables: image references, probes, preStop, label selectors
and the rollout rules over plans."""

from __future__ import annotations

import pytest

from deploysim.lint.disruption import covering_budget, flagger_primary_labels, selector_matches
from deploysim.lint.pods import (
    ENDPOINT_LAG_SECONDS,
    container_problems,
    image_problems,
    parse_image,
    prestop_seconds,
)
from deploysim.lint.rollout import (
    all_unavailable,
    as_rolling,
    first_step_all_traffic,
    full_traffic_index,
    has_rollback_path,
    with_first_step,
    with_replicas,
    with_rollback_path,
)
from deploysim.plan import (
    AnalysisSpec,
    Analyze,
    Check,
    Pause,
    Plan,
    PromotePrimary,
    Recreate,
    RollingUpdate,
    ScaleCandidate,
    ScaleDownStable,
    SetWeight,
    SwitchTraffic,
)
from deploysim.scenario import load_scenario

JUDGED = AnalysisSpec(checks=(Check("error_rate", max=0.01),))


@pytest.mark.parametrize(("image", "expected"), [
    ("nginx", ("nginx", None, None)),
    ("nginx:1.27", ("nginx", "1.27", None)),
    ("registry.example.com:5000/team/app", ("registry.example.com:5000/team/app", None, None)),
    ("registry.example.com:5000/team/app:2.0.1", ("registry.example.com:5000/team/app", "2.0.1", None)),
    ("app@sha256:abcd", ("app", None, "sha256:abcd")),
    ("app:1.0@sha256:abcd", ("app", "1.0", "sha256:abcd")),
])
def test_image_references_parse_as_the_registry_reads_them(image: str, expected: tuple) -> None:
    assert parse_image(image) == expected


@pytest.mark.parametrize(("image", "rule"), [
    ("checkout:latest", "image-tag-mutable"),
    ("checkout:LATEST", "image-tag-mutable"),
    ("checkout:main", "image-tag-mutable"),
    ("checkout:master", "image-tag-mutable"),
    ("checkout:dev", "image-tag-mutable"),
    ("checkout:stable", "image-tag-mutable"),
    ("checkout", "image-tag-missing"),
    ("registry.example.com:5000/checkout", "image-tag-missing"),
    ("", "image-tag-missing"),
    ("checkout:1.42.0", "image-not-pinned-by-digest"),
    ("checkout:main-4f2a9c1", "image-not-pinned-by-digest"),  # a commit, not a branch
    ("checkout:latest@sha256:" + "ab" * 32, None),  # the digest decides
    ("checkout@sha256:" + "ab" * 32, None),
])
def test_image_rules(image: str, rule: str | None) -> None:
    assert [p[0] for p in image_problems(image)] == ([rule] if rule else [])


@pytest.mark.parametrize(("lifecycle", "seconds"), [
    (None, 0.0),
    ({}, 0.0),
    ({"preStop": {"sleep": {"seconds": 7}}}, 7.0),
    ({"preStop": {"exec": {"command": ["sleep", "20"]}}}, 20.0),
    ({"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 5s && kill -QUIT 1"]}}}, 5.0),
    ({"preStop": {"exec": {"command": ["/bin/sh", "-c", "/app/drain --wait"]}}}, None),
    ({"preStop": {"exec": {"command": ["/bin/sleepy", "3"]}}}, None),
    ({"preStop": {"httpGet": {"path": "/shutdown", "port": 8080}}}, None),
])
def test_prestop_seconds(lifecycle, seconds) -> None:
    assert prestop_seconds(lifecycle) == seconds


def _rules(container: dict) -> list[str]:
    return [p[0] for p in container_problems(container, 30.0)]


def test_container_rules() -> None:
    good = {"name": "a", "readinessProbe": {"httpGet": {"path": "/ready", "port": 80}},
            "livenessProbe": {"httpGet": {"path": "/livez", "port": 80}},
            "lifecycle": {"preStop": {"sleep": {"seconds": ENDPOINT_LAG_SECONDS}}}}
    assert _rules(good) == []
    same = {**good, "livenessProbe": {"httpGet": {"path": "/ready", "port": 80}, "periodSeconds": 30}}
    assert _rules(same) == ["liveness-equals-readiness"]  # the handler, not the timings
    tcp = {**good, "readinessProbe": {"tcpSocket": {"port": 80}}, "livenessProbe": {"tcpSocket": {"port": 80}}}
    assert _rules(tcp) == ["liveness-equals-readiness"]
    other_port = {**tcp, "livenessProbe": {"tcpSocket": {"port": 81}}}
    assert _rules(other_port) == []
    assert _rules({**good, "readinessProbe": None}) == ["no-readiness-probe"]
    short = {**good, "lifecycle": {"preStop": {"sleep": {"seconds": ENDPOINT_LAG_SECONDS - 1}}}}
    assert _rules(short) == ["prestop-shorter-than-endpoint-lag"]
    unknown = {**good, "lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": 80}}}}
    assert _rules(unknown) == []  # not judged: it may wait


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ({"matchLabels": {"app": "web"}}, {"app": "web"}, True),
    ({"matchLabels": {"app": "web", "tier": "front"}}, {"app": "web"}, False),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, {"app": "api"}, True),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {"app": "api"}, True),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {}, True),
    ({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, {"app": "web"}, False),
    ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"app": "web"}, True),
    ({"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}, {"app": "2"}, False),
    ({}, {"app": "web"}, True),
    (None, {"app": "web"}, False),
])
def test_label_selectors(selector, labels, matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


def test_budgets_by_namespace_and_flaggers_primary_labels() -> None:
    pdb = [("shop", {"matchLabels": {"app": "cart"}}), (None, {"matchLabels": {"app": "web"}})]
    assert covering_budget(pdb, "shop", {"app": "cart"})
    assert not covering_budget(pdb, "other", {"app": "cart"})
    assert covering_budget(pdb, "anywhere", {"app": "web"})  # applied where the workload is
    # Flagger's makePrimaryLabels: the selector label becomes <target>-primary
    assert flagger_primary_labels({"name": "api", "team": "x"}, {"name": "api"}, "api") == {
        "name": "api-primary", "team": "x"}
    assert flagger_primary_labels({"app.kubernetes.io/name": "api"}, {"app.kubernetes.io/name": "api"}, "api") == {
        "app.kubernetes.io/name": "api-primary"}


def _plan(*steps, **kw) -> Plan:
    return Plan(strategy=kw.pop("strategy", "canary"), replicas=kw.pop("replicas", 4), steps=tuple(steps), **kw)


@pytest.mark.parametrize(("plan", "path"), [
    (_plan(RollingUpdate(), strategy="rolling"), False),
    (_plan(RollingUpdate(), strategy="rolling", background=JUDGED), True),
    (_plan(RollingUpdate(), strategy="rolling", background=AnalysisSpec(checks=JUDGED.checks, dry_run=True)), False),
    (_plan(Recreate(), strategy="recreate", background=JUDGED), True),
    (_plan(SetWeight(20), Pause(60), SetWeight(100)), False),
    (_plan(SetWeight(20), Pause(None), SetWeight(100)), True),
    (_plan(SetWeight(20), Analyze(JUDGED), SetWeight(100)), True),
    (_plan(SetWeight(20), Analyze(AnalysisSpec()), SetWeight(100)), False),  # nothing to judge
    (_plan(SetWeight(100), Analyze(JUDGED)), False),  # too late: all traffic already moved
    (_plan(SetWeight(20), SetWeight(100), background=JUDGED, background_start=1), True),
    (_plan(SetWeight(20), SetWeight(100), Pause(60), background=JUDGED, background_start=2), False),
    (_plan(ScaleCandidate(4), SwitchTraffic(), ScaleDownStable(30), strategy="blue-green", routing="active"), False),
    (_plan(ScaleCandidate(4), Analyze(JUDGED), SwitchTraffic(), ScaleDownStable(30), strategy="blue-green",
           routing="active"), True),
    # post-promotion: the old colour is still up, so Argo rolls back to it
    (_plan(ScaleCandidate(4), SwitchTraffic(), Analyze(JUDGED), ScaleDownStable(30), strategy="blue-green",
           routing="active"), True),
    (_plan(SetWeight(10), Analyze(JUDGED), PromotePrimary(60), routing="router"), True),
])
def test_rollback_path(plan: Plan, path: bool) -> None:
    assert has_rollback_path(plan) is path


@pytest.mark.parametrize(("plan", "big_bang"), [
    (_plan(RollingUpdate(), strategy="rolling", max_unavailable="100%"), True),
    (_plan(RollingUpdate(), strategy="rolling", max_unavailable=4), True),
    (_plan(RollingUpdate(), strategy="rolling", max_unavailable=10), True),
    (_plan(RollingUpdate(), strategy="rolling", max_unavailable="99%"), False),  # 3.96 rounds down to 3
    (_plan(RollingUpdate(), strategy="rolling", max_unavailable=1, replicas=1), True),  # the only pod
    (_plan(RollingUpdate(), strategy="rolling", max_unavailable="25%", replicas=1), False),
    (_plan(SetWeight(50), PromotePrimary(60), routing="router", max_unavailable="100%"), True),  # Flagger's primary
    (_plan(SetWeight(50), SetWeight(100), routing="router", max_unavailable="100%"), False),  # the router moves traffic
    (_plan(SetWeight(50), SetWeight(100), routing="replica_ratio", max_unavailable="100%"), True),  # basic canary
])
def test_every_pod_at_once(plan: Plan, big_bang: bool) -> None:
    assert all_unavailable(plan) is big_bang


def test_first_step_and_full_traffic() -> None:
    assert first_step_all_traffic(_plan(SetWeight(100), Pause(60)))
    assert first_step_all_traffic(_plan(Pause(None), SetWeight(100)))  # a gate, then everything at once
    assert not first_step_all_traffic(_plan(SetWeight(5), SetWeight(100)))
    assert full_traffic_index(_plan(SetWeight(5), Pause(5), SetWeight(100))) == 2
    assert full_traffic_index(_plan(SetWeight(5), Pause(5))) == 2


def test_the_fixed_plans() -> None:
    s = load_scenario()
    bang = _plan(SetWeight(100), Pause(60), routing="router")
    fixed = with_first_step(bang, s)
    assert [type(x).__name__ for x in fixed.steps] == ["SetWeight", "Analyze", "SetWeight", "Pause"]
    assert fixed.steps[0].weight == 10 and not first_step_all_traffic(fixed) and has_rollback_path(fixed)
    rolling = _plan(RollingUpdate(), strategy="rolling")
    assert has_rollback_path(with_rollback_path(rolling, s))
    bg = _plan(ScaleCandidate(4), SwitchTraffic(), ScaleDownStable(30), strategy="blue-green", routing="active")
    assert [type(x).__name__ for x in with_rollback_path(bg, s).steps] == [
        "ScaleCandidate", "Analyze", "SwitchTraffic", "ScaleDownStable"]
    recreate = as_rolling(_plan(Recreate(), strategy="recreate"))
    assert (recreate.strategy, recreate.steps, recreate.max_unavailable) == ("rolling", (RollingUpdate(),), "25%")
    one = _plan(ScaleCandidate(1), SwitchTraffic(), strategy="blue-green", replicas=1, routing="active")
    scenario2, plan2 = with_replicas(one, s.model_copy(update={"replicas": 1}))
    assert (scenario2.replicas, plan2.replicas, plan2.steps[0]) == (2, 2, ScaleCandidate(2))
    assert scenario2.traffic == s.traffic
