"""The local control plane, for real: kwokctl running etcd, kube-apiserver, controller-manager,
scheduler, KWOK and Prometheus from the binaries k8s/build.sh built."""

from __future__ import annotations

import re
import socket
import ssl
import stat
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from kubernetes import client, config

from deploysim import cli
from deploysim.kube import localcluster

from .conftest import cluster_name, gone, processes_mentioning

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
    assert list(st["components"]) == list(localcluster.COMPONENTS)
    for component, c in st["components"].items():
        assert c["alive"] and c["healthy"], component
        assert re.match(rf"https?://{re.escape(localcluster.HOST)}:{c['port']}/", c["url"])


def test_every_component_listens_on_loopback_only(cluster):
    for component, proc in cluster.processes.items():
        listening = [
            c.laddr
            for c in psutil.Process(proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert proc.port in [a.port for a in listening], component
        assert {a.ip for a in listening} == {localcluster.HOST}, (component, listening)


def test_kubeconfig_works_for_kubectl(cluster, api, tmp_path):
    out = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}",
         f"--cache-dir={tmp_path}", "get", "nodes", "-o", "name"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    core, _ = api
    names = sorted(f"node/{n.metadata.name}" for n in core.list_node().items)
    assert sorted(out.stdout.split()) == names and len(names) == 3


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
    assert elapsed >= 4.0, elapsed  # never before the stage's delay (the wait above bounds it)
    # Each pod went Running (not ready) first, then Ready 4-5 s later.
    for pod in core.list_namespaced_pod(namespace, label_selector="app=web").items:
        started = pod.status.container_statuses[0].state.running.started_at
        ready = next(c for c in pod.status.conditions if c.type == "Ready").last_transition_time
        assert pod.status.pod_ip
        # startedAt is rewritten at the Ready step; the pod's startTime is kept from Running.
        delay = (ready - pod.status.start_time).total_seconds()
        # 4 s + up to 1 s of jitter; a loaded machine may add a few seconds, never take any off
        assert 3.5 <= delay <= 15.0, (pod.metadata.name, delay, started)


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
    # The traffic exporter is registered the same way; kwok's /metrics stands in here.
    kwok_port = cluster.processes["kwok-controller"].port
    localcluster.add_prometheus_target(cluster.name, f"127.0.0.1:{kwok_port}", {"role": "kwok"})

    def query(promql: str) -> list[dict]:
        r = httpx.get(f"{cluster.prometheus_url}/api/v1/query", params={"query": promql}, timeout=5)
        return r.json()["data"]["result"]

    def scraped():
        result = query('up{job="deploysim",role="kwok"}')
        return result and result[0]["value"][1] == "1"

    wait_for(scraped, 30, "prometheus to scrape the added target", interval=0.5)
    # The session's cluster scrapes every 1 s, as its configuration says...
    config = httpx.get(f"{cluster.prometheus_url}/api/v1/status/config", timeout=5).json()["data"]["yaml"]
    assert "scrape_interval: 1s" in config, config
    # ...and does: more than the 3 samples in 6 s a 2 s interval would give, once 6 s have passed
    first = time.time()
    wait_for(lambda: time.time() - first >= 6.5, 10, "six seconds of scrapes", interval=0.5)
    samples = query('count_over_time(up{job="deploysim",role="kwok"}[6s])')
    assert int(samples[0]["value"][1]) >= 4, samples


def test_second_up_is_refused_or_reused(cluster, capsys):
    with pytest.raises(localcluster.ClusterAlreadyRunningError, match="already running"):
        localcluster.up(nodes=3, name=cluster.name)
    same = localcluster.up(nodes=3, name=cluster.name, reuse=True)
    assert same.api_server == cluster.api_server
    assert [p.pid for p in same.processes.values()] == [p.pid for p in cluster.processes.values()]
    assert cli.main(["cluster", "up", "--name", cluster.name]) == 3  # a ClusterError
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
            == 3
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
    # Real binaries, except a kube-apiserver that tells its version (kwokctl asks) and then
    # fails as a bad flag would: etcd and the rest are running by then and must be stopped.
    for binary in localcluster.BINARIES:
        (tmp_path / binary).symlink_to(cluster.bin_dir / binary)
    (tmp_path / "kube-apiserver").unlink()
    fake = tmp_path / "kube-apiserver"
    fake.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && echo "Kubernetes {localcluster.K8S_VERSION}" && exit 0\n'
        "echo 'Error: unknown flag: --deploysim-boom' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    name = cluster_name("fail")
    with pytest.raises(localcluster.ClusterStartError) as caught:
        localcluster.up(nodes=1, name=name, bin_dir=tmp_path, timeout=60)
    # Noticed when it happens (the pid-file watch names the component), not when the start
    # runs out of time ("did not finish in time") or kwokctl gives up waiting (two minutes).
    message = str(caught.value)
    assert message.startswith("kube-apiserver exited during start-up")
    assert "deploysim-boom" in message and len(message.splitlines()) == 1
    # The logs of the failed start are kept where the message says.
    kept = localcluster.failed_logs_dir(name) / "kube-apiserver.log"
    assert str(kept) in message and "deploysim-boom" in kept.read_text()
    assert not localcluster.state_dir(name).exists()
    assert not processes_mentioning(str(localcluster.state_dir(name)))


def test_killed_component_shows_and_down_stops_everything(cluster):
    name = cluster_name("down")
    info = localcluster.up(nodes=1, name=name, timeout=120)
    assert list(info.processes) == list(localcluster.COMPONENTS[:5])
    pids = {c: p.pid for c, p in info.processes.items()}
    assert all(not gone(pid) for pid in pids.values())

    psutil.Process(pids["kube-scheduler"]).kill()
    wait_for(lambda: gone(pids["kube-scheduler"]), 10, "kube-scheduler to exit")
    st = localcluster.status(name)
    assert st["running"] is False
    assert [c for c, s in st["components"].items() if not s["alive"]] == ["kube-scheduler"]
    # Half a cluster is still that cluster: a second up is refused, not stacked on it.
    with pytest.raises(localcluster.ClusterAlreadyRunningError):
        localcluster.up(nodes=1, name=name)

    ca = ssl.create_default_context(cafile=str(info.state_dir / "pki" / "ca.crt"))
    ca.check_hostname = False  # the CA alone says whose server it is
    with socket.create_connection(("127.0.0.1", info.processes["kube-apiserver"].port), timeout=5) as sock:
        ca.wrap_socket(sock, server_hostname="127.0.0.1").close()  # this cluster's, while it runs
    assert localcluster.down(name) is True
    assert [c for c, pid in pids.items() if not gone(pid)] == []
    assert not info.state_dir.exists()
    assert not processes_mentioning(str(info.state_dir))
    # Its API port answers as this cluster no more: refused, or another program that took
    # the free number (its certificate is not signed by this cluster's CA). Listing the
    # port's listeners would test the machine: one in another container shows with no pid.
    port = info.processes["kube-apiserver"].port
    with pytest.raises(OSError):  # ConnectionRefusedError, ssl.SSLError, a timeout
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            ca.wrap_socket(sock, server_hostname="127.0.0.1").close()
    assert localcluster.down(name) is False
    assert localcluster.status(name)["running"] is False


def test_down_stops_a_half_started_cluster_by_its_pid_files(cluster):
    # As a start killed before kwokctl saved its configuration would leave it: pid files,
    # no record of ours, nothing kwokctl itself can delete.
    name = cluster_name("half")
    info = localcluster.up(nodes=1, name=name, timeout=120)
    pids = [p.pid for p in info.processes.values()]
    (info.state_dir / "deploysim.json").unlink()
    (info.state_dir / "kwok.yaml").unlink()
    assert localcluster.status(name)["running"] is False
    assert localcluster.down(name) is True
    assert [pid for pid in pids if not gone(pid)] == []
    assert not info.state_dir.exists()


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
        "pod-probe-clock",
        "pod-ready",
        "pod-serving",
        "pod-start",
    ]


