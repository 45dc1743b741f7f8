"""The fault matrix on the local control plane, for the run itself: a runbook killed mid-step
and resumed, a second run refused by the lease, and kube-apiserver stopped mid-rollout.

Each case ends with one version serving every replica and a record that says what happened.
The runbooks run through the papermill CLI, as a team's CI runs them. Waits are on conditions
with generous deadlines; the seconds each recovery took are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import urllib3
from cluster_app import CANDIDATE, PAPERMILL, REPLICAS, ROOT, STABLE, App
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from deploysim.kube import localcluster
from deploysim.kube import naming as n

pytestmark = pytest.mark.cluster

CANARY = ["-p", "image", CANDIDATE, "-p", "traffic_router", "False"]


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (ApiException, OSError, urllib3.exceptions.HTTPError, ValueError, KeyError, TypeError):
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def start(app: App, label: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    """The canary runbook on the cluster in a process group of its own (papermill and its
    kernel), its record under ``record_dir/label``."""
    app.record_dir.mkdir(parents=True, exist_ok=True)
    out = app.record_dir / f"{label}.ipynb"
    log = (app.record_dir / f"{label}.log").open("w")
    argv = [PAPERMILL, str(ROOT / "runbooks" / "canary.ipynb"), str(out), "-p", "target", "kubernetes",
            "-p", "scenario", str(app.scenario), "-p", "record_dir", str(app.record_dir / label),
            "-p", "kubeconfig", app.kubeconfig, "-p", "namespace", app.ns,
            "-p", "prometheus_url", app.info.prometheus_url, *CANARY, *extra]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, app.record_dir / f"{label}.log"


def finish(proc: subprocess.Popen, timeout: float = 300) -> int:
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def record_of(app: App, label: str) -> dict:
    records = sorted((app.record_dir / label).glob("*/record.json"))
    assert len(records) == 1, records
    return json.loads(records[0].read_text())


def stored(app: App) -> dict:
    cm = client.CoreV1Api(app.admin).read_namespaced_config_map(n.status_configmap("web"), app.ns)
    return {**cm.data, "status": json.loads(cm.data["status"])}


def lease_holder(app: App) -> str | None:
    lease = client.CoordinationV1Api(app.admin).read_namespaced_lease(n.status_configmap("web"), app.ns)
    return lease.spec.holder_identity


def assert_candidate_serves_all(app: App) -> None:
    serving = app.serving()
    assert serving.get(CANDIDATE) == REPLICAS and serving.get(STABLE, 0) == 0, serving
    assert app.stable_slot() == "green"


def assert_stable_serves_all(app: App) -> None:
    serving = app.serving()
    assert serving.get(STABLE) == REPLICAS and serving.get(CANDIDATE, 0) == 0, serving
    assert app.stable_slot() == "blue"


def step_reasons(record: dict) -> list[str]:
    return [d["reason"] for d in record["decisions"] if d["kind"] == "step"]


def run_marks(app: App) -> set[str | None]:
    """The run ids on the service's Deployments (``deploysim.io/run``: the last run that changed each)."""
    return {(d.metadata.annotations or {}).get(n.RUN_ANNOTATION)
            for d in client.AppsV1Api(app.admin).list_namespaced_deployment(app.ns).items}


