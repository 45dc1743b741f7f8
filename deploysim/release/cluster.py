"""The release gate's cluster side: a namespace's kept releases read (read only), and a
release kept in the run's own namespace after it (:mod:`deploysim.kube.store`)."""

from __future__ import annotations

from typing import Any

import urllib3
from kubernetes.client.rest import ApiException

from deploysim.errors import ClusterError
from deploysim.release.gate import Evidence, releases_evidence

#: what reading a cluster can fail with: named in the record, and the gate decides. Anything
#: else is a fault of this code, and is not hidden as "could not read".
UNREACHABLE = (ApiException, ClusterError, urllib3.exceptions.HTTPError, OSError)


def first_line(exc: BaseException) -> str:
    """An exception as one line: its type and its message's first line (none for an empty one).

    >>> first_line(TimeoutError()), first_line(ValueError("no\\nmore"))
    ('TimeoutError', 'ValueError: no')
    """
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines and lines[0] else type(exc).__name__


def read_namespace(params: Any, service: str, namespace: str, own: bool = False
                   ) -> tuple[list[Evidence], dict[str, Any] | None, str, str | None]:
    """The evidence in ``namespace``'s status ConfigMap, what it stores, where it is, and why it
    could not be read (None when it was). The run's own namespace (``own``) is read with the
    run's kubeconfig and context; another with ``staging_kubeconfig`` (its current context) or,
    without it, the run's."""
    from deploysim.kube import api_client
    from deploysim.kube import naming as n
    from deploysim.kube.store import read_releases

    where = f"ConfigMap {namespace}/{n.status_configmap(service)}"
    kubeconfig = params.kubeconfig if own else params.staging_kubeconfig or params.kubeconfig
    context = params.context if own or not params.staging_kubeconfig else None
    try:
        api, _ = api_client(kubeconfig, context)
        stored = read_releases(api, namespace, service)
    except UNREACHABLE as exc:
        return [], None, where, f"{where}: {first_line(exc)}"
    if stored is None:
        return [], None, f"{where} (not there: no run in that namespace)", None
    latest = f"; latest run there {stored['run']} ({stored['phase']})" if stored.get("run") else ""
    promoted = sum(1 for r in stored["releases"] if r.get("outcome", "promoted") == "promoted")
    return (releases_evidence(stored, where, service, namespace), stored,
            f"{where} ({promoted} promoted releases{latest})", None)


def read_staging(params: Any, service: str) -> tuple[list[Evidence], str, str | None]:
    """The evidence in the staging namespace's status ConfigMap, where it is, and why it could
    not be read (None when it was)."""
    evidence, _, where, why = read_namespace(params, service, params.staging_namespace)
    return evidence, where, why


def keep_on_cluster(params: Any, service: str, entry: dict[str, Any]) -> str:
    """Add ``entry`` to the releases of the run's namespace; returns where it is kept."""
    from deploysim.kube import api_client
    from deploysim.kube.store import keep_release

    api, _ = api_client(params.kubeconfig, params.context)
    return keep_release(api, params.namespace, service, entry)