def test_kwokctl_is_given_every_binary_so_it_never_downloads(tmp_path):
    import yaml

    text = localcluster._kwokctl.configuration(
        tmp_path, None, ("/usr/bin/prometheus", 9090, tmp_path / "p.yml")
    )
    options = next(yaml.safe_load_all(text))["options"]
    binaries = {k: v for k, v in options.items() if k.endswith("Binary")}
    assert binaries == {
        "etcdBinary": str(tmp_path / "etcd"),
        "kubeApiserverBinary": str(tmp_path / "kube-apiserver"),
        "kubeControllerManagerBinary": str(tmp_path / "kube-controller-manager"),
        "kubeSchedulerBinary": str(tmp_path / "kube-scheduler"),
        "kwokControllerBinary": str(tmp_path / "kwok"),
        "kubectlBinary": str(tmp_path / "kubectl"),
        "prometheusBinary": "/usr/bin/prometheus",
    }
    assert options["bindAddress"] == localcluster.HOST


def test_start_errors_are_one_readable_line():
    import doctest

    from deploysim.kube.localcluster import _kwokctl

    result = doctest.testmod(_kwokctl)
    assert (result.failed, result.attempted) == (0, 2)


def test_a_port_taken_between_pick_and_bind_is_tried_again(cluster, tmp_path):
    """kwokctl picks free ports moments before the components bind them; a cluster starting
    beside it can take one in between. That start is tried again with fresh ports after a
    random wait (here an etcd that always finds its port taken: five attempts, then one line
    saying so)."""
    for binary in localcluster.BINARIES:
        (tmp_path / binary).symlink_to(cluster.bin_dir / binary)
    (tmp_path / "etcd").unlink()
    attempts = tmp_path / "attempts"
    fake = tmp_path / "etcd"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$1" = --version ] && echo "etcd Version: 3.6.16" && exit 0\n'
        f"echo x >> {attempts}\n"
        "echo '{\"level\":\"fatal\",\"msg\":\"discovery failed\",\"error\":\"listen tcp 127.0.0.1:1: "
        "bind: address already in use\"}' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    name = cluster_name("race")
    with pytest.raises(localcluster.ClusterStartError) as caught:
        localcluster.up(nodes=1, name=name, bin_dir=tmp_path, timeout=120)
    assert "etcd exited during start-up: a port it was given was taken" in str(caught.value)
    assert len(attempts.read_text().split()) == 5
    assert not localcluster.state_dir(name).exists()