def test_a_killed_run_is_refused_to_others_then_resumed_without_repeating_its_steps(make_app):
    app = make_app("canary")
    lease = ["-p", "lease_seconds", "30", "-y", "{weights: [25], step_pause: 60s}"]
    first, first_log = start(app, "first", *lease)
    # mid-step: the 25% weight is set and the run is in the 60 s pause after it
    wait_for(lambda: stored(app)["status"]["step"] == 1 and stored(app)["status"]["weight"] == 25, 120,
             "the first run to pause at 25%")
    holder = wait_for(lambda: lease_holder(app), 30, "the lease")
    run_id = holder.split(" pid ")[0]
    kernel = [c.pid for c in psutil.Process(first.pid).children(recursive=True)]
    assert any(f" pid {pid} on " in holder for pid in kernel), (holder, kernel)  # the process driving it

    # a second run on the service while the first holds the lease: refused, its holder named,
    # and nothing of the service changed by it
    second, second_log = start(app, "second")
    assert finish(second) != 0
    assert f"run {holder} is driving this service" in second_log.read_text()
    assert run_marks(app) <= {None, run_id} and lease_holder(app) == holder
    assert first.poll() is None  # the first run went on

    # the first run killed mid-step, kernel and all
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(30)
    killed_at = time.monotonic()
    assert stored(app)["status"]["step"] == 1 and stored(app)["status"]["phase"] == "Progressing"
    # at once its lease is still fresh: a resume now is refused the same way, naming the dead
    # holder and when its lease expires (the lock a resumed run takes, asked directly so the
    # answer does not depend on how long a runbook takes to start)
    from deploysim.kube.store import ClusterStore, LeaseHeld

    with pytest.raises(LeaseHeld, match=rf"run {holder} is driving this service .* expire in \d+s"):
        ClusterStore(app.admin, app.ns, "web", run_id, "canary").lock()

    # past the lease's 30 s: the resume takes over and carries on from step 2
    wait_for(lambda: not lease_holder(app) or time.monotonic() - killed_at > 31, 60,
             "the killed run's lease to expire")
    resumed, resumed_log = start(app, "resumed", "-p", "resume", "True", *lease)
    assert finish(resumed) == 0, resumed_log.read_text()[-3000:]
    recovered = time.monotonic() - killed_at
    record = record_of(app, "resumed")
    assert record["summary"]["outcome"] == "promoted"
    assert_candidate_serves_all(app)
    # both parts in one record: the killed part's decisions, the resume, then the rest
    kinds = [d["kind"] for d in record["decisions"]]
    part = kinds.index("resumed")
    assert kinds[0] == "start" and kinds.count("start") == 1
    assert f"run {run_id} resumed at step 2 (Progressing)" in record["decisions"][part]["reason"]
    assert [d["step"] for d in record["decisions"][:part] if d["kind"] == "step"] == [0, 1]
    assert all(d["step"] >= 1 for d in record["decisions"][part:])
    reasons = step_reasons(record)
    assert len(reasons) == len(set(reasons))  # no step entered twice
    # the resumed part did not scale the canary to 25% again: its first change is the promotion's
    green = [c["new"] for c in record["changes"] if c["object"] == "Deployment/web-green" and c["field"] == "spec.replicas"]
    assert green and 1 not in green, record["changes"]
    assert record["run"]["target"]["resumed"] is True
    # the trail: the killed part reads interrupted
    listing = subprocess.run([sys.executable, "-m", "deploysim", "runs", "list", str(app.record_dir / "first")],
                             capture_output=True, text=True, timeout=60, check=False)
    assert "interrupted" in listing.stdout, listing.stdout + listing.stderr
    print(f"\nkilled mid-step, resumed: promoted {recovered:.0f}s after the kill (lease 30s)")


# --- kube-apiserver stopped for 30 s ------------------------------------------------------


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[tuple[localcluster.ClusterInfo, client.ApiClient]]:
    """A control plane of this module's own: its kube-apiserver is stopped and started again.

    Its node lifecycle controller waits 2 minutes, not 50 s, before it takes a node whose
    lease was not renewed for NotReady (``--node-monitor-grace-period``): the KWOK nodes
    cannot renew theirs while the API server is gone, and on a busy machine they renew late
    after it is back; nodes marked NotReady take their pods out of rotation, which is the
    node lifecycle's test, not this one's."""
    from deploysim.kube import gateway

    name = f"dsk-outage-{os.environ['DEPLOYSIM_TEST_CLUSTERS']}"
    localcluster.down(name)
    info = localcluster.up(nodes=2, prometheus=True, name=name, scrape_interval="1s", timeout=180,
                           component_args={"kube-controller-manager": {"node_monitor_grace_period": "2m"}})
    try:
        admin = config.new_client_from_config(str(info.kubeconfig))
        gateway.install_crds(admin)
        yield info, admin
    finally:
        localcluster.down(name)


