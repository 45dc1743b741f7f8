"""Driving ``kwokctl`` (binary runtime): the configuration we give it and the commands we run.

kwokctl writes the PKI and kubeconfig, picks free ports, starts every component detached
with a pid file and a log, and stops them again (``create cluster``, ``scale node``,
``delete cluster``; see sigs.k8s.io/kwok ``pkg/kwokctl/runtime/binary``). It is given every
binary's path, so it never downloads anything. What it does not do, and this module adds:
notice at once that a component died during start-up (kwokctl only warns after two
minutes), and name the log line that says why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import yaml

from ._paths import HOST, K8S_VERSION, ClusterStartError, kwok_workdir, stage_files, state_dir
from ._processes import alive, create_time, read_pid
from ._state import ProcessInfo

#: kwokctl's component names, in its start order.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "prometheus",
)
#: The KwokctlConfiguration option that holds each component's port.
_PORT_OPTION = {
    "etcd": "etcdPort",
    "kube-apiserver": "kubeApiserverPort",
    "kube-controller-manager": "kubeControllerManagerPort",
    "kube-scheduler": "kubeSchedulerPort",
    "kwok-controller": "kwokControllerPort",
    "prometheus": "prometheusPort",
}
_HEALTH_PATH = {
    "etcd": "http://{}/health",
    "kube-apiserver": "https://{}/readyz",
    "kube-controller-manager": "https://{}/healthz",
    "kube-scheduler": "https://{}/healthz",
    "kwok-controller": "http://{}/healthz",
    "prometheus": "http://{}/-/ready",
}
#: The file kwokctl keeps a cluster's configuration in (consts.ConfigName).
CLUSTER_CONFIG = "kwok.yaml"
#: Our input to ``kwokctl --config``; any name but kwok.yaml, which marks a created cluster.
INPUT_CONFIG = "deploysim-kwokctl.yaml"


def _patch(component: str, **args: str) -> dict:
    return {
        "name": component,
        "extraArgs": [{"key": k.replace("_", "-"), "value": v} for k, v in args.items()],
    }


def configuration(
    bins: Path,
    api_port: int | None,
    prometheus: tuple[str, int, Path] | None,
    component_args: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """The ``--config`` documents: kwokctl options, kwok options and our KWOK stages.

    ``prometheus`` is (binary, port, configuration file) or None; ``component_args`` more
    flags per component (``{"kube-controller-manager": {"node_monitor_grace_period": "2m"}}``),
    over ours.
    """
    options: dict[str, object] = {
        "runtime": "binary",
        "bindAddress": HOST,
        "kubeVersion": K8S_VERSION,
        "etcdBinary": str(bins / "etcd"),
        "kubeApiserverBinary": str(bins / "kube-apiserver"),
        "kubeControllerManagerBinary": str(bins / "kube-controller-manager"),
        "kubeSchedulerBinary": str(bins / "kube-scheduler"),
        "kwokControllerBinary": str(bins / "kwok"),
        "kubectlBinary": str(bins / "kubectl"),
        # One user, many requests during scale tests: no client QPS caps, no flow control.
        "disableQPSLimits": True,
        "quietPull": True,
    }
    if api_port:
        options["kubeApiserverPort"] = api_port
    patches = [
        # Throw-away data: skip fsync, which dominates etcd latency on small disks.
        _patch("etcd", unsafe_no_fsync="true"),
        # The kubernetes Service cannot point at a loopback address; nothing in-cluster needs it.
        _patch("kube-apiserver", endpoint_reconciler_type="none"),
        _patch(
            "kube-controller-manager",
            leader_elect="false",
            concurrent_deployment_syncs="10",
            concurrent_replicaset_syncs="10",
            # Failed (churned) pods are deleted once more than this many pile up.
            terminated_pod_gc_threshold="50",
        ),
        # A scheduler that loses its leader lease (an API restarted for longer than the
        # renew deadline) exits; with one scheduler there is nothing to elect.
        _patch("kube-scheduler", leader_elect="false"),
        # INFO logs every pod patch and lease renewal: megabytes per thousand pods.
        _patch("kwok-controller", v="WARN"),
    ]
    for component, args in (component_args or {}).items():
        known = next((p for p in patches if p["name"] == component), None)
        extra = _patch(component, **args)["extraArgs"]
        if known is None:
            patches.append({"name": component, "extraArgs": extra})
        else:
            keys = {a["key"] for a in extra}
            known["extraArgs"] = [a for a in known["extraArgs"] if a["key"] not in keys] + extra
    if prometheus:
        binary, port, config = prometheus
        options["prometheusBinary"] = binary
        options["prometheusPort"] = port
        patches.append(
            {
                "name": "prometheus",
                "extraArgs": [
                    {"key": "config.file", "value": str(config), "override": True},
                    {"key": "storage.tsdb.path", "value": str(config.parent / "data")},
                    {"key": "storage.tsdb.retention.time", "value": "1d"},
                    {"key": "log.level", "value": "warn"},
                ],
            }
        )
    docs = [
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": options,
            "componentsPatches": patches,
        },
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            "options": {
                "podPlayStageParallelism": 16,
                "nodePlayStageParallelism": 8,
                "nodeLeaseParallelism": 8,
            },
        },
    ]
    texts = [yaml.safe_dump(d, sort_keys=False) for d in docs]
    # Supplying any Stage drops all of KWOK's defaults: ours include the node stages.
    texts += [p.read_text() for p in stage_files()]
    return "---\n".join(t.strip() + "\n" for t in texts)


def _env(bins: Path) -> dict[str, str]:
    # A KWOK_* variable of the user's would override our configuration.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWOK_")}
    env["KWOK_WORKDIR"] = str(kwok_workdir())
    # kwokctl looks kubectl up on PATH before it would download one.
    env["PATH"] = f"{bins}{os.pathsep}{env.get('PATH', '')}"
    # kubectl's discovery cache goes with our files, not into ~/.kube.
    env["KUBECACHEDIR"] = str(kwok_workdir() / "kube-cache")
    return env


def _argv(bins: Path, name: str, *args: str) -> list[str]:
    return [str(bins / "kwokctl"), f"--name={name}", *args]


_ERROR_LINE = re.compile(r"error|fatal|fail|panic|unknown flag|in use|denied|invalid", re.I)


def _readable(line: str) -> str:
    """kwokctl logs JSON when not on a terminal: keep its message and error, on one line."""
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return line
        if isinstance(entry, dict) and "msg" in entry:
            err = str(entry.get("err", "")).strip()
            line = f"{entry['msg']}: {err}" if err else str(entry["msg"])
    return "; ".join(part.strip() for part in line.splitlines() if part.strip())


def reason(text: str) -> str:
    """The line of a log that most likely says why something stopped.

    >>> reason('starting\\nError: unknown flag: --boom\\nbye')
    'Error: unknown flag: --boom'
    >>> reason('{"level":"ERROR","msg":"Execute exit","err":"cmd wait: exit status 1\\\\nno"}')
    'Execute exit: cmd wait: exit status 1; no'
    """
    lines = [_readable(line.strip()) for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines[-40:]):
        if _ERROR_LINE.search(line):
            return line[:400]
    return lines[-1][:400] if lines else "(empty log)"


def log_reason(path: str | Path) -> str:
    try:
        return reason(Path(path).read_text(errors="replace"))
    except OSError:
        return "(no log)"


def _dead_component(state: Path) -> str | None:
    for pid_file in sorted((state / "pids").glob("*.pid")):
        pid = read_pid(pid_file)
        if pid is not None and not alive(pid):
            return pid_file.stem
    return None


def _run(bins: Path, name: str, args: list[str], deadline: float, what: str) -> None:
    """Run a kwokctl command; while it runs, fail at once if a component has died."""
    state = state_dir(name)
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(  # noqa: S603
            _argv(bins, name, *args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(bins),
            cwd=kwok_workdir(),
        )
        try:
            while proc.poll() is None:
                dead = _dead_component(state)
                if dead is not None:
                    log = state / "logs" / f"{dead}.log"
                    text = log.read_text(errors="replace") if log.exists() else ""
                    # a port picked free was bound by someone else first: say so, so up() retries
                    why = ("a port it was given was taken (address already in use)"
                           if "address already in use" in text else log_reason(log))
                    raise ClusterStartError(f"{dead} exited during start-up: {why} (log {log})")
                if time.monotonic() > deadline:
                    raise ClusterStartError(f"{what} did not finish in time")
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            out.seek(0)
            raise ClusterStartError(
                f"{what} failed: {reason(out.read().decode(errors='replace'))}"
            )


def create(name: str, bins: Path, deadline: float) -> None:
    """``kwokctl create cluster`` from the input configuration in the cluster's folder."""
    config = state_dir(name) / INPUT_CONFIG
    _run(
        bins,
        name,
        # --kubeconfig= keeps kwokctl from adding a context to the user's ~/.kube/config.
        [f"--config={config}", "create", "cluster", "--kubeconfig="],
        deadline,
        "kwokctl create cluster",
    )


