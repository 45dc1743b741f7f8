"""A run's status on the cluster: the ConfigMap ``deploysim-<service>``, and a Lease of the
same name as the lock that keeps two runs from driving one service at once.

The status is written after every pass of the drive loop, with the decisions taken so far,
so a run killed half-way resumes where it stopped and its record holds both parts. A person
steers the run by annotating the ConfigMap (``deploysim.io/promote: "true"``,
``deploysim.io/abort: "true"``); each mark is taken once.

The Lease is held by one process (``<run> pid <pid> on <host>``, so a resumed run is a new
holder) and renewed at the start of every pass, as client-go's leader election renews its
lock (kubernetes/client-go tools/leaderelection/leaderelection.go ``tryAcquireOrRenew``): a
lock held by another identity is taken only once it has expired. client-go times the expiry
from when it last saw the record change, on its own clock; a run that starts cannot wait a
whole lease to find out, so here it is ``renewTime + leaseDurationSeconds`` against this
machine's clock, which assumes the hosts' clocks agree to within seconds (NTP). A second run
is refused while the lease is fresh, with its holder named; a killed run's lease is taken
over once it has expired. A run that finds its lease taken stops before it observes or acts.

The ConfigMap also keeps the releases of the namespace (``releases``: digest, image, run,
finished at, environment, outcome, exit code, overridden; the latest :data:`KEPT_RELEASES`),
written once a run is promoted, or once a run of a digest changed the cluster and did not
promote (:func:`keep_release`), and left as it is by every later status write (a strategic merge patch of the status keys alone), so a
later run does not erase the evidence a gated environment reads
(:func:`read_releases`, :mod:`deploysim.release`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.controller import PAUSED
from deploysim.driver import Requests
from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.observation import Decision

LEASE_SECONDS = 60
#: The decisions kept with the status for a resumed run's record (the latest ones).
KEPT_DECISIONS = 500
#: The ConfigMap key of the promoted releases, and how many it keeps (the latest ones).
RELEASES_KEY = "releases"
KEPT_RELEASES = 20


class LeaseHeld(ClusterError):
    """Another run holds the service's lease."""


def holder_identity(run_id: str) -> str:
    """Who holds a lease: the run, and the process driving it now.

    >>> holder_identity("r1").startswith("r1 pid ")
    True
    """
    return f"{run_id} pid {os.getpid()} on {socket.gethostname()}"


