"""Staging before production on the local control plane: two namespaces stand in for two
environments. A staging run of digest D is promoted; a production run of another digest E is
refused (exit 2, production untouched); a production run of D is accepted on the staging
namespace's status ConfigMap (and on the staging record folder); E with an override goes on
and its record says so."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cluster_app import STABLE, App
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.kube import naming as n
from deploysim.kube.store import RELEASES_KEY
from deploysim.runbooks import validate_parameters

pytestmark = pytest.mark.cluster

DEPLOYSIM = str(Path(sys.executable).parent / "deploysim")
D = "sha256:" + hashlib.sha256(b"web 1.1.0 build 1").hexdigest()
E = "sha256:" + hashlib.sha256(b"web 1.1.0 build 2").hexdigest()
IMAGE_D, IMAGE_E = f"web:1.1.0@{D}", f"web:1.1.0@{E}"
# a rolling update with no analysis: the quickest promoted run (lint warns: no rollback path)
ROLLING = ["-p", "background_analysis", "False"]


@pytest.fixture(scope="module")
def envs(cluster, tmp_path_factory):
    """Two namespaces, each with the service and a runbook ServiceAccount of its own; the
    change-freeze calendar off, so a production run is allowed whatever the day."""
    before = os.environ.get("DEPLOYSIM_FREEZE")
    os.environ["DEPLOYSIM_FREEZE"] = "off"
    made = {}
    try:
        for name in ("staging", "production"):
            made[name] = App(cluster, tmp_path_factory.mktemp(name), "rolling", False, {}, {})
        yield made
    finally:
        for app in made.values():
            app.close()
        if before is None:
            os.environ.pop("DEPLOYSIM_FREEZE", None)
        else:
            os.environ["DEPLOYSIM_FREEZE"] = before


def _status_configmap(app: App) -> client.V1ConfigMap | None:
    try:
        return client.CoreV1Api(app.admin).read_namespaced_config_map(n.status_configmap("web"), app.ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_production_needs_a_passing_staging_run_of_the_same_digest(envs, tmp_path):
    staging, production = envs["staging"], envs["production"]
    proc, staged = staging.run("rolling", "-p", "image", IMAGE_D, "-r", "environment", "staging", *ROLLING)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert staged["run"]["outcome"] == "promoted"
    assert staged["run"]["release"]["digest"] == D and staged["run"]["release"]["environment"] == "staging"
    assert staged["run"]["release"]["kept"]["kept"] is True, staged["run"]["release"]
    rows = json.loads(_status_configmap(staging).data[RELEASES_KEY])
    assert [(r["digest"], r["environment"], r["run"]) for r in rows] == [(D, "staging", staged["run"]["id"])]

    evidence = ["-r", "staging_namespace", staging.ns, "-r", "staging_kubeconfig", staging.kubeconfig]
    prod = ["-p", "target", "kubernetes", "-r", "scenario", str(production.scenario),
            "-r", "kubeconfig", production.kubeconfig, "-r", "namespace", production.ns,
            "-r", "prometheus_url", production.info.prometheus_url, "-r", "environment", "production"]

    # E was never staged: refused before the run folder or the production namespace is touched
    refused_dir = tmp_path / "refused"
    proc = subprocess.run([DEPLOYSIM, "run", "rolling", "-r", "image", IMAGE_E, *prod, *evidence, *ROLLING,
                           "--record-dir", str(refused_dir)], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"environment production needs a passing staging run of {E}" in proc.stderr
    assert f"looked in ConfigMap {staging.ns}/deploysim-web (1 promoted releases" in proc.stderr
    assert "1 promoted staging run(s) of other digests (latest: " + D[:19] in proc.stderr
    assert production.deployment("web").spec.template.spec.containers[0].image == STABLE
    assert _status_configmap(production) is None  # no run status written
    assert not refused_dir.exists() or not any(refused_dir.iterdir())

    # D was promoted in staging: accepted on the staging namespace's ConfigMap, and promoted
    proc, record = production.run("rolling", "-p", "image", IMAGE_D, "-r", "environment", "production",
                                  *evidence, *ROLLING, label="production-d")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    gate = record["run"]["release"]["gate"]
    assert gate["passed"] is True and gate["overridden"] is False
    assert gate["evidence"]["run"] == staged["run"]["id"]
    assert gate["evidence"]["source"] == f"ConfigMap {staging.ns}/deploysim-web"
    assert production.deployment("web").spec.template.spec.containers[0].image == IMAGE_D

    # ... and on the staging record folder (the staging job's artifact), as the gate sees it
    run = validate_parameters("rolling", {
        "target": "kubernetes", "scenario": str(production.scenario), "kubeconfig": production.kubeconfig,
        "namespace": production.ns, "image": IMAGE_D, "environment": "production",
        "background_analysis": False, "staging_records": str(staging.record_dir / "kubernetes")})
    gate = run.release["gate"]
    assert gate["passed"] and gate["evidence"]["run"] == staged["run"]["id"]
    assert gate["evidence"]["source"] == f"record folder {staging.record_dir / 'kubernetes'}"
    # the real cluster record is what the gate asks of evidence: world, changes, service, namespace
    assert staged["summary"]["world"] == "kubernetes" and staged["changes"]
    assert (gate["evidence"]["service"], gate["evidence"]["namespace"]) == ("web", staging.ns)
    assert gate["evidence"]["deployed"] is True and gate["evidence"]["overridden"] is False

    # E with an override: it goes on, and its record says overridden, by whom, why, what was missing
    proc, record = production.run("rolling", "-p", "image", IMAGE_E, "-r", "environment", "production",
                                  *evidence, "-r", "staging_override", "INC-7: hotfix, staging rebuilt", *ROLLING,
                                  label="production-e")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert record["run"]["outcome"] == "promoted"
    gate = record["run"]["release"]["gate"]
    assert gate["overridden"] is True and gate["passed"] is False
    assert gate["override"]["reason"] == "INC-7: hotfix, staging rebuilt" and gate["override"]["by"]["user"]
    assert f"needs a passing staging run of {E}" in gate["override"]["missing"]
    assert production.deployment("web").spec.template.spec.containers[0].image == IMAGE_E
    # production keeps its own promoted releases: D, then E
    rows = json.loads(_status_configmap(production).data[RELEASES_KEY])
    assert [(r["digest"], r["environment"], r["overridden"]) for r in rows] == [
        (D, "production", False), (E, "production", True)]
    # and staging's evidence is as it was
    assert [r["digest"] for r in json.loads(_status_configmap(staging).data[RELEASES_KEY])] == [D]
