"""A real control plane for the cluster tests: built once (cached), up for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploysim.kube import localcluster

# pytest-xdist workers each get their own clusters.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
CLUSTER_NAME = f"deploysim-pytest-{WORKER}"


def cluster_name(purpose: str) -> str:
    """A cluster name for one test's own short-lived cluster."""
    return f"dsp-{purpose}-{WORKER}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs the local Kubernetes control plane")


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (e.g. a cluster's state folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def cluster() -> Iterator[localcluster.ClusterInfo]:
    localcluster.ensure_built()
    localcluster.down(CLUSTER_NAME)  # whatever a killed earlier run left behind
    info = localcluster.up(nodes=3, prometheus=True, name=CLUSTER_NAME, timeout=120)
    try:
        yield info
    finally:
        pids = [p.pid for p in info.processes.values()]
        localcluster.down(CLUSTER_NAME)
        left = [
            pid
            for pid in pids
            if Path(f"/proc/{pid}").exists()
            and (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z")
        ]
        assert not left, f"processes left behind after down(): {left}"
        assert not processes_mentioning(str(info.state_dir)), (
            "a process still uses the state folder"
        )
        assert not info.state_dir.exists()
