"""The local control plane, for real: etcd, kube-apiserver, controller-manager, scheduler, KWOK."""

from __future__ import annotations

import re
import socket
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from deploysim.kube import cli, localcluster

from .conftest import cluster_name, processes_mentioning

pytestmark = pytest.mark.cluster


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def api(cluster: localcluster.ClusterInfo):
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    api_client.close()


def deployment(
    name: str, replicas: int, annotations: dict[str, str], progress_deadline: int = 600
) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "registry.local/app:1.0.0"}]},
            },
        },
    }


@pytest.fixture
def namespace(api) -> str:
    core, _ = api
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    # The service account controller creates "default" in each namespace; pods need it.
    wait_for(
        lambda: core.list_namespaced_service_account(name).items, 30, "default service account"
    )
    yield name
    core.delete_namespace(name)


def test_api_answers_and_every_node_is_ready(cluster, api):
    core, _ = api
    version = client.VersionApi(core.api_client).get_code()
    assert version.git_version == localcluster.K8S_VERSION
    nodes = core.list_node().items
    assert len(nodes) == 3
    for node in nodes:
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.metadata.name


def test_status_reports_every_component_healthy(cluster):
    st = localcluster.status(cluster.name)
    assert st["running"] and st["ready"]
    assert set(st["components"]) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "prometheus",
    }
    for component, c in st["components"].items():
        assert c["alive"] and c["healthy"], component
        assert c["url"].startswith(f"http://{localcluster.HOST}:") or c["url"].startswith(
            f"https://{localcluster.HOST}:"
        )


def test_cli_env_and_status(cluster, capsys):
    assert cli.main(["cluster", "env", "--name", cluster.name]) == 0
    out = capsys.readouterr().out
    assert f"export KUBECONFIG={cluster.kubeconfig}" in out
    assert cli.main(["cluster", "status", "--name", cluster.name]) == 0
    out = capsys.readouterr().out
    assert "running" in out and "kube-apiserver" in out


def test_deployment_becomes_available_after_the_ready_delay(api, namespace):
    core, apps = api
    start = time.monotonic()
    apps.create_namespaced_deployment(
        namespace,
        deployment("web", 3, {"deploysim.io/ready-delay": "4s", "deploysim.io/ready-jitter": "1s"}),
    )

    def available():
        d = apps.read_namespaced_deployment_status("web", namespace)
        return (d.status.available_replicas or 0) == 3

    wait_for(available, 30, "3 available replicas")
    elapsed = time.monotonic() - start
    assert 4.0 <= elapsed <= 20.0, elapsed
    # Each pod went Running (not ready) first, then Ready 4-5 s later.
    for pod in core.list_namespaced_pod(namespace, label_selector="app=web").items:
        started = pod.status.container_statuses[0].state.running.started_at
        ready = next(c for c in pod.status.conditions if c.type == "Ready").last_transition_time
        assert pod.status.pod_ip
        # startedAt is rewritten at the Ready step; the pod's startTime is kept from Running.
        delay = (ready - pod.status.start_time).total_seconds()
        assert 3.0 <= delay <= 8.0, (pod.metadata.name, delay, started)


def test_never_ready_deployment_exceeds_its_progress_deadline(api, namespace):
    _, apps = api
    apps.create_namespaced_deployment(
        namespace,
        deployment("stuck", 2, {"deploysim.io/never-ready": "true"}, progress_deadline=10),
    )

    def progressing_false():
        d = apps.read_namespaced_deployment_status("stuck", namespace)
        for c in d.status.conditions or []:
            if c.type == "Progressing" and c.status == "False":
                return c
        return None

    cond = wait_for(progressing_false, 45, "Progressing=False", interval=0.5)
    assert cond.reason == "ProgressDeadlineExceeded"
    d = apps.read_namespaced_deployment_status("stuck", namespace)
    assert (d.status.ready_replicas or 0) == 0
    assert d.status.replicas == 2


def test_churn_pod_fails_and_is_replaced(api, namespace):
    core, apps = api
    apps.create_namespaced_deployment(
        namespace,
        deployment(
            "churn", 1, {"deploysim.io/ready-delay": "500ms", "deploysim.io/fail-after": "2s"}
        ),
    )
    seen: set[str] = set()
    failed: set[str] = set()

    def replaced():
        for pod in core.list_namespaced_pod(namespace, label_selector="app=churn").items:
            seen.add(pod.metadata.uid)
            if pod.status.phase == "Failed":
                failed.add(pod.metadata.uid)
        return failed and len(seen) >= 2

    wait_for(replaced, 40, "a failed pod and its replacement", interval=0.3)
    failed_pod = next(
        p
        for p in core.list_namespaced_pod(namespace, label_selector="app=churn").items
        if p.metadata.uid in failed
    )
    assert failed_pod.status.container_statuses[0].state.terminated.exit_code == 1


