"""The cluster tests share the session's local control plane (``local_cluster`` in tests/conftest.py)."""

from __future__ import annotations

import os

import psutil
import pytest

from deploysim.kube import localcluster

# per checkout and per xdist worker, as tests/conftest.py names them
WORKER = os.environ["DEPLOYSIM_TEST_CLUSTERS"]


def cluster_name(purpose: str) -> str:
    """A cluster name for one test's own short-lived cluster."""
    return f"dsk-{purpose}-{WORKER}"


def processes_mentioning(text: str) -> list[int]:
    """Pids (zombies aside) whose command line contains ``text``, e.g. a cluster's state folder."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if text in " ".join(proc.info["cmdline"] or []):
            found.append(proc.pid)
    return found


def gone(pid: int) -> bool:
    """The pid has exited (a zombie not yet reaped has exited too)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="session")
def cluster(local_cluster: localcluster.ClusterInfo) -> localcluster.ClusterInfo:
    return local_cluster
