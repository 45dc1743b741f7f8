"""up, down, status: a kwokctl cluster with KWOK nodes, ready for pods, and gone again."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from deploysim.errors import ClusterError

from . import _kwokctl, _prometheus
from ._paths import BINARIES, HOST, K8S_VERSION, ClusterStartError, default_bin_dir, state_dir
from ._processes import is_ours, kill, mentioning, wait_gone
from ._state import (
    ClusterAlreadyRunningError,
    ClusterInfo,
    ClusterNotRunningError,
    keep_logs,
    load,
    locked,
    save,
)

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


# --------------------------------------------------------------------------- ports, health


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _check_port(port: int, component: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As Go servers do: a port in TIME_WAIT is free, only a bound one is taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as e:
            raise ClusterStartError(
                f"port {HOST}:{port} for {component} is already in use ({e.strerror}); "
                "pick another port or stop what holds it"
            ) from None


def _ssl_context(sd: Path, verify: bool) -> ssl.SSLContext:
    pki = sd / "pki"
    if verify:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def _healthy(info: ClusterInfo, component: str) -> bool:
    url = info.processes[component].url
    if not url:
        return False
    ctx = None
    if url.startswith("https"):
        ctx = _ssl_context(info.state_dir, verify=component == "kube-apiserver")
    try:
        with urllib.request.urlopen(url, timeout=2.0, context=ctx) as r:  # noqa: S310
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _running(info: ClusterInfo) -> list[str]:
    return [c for c, p in info.processes.items() if is_ours(p)]


# --------------------------------------------------------------------------- up


def up(
    nodes: int = 3,
    prometheus: bool = False,
    name: str = "deploysim",
    *,
    bin_dir: Path | str | None = None,
    api_port: int | None = None,
    prometheus_port: int | None = None,
    scrape_interval: str = "2s",
    reuse: bool = False,
    timeout: float = 120.0,
    component_args: Mapping[str, Mapping[str, str]] | None = None,
) -> ClusterInfo:
    """Start a control plane on 127.0.0.1 with ``nodes`` KWOK nodes; return once all are Ready.

    ``component_args``: more flags per component, e.g. ``{"kube-controller-manager":
    {"node_monitor_grace_period": "2m"}}``.

    A cluster of the same name already running raises ClusterAlreadyRunningError, or is
    returned as it is when ``reuse`` is true. Any failure stops what was started, removes
    the state folder (keeping the logs in ``failed_logs_dir(name)``) and raises
    ClusterStartError naming the cause. ``timeout`` bounds the whole start.
    """
    if not _NAME_RE.match(name):
        raise ClusterError(f"cluster name {name!r}: use 1-40 lowercase letters, digits or '-'")
    if nodes < 1:
        raise ClusterError(f"nodes: got {nodes}; at least 1 is needed to run pods")
    with locked(name):
        existing = load(name)
        if existing is not None and _running(existing):
            if reuse:
                return existing
            raise ClusterAlreadyRunningError(existing)
        bins = Path(bin_dir) if bin_dir else default_bin_dir()
        # Left over from a crash or a killed start: nothing of it runs, so clear it.
        left = _teardown(name, existing, bins)
        if left:
            raise ClusterStartError(
                f"pids {left} of an earlier cluster {name!r} still run; stop them first"
            )

        missing = [b for b in BINARIES if not os.access(bins / b, os.X_OK)]
        if missing:
            raise ClusterStartError(
                f"missing binaries in {bins}: {', '.join(missing)}; "
                "build them with 'bash k8s/build.sh'"
            )
        prom_bin = shutil.which("prometheus") if prometheus else None
        if prometheus and prom_bin is None:
            raise ClusterStartError(
                "'prometheus' is not on PATH; install it with 'bash k8s/setup.sh'"
            )
        # kwokctl and we pick free ports moments before the components bind them; another
        # cluster starting at the same time can grab one in between. kwokctl scans for free
        # ports in the same order every time, so two clusters started together would collide
        # again in step: try again after a random wait, which puts them out of step.
        attempts = 1 if api_port and (prometheus_port or not prometheus) else 5
        deadline = time.monotonic() + timeout
        for attempt in range(attempts):
            try:
                return _up_once(
                    name, nodes, bins, prom_bin, api_port, prometheus_port, scrape_interval,
                    deadline, component_args,
                )
            except ClusterStartError as e:
                if attempt + 1 == attempts or "address already in use" not in str(e).lower():
                    raise
                time.sleep(random.SystemRandom().uniform(1.0, 4.0 * (attempt + 1)))
    raise AssertionError("unreachable")


def _up_once(
    name: str,
    nodes: int,
    bins: Path,
    prom_bin: str | None,
    api_port: int | None,
    prometheus_port: int | None,
    scrape_interval: str,
    deadline: float,
    component_args: Mapping[str, Mapping[str, str]] | None = None,
) -> ClusterInfo:
    if api_port:
        _check_port(api_port, "kube-apiserver")
    prom_port = None
    if prom_bin:
        prom_port = prometheus_port or _free_port()
        _check_port(prom_port, "prometheus")

    sd = state_dir(name)
    sd.mkdir(parents=True, exist_ok=True)
    targets = prom_config = None
    if prom_bin and prom_port:
        targets = _prometheus.write_config(sd, prom_port, scrape_interval)
        prom_config = _prometheus.config_path(sd)
    (sd / _kwokctl.INPUT_CONFIG).write_text(
        _kwokctl.configuration(
            bins, api_port, (prom_bin, prom_port, prom_config) if prom_config else None,
            component_args,
        )
    )
    info = ClusterInfo(
        name=name,
        state_dir=sd,
        kubeconfig=sd / "kubeconfig.yaml",
        api_server="",
        nodes=nodes,
        k8s_version=K8S_VERSION,
        bin_dir=bins,
        prometheus_url=f"http://{HOST}:{prom_port}" if prom_port else None,
        prometheus_targets_file=targets,
        started_at=time.time(),
    )
    try:
        _kwokctl.create(name, bins, deadline)
        config = _kwokctl.cluster_config(name)
        info.api_server = f"https://{HOST}:{config['options']['kubeApiserverPort']}"
        info.processes = _kwokctl.processes(name, config)
        save(info)
        _kwokctl.scale_nodes(name, bins, nodes, deadline)
        _wait_ready(info, deadline)
    except BaseException as e:
        kept = keep_logs(name)
        left = _teardown(name, info, bins)
        if left:
            raise ClusterStartError(f"{e}; and could not stop pids {left}") from e
        if isinstance(e, ClusterStartError) and kept is not None:
            raise ClusterStartError(str(e).replace(str(sd / "logs"), str(kept))) from None
        raise
    info.ready = True
    save(info)
    return info


def _wait_ready(info: ClusterInfo, deadline: float) -> None:
    """Every node Ready and the default ServiceAccount there (pods need it to be admitted)."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(info.kubeconfig))
    core = client.CoreV1Api(api)
    ready = 0
    try:
        while time.monotonic() < deadline:
            for component, proc in info.processes.items():
                if not is_ours(proc):
                    raise ClusterStartError(
                        f"{component} exited: {_kwokctl.log_reason(proc.log)} (log {proc.log})"
                    )
            with contextlib.suppress(client.ApiException, OSError):
                ready = sum(
                    1
                    for n in core.list_node().items
                    for c in (n.status.conditions or [])
                    if c.type == "Ready" and c.status == "True"
                )
                accounts = core.list_namespaced_service_account("default").items
                if ready >= info.nodes and any(a.metadata.name == "default" for a in accounts):
                    return
            time.sleep(0.2)
    finally:
        api.close()
    kwok = info.processes.get("kwok-controller")
    why = f"kwok-controller: {_kwokctl.log_reason(kwok.log)}; log {kwok.log}" if kwok else ""
    raise ClusterStartError(
        f"only {ready} of {info.nodes} nodes became Ready in time ({why})"
    )