def test_prometheus_answers_and_scrapes_added_targets(cluster):
    assert cluster.prometheus_url
    r = httpx.get(
        f"{cluster.prometheus_url}/api/v1/query", params={"query": "vector(1)"}, timeout=5
    )
    assert r.status_code == 200 and r.json()["status"] == "success"
    # Later code registers the traffic exporter the same way; kwok's /metrics stands in here.
    kwok_port = cluster.processes["kwok"].port
    localcluster.add_prometheus_target(cluster.name, f"127.0.0.1:{kwok_port}", {"role": "kwok"})

    def scraped():
        r = httpx.get(
            f"{cluster.prometheus_url}/api/v1/query",
            params={"query": 'up{job="deploysim"}'},
            timeout=5,
        )
        result = r.json()["data"]["result"]
        return result and result[0]["value"][1] == "1" and result[0]["metric"].get("role") == "kwok"

    wait_for(scraped, 30, "prometheus to scrape the added target", interval=0.5)


def test_second_up_is_refused_or_reused(cluster, capsys):
    with pytest.raises(localcluster.ClusterAlreadyRunningError, match="already running"):
        localcluster.up(nodes=3, name=cluster.name)
    same = localcluster.up(nodes=3, name=cluster.name, reuse=True)
    assert same.api_server == cluster.api_server
    assert [p.pid for p in same.processes.values()] == [p.pid for p in cluster.processes.values()]
    assert cli.main(["cluster", "up", "--name", cluster.name]) == 1
    err = capsys.readouterr().err.strip()
    assert "already running" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_taken_port_is_named_and_nothing_starts(cluster, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(
            localcluster.ClusterStartError, match=rf"port 127\.0\.0\.1:{port} .*in use"
        ):
            localcluster.up(nodes=1, name=cluster_name("port"), api_port=port)
        assert (
            cli.main(["cluster", "up", "--name", cluster_name("port"), "--api-port", str(port)])
            == 1
        )
    assert "already in use" in capsys.readouterr().err
    assert not localcluster.state_dir(cluster_name("port")).exists()
    assert not processes_mentioning(cluster_name("port"))


def test_missing_binary_is_named(tmp_path):
    with pytest.raises(
        localcluster.ClusterStartError, match=r"missing binaries in .*: etcd, kube-apiserver"
    ):
        localcluster.up(nodes=1, name=cluster_name("nobin"), bin_dir=tmp_path)
    assert not localcluster.state_dir(cluster_name("nobin")).exists()


def test_component_dying_at_start_stops_what_started(cluster, tmp_path):
    # Real binaries, except a kube-apiserver that fails as a bad flag would: etcd is
    # already up by then and must be stopped again.
    for binary in localcluster.BINARIES:
        (tmp_path / binary).symlink_to(cluster.bin_dir / binary)
    (tmp_path / "kube-apiserver").unlink()
    fake = tmp_path / "kube-apiserver"
    fake.write_text("#!/bin/sh\necho 'Error: unknown flag: --deploysim-boom' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    name = cluster_name("fail")
    with pytest.raises(localcluster.ClusterStartError) as caught:
        localcluster.up(nodes=1, name=name, bin_dir=tmp_path, timeout=30)
    message = str(caught.value)
    assert message.startswith("kube-apiserver exited during start-up")
    assert "deploysim-boom" in message and len(message.splitlines()) == 1
    # The logs of the failed start are kept where the message says.
    kept = localcluster.failed_logs_dir(name) / "kube-apiserver.log"
    assert str(kept) in message and "deploysim-boom" in kept.read_text()
    assert not localcluster.state_dir(name).exists()
    assert not processes_mentioning(str(localcluster.state_dir(name)))


def test_down_stops_everything_and_removes_state(cluster):
    name = cluster_name("down")
    info = localcluster.up(nodes=1, name=name, timeout=90)
    pids = [p.pid for p in info.processes.values()]
    assert len(pids) == 5
    assert localcluster.down(name) is True
    for pid in pids:
        stat_file = Path(f"/proc/{pid}/stat")
        assert not stat_file.exists() or re.search(r"\) Z ", stat_file.read_text()), pid
    assert not info.state_dir.exists()
    assert not processes_mentioning(str(info.state_dir))
    assert localcluster.down(name) is False
    assert localcluster.status(name)["running"] is False


def test_launcher_and_build_script_agree_on_the_version():
    script = Path(__file__).resolve().parents[2] / "k8s" / "build.sh"
    match = re.search(r'^K8S_VERSION="(v[0-9.]+)"', script.read_text(), re.M)
    assert match and match.group(1) == localcluster.K8S_VERSION


def test_every_pod_stage_is_shipped():
    names = sorted(p.stem for p in localcluster.stage_files())
    assert names == [
        "node-heartbeat",
        "node-initialize",
        "pod-delete",
        "pod-fail",
        "pod-ready",
        "pod-start",
    ]
