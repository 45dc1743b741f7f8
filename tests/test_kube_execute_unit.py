"""execute() end to end over an in-memory API whose Deployments follow their spec.

The run's clock is a counter that each wait of the loop moves on by the time asked, so a
plan with minutes of pauses runs in well under a second of wall time; the loop's waits are
counted, never timed.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubefake import FakeCluster, deployment, httproute, service
from kubernetes import client

import deploysim.kube.execute as execute_module
from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.kube import naming as n
from deploysim.kube.execute import execute, traffic_bins
from deploysim.kube.world import KubeWorld
from deploysim.record import SUMMARY_KEYS
from deploysim.scenario import load_scenario
from deploysim.strategies import compile_plan

NS = "shop"
STABLE, CANDIDATE = "checkout:1.41.0", "checkout:1.42.0"
WEB = {"app": "web-api"}
BLUE, GREEN = n.selector("checkout", "blue"), n.selector("checkout", "green")
MAX_WAITS = 500  # a loop that waits more than this is stuck


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.waits = 0

    def __call__(self) -> float:
        return self.t

    def watcher(self, apps: Any, namespace: str) -> Clock:
        """Stands in for the watch of Deployments: a wait moves the clock by what was asked."""
        return self

    def start(self) -> Clock:
        return self

    def wait(self, timeout: float) -> None:
        self.waits += 1
        if self.waits > MAX_WAITS:
            raise AssertionError(f"the loop waited {MAX_WAITS} times without finishing")
        self.t += max(timeout, 0.0)

    def stop(self) -> None:
        pass


class Healthy:
    """Both versions serve 100 requests per 10 s bin; the candidate fails ``errors`` of each."""

    def __init__(self, errors: int = 0) -> None:
        self.errors = errors

    def measure(self, start: float, end: float, spec=None) -> Measurement:
        def window(errors: int) -> VersionWindow:
            return VersionWindow(requests=300, errors=3 * errors, latency_p50=40.0, latency_p95=60.0,
                                 latency_p99=80.0, seconds=end - start, series_requests=(100, 100, 100),
                                 series_errors=(errors,) * 3, series_latency_p99=(80.0, 80.0, 80.0))

        return Measurement(start, end, versions={"stable": window(0), "candidate": window(self.errors)})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(execute_module, "Watcher", clock.watcher)
    return clock


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    return FakeCluster(controller=True).install(monkeypatch)


def _world(clock: Clock, overrides: list[str], **names: str) -> KubeWorld:
    scenario = load_scenario(overrides=["replicas=4", "candidate.error_rate=0.001", *overrides])
    return KubeWorld(client.ApiClient(), NS, scenario, compile_plan(scenario), "run-1", clock=clock, **names)


def _check_summary(summary: dict[str, Any]) -> None:
    assert set(summary) == set(SUMMARY_KEYS)
    assert summary["world"] == "kubernetes"
    unexplained = [k for k, v in summary.items() if v is None and k not in summary["unknown"]]
    assert unexplained == []
    # the metrics cannot tell a request failed at shutdown; the fake cluster's pods never restart
    assert summary["failed_in_shutdown"] is None and summary["restarts"] == 0


@pytest.mark.timeout(60)
def test_a_rolling_update_is_promoted_on_the_named_deployment(cluster: FakeCluster, clock: Clock) -> None:
    cluster.add(deployment("web-api", WEB, 4, STABLE))
    cluster.sync("web-api")
    cluster.add(service("checkout", WEB))
    record = execute(_world(clock, ["strategy.kind=rolling", "strategy.background_analysis=false"],
                            workload="web-api"), Healthy(), timeout=600)
    assert record.summary["outcome"] == "promoted"
    assert [d["kind"] for d in record.decisions] == ["start", "step", "promote"]
    assert {c["object"] for c in record.changes} == {"Deployment/web-api"}
    image = cluster.raw("Deployment", "web-api")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == CANDIDATE
    assert record.status["driver"]["timed_out"] is False
    assert clock.waits < 20
    _check_summary(record.summary)
    assert record.summary["max_pods"] == 4  # the fake controller swaps all pods at once
    assert record.summary["min_available"] == 4
    assert record.summary["rolled_back"] is False


@pytest.mark.timeout(60)
def test_a_mark_left_from_an_earlier_run_neither_aborts_nor_promotes_a_new_one(cluster: FakeCluster,
                                                                                 clock: Clock) -> None:
    cluster.add(deployment("web-api", WEB, 4, STABLE))
    cluster.sync("web-api")
    cluster.add(service("checkout", WEB))
    # an earlier run's status, with abort and promote marks given after it ended
    cluster.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "deploysim-checkout", "namespace": NS,
        "annotations": {n.RUN_ANNOTATION: "run-0", n.ABORT_ANNOTATION: "true", n.PROMOTE_ANNOTATION: "true"}},
        "data": {"run": "run-0", "status": "{}"}})
    record = execute(_world(clock, ["strategy.kind=rolling", "strategy.background_analysis=false"],
                            workload="web-api"), Healthy(), timeout=600)
    assert record.summary["outcome"] == "promoted"
    assert [d["kind"] for d in record.decisions] == ["start", "step", "promote"]
    assert cluster.raw("ConfigMap", "deploysim-checkout")["metadata"]["annotations"] == {n.RUN_ANNOTATION: "run-1"}


CANARY = ["strategy.kind=canary", "strategy.traffic_router=true", "strategy.scale_down_delay_seconds=0s",
          "strategy.steps=[{set_weight: 25}, {pause: 30s}, {analysis: true}, {set_weight: 100}]",
          "analysis.interval=10s", "analysis.count=2"]


def _colours(cluster: FakeCluster, clock: Clock) -> KubeWorld:
    cluster.add(deployment("web-api", BLUE, 4, STABLE))
    cluster.add(deployment("web-api-next", GREEN, 0, STABLE))
    cluster.sync("web-api")
    cluster.add(service("checkout", n.selector("checkout"), {n.STABLE_SLOT_ANNOTATION: "blue"}))
    cluster.add(service("checkout-blue", BLUE))
    cluster.add(service("checkout-green", GREEN))
    cluster.add(httproute("checkout-route", {"checkout-blue": 100, "checkout-green": 0}))
    return _world(clock, CANARY, workload="web-api", second_workload="web-api-next", route="checkout-route")


@pytest.mark.timeout(60)
def test_a_short_canary_is_promoted_through_the_named_route(cluster: FakeCluster, clock: Clock) -> None:
    record = execute(_colours(cluster, clock), Healthy(), timeout=900)
    assert record.summary["outcome"] == "promoted"
    assert [d["kind"] for d in record.decisions] == [
        "start", "step", "step", "step", "measure", "measure", "analysis", "step", "promote"]
    assert {c["object"] for c in record.changes} == {
        "Deployment/web-api", "Deployment/web-api-next", "HTTPRoute/checkout-route", "Service/checkout"}
    refs = cluster.raw("HTTPRoute", "checkout-route")["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"checkout-blue": 0, "checkout-green": 100}
    assert (cluster.raw("Deployment", "web-api")["spec"]["replicas"],
            cluster.raw("Deployment", "web-api-next")["spec"]["replicas"]) == (0, 4)
    annotations = cluster.raw("Service", "checkout")["metadata"]["annotations"]
    assert annotations[n.STABLE_SLOT_ANNOTATION] == "green"
    assert cluster.raw("Lease", "deploysim-checkout")["spec"].get("holderIdentity") is None
    assert clock.waits < 100
    _check_summary(record.summary)
    # 30 s of pause, then the analysis: two measurements 10 s apart, the first as it starts
    assert record.summary["time_paused_seconds"] == pytest.approx(30.0)
    assert record.summary["time_in_analysis_seconds"] == pytest.approx(10.0)
    assert record.summary["time_to_detect_seconds"] is None
    assert record.summary["unknown"]["time_to_detect_seconds"] == "no abort"
    # 4 stable and 4 candidate pods before the stable colour is scaled down, 4 always serving
    assert (record.summary["max_pods"], record.summary["min_available"]) == (8, 4)


@pytest.mark.timeout(60)
def test_a_failing_canary_is_rolled_back_and_its_summary_explains_every_gap(cluster: FakeCluster,
                                                                            clock: Clock) -> None:
    record = execute(_colours(cluster, clock), Healthy(errors=5), timeout=900)  # 5% > the 1% bound
    assert record.summary["outcome"] == "rolled_back"
    assert record.summary["rolled_back"] is True
    assert [d["kind"] for d in record.decisions] == ["start", "step", "step", "step", "measure", "abort", "complete"]
    refs = cluster.raw("HTTPRoute", "checkout-route")["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"checkout-blue": 100, "checkout-green": 0}
    assert (cluster.raw("Deployment", "web-api")["spec"]["replicas"],
            cluster.raw("Deployment", "web-api-next")["spec"]["replicas"]) == (4, 0)
    assert cluster.raw("Service", "checkout")["metadata"]["annotations"][n.STABLE_SLOT_ANNOTATION] == "blue"
    _check_summary(record.summary)
    # the candidate gets requests from the 25% step on; the abort comes at the first
    # measurement, as the analysis starts after the 30 s pause; the route sends every request
    # back at the same pass
    assert (record.summary["time_to_detect_seconds"], record.summary["time_to_recover_seconds"]) == (30.0, 0.0)
    # the candidate's 5 failures in each of the 3 bins the metrics source reports
    assert record.summary["failed_requests"] == 15


@pytest.mark.parametrize(("elapsed", "windows"), [
    (30.0, [(0, 10), (10, 20), (20, 30)]),
    (34.0, [(0, 10), (10, 20), (20, 30), (30, 34)]),  # the part-bin past the series
])
def test_traffic_bins_follow_the_metric_series(elapsed: float, windows: list[tuple[int, int]]) -> None:
    scenario = load_scenario(overrides=["resolution=10s"])
    bins = traffic_bins(Healthy(), 1_700_000_000.0, elapsed, scenario)
    assert [(b.start, b.end) for b in bins] == windows
    assert [b.requests for b in bins[:3]] == [(100, 100, 0)] * 3
    assert all(b.failed == (0, 0, 0) for b in bins)


def test_no_traffic_bins_when_the_metrics_source_fails() -> None:
    class Broken:
        def measure(self, start: float, end: float, spec=None) -> Measurement:
            return Measurement(start, end, error="connection refused")

    assert traffic_bins(Broken(), 0.0, 30.0, load_scenario()) == []


@pytest.mark.timeout(60)
def test_a_cluster_refusing_a_change_mid_run_is_a_cluster_error(
        cluster: FakeCluster, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 403 on the first patch (RBAC taken away half-way): exit code 3's error, naming the
    step and the answer, not a traceback read as "not promoted"."""
    from kubernetes.client.rest import ApiException

    from deploysim.errors import ClusterError, exit_code

    world = _colours(cluster, clock)
    attempts = []

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[:1])
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(world.apps, "patch_namespaced_deployment", forbidden)
    # a ready API server's 403 is a refusal (one that is starting again is waited for)
    monkeypatch.setattr("deploysim.kube.execute.api_ready", lambda api: True)
    with pytest.raises(ClusterError) as raised:
        execute(world, Healthy(), timeout=900)
    assert "step 1" in str(raised.value) and "HTTP 403 Forbidden" in str(raised.value)
    assert exit_code(raised.value) == 3
    assert len(attempts) == 1  # it stopped at the refusal instead of trying on
    lease = cluster.raw("Lease", n.status_configmap("checkout"))
    assert lease["spec"].get("holderIdentity") is None  # the lock was given back


