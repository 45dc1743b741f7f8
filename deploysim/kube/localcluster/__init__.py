"""A real Kubernetes control plane on 127.0.0.1, run by kwokctl, with KWOK standing in for kubelets.

``up()`` has ``kwokctl create cluster`` (binary runtime, every binary's path given, so it
never downloads) start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
the KWOK controller (and optionally Prometheus), all bound to 127.0.0.1; ``kwokctl scale
node`` adds the nodes; it returns once every node is Ready::

    >>> info = up(nodes=3, prometheus=True)          # doctest: +SKIP
    >>> info.kubeconfig                               # doctest: +SKIP
    PosixPath('/root/.cache/deploysim/kwok/clusters/deploysim/kubeconfig.yaml')
    >>> down("deploysim")                             # doctest: +SKIP

The binaries come from ``k8s/build.sh`` (cached in ``~/.cache/deploysim/k8s/<version>/bin``;
``DEPLOYSIM_K8S_BIN`` points elsewhere). kwokctl's work folder is
``~/.cache/deploysim/kwok`` (``DEPLOYSIM_KWOK_WORKDIR`` moves it); each cluster's PKI,
kubeconfig, pid files, logs, etcd and Prometheus data live in ``clusters/<name>/`` under it,
and ``down()`` has kwokctl stop every process, checks by pid that none is left and removes
the folder.

Pod behaviour comes from the KWOK stages shipped in ``deploysim/kube/stages/`` and is chosen
per pod by annotations (see each stage file): ``deploysim.io/ready-delay`` and
``deploysim.io/ready-jitter``, ``deploysim.io/never-ready``, ``deploysim.io/fail-after``.
"""

from __future__ import annotations

from ._cluster import down, env, info, running, status, up
from ._kwokctl import COMPONENTS
from ._paths import (
    BINARIES,
    HOST,
    K8S_VERSION,
    ClusterStartError,
    clusters_dir,
    default_bin_dir,
    ensure_built,
    failed_logs_dir,
    kwok_workdir,
    missing_binaries,
    stage_files,
    state_dir,
)
from ._prometheus import add_prometheus_target
from ._state import ClusterAlreadyRunningError, ClusterInfo, ClusterNotRunningError, ProcessInfo

__all__ = [
    "BINARIES",
    "COMPONENTS",
    "HOST",
    "K8S_VERSION",
    "ClusterAlreadyRunningError",
    "ClusterInfo",
    "ClusterNotRunningError",
    "ClusterStartError",
    "ProcessInfo",
    "add_prometheus_target",
    "clusters_dir",
    "default_bin_dir",
    "down",
    "ensure_built",
    "env",
    "failed_logs_dir",
    "info",
    "kwok_workdir",
    "missing_binaries",
    "running",
    "stage_files",
    "state_dir",
    "status",
    "up",
]
