"""The release gate's cluster side: the staging namespace's promoted releases read (read
only), and a promoted release kept in the run's own namespace (:mod:`deploysim.kube.store`)."""

from __future__ import annotations

from typing import Any

from deploysim.release.gate import Evidence, releases_evidence


def read_staging(params: Any, service: str) -> tuple[list[Evidence], str, str | None]:
    """The evidence in the staging namespace's status ConfigMap, where it is, and why it could
    not be read (None when it was). ``staging_kubeconfig`` (its current context) or, without
    it, the run's own kubeconfig and context."""
    from deploysim.kube import api_client
    from deploysim.kube import naming as n
    from deploysim.kube.store import read_releases

    where = f"ConfigMap {params.staging_namespace}/{n.status_configmap(service)}"
    kubeconfig = params.staging_kubeconfig or params.kubeconfig
    context = None if params.staging_kubeconfig else params.context
    try:
        api, _ = api_client(kubeconfig, context)
        stored = read_releases(api, params.staging_namespace, service)
    except Exception as exc:  # noqa: BLE001 - unreachable, forbidden: named, and the gate decides
        return [], where, f"{where}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if stored is None:
        return [], f"{where} (not there: no run in that namespace)", None
    latest = f"; latest run there {stored['run']} ({stored['phase']})" if stored.get("run") else ""
    return releases_evidence(stored, where), f"{where} ({len(stored['releases'])} promoted releases{latest})", None


def keep_on_cluster(params: Any, service: str, entry: dict[str, Any]) -> str:
    """Add ``entry`` to the releases of the run's namespace; returns where it is kept."""
    from deploysim.kube import api_client
    from deploysim.kube.store import keep_release

    api, _ = api_client(params.kubeconfig, params.context)
    return keep_release(api, params.namespace, service, entry)