class Gone:
    """A metrics source that never answers."""

    def measure(self, start: float, end: float, spec=None) -> Measurement:
        return Measurement(start, end, error="prometheus at http://127.0.0.1:1: connection refused")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("provider", [Healthy(errors=5), Gone()], ids=["measured", "metrics-gone"])
def test_the_post_incident_tables_read_a_rolled_back_cluster_run_beside_its_rehearsal(
        cluster: FakeCluster, clock: Clock, tmp_path: Any, provider: Any) -> None:
    """What the post-incident notebook shows, over a rolled-back cluster record and the same
    plan rehearsed: the same summary fields for both, blanks explained, and no TypeError on
    what a cluster could not know."""
    from deploysim import incident
    from deploysim.sim import rehearse

    world = _colours(cluster, clock)
    real = execute(world, provider, timeout=900)
    sim = rehearse(world.scenario.model_copy(update={"candidate": world.scenario.candidate.model_copy(
        update={"error_rate": 0.05})}), world.plan)
    assert real.summary["outcome"] == sim.summary["outcome"] == "rolled_back"
    trails = [incident.Trail(tmp_path / "kubernetes-run", {"runbook": "canary", "status": "rolled back"}, real),
              incident.Trail(tmp_path / "sim-run", {"runbook": "canary", "status": "rolled back"}, sim)]
    table = incident.summary_frame(trails)
    assert list(table.loc["kubernetes-run"].index) == list(table.loc["sim-run"].index)
    assert (table.loc["kubernetes-run", "world"], table.loc["sim-run", "world"]) == ("kubernetes", "sim")
    for run, row in table.iterrows():
        blank = {k for k, v in row.items() if v is None or (isinstance(v, float) and v != v)}
        explained = {part.split(":")[0] for part in row["unknown"].split("; ") if part}
        assert blank == explained, (run, blank, explained)
    times = incident.times_frame(trails)
    assert times.loc["kubernetes-run", "record_time_to_detect_s"] == real.summary["time_to_detect_seconds"]
    assert times.loc["kubernetes-run", "time_to_detect_s"] > 0
    story = incident.what_happened(trails)
    assert "kubernetes-run (canary runbook, canary)" in story and "sim-run" in story
    if isinstance(provider, Gone):
        assert "failed requests unknown (no traffic was counted for the run)" in story


@pytest.mark.parametrize(("status", "ready", "waits"), [
    (503, True, True), (429, True, True), (0, True, True),  # out of reach, whatever /readyz says
    (403, False, True),  # a server starting again, before its RBAC rules load
    (403, True, False), (404, True, False), (409, False, False),  # refusals and conflicts
    (401, False, False), (401, True, False),  # a token that expired stays expired
])
def test_which_api_errors_are_waited_out(monkeypatch: pytest.MonkeyPatch, status: int, ready: bool,
                                         waits: bool) -> None:
    from kubernetes.client.rest import ApiException

    from deploysim.kube import execute as ex

    asked = []
    monkeypatch.setattr(ex, "api_ready", lambda api: asked.append(api) or ready)
    assert ex.unreachable_at("api")(ApiException(status=status)) is waits
    assert asked in ([], ["api"]) and (status != 403 or asked == ["api"])
