"""Fixtures of the cluster tests in tests/kube: the session's control plane with the Gateway
API's CRDs, and ``make_app`` (:class:`cluster_app.App`, removed after the test)."""

from __future__ import annotations

import pytest
from cluster_app import App
from kubernetes import config

from deploysim.kube import gateway


@pytest.fixture(scope="module")
def cluster(local_cluster):
    """The session's control plane (tests/conftest.py), with the Gateway API's CRDs."""
    admin = config.new_client_from_config(str(local_cluster.kubeconfig))
    gateway.install_crds(admin)
    return local_cluster, admin


@pytest.fixture
def make_app(cluster, tmp_path):
    apps: list[App] = []

    def make(strategy: str, router: bool = False, candidate: dict | None = None, **knobs) -> App:
        app = App(cluster, tmp_path, strategy, router, candidate or {}, knobs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