# --------------------------------------------------------------------------- down


def _teardown(name: str, info: ClusterInfo | None, bins: Path) -> list[int]:
    """kwokctl delete, then make sure by pid that nothing is left; return pids still alive."""
    sd = state_dir(name)
    if info is None and not sd.exists():
        return []
    procs = list(info.processes.values()) if info else []
    # A start killed half-way has pid files but no record of ours.
    strays = [pid for pid in _kwokctl.pids(name) if pid not in {p.pid for p in procs}]
    if (sd / _kwokctl.CLUSTER_CONFIG).exists() and os.access(bins / "kwokctl", os.X_OK):
        _kwokctl.delete(name, bins)
    wait_gone([p.pid for p in procs] + strays, 10.0)
    # Whatever kwokctl could not stop (or a start that never wrote its configuration), and
    # anything it had started without a pid file yet when the start was cut short.
    inside = f"{sd}{os.sep}"  # a file in this cluster's folder, not a cluster whose name extends it
    strays += [pid for pid in mentioning(inside) if pid not in strays]
    left = kill(procs, strays, mentioning=inside)
    if not left:
        shutil.rmtree(sd, ignore_errors=True)
    return left


def down(name: str = "deploysim") -> bool:
    """Stop every process of cluster ``name`` and remove its state; False if it was not there."""
    with locked(name):
        info = load(name)
        existed = state_dir(name).exists()
        bins = info.bin_dir if info else default_bin_dir()
        left = _teardown(name, info, bins)
        if left:
            raise ClusterError(f"could not stop pids {left}; state kept in {state_dir(name)}")
        return existed