class StoppedApiServer:
    """Stop kube-apiserver (SIGKILL) and start it again with the same command, environment
    and folder, as a supervisor restarting it would."""

    def __init__(self, info: localcluster.ClusterInfo) -> None:
        self.info = info
        self.pid_file = info.state_dir / "pids" / "kube-apiserver.pid"
        self.proc = psutil.Process(int(self.pid_file.read_text()))  # this one, or the last restart's
        self.restarted: subprocess.Popen | None = None

    def stop(self) -> None:
        self.argv, self.cwd, self.env = self.proc.cmdline(), self.proc.cwd(), self.proc.environ()
        self.proc.kill()
        self.proc.wait(30)

    def start(self) -> None:
        log = Path(self.info.processes["kube-apiserver"].log).open("a")
        self.restarted = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.proc = psutil.Process(self.restarted.pid)
        self.pid_file.write_text(str(self.restarted.pid))
        admin = config.new_client_from_config(str(self.info.kubeconfig))
        wait_for(lambda: client.VersionApi(admin).get_code(), 60, "kube-apiserver to answer again")


@pytest.mark.parametrize(("limit", "outcome"), [("2m", "promoted"), ("10s", "rolled_back")],
                         ids=["waits-and-continues", "rolls-back-past-its-limit"])
def test_kube_apiserver_stopped_for_30s_mid_rollout(own_cluster, tmp_path, limit, outcome):
    # the progress deadline outlasts the outage: the rollout itself is not what fails
    app = App(own_cluster, tmp_path, "canary", router=False, candidate={},
              knobs={"progress_deadline_seconds": "5m"})
    try:
        proc, log = start(app, "run", "-p", "api_outage_seconds", limit,
                          "-y", "{weights: [25, 50], step_pause: 20s}")
        wait_for(lambda: stored(app)["status"]["step"] == 1 and stored(app)["status"]["weight"] == 25, 120,
                 "the run to pause at 25%")
        server = StoppedApiServer(app.info)
        server.stop()
        stopped_at = time.monotonic()
        wait_for(lambda: time.monotonic() - stopped_at >= 30, 60, "30 s")
        server.start()
        back_at = time.monotonic()
        code = finish(proc, timeout=300)
        done_at = time.monotonic()
        record = record_of(app, "run")
        assert record["summary"]["outcome"] == outcome, log.read_text()[-3000:]
        kinds = [d["kind"] for d in record["decisions"]]
        assert "outage" in kinds and "recovered" in kinds
        outage = record["run"]["target"]["outages"][0]
        assert 25 <= outage["seconds"] <= 60 + 2 * 30, outage  # about the 30 s the API was gone
        # nothing was changed while the API was out of reach: every change is before or after it
        dark = (outage["start"], outage["end"])
        assert not [c for c in record["changes"] if dark[0] < c["at"] < dark[1]]
        if outcome == "promoted":
            assert code == 0
            assert_candidate_serves_all(app)
            assert outage["rolled_back_for_it"] is False
            # the steps after the outage happened after it answered
            later = [d for d in record["decisions"] if d["kind"] == "step" and d["step"] >= 2]
            assert later and all(d["at"] >= dark[1] for d in later)
        else:
            assert code != 0
            assert_stable_serves_all(app)
            assert outage["rolled_back_for_it"] is True
            abort = next(d for d in record["decisions"] if d["kind"] == "abort")
            assert abort["reason"].startswith("the Kubernetes API did not answer for")
            assert abort["at"] >= dark[1]
        print(f"\nkube-apiserver stopped 30s, api_outage_seconds={limit}: {outcome}; the run went on "
              f"{outage['end'] - outage['start']:.0f}s after it stopped, ended {done_at - back_at:.0f}s after "
              "the restart")
        assert httpx.get(f"{app.info.prometheus_url}/-/ready", timeout=5).status_code == 200
    finally:
        app.close()
