"""A run's status on the cluster: the ConfigMap ``deploysim-<service>``, and a Lease of the
same name as the lock that keeps two runs from driving one service at once.

The status is written after every pass of the drive loop, so a run killed half-way resumes
where it stopped. A person steers the run by annotating the ConfigMap
(``deploysim.io/promote: "true"``, ``deploysim.io/abort: "true"``); each mark is taken once.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.controller import PAUSED
from deploysim.driver import Requests
from deploysim.errors import ClusterError
from deploysim.kube import naming as n

LEASE_SECONDS = 60


class ClusterStore:
    """The drive loop's :class:`deploysim.driver.StatusStore` on a cluster."""

    def __init__(self, api: client.ApiClient, namespace: str, service: str, run_id: str,
                 strategy: str, saved: dict[str, Any] | None = None) -> None:
        self.core = client.CoreV1Api(api)
        self.coord = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = n.status_configmap(service)
        self.run_id = run_id
        self.strategy = strategy
        self.saved: dict[str, Any] = saved if saved is not None else {}  # the world's undo data
        self.elapsed = lambda: 0.0  # the world's clock, kept with the status
        self._last = ""

    # --- the status --------------------------------------------------------------------------

    def load(self) -> dict[str, Any] | None:
        try:
            cm = self.core.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {"data": cm.data or {}, "annotations": cm.metadata.annotations or {}}

    def save(self, status: dict[str, Any]) -> None:
        self.saved["elapsed"] = self.elapsed()
        data = {
            "run": self.run_id,
            "status": json.dumps(status, default=str),
            "saved": json.dumps(self.saved),
            "strategy": self.strategy,
        }
        # write when the status changed, and every few seconds for the clock a resume needs
        steady = {k: v for k, v in self.saved.items() if k not in ("elapsed", "progress")}
        text = json.dumps({**data, "saved": [steady, int(self.saved["elapsed"] // 5)]}, sort_keys=True,
                          default=str)
        if text != self._last:
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=self.name, annotations={n.RUN_ANNOTATION: self.run_id}),
                data=data,
            )
            try:
                self.core.replace_namespaced_config_map(self.name, self.namespace, body)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self.core.create_namespaced_config_map(self.namespace, body)
            self._last = text
        self.renew()

    def requests(self, phase: str) -> Requests:
        """A person's promote (only while paused) and abort marks, each taken once."""
        state = self.load()
        marks = state["annotations"] if state else {}
        promote = phase == PAUSED and marks.get(n.PROMOTE_ANNOTATION) == "true"
        abort = marks.get(n.ABORT_ANNOTATION) == "true"
        taken = {key: None for key, yes in ((n.PROMOTE_ANNOTATION, promote), (n.ABORT_ANNOTATION, abort)) if yes}
        if taken:
            self.core.patch_namespaced_config_map(self.name, self.namespace, {"metadata": {"annotations": taken}})
        return Requests(promote=promote, abort=abort)

    # --- the lock -----------------------------------------------------------------------------

    def lock(self) -> None:
        now = dt.datetime.now(dt.UTC)
        spec = client.V1LeaseSpec(holder_identity=self.run_id, lease_duration_seconds=LEASE_SECONDS,
                                  acquire_time=now, renew_time=now)
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coord.create_namespaced_lease(
                self.namespace, client.V1Lease(metadata=client.V1ObjectMeta(name=self.name), spec=spec))
            return
        holder = lease.spec.holder_identity
        renewed = lease.spec.renew_time
        fresh = renewed is not None and (now - renewed).total_seconds() < (lease.spec.lease_duration_seconds or 0)
        if holder and holder != self.run_id and fresh:
            raise ClusterError(
                f"run {holder} is driving this service (Lease {self.namespace}/{self.name}); "
                f"wait for it or let its lease expire ({LEASE_SECONDS}s)")
        lease.spec = spec
        self.coord.replace_namespaced_lease(self.name, self.namespace, lease)

    def renew(self) -> None:
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        try:
            self.coord.patch_namespaced_lease(
                self.name, self.namespace, {"spec": {"renewTime": now, "holderIdentity": self.run_id}})
        except ApiException:
            pass  # the next pass renews again; the lease outlives a few missed renewals

    def unlock(self) -> None:
        try:
            self.coord.patch_namespaced_lease(self.name, self.namespace, {"spec": {"holderIdentity": None}})
        except ApiException:
            pass  # an expired lease frees itself