# --------------------------------------------------------------------------- inspect


def status(name: str = "deploysim") -> dict[str, Any]:
    """What runs for cluster ``name``: per component pid, port, alive and healthy."""
    info = load(name)
    if info is None:
        return {"name": name, "running": False, "state_dir": str(state_dir(name))}
    components = {}
    for component, proc in info.processes.items():
        alive = is_ours(proc)
        components[component] = {
            "pid": proc.pid,
            "port": proc.port,
            "url": proc.url,
            "alive": alive,
            "healthy": alive and _healthy(info, component),
            "log": proc.log,
        }
    running = bool(components) and all(c["alive"] for c in components.values())
    return {
        "name": name,
        "running": running,
        "ready": info.ready,
        "api_server": info.api_server,
        "kubeconfig": str(info.kubeconfig),
        "nodes": info.nodes,
        "k8s_version": info.k8s_version,
        "prometheus_url": info.prometheus_url,
        "prometheus_targets_file": str(info.prometheus_targets_file)
        if info.prometheus_targets_file
        else None,
        "state_dir": str(info.state_dir),
        "components": components,
    }


def info(name: str = "deploysim") -> ClusterInfo:
    """The ClusterInfo of a running cluster."""
    found = load(name)
    if found is None or not _running(found):
        raise ClusterNotRunningError(
            f"cluster {name!r} is not running; start it with 'deploysim cluster up'"
        )
    return found


def env(name: str = "deploysim") -> str:
    """Shell line that points kubectl at the cluster: ``export KUBECONFIG=...``."""
    found = info(name)
    lines = [f"export KUBECONFIG={found.kubeconfig}"]
    if (found.bin_dir / "kubectl").exists():
        lines.append(f"export PATH={found.bin_dir}:$PATH")
    if found.prometheus_url:
        lines.append(f"export DEPLOYSIM_PROMETHEUS_URL={found.prometheus_url}")
    return "\n".join(lines)


@contextlib.contextmanager
def running(
    nodes: int = 3, prometheus: bool = False, name: str = "deploysim", **kwargs: Any
) -> Iterator[ClusterInfo]:
    """``with running() as info:`` brings a cluster up and always down again."""
    started = up(nodes=nodes, prometheus=prometheus, name=name, **kwargs)
    try:
        yield started
    finally:
        down(name)