def scale_nodes(name: str, bins: Path, nodes: int, deadline: float) -> None:
    """``kwokctl scale node``: create nodes from kwokctl's node template until there are ``nodes``."""
    _run(
        bins,
        name,
        ["scale", "node", f"--replicas={nodes}"],
        deadline,
        "kwokctl scale node",
    )


def delete(name: str, bins: Path) -> str | None:
    """``kwokctl delete cluster``: SIGKILL every component and remove the folder; error or None."""
    # Its --kubeconfig may not be empty: name the cluster's own, removed with the folder anyway,
    # so the user's ~/.kube/config is never touched.
    kubeconfig = state_dir(name) / "kubeconfig.yaml"
    out = subprocess.run(  # noqa: S603
        _argv(bins, name, "delete", "cluster", f"--kubeconfig={kubeconfig}"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_env(bins),
        cwd=kwok_workdir(),
        timeout=60,
        check=False,
    )
    return None if out.returncode == 0 else reason(out.stdout + out.stderr)


def cluster_config(name: str) -> dict:
    """The KwokctlConfiguration kwokctl saved for the cluster (ports, components)."""
    path = state_dir(name) / CLUSTER_CONFIG
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "KwokctlConfiguration":
            return doc
    raise ClusterStartError(f"{path} has no KwokctlConfiguration")


def processes(name: str, config: dict) -> dict[str, ProcessInfo]:
    """Each running component: pid (from kwokctl's pid file), port, health URL, log, argv."""
    state = state_dir(name)
    options = config.get("options", {})
    found: dict[str, ProcessInfo] = {}
    for component in config.get("components", []):
        cname = component["name"]
        pid = read_pid(state / "pids" / f"{cname}.pid")
        if pid is None:
            continue
        port = int(options.get(_PORT_OPTION.get(cname, ""), 0) or 0)
        url = _HEALTH_PATH[cname].format(f"{HOST}:{port}") if cname in _HEALTH_PATH else ""
        found[cname] = ProcessInfo(
            component=cname,
            pid=pid,
            port=port,
            url=url,
            log=str(state / "logs" / f"{cname}.log"),
            argv=[component.get("binary", cname), *component.get("args", [])],
            create_time=create_time(pid),
        )
    order = {c: i for i, c in enumerate(COMPONENTS)}
    return dict(sorted(found.items(), key=lambda kv: order.get(kv[0], len(order))))


def pids(name: str) -> list[int]:
    """The pids in the cluster's pid files, whether or not they still run."""
    found = [read_pid(p) for p in (state_dir(name) / "pids").glob("*.pid")]
    return [p for p in found if p is not None]
