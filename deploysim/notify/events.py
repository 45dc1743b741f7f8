"""Kubernetes Events on every object a run changes, as ``kubectl describe`` shows them.

core/v1 Events, not events.k8s.io/v1: ``kubectl describe`` lists an object's Events through
the core API (k8s.io/kubectl pkg/describe/describe.go ``searchEvents``: ``CoreV1().Events``
with a field selector on ``involvedObject`` name, namespace, kind and uid) and prints
type, reason, age, ``source.component`` and message (``DescribeEvents``); Argo Rollouts and
Flagger write them the same way, through client-go's recorder into ``CoreV1().Events``
(argoproj/argo-rollouts utils/record/record.go ``NewEventRecorder``). The body is the one
client-go's recorder makes (k8s.io/client-go tools/record/event.go ``makeEvent`` and
``generateEvent``): the name ``<object>.<unix nanoseconds in hex>``, first and last timestamp
now, count 1, ``source`` and ``reportingComponent``/``reportingInstance`` from the component
and the host. ``involvedObject`` carries the object's uid, read once per object, so the
field selector ``kubectl describe`` uses finds them.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

from deploysim.kube import naming as n
from deploysim.notify.delivery import DEFAULT_SENDING, SendError, Sending, Transient, with_retries
from deploysim.notify.notices import Notice

COMPONENT = "deploysim"
#: kind -> apiVersion of the objects a run changes
API_VERSIONS = {"Deployment": "apps/v1", "Service": "v1", "Ingress": "networking.k8s.io/v1",
                "HTTPRoute": f"{n.HTTPROUTE_GROUP}/{n.HTTPROUTE_VERSION}"}
#: (connect, read) seconds for one Event's request: shorter than the run's own requests
REQUEST_TIMEOUT = (3.0, 10.0)
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def rfc3339(ns: int) -> str:
    """
    >>> rfc3339(1700000000_123456789)
    '2023-11-14T22:13:20Z'
    """
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_ref(kind: str, name: str, namespace: str, uid: str | None = None) -> dict[str, Any]:
    """An ``involvedObject`` reference (client-go ``reference.GetReference``'s fields).

    >>> object_ref("Deployment", "web", "shop", "u-1")
    {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': 'web', 'namespace': 'shop', 'uid': 'u-1'}
    """
    ref = {"apiVersion": API_VERSIONS.get(kind, "v1"), "kind": kind, "name": name, "namespace": namespace}
    if uid:
        ref["uid"] = uid
    return ref


def event_body(notice: Notice, ref: dict[str, Any], now_ns: int, host: str,
               component: str = COMPONENT) -> dict[str, Any]:
    """The core/v1 Event for ``notice`` on the object ``ref``, as client-go's recorder makes it.

    >>> from deploysim.notify.notices import RunContext, notice_for
    >>> ctx = RunContext("web", "shop", "rolling", "web:1", "web:2", ("rolling update",), "r-1")
    >>> abort = notice_for({"kind": "abort", "step": 0, "reason": "error rate"}, ctx, 0.0)
    >>> e = event_body(abort, object_ref("Deployment", "web", "shop", "u-1"), 1700000000_000000255, "ci-7")
    >>> e["metadata"]["name"], e["type"], e["reason"], e["source"], e["count"], e["firstTimestamp"]
    ('web.17979cfe362a00ff', 'Warning', 'RolloutAborted', {'component': 'deploysim', 'host': 'ci-7'}, 1, '2023-11-14T22:13:20Z')
    >>> e["message"], e["involvedObject"]["uid"], e["metadata"]["labels"]
    ('Rollout aborted at step 1/1: error rate', 'u-1', {'deploysim.io/run': 'r-1'})
    """
    stamp = rfc3339(now_ns)
    metadata: dict[str, Any] = {"name": f"{ref['name']}.{now_ns:x}", "namespace": ref["namespace"]}
    run = notice.context.run_id
    if run and len(run) <= 63 and _LABEL_VALUE.fullmatch(run):
        metadata["labels"] = {n.RUN_ANNOTATION: run}
    return {
        "apiVersion": "v1", "kind": "Event", "metadata": metadata, "involvedObject": ref,
        "reason": notice.reason, "message": notice.message, "type": notice.type,
        "source": {"component": component, "host": host},
        "reportingComponent": component, "reportingInstance": host,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def _transient(exc: BaseException) -> bool:
    from deploysim.kube.execute import unreachable

    return unreachable(exc)


def _reason(exc: BaseException) -> str:
    from kubernetes.client.rest import ApiException

    if isinstance(exc, ApiException):
        text = f"HTTP {exc.status} {exc.reason or ''}".strip()
        if exc.status == 403:
            text += " (deploy/rbac.yaml lets a runbook create events)"
        return text
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"


class KubeEvents:
    """A sink: each notice an Event on each object the run changed so far."""

    name = "events"

    def __init__(self, api: Any, namespace: str, *, host: str | None = None, sending: Sending = DEFAULT_SENDING,
                 clock_ns: Any = time.time_ns) -> None:
        self.api, self.namespace = api, namespace
        self.host = host or socket.gethostname()
        self.retries, self.wait, self.clock_ns = sending.retries, sending.wait, clock_ns
        self._uids: dict[tuple[str, str], str | None] = {}
        self._last_ns = 0
        self._abandon = threading.Event()
        self.created = 0

    def deliver(self, notice: Notice) -> bool:
        if not notice.announce or not notice.objects:
            return False
        errors = []
        for kind, name in notice.objects:
            try:
                ref = object_ref(kind, name, self.namespace, self._uid(kind, name))
                self._create(event_body(notice, ref, self._now_ns(), self.host))
            except SendError as exc:
                errors.append(f"{kind}/{name}: {exc}")
        if errors:
            raise SendError("; ".join(errors))
        return True

    def _now_ns(self) -> int:
        # names are unique per object: two Events in one nanosecond get the next one
        self._last_ns = max(int(self.clock_ns()), self._last_ns + 1)
        return self._last_ns

    def _call(self, call: Any) -> Any:
        def once() -> Any:
            try:
                return call()
            except Exception as exc:
                if _transient(exc):
                    raise Transient(_reason(exc)) from None
                raise SendError(_reason(exc)) from None

        return with_retries(once, retries=self.retries, wait=self.wait, abandon=self._abandon)

    def _uid(self, kind: str, name: str) -> str | None:
        """The object's uid, read once; None when it cannot be read (the Event still goes,
        without the uid ``kubectl describe`` selects on)."""
        key = (kind, name)
        if key not in self._uids:
            try:
                self._uids[key] = self._call(lambda: _read_uid(self.api, kind, name, self.namespace))
            except SendError:
                return None
        return self._uids[key]

    def _create(self, body: dict[str, Any]) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        resp = self._call(lambda: core.create_namespaced_event(self.namespace, body, _request_timeout=REQUEST_TIMEOUT,
                                                               _preload_content=False))
        resp.read()  # the answer is the Event as sent: read whole, so the connection is reused cleanly
        resp.release_conn()
        self.created += 1

    def summary(self) -> dict[str, Any]:
        return {"created": self.created}

    def abandon(self) -> None:
        self._abandon.set()

    def close(self) -> None:
        """The API client is the run's, closed by it."""


def _read_uid(api: Any, kind: str, name: str, namespace: str) -> str | None:
    """The object's ``metadata.uid``, from its JSON as the API server sends it."""
    from kubernetes import client

    kw: dict[str, Any] = {"_request_timeout": REQUEST_TIMEOUT, "_preload_content": False}
    if kind == "Deployment":
        resp = client.AppsV1Api(api).read_namespaced_deployment(name, namespace, **kw)
    elif kind == "Service":
        resp = client.CoreV1Api(api).read_namespaced_service(name, namespace, **kw)
    elif kind == "Ingress":
        resp = client.NetworkingV1Api(api).read_namespaced_ingress(name, namespace, **kw)
    elif kind == "HTTPRoute":
        resp = client.CustomObjectsApi(api).get_namespaced_custom_object(
            n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, namespace, n.HTTPROUTE_PLURAL, name, **kw)
    else:
        return None
    try:
        return (json.loads(resp.data).get("metadata") or {}).get("uid")
    finally:
        resp.release_conn()
