"""Shared helpers for the suite."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from deploysim.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from deploysim.kube.localcluster import ClusterInfo

#: Local clusters are named per checkout and per xdist worker, so two checkouts' suites on
#: one machine never bring each other's control plane down (a killed run's leftovers are
#: still found and cleaned by the next run of the same checkout).
CHECKOUT = hashlib.sha1(str(Path(__file__).resolve().parents[1]).encode()).hexdigest()[:6]
WORKER = f"{CHECKOUT}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}".lower()  # a cluster name is a DNS label
os.environ["DEPLOYSIM_TEST_CLUSTERS"] = WORKER  # for tests/cluster/conftest.py's own clusters


@pytest.fixture
def scenario_of():
    """Build a scenario from the built-in default plus overrides."""

    def make(*overrides: str, **data) -> Scenario:  # noqa: ANN003
        if data:
            return load_scenario(data=data, overrides=list(overrides))
        return load_scenario(overrides=list(overrides))

    return make


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[ClusterInfo]:
    """One local control plane for every cluster test of the session.

    3 KWOK nodes and Prometheus scraping every 1 s; Prometheus scrapes more targets with
    ``localcluster.add_prometheus_target(local_cluster.name, ...)``. Tests leave it as they
    found it (their own namespaces, nothing stopped); a test that kills a component or
    brings a cluster down needs a cluster of its own. localcluster is imported here, not at
    the top, so the suite without a cluster needs no Go build.
    """
    from deploysim.kube import localcluster

    localcluster.ensure_built()
    name = f"dsk-shared-{WORKER}"
    localcluster.down(name)  # whatever a killed earlier run left behind
    info = localcluster.up(nodes=3, prometheus=True, name=name, scrape_interval="1s", timeout=180)
    try:
        yield info
    finally:
        localcluster.down(name)
