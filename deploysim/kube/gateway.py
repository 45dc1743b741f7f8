"""Gateway API CRDs for a local cluster, from the ``sigs.k8s.io/gateway-api`` module's own files.

The module is fetched through the Go module proxy (``go mod download``) into Go's module
cache, outside the repository; its ``config/crd/standard`` CRDs are applied to the cluster.
What a run does with an HTTPRoute is :mod:`deploysim.routers.gateway_httproute`'s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.errors import ClusterError

GATEWAY_API_VERSION = "v1.4.1"
CRDS = ("gatewayclasses", "gateways", "httproutes", "referencegrants")


def crd_dir(version: str = GATEWAY_API_VERSION) -> Path:
    """The module's standard CRD folder, downloading the module if Go's cache lacks it."""
    go = shutil.which("go")
    if go is None:
        raise ClusterError(
            "the Gateway API CRDs come from the Go module proxy, and 'go' is not on PATH"
        )
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"sigs.k8s.io/gateway-api@{version}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise ClusterError(
            f"go mod download sigs.k8s.io/gateway-api@{version} failed: {proc.stderr.strip()}"
        ) from None
    if info.get("Error"):
        raise ClusterError(f"go mod download sigs.k8s.io/gateway-api@{version}: {info['Error']}")
    return Path(info["Dir"]) / "config" / "crd" / "standard"


def install_crds(api: client.ApiClient, version: str = GATEWAY_API_VERSION) -> list[str]:
    """Create (or keep) the standard Gateway API CRDs; wait until they are established."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for kind in CRDS:
        path = crd_dir(version) / f"gateway.networking.k8s.io_{kind}.yaml"
        body = yaml.safe_load(path.read_text())
        name = body["metadata"]["name"]
        try:
            ext.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise ClusterError(f"cannot create CRD {name}: {exc.reason}") from None
        names.append(name)
    deadline = time.monotonic() + 60
    for name in names:
        while True:
            crd = ext.read_custom_resource_definition(name)
            if any(
                c.type == "Established" and c.status == "True"
                for c in (crd.status.conditions or [])
            ):
                break
            if time.monotonic() > deadline:
                raise ClusterError(f"CRD {name} was not established within 60 s")
            time.sleep(0.5)
    return names
