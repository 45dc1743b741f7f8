"""Pod faults on a real control plane: a candidate that fails after it became ready, and a
node lost in the middle of a rollout.

The first runs the canary runbook on a candidate whose pods carry ``deploysim.io/fail-after``
(KWOK's pod-fail stage): each turns Ready, then Failed, and its ReplicaSet replaces it. The
second adds a KWOK node of its own, spreads the app over it, deletes it mid-rollout and
checks the rollout still ends promoted. Both print what they measured.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.kube import naming as n

pytestmark = pytest.mark.cluster

from cluster_app import CANDIDATE, REPLICAS, STABLE, App, decision_sequence  # noqa: E402

CANARY = ["-p", "image", CANDIDATE, "-p", "traffic_router", "True", "-y", "{weights: [25], step_pause: 8s}"]
ROLLING = ["-p", "image", CANDIDATE, "-y", "{pod: {startup: 3s}}"]
FAIL_AFTER = 6.0


def wait_for(what: str, check: Callable[[], Any], deadline: float = 120.0, every: float = 0.2) -> Any:
    """``check()``'s first truthy answer, polled until ``deadline`` seconds have passed."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        answer = check()
        if answer:
            return answer
        time.sleep(every)
    raise AssertionError(f"not within {deadline:g} s: {what}")


def _pods(app: App) -> list[client.V1Pod]:
    return client.CoreV1Api(app.admin).list_namespaced_pod(app.ns).items


def _ready(pod: client.V1Pod) -> bool:
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


# --- a candidate that fails after it became ready -------------------------------------------------


def test_a_candidate_that_fails_after_becoming_ready_is_rolled_back(make_app):
    app = make_app("canary", router=True, candidate={"fail_after": f"{FAIL_AFTER:g}s"})
    failed: dict[str, client.V1Pod] = {}
    stop = threading.Event()

    def watch() -> None:  # every candidate pod that reached phase Failed, before it is cleaned up
        while not stop.is_set():
            for p in _pods(app):
                if p.spec.containers[0].image == CANDIDATE and p.status.phase == "Failed":
                    failed.setdefault(p.metadata.name, p)
            time.sleep(0.3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        proc, record = app.run("canary", *CANARY)
    finally:
        stop.set()
        watcher.join()

    assert proc.returncode != 0
    assert record["summary"]["outcome"] == "rolled_back"
    abort = next(d for d in record["decisions"] if d["kind"] == "abort")
    # caught by the analysis: while a failed pod's replacement starts, the 25% the route sends
    # to the candidate finds no ready endpoint and fails, well above the check's 5%
    assert abort["reason"].startswith("analysis") and "error_rate" in abort["reason"], abort
    assert "ProgressDeadlineExceeded" not in abort["reason"]
    rates = [d.get("values", {}).get("error_rate") for d in record["decisions"] if d["kind"] == "measure"]
    assert any(r is not None and r > 0.05 for r in rates), rates
    assert record["summary"]["rollout_attributable_failures"] > 0

    # the pods did what KWOK's pod-fail stage says: Ready, then Failed with exit code 1
    assert failed, "no candidate pod reached phase Failed"
    for p in failed.values():
        conditions = {c.type: c for c in p.status.conditions or []}
        assert conditions["Ready"].status == "False" and conditions["Ready"].reason == "PodFailed"
        assert p.status.container_statuses[0].state.terminated.exit_code == 1
        assert p.metadata.annotations["deploysim.io/fail-after"] == f"{FAIL_AFTER * 1000:.0f}ms"

    # afterwards the stable version serves everything, read from the cluster
    serving = app.serving()
    assert serving.get(STABLE) == REPLICAS and serving.get(CANDIDATE, 0) == 0, serving
    assert app.stable_slot() == "blue" and app.deployment("web-green").spec.replicas == 0
    route = client.CustomObjectsApi(app.admin).get_namespaced_custom_object(
        n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, app.ns, n.HTTPROUTE_PLURAL, "web")
    assert {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]} == {"web-blue": 100, "web-green": 0}

    # the rehearsal of the same runbook catches it the same way
    _, sim = app.run("canary", *CANARY, target="sim")
    assert sim["summary"]["outcome"] == "rolled_back"
    assert decision_sequence(sim) == decision_sequence(record)
    sim_abort = next(d for d in sim["decisions"] if d["kind"] == "abort")
    assert sim_abort["reason"].split(":")[0] == abort["reason"].split(":")[0]
    summary = record["summary"]
    print(f"\nfails after ready: {len(failed)} candidate pod(s) failed; aborted at {abort['at']:.1f} s "
          f"(rehearsal {sim_abort['at']:.1f} s): {abort['reason']}; detected after "
          f"{summary['time_to_detect_seconds']} s, recovered {summary['time_to_recover_seconds']} s after the abort")