class ClusterStore:
    """The drive loop's :class:`deploysim.driver.StatusStore` on a cluster."""

    def __init__(self, api: client.ApiClient, namespace: str, service: str, run_id: str,
                 strategy: str, saved: dict[str, Any] | None = None,
                 lease_seconds: int = LEASE_SECONDS) -> None:
        self.core = client.CoreV1Api(api)
        self.coord = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = n.status_configmap(service)
        self.run_id = run_id
        self.strategy = strategy
        self.saved: dict[str, Any] = saved if saved is not None else {}  # the world's undo data
        self.elapsed = lambda: 0.0  # the world's clock, kept with the status
        self.decisions: list[Decision] = []  # the run's decision log, kept with the status
        self.lease_seconds = lease_seconds
        self.holder = holder_identity(run_id)
        self._last = ""

    # --- the status --------------------------------------------------------------------------

    def load(self) -> dict[str, Any] | None:
        try:
            cm = self.core.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data = cm.data or {}
        return {"data": data, "annotations": cm.metadata.annotations or {}}

    def save(self, status: dict[str, Any]) -> None:
        self.saved["elapsed"] = self.elapsed()
        data = {
            "run": self.run_id,
            "status": json.dumps(status, default=str),
            "saved": json.dumps(self.saved),
            "strategy": self.strategy,
            "decisions": json.dumps([d.to_dict() for d in self.decisions[-KEPT_DECISIONS:]], default=str),
        }
        # write when the status changed, and every few seconds for the clock a resume needs
        steady = {k: v for k, v in self.saved.items() if k not in ("elapsed", "progress")}
        text = json.dumps({**data, "saved": [steady, int(self.saved["elapsed"] // 5)]}, sort_keys=True,
                          default=str)
        if text != self._last:
            # a (strategic merge) patch of this run's own keys: a key written beside them (the releases a run
            # kept between this run's load and this write) stays as it is
            patch = {"metadata": {"annotations": {n.RUN_ANNOTATION: self.run_id}}, "data": data}
            try:
                self.core.patch_namespaced_config_map(self.name, self.namespace, patch)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self.core.create_namespaced_config_map(self.namespace, client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(name=self.name, annotations={n.RUN_ANNOTATION: self.run_id}),
                    data=data))
            self._last = text

    def stored_decisions(self, stored: dict[str, Any]) -> list[Decision]:
        """The decisions an earlier part of the run kept with its status."""
        try:
            rows = json.loads(stored["data"].get("decisions") or "[]")
            return [Decision(**row) for row in rows if isinstance(row, dict)]
        except (TypeError, ValueError):
            return []

    def requests(self, phase: str) -> Requests:
        """A person's promote (only while paused) and abort marks, each taken once. The first
        call of every pass of the loop: the lease is renewed here, so a run whose lease was
        taken (it was out of reach longer than the lease) stops before it observes or acts."""
        self.renew()
        state = self.load()
        marks = state["annotations"] if state else {}
        promote = phase == PAUSED and marks.get(n.PROMOTE_ANNOTATION) == "true"
        abort = marks.get(n.ABORT_ANNOTATION) == "true"
        taken = {key: None for key, yes in ((n.PROMOTE_ANNOTATION, promote), (n.ABORT_ANNOTATION, abort)) if yes}
        if taken:
            self.core.patch_namespaced_config_map(self.name, self.namespace, {"metadata": {"annotations": taken}})
        return Requests(promote=promote, abort=abort)

    def clear_marks(self) -> None:
        """A new run takes no promote or abort mark given before it began: a mark left from an
        earlier run (given after it ended, or while it was not paused) is removed, so it cannot
        pass this run's first gate or abort it at its first pass. A resumed run keeps the marks
        given while it was away, and does not call this."""
        state = self.load()
        marks = (state or {}).get("annotations") or {}
        stale = {key: None for key in (n.PROMOTE_ANNOTATION, n.ABORT_ANNOTATION) if key in marks}
        if stale:
            self.core.patch_namespaced_config_map(self.name, self.namespace, {"metadata": {"annotations": stale}})

    # --- the lock -----------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the service's Lease, or raise :class:`LeaseHeld` naming its holder."""
        now = dt.datetime.now(dt.UTC)
        spec = client.V1LeaseSpec(holder_identity=self.holder, lease_duration_seconds=self.lease_seconds,
                                  acquire_time=now, renew_time=now)
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coord.create_namespaced_lease(
                self.namespace, client.V1Lease(metadata=client.V1ObjectMeta(name=self.name), spec=spec))
            return
        left = lease_left(lease.spec, now)
        if lease.spec.holder_identity and lease.spec.holder_identity != self.holder and left > 0:
            raise LeaseHeld(
                f"run {lease.spec.holder_identity} is driving this service (Lease {self.namespace}/{self.name}, "
                f"renewed {lease_age(lease.spec, now):.0f}s ago); wait for it to end, or for its lease to "
                f"expire in {left:.0f}s if that run was killed (then resume it with resume=True)")
        lease.spec = spec  # the read's resourceVersion makes this fail if another run took it meanwhile
        self.coord.replace_namespaced_lease(self.name, self.namespace, lease)

    def renew(self) -> None:
        """Renew the lease, or stop the run if another run holds it now."""
        now = dt.datetime.now(dt.UTC)
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.lock()
            return
        holder = lease.spec.holder_identity
        if holder and holder != self.holder:
            raise LeaseHeld(f"run {holder} took over this service's lease (Lease {self.namespace}/{self.name}) "
                            f"while this run could not renew it; this run stops without acting")
        lease.spec.holder_identity = self.holder
        lease.spec.renew_time = now
        lease.spec.lease_duration_seconds = self.lease_seconds
        self.coord.replace_namespaced_lease(self.name, self.namespace, lease)

    def unlock(self) -> None:
        try:
            lease = self.coord.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity == self.holder:
                self.coord.patch_namespaced_lease(self.name, self.namespace, {"spec": {"holderIdentity": None}})
        except Exception:  # noqa: BLE001 - unreachable or gone: an expired lease frees itself
            pass


def lease_age(spec: client.V1LeaseSpec, now: dt.datetime) -> float:
    renewed = spec.renew_time or spec.acquire_time
    return (now - renewed).total_seconds() if renewed is not None else float("inf")


def lease_left(spec: client.V1LeaseSpec, now: dt.datetime) -> float:
    """Seconds until the lease expires (``renewTime + leaseDurationSeconds``), 0 if it has.

    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> spec = client.V1LeaseSpec(renew_time=t, lease_duration_seconds=60)
    >>> lease_left(spec, t + dt.timedelta(seconds=45)), lease_left(spec, t + dt.timedelta(seconds=61))
    (15.0, 0.0)
    """
    return max((spec.lease_duration_seconds or 0) - lease_age(spec, now), 0.0)


# --- the releases promoted in the namespace ----------------------------------------------------


def parse_releases(text: str | None) -> list[dict[str, Any]]:
    """The releases a ConfigMap's ``releases`` value lists; nothing for a damaged value.

    >>> parse_releases('[{"digest": "sha256:ab", "run": "r1"}, 3]'), parse_releases("{")
    ([{'digest': 'sha256:ab', 'run': 'r1'}], [])
    """
    try:
        rows = json.loads(text or "[]")
    except ValueError:
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def add_release(releases: list[dict[str, Any]], entry: dict[str, Any],
                keep: int = KEPT_RELEASES) -> list[dict[str, Any]]:
    """``releases`` with ``entry`` last, an earlier entry of the same digest and environment
    dropped, and only the latest ``keep`` kept.

    >>> rows = [{"digest": f"sha256:{i}", "environment": "staging"} for i in range(3)]
    >>> [r["digest"] for r in add_release(rows, {"digest": "sha256:0", "environment": "staging"}, keep=2)]
    ['sha256:2', 'sha256:0']
    """
    same = (entry.get("digest"), entry.get("environment"))
    kept = [r for r in releases if (r.get("digest"), r.get("environment")) != same]
    return [*kept, entry][-keep:]


def read_releases(api: client.ApiClient, namespace: str, service: str) -> dict[str, Any] | None:
    """The promoted releases the service's status ConfigMap keeps, with the latest run there
    (``run``, ``phase``); None when there is no ConfigMap (no run was ever there)."""
    try:
        cm = client.CoreV1Api(api).read_namespaced_config_map(n.status_configmap(service), namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = cm.data or {}
    try:
        phase = json.loads(data.get("status") or "{}").get("phase")
    except (ValueError, AttributeError):
        phase = None
    return {"releases": parse_releases(data.get(RELEASES_KEY)), "run": data.get("run"), "phase": phase}


def keep_release(api: client.ApiClient, namespace: str, service: str, entry: dict[str, Any],
                 attempts: int = 3) -> str:
    """Add a release to the service's status ConfigMap; returns where it is kept. Only the
    ``releases`` key is patched, with the resourceVersion it was read at: the API server refuses
    the patch (409) when another writer changed the ConfigMap meanwhile, and it is read again."""
    core = client.CoreV1Api(api)
    name = n.status_configmap(service)
    for attempt in range(attempts):
        try:
            cm = core.read_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            cm = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=name), data={}))
        rows = parse_releases((cm.data or {}).get(RELEASES_KEY))
        text = json.dumps(add_release(rows, entry), sort_keys=True)
        version = getattr(cm.metadata, "resource_version", None) if cm is not None and cm.metadata else None
        patch: dict[str, Any] = {"data": {RELEASES_KEY: text}}
        if version:
            patch["metadata"] = {"resourceVersion": version}
        try:
            core.patch_namespaced_config_map(name, namespace, patch)
        except ApiException as exc:
            if exc.status != 409 or attempt == attempts - 1:
                raise
            continue
        break
    return f"ConfigMap {namespace}/{name} ({RELEASES_KEY})"
