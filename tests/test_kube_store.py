"""The run's status on the cluster: the ConfigMap, a person's marks on it, and the Lease."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from kubefake import FakeCluster
from kubernetes import client

from deploysim.controller import PAUSED, PROGRESSING
from deploysim.driver import Requests
from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.kube.store import LEASE_SECONDS, ClusterStore, LeaseHeld, holder_identity
from deploysim.observation import Decision

NS = "shop"
NAME = "deploysim-checkout"


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    return FakeCluster().install(monkeypatch)


def store(run_id: str = "run-b", saved: dict | None = None, lease_seconds: int = LEASE_SECONDS) -> ClusterStore:
    return ClusterStore(client.ApiClient(), NS, "checkout", run_id, "canary", saved=saved,
                        lease_seconds=lease_seconds)


def _writes(cluster: FakeCluster) -> list[tuple[str, str, str]]:
    return [c for c in cluster.calls if c[1] == "ConfigMap" and c[0] in ("create", "replace", "patch")]


def test_save_writes_the_status_configmap_and_load_reads_it_back(cluster: FakeCluster) -> None:
    status = {"phase": PROGRESSING, "step": 2, "weight": 25, "steps": [{"index": 0, "end": 12.5}]}
    s = store(saved={"stable_slot": "blue"})
    s.save(status)
    raw = cluster.raw("ConfigMap", NAME)
    assert raw["metadata"]["annotations"] == {n.RUN_ANNOTATION: "run-b"}
    assert (raw["data"]["run"], raw["data"]["strategy"]) == ("run-b", "canary")
    assert json.loads(raw["data"]["status"]) == status
    assert json.loads(raw["data"]["saved"]) == {"stable_slot": "blue", "elapsed": 0.0}
    loaded = store().load()
    assert json.loads(loaded["data"]["status"]) == status


def test_save_writes_only_when_the_status_or_the_clock_moved(cluster: FakeCluster) -> None:
    clock = {"t": 0.0}
    s = store()
    s.elapsed = lambda: clock["t"]
    status = {"phase": PROGRESSING, "step": 0}
    s.save(status)
    s.save(status)  # nothing new: no write
    clock["t"] = 2.0
    s.save(status)  # the same 5 s bucket of the clock: no write
    clock["t"] = 6.0
    s.save(status)  # a resume needs the newer elapsed time
    s.save({**status, "step": 1})
    # the first write finds no ConfigMap to patch and creates it; then two patches of its own keys
    assert [c[0] for c in _writes(cluster)] == ["patch", "create", "patch", "patch"]
    assert json.loads(cluster.raw("ConfigMap", NAME)["data"]["saved"])["elapsed"] == 6.0


def test_load_without_a_configmap_is_none(cluster: FakeCluster) -> None:
    assert store().load() is None
    assert store().requests(PAUSED) == Requests()


def _mark(cluster: FakeCluster, **marks: str) -> None:
    cluster.raw("ConfigMap", NAME)["metadata"].setdefault("annotations", {}).update(marks)


def test_a_promote_mark_is_taken_once_and_only_while_paused(cluster: FakeCluster) -> None:
    s = store()
    s.save({"phase": PROGRESSING})
    _mark(cluster, **{n.PROMOTE_ANNOTATION: "true"})
    assert [s.requests(phase) for phase in (PROGRESSING, PROGRESSING, PAUSED, PAUSED)] == [
        Requests(), Requests(), Requests(promote=True), Requests()]
    assert n.PROMOTE_ANNOTATION not in cluster.raw("ConfigMap", NAME)["metadata"]["annotations"]


@pytest.mark.parametrize("phase", [PROGRESSING, PAUSED])
def test_an_abort_mark_is_taken_in_any_phase_once(cluster: FakeCluster, phase: str) -> None:
    s = store()
    s.save({"phase": phase})
    _mark(cluster, **{n.ABORT_ANNOTATION: "true"})
    assert [s.requests(phase), s.requests(phase)] == [Requests(abort=True), Requests()]
    assert cluster.raw("ConfigMap", NAME)["metadata"]["annotations"] == {n.RUN_ANNOTATION: "run-b"}


@pytest.mark.parametrize("mark", [n.PROMOTE_ANNOTATION, n.ABORT_ANNOTATION])
def test_a_mark_left_from_an_earlier_run_is_not_taken_by_the_next(cluster: FakeCluster, mark: str) -> None:
    earlier = store("run-a")
    earlier.save({"phase": "Healthy"})
    _mark(cluster, **{mark: "true"})  # given after run-a ended: nobody's mark for run-b
    later = store("run-b")
    later.lock()
    later.clear_marks()
    later.save({"phase": PAUSED})  # its writes patch their own keys and keep what they do not write
    assert later.requests(PAUSED) == Requests()
    assert cluster.raw("ConfigMap", NAME)["metadata"]["annotations"] == {n.RUN_ANNOTATION: "run-b"}
    # a mark given to run-b itself is taken
    _mark(cluster, **{mark: "true"})
    assert later.requests(PAUSED) == Requests(**{"promote" if mark == n.PROMOTE_ANNOTATION else "abort": True})


@pytest.mark.parametrize("value", ["false", "yes", ""])
def test_only_true_is_a_mark(cluster: FakeCluster, value: str) -> None:
    s = store()
    s.save({"phase": PAUSED})
    _mark(cluster, **{n.PROMOTE_ANNOTATION: value, n.ABORT_ANNOTATION: value})
    assert s.requests(PAUSED) == Requests()


def _lease(cluster: FakeCluster, holder: str, renewed_ago: float) -> None:
    renewed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=renewed_ago)
    cluster.add(client.V1Lease(metadata=client.V1ObjectMeta(name=NAME), spec=client.V1LeaseSpec(
        holder_identity=holder, lease_duration_seconds=LEASE_SECONDS, renew_time=renewed, acquire_time=renewed)))


def _holder(cluster: FakeCluster) -> str | None:
    return cluster.raw("Lease", NAME)["spec"].get("holderIdentity")


def test_a_lock_is_refused_while_another_run_holds_a_fresh_lease(cluster: FakeCluster) -> None:
    _lease(cluster, "run-a", renewed_ago=LEASE_SECONDS - 10)
    with pytest.raises(LeaseHeld, match=r"run run-a is driving this service \(Lease shop/deploysim-checkout, "
                                        r"renewed 50s ago\); .* expire in 10s"):
        store("run-b").lock()
    assert _holder(cluster) == "run-a"


def test_a_resumed_run_is_a_new_holder_and_waits_for_the_killed_ones_lease(cluster: FakeCluster) -> None:
    # the same run id driven by another process (the killed one): refused until it expires
    _lease(cluster, "run-b pid 1 on elsewhere", renewed_ago=LEASE_SECONDS - 20)
    with pytest.raises(LeaseHeld, match="run run-b pid 1 on elsewhere is driving"):
        store("run-b").lock()


def test_a_run_whose_lease_was_taken_stops_before_observing_or_writing(cluster: FakeCluster) -> None:
    s = store("run-b")
    s.lock()
    _lease(cluster, "run-c pid 2 on elsewhere", renewed_ago=0)  # taken while run-b was out of reach
    before = list(cluster.calls)
    with pytest.raises(LeaseHeld, match="run run-c pid 2 on elsewhere took over"):
        s.requests(PROGRESSING)  # the first call of every pass of the drive loop
    assert [c for c in cluster.calls[len(before):] if c[1] != "Lease"] == []  # read nothing else
    with pytest.raises(KeyError):
        cluster.raw("ConfigMap", NAME)
    s.unlock()  # not its lease any more: left to its holder
    assert _holder(cluster) == "run-c pid 2 on elsewhere"


def test_a_shorter_lease_is_written_and_expires_sooner(cluster: FakeCluster) -> None:
    s = store("run-b", lease_seconds=10)
    s.lock()
    assert cluster.raw("Lease", NAME)["spec"]["leaseDurationSeconds"] == 10
    renewed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=11)
    cluster.raw("Lease", NAME)["spec"]["renewTime"] = renewed.isoformat()
    store("run-c").lock()
    assert _holder(cluster) == holder_identity("run-c")


def test_decisions_are_kept_with_the_status_for_a_resume(cluster: FakeCluster) -> None:
    s = store("run-b")
    s.decisions = [Decision(0.0, 0, "start", "canary rollout"), Decision(5.0, 1, "step", "step 1: SetWeight 25")]
    s.lock()
    s.save({"phase": PROGRESSING, "step": 1})
    again = store("run-b")
    assert again.stored_decisions(again.load()) == s.decisions


@pytest.mark.parametrize(("holder", "renewed_ago"), [
    ("run-a", LEASE_SECONDS + 10),  # expired: taken over
    (holder_identity("run-b"), 1.0),  # this process's own lease
    ("", 1.0),  # released by unlock
])
def test_a_lock_takes_an_expired_own_or_free_lease(cluster: FakeCluster, holder: str, renewed_ago: float) -> None:
    _lease(cluster, holder, renewed_ago)
    store("run-b").lock()
    assert _holder(cluster) == holder_identity("run-b")
    renewed = dt.datetime.fromisoformat(cluster.raw("Lease", NAME)["spec"]["renewTime"])
    assert (dt.datetime.now(dt.UTC) - renewed).total_seconds() < 5


def test_a_first_lock_creates_the_lease_and_unlock_frees_it(cluster: FakeCluster) -> None:
    s = store("run-b")
    s.lock()
    assert _holder(cluster) == holder_identity("run-b")
    with pytest.raises(ClusterError, match="run run-b pid .* is driving"):
        store("run-c").lock()
    s.unlock()
    assert _holder(cluster) is None
    store("run-c").lock()
    assert _holder(cluster) == holder_identity("run-c")


def test_each_pass_renews_the_lease_first(cluster: FakeCluster) -> None:
    _lease(cluster, holder_identity("run-b"), renewed_ago=LEASE_SECONDS - 1)
    store("run-b").requests(PROGRESSING)
    renewed = cluster.raw("Lease", NAME)["spec"]["renewTime"]
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(renewed.replace("Z", "+00:00"))
    assert age.total_seconds() < 5


@pytest.mark.parametrize("text", [
    "apiVersion: v1\nclusters: [\n",  # cut short: not YAML
    "apiVersion: v1\nkind: Config\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\ncurrent-context: a\n",
], ids=["not-yaml", "context-without-its-cluster"])
def test_a_damaged_kubeconfig_is_a_cluster_error_naming_the_file(tmp_path, text: str) -> None:
    from deploysim.kube import api_client

    path = tmp_path / "kubeconfig"
    path.write_text(text)
    with pytest.raises(ClusterError, match=f"cannot read kubeconfig {path}"):
        api_client(str(path), None)