# --- a node lost mid-rollout ----------------------------------------------------------------------

# a pod CIDR of its own: KWOK gives a pod an IP from its node's spec.podCIDR, and the kwokctl
# nodes of the shared cluster hold 10.0.0.0/24, 10.0.1.0/24, ...
LOST_NODE_CIDR = "10.0.250.0/24"


def _add_node(core: client.CoreV1Api, name: str) -> None:
    """A Node KWOK takes on as a kwokctl node (``--manage-all-nodes``; the annotation is what
    kwokctl's template writes) and makes Ready (stages/node-initialize.yaml)."""
    core.create_node({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name,
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
                     "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": LOST_NODE_CIDR, "podCIDRs": [LOST_NODE_CIDR]},
    })

    def ready() -> bool:
        node = core.read_node(name)
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    wait_for(f"node {name} Ready", ready, 60)


def _force_delete_pods_on(core: client.CoreV1Api, node: str) -> list[client.V1Pod]:
    """Delete every pod bound to ``node`` at once (grace 0), as the pod GC controller does to
    the pods of a node that no longer exists; return them as they were."""
    pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    for p in pods:
        try:
            core.delete_namespaced_pod(p.metadata.name, p.metadata.namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise
    return pods


def _remove_node(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_node(name)
    except ApiException as exc:
        if exc.status != 404:
            raise

    def gone() -> bool:
        try:
            core.read_node(name)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    wait_for(f"node {name} deleted", gone, 60)


def _settled(app: App, image: str) -> bool:
    """The Deployment ``web`` rolled out to ``image``: every pod of it updated and available,
    and nothing else left (no old or terminating pod)."""
    d = app.deployment("web")
    s = d.status
    pods = _pods(app)
    return (d.spec.template.spec.containers[0].image == image
            and (s.observed_generation or 0) >= d.metadata.generation
            and s.updated_replicas == s.replicas == s.available_replicas == REPLICAS
            and len(pods) == REPLICAS and all(_ready(p) for p in pods))


def test_a_node_lost_mid_rollout_is_replaced_and_the_rollout_still_promotes(cluster, make_app):
    """A KWOK node of the test's own carries one pod of each ReplicaSet; it is deleted while
    the rolling update runs (its candidate pod bound to it) and the rollout ends promoted.

    A node deleted from the API takes its pods with it: the EndpointSlice controller drops them
    at once (staging/src/k8s.io/endpointslice/reconciler.go: "skipping Pod for Service, Node not
    found") and the pod GC controller deletes them with grace 0
    (pkg/controller/podgc/gc_controller.go ``gcOrphaned`` and ``markFailedAndDeletePodWithCondition``),
    but only once the node has been missing for ``quarantineTime`` (40 s), at one of its passes
    every ``gcCheckPeriod`` (20 s): 40-80 s, longer than this rollout. The test deletes them at
    once the way the pod GC would, also because the traffic emulator reads a pod's Ready
    condition, not its node, and would count them serving until then.
    """
    _info, admin = cluster
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    node = f"lost-{uuid.uuid4().hex[:6]}"
    shared = {x.metadata.name for x in core.list_node().items}
    _add_node(core, node)
    try:
        app = make_app("rolling")
        # one pod of each ReplicaSet per node: spread on the hostname, counted per template
        # (matchLabelKeys pod-template-hash), so the stable pods and later the candidate's
        # land one on each node, this one included; set before the run, which keeps it
        selector = app.deployment("web").spec.selector.match_labels
        apps.patch_namespaced_deployment("web", app.ns, {"spec": {"template": {"spec": {
            "topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": selector}, "matchLabelKeys": ["pod-template-hash"]}]}}}})
        wait_for("the stable pods spread over the nodes", lambda: _settled(app, STABLE))
        placed = {p.spec.node_name for p in _pods(app)}
        assert placed == shared | {node}, placed  # one stable pod runs on the node to be lost

        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["proc"], result["record"] = app.run("rolling", *ROLLING)
            except BaseException as exc:  # noqa: BLE001 - raised again below, in the test's thread
                result["error"] = exc

        runner = threading.Thread(target=run, daemon=True)
        runner.start()

        def candidate_on_node() -> list[client.V1Pod]:
            if not runner.is_alive():
                return []
            return [p for p in _pods(app) if p.spec.node_name == node
                    and p.spec.containers[0].image == CANDIDATE and p.metadata.deletion_timestamp is None]

        wait_for("a candidate pod bound to the node", lambda: candidate_on_node() or not runner.is_alive(), 300)
        assert runner.is_alive(), "the rollout ended before a candidate pod was placed on the node"
        stable_left = sum(1 for p in _pods(app) if p.spec.containers[0].image == STABLE
                          and p.metadata.deletion_timestamp is None)
        lost_at = time.monotonic()
        _remove_node(core, node)
        lost = _force_delete_pods_on(core, node)
        # a pod the scheduler bound just before the node went: none may stay behind
        wait_for("no pod left on the lost node", lambda: not _force_delete_pods_on(core, node), 60)
        lost_desc = [(p.metadata.name, p.spec.containers[0].image, _ready(p)) for p in lost]
        assert any(image == CANDIDATE for _, image, _ in lost_desc), lost_desc
        assert stable_left > 0  # the loss came before the rollout was over

        def serving_again() -> bool:
            ready = [p for p in _pods(app) if _ready(p) and p.spec.node_name != node]
            return len(ready) >= REPLICAS

        wait_for("REPLICAS pods serving again", serving_again, 300)
        served_again = time.monotonic() - lost_at
        wait_for("the candidate serving all replicas", lambda: _settled(app, CANDIDATE), 300)
        rolled_out = time.monotonic() - lost_at
        runner.join(600)
        assert not runner.is_alive()
        if "error" in result:
            raise result["error"]
        proc, record = result["proc"], result["record"]
    finally:
        _remove_node(core, node)
        _force_delete_pods_on(core, node)

    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert record["summary"]["outcome"] == "promoted"
    kinds = [d["kind"] for d in record["decisions"]]
    assert kinds[0] == "start" and kinds[-1] == "promote" and "abort" not in kinds, kinds
    assert any(d["kind"] == "measure" and "Successful" in d["reason"] for d in record["decisions"])
    summary = record["summary"]
    assert {k for k, v in summary.items() if v is None} == set(summary["unknown"])
    assert summary["failed_requests"] == 0  # the other pods took the lost ones' share
    changes = record.get("changes") or []
    assert changes and all({"object", "field", "old", "new"} <= set(c) for c in changes)
    # the candidate serves with all its replicas, every one on a node that is still there
    assert _settled(app, CANDIDATE)
    serving = app.serving()
    assert serving.get(CANDIDATE) == REPLICAS and serving.get(STABLE, 0) == 0, serving
    assert {p.spec.node_name for p in _pods(app)} <= shared
    assert node not in {x.metadata.name for x in core.list_node().items}
    # what the run saw ends where the cluster does
    timeline = pd.read_csv(app.run_folder("kubernetes") / "timeline.csv")
    assert timeline["ready_candidate"].iloc[-1] == REPLICAS and timeline["pods_stable"].iloc[-1] == 0
    print(f"\nnode lost mid-rollout: lost {lost_desc}; {REPLICAS} pods serving again after "
          f"{served_again:.1f} s; the candidate serving all {REPLICAS} {rolled_out:.1f} s after the loss; "
          f"min available in the record {summary['min_available']}")
