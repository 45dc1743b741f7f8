"""The real world: the plan's actions carried out on a Kubernetes cluster.

:class:`KubeWorld` has the simulated world's interface (``observe`` / ``apply``) so the same
pure controller drives it. What it reads and writes follows :mod:`deploysim.kube.naming`.
Every change it makes is annotated with the run's id and written to ``changes`` (object,
field, old and new value), which the audit trail keeps.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.controller import Action, Decision, Observation, VersionState
from deploysim.errors import ClusterError
from deploysim.kube import naming as n
from deploysim.kube.kwok import pod_annotations, stale  # pod behaviour on a local control plane
from deploysim.kube.restarts import note_restarts, pod_restart_counts
from deploysim.plan import Plan
from deploysim.record import Samples, StateSample
from deploysim.routers import RouteNames, TrafficRouter, router_for
from deploysim.rules.deployment import progress_deadline_exceeded
from deploysim.scenario import Scenario, format_duration


@dataclass
class Change:
    """One API change: what the audit trail records."""

    at: float
    object: str
    field: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "object": self.object,
            "field": self.field,
            "old": self.old,
            "new": self.new,
        }


@dataclass
class KubeWorld:
    """One service's workloads in one namespace, driven by a plan."""

    api: client.ApiClient
    namespace: str
    scenario: Scenario
    plan: Plan
    run_id: str
    clock: Any = time.monotonic
    workload: str | None = None  # rolling: the Deployment; colours: their name prefix
    second_workload: str | None = None  # colours: use ``workload`` and this as blue and green
    route: str | None = None  # the HTTPRoute; None: the service's name
    changes: list[Change] = field(default_factory=list)
    saved: dict[str, Any] = field(default_factory=dict)  # kept in the run's status for undo
    _router: TrafficRouter | None = field(default=None, init=False, repr=False)
    emitted: Samples = field(default_factory=Samples)  # every change of pods or routing seen
    waiter: Callable[[float | None], None] | None = None  # blocks until a change or the time
    _restarts_from: dict[str, int] | None = field(default=None, init=False, repr=False)  # first list
    _restarts_seen: dict[str, int] = field(default_factory=dict, init=False, repr=False)  # last counts

    def __post_init__(self) -> None:
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.service = self.scenario.service
        self.workload = self.workload or self.service
        self.route = self.route or self.plan.route or self.service
        self.t0 = self.clock()

    # --- what exists ---------------------------------------------------------------------

    def slot_deployment(self, slot: str) -> str:
        if self.second_workload:
            return self.workload if slot == n.SLOTS[0] else self.second_workload
        return n.slot_deployment(self.workload, slot)

    @property
    def two_slots(self) -> bool:
        return self.plan.strategy in ("canary", "blue-green")

    def stable_slot(self) -> str:
        svc = self._get_service(self.service)
        slot = (svc.metadata.annotations or {}).get(n.STABLE_SLOT_ANNOTATION)
        if slot in n.SLOTS:
            return slot
        # no annotation yet: the colour with pods is the stable one
        sizes = {
            s: self._get_deployment(self.slot_deployment(s)).spec.replicas or 0
            for s in n.SLOTS
        }
        return max(n.SLOTS, key=lambda s: sizes[s])

    def candidate_workload(self) -> str:
        """The candidate's Deployment (Flagger's ``{{ target }}``): the idle colour, or the one."""
        return self.slot_deployment(n.other_slot(self.stable_slot())) if self.two_slots else str(self.workload)

    def preflight(self) -> list[str]:
        """Check that everything the plan needs exists; say what the run will change."""
        if self.two_slots:
            names = [("Deployment", self.slot_deployment(s)) for s in n.SLOTS]
        else:
            names = [("Deployment", self.workload)]
        names.append(("Service", self.service))
        # the router's own objects; which colour is stable does not change their names
        draft = router_for(self.routing, self.api, self._route_names(n.SLOTS[0]), self._note_change)
        missing = self._missing(names + [x for x in draft.needs() if x not in names])
        if missing:
            raise ClusterError(f"{self.plan.strategy} needs {', '.join(missing)}, which do not exist")
        cand = self.scenario.candidate.image
        lines = [f"namespace {self.namespace}, service {self.service}, run {self.run_id}"]
        if self.two_slots:
            stable = self.stable_slot()
            idle = n.other_slot(stable)
            lines.append(f"Deployment {self.slot_deployment(idle)}: image -> {cand}, "
                         f"replicas 0 -> up to {self.plan.replicas}")
            if self.plan.routing == "router":
                kind = next((k for k, _ in draft.needs() if k not in ("Deployment", "Service")), self.routing)
                lines.append(f"{kind} {self.route}: weights {n.slot_service(self.service, stable)} / "
                             f"{n.slot_service(self.service, idle)} from 100/0 step by step to 0/100")
            elif self.plan.strategy == "blue-green":
                lines.append(f"Service {self.service}: selector slot {stable} -> {idle} at the switch")
            lines.append(f"Deployment {self.slot_deployment(stable)}: replicas -> 0 when promoted")
        else:
            dep = self._get_deployment(self.workload)
            lines.append(
                f"Deployment {self.workload}: image {dep.spec.template.spec.containers[0].image} -> {cand}"
                f" ({self.plan.strategy}, progress deadline {format_duration(self.plan.progress_deadline_seconds)})"
            )
        return lines

    def _missing(self, names: list[tuple[str, str]]) -> list[str]:
        missing = []
        for kind, name in names:
            try:
                self._read(kind, name)
            except ApiException as exc:
                if exc.status != 404:
                    raise ClusterError(f"cannot read {kind} {self.namespace}/{name}: {exc.reason}") from None
                missing.append(f"{kind} {self.namespace}/{name}")
        return missing

    # --- observation ---------------------------------------------------------------------

    def now(self) -> float:
        return self.clock() - self.t0

    def wait_until(self, t: float | None) -> None:
        """Block until the workloads change or the time ``t`` comes (bounded by the waiter)."""
        if self.waiter is not None:
            self.waiter(t)
        else:
            time.sleep(1.0 if t is None else min(max(t - self.now(), 0.0), 1.0))

    def mark(self, decisions: list[Decision]) -> None:
        """Nothing to do: the cluster's timeline is binned from the metrics afterwards."""

    def observe(self, **kw: Any) -> Observation:
        if self.two_slots:
            stable = self.stable_slot_cached()
            deps = {
                v: self._get_deployment(self.slot_deployment(s))
                for v, s in (("stable", stable), ("candidate", n.other_slot(stable)))
            }
            states = {v: _deployment_state(d) for v, d in deps.items()}
            pods = {v: d.status.replicas or 0 for v, d in deps.items()}
            # only the candidate colour's condition, and only for the candidate's template: a
            # colour left ProgressDeadlineExceeded by an earlier run says nothing of this one
            cand = deps["candidate"]
            exceeded = _deadline_exceeded(cand) and _template_image(cand) == self.scenario.candidate.image
            selectors = [d.spec.selector.match_labels or {} for d in deps.values()]
        else:
            dep = self._get_deployment(self.workload)
            states, pods = self._replicaset_states(dep)
            exceeded = (
                _deadline_exceeded(dep) and _template_image(dep) == self.scenario.candidate.image
            )
            selectors = [dep.spec.selector.match_labels or {}]
        now = self.now()
        exceeded = exceeded or self._no_progress_for_too_long(now, states)
        weight = self.weight()
        terminating, restarts = self._pod_counts(selectors)
        self.emitted.add_state(StateSample(
            t=now, pods=(pods["stable"], pods["candidate"]),
            ready=(states["stable"].ready, states["candidate"].ready),
            available=(states["stable"].available, states["candidate"].available),
            terminating=terminating, weight=weight, restarts=restarts,
        ))
        return Observation(
            now=now,
            stable=states["stable"],
            candidate=states["candidate"],
            weight=weight,
            progress_deadline_exceeded=exceeded,
            **kw,
        )

    def _pod_counts(self, selectors: list[dict[str, str]]) -> tuple[int, int]:
        """Pods of the workloads that are shutting down (they still cost a pod), and the
        container restarts of the workloads' pods since the run first listed them (kube/restarts.py)."""
        pods: list[client.V1Pod] = []
        for labels in selectors:
            pods += self.core.list_namespaced_pod(self.namespace, label_selector=n.label_selector(labels)).items
        self._restarts_from, restarts = note_restarts(self._restarts_from, self._restarts_seen,
                                                      pod_restart_counts(pods))
        return sum(1 for p in pods if p.metadata.deletion_timestamp is not None), restarts

    def _no_progress_for_too_long(self, now: float, states: dict[str, VersionState]) -> bool:
        """The progress deadline as deploysim sees it, beside the Deployment's own condition.

        Progress is the Deployment controller's: more candidate pods, ready or available, or
        fewer stable ones. Counting it here too keeps the deadline honoured when the
        Deployment's condition lags or a colour's Deployment was only scaled.
        """
        cand, stab = states["candidate"], states["stable"]
        key = (cand.desired, cand.current, cand.ready, cand.available, stab.desired, stab.current)
        last = self.saved.get("progress")
        if last is None or tuple(last[0]) != key:
            self.saved["progress"] = [list(key), now]
            return False
        return progress_deadline_exceeded(now, last[1], self.plan.progress_deadline_seconds,
                                          settled=cand.settled and stab.settled)

    def stable_slot_cached(self) -> str:
        if "stable_slot" not in self.saved:
            self.saved["stable_slot"] = self.stable_slot()
        return self.saved["stable_slot"]

    def _replicaset_states(
        self, dep: client.V1Deployment
    ) -> tuple[dict[str, VersionState], dict[str, int]]:
        """Each version's state from the Deployment's ReplicaSets, and its pods as counted."""
        rss = self.apps.list_namespaced_replica_set(
            self.namespace, label_selector=n.label_selector(dep.spec.selector.match_labels or {})
        ).items
        states = {"stable": VersionState(), "candidate": VersionState()}
        pods = {"stable": 0, "candidate": 0}
        for rs in rss:
            owners = rs.metadata.owner_references or []
            if not any(o.kind == "Deployment" and o.name == dep.metadata.name for o in owners):
                continue
            version = (
                "candidate" if _template_image(rs) == self.scenario.candidate.image else "stable"
            )
            s = rs.status
            fresh = (s.observed_generation or 0) >= (rs.metadata.generation or 0)
            prev = states[version]
            pods[version] += s.replicas or 0
            states[version] = VersionState(
                desired=prev.desired + (rs.spec.replicas or 0),
                current=prev.current + ((s.replicas or 0) if fresh else -1),
                ready=prev.ready + (s.ready_replicas or 0),
                available=prev.available + (s.available_replicas or 0),
            )
        if (dep.status.observed_generation or 0) < (dep.metadata.generation or 0):
            # the Deployment controller has not looked at the latest change yet: not settled
            cand = states["candidate"]
            states["candidate"] = VersionState(cand.desired, -1, cand.ready, cand.available)
        return states, pods

    def weight(self) -> float:
        """The candidate's share of requests, read back from the cluster by the plan's router
        (the HTTPRoute as stored, the active Service's selector, or the ready endpoints)."""
        return self.router.observed_weight()

    @property
    def router(self) -> TrafficRouter:
        """The router of the plan's routing mode, built once the stable colour is known."""
        if self._router is None:
            stable = self.stable_slot_cached() if self.two_slots else n.SLOTS[0]
            self._router = router_for(self.routing, self.api, self._route_names(stable), self._note_change)
        return self._router

    @property
    def routing(self) -> str:
        """The router's name: the plan's own router for exact weights, else its routing mode."""
        return (self.plan.router or self.plan.routing) if self.plan.routing == "router" else self.plan.routing

    def _route_names(self, stable: str) -> RouteNames:
        return RouteNames(self.namespace, self.service, self.route, stable, n.other_slot(stable),
                          self.scenario.candidate.image, self.run_id)

    def _note_change(self, obj: str, fld: str, old: Any, new: Any) -> None:
        self.changes.append(Change(self.now(), obj, fld, old, new))

    # --- actions -------------------------------------------------------------------------

    def apply(self, action: Action) -> None:
        a = action.args
        if action.kind in ("rolling_update", "recreate"):
            self._set_template(a["version"], recreate=action.kind == "recreate")
        elif action.kind == "scale":
            self._scale(a["version"], int(a["replicas"]))
        elif action.kind == "route":
            self._route(float(a["weight"]))
        else:
            raise ValueError(f"the Kubernetes world cannot do {action.kind!r}")

    def _set_template(self, version: str, recreate: bool) -> None:
        name = self.workload
        dep = self._get_deployment(name)
        old_image = _template_image(dep)
        if version == "candidate":
            if "template" not in self.saved:
                self.saved["template"] = self.api.sanitize_for_serialization(dep.spec.template)
                self.saved["strategy"] = self.api.sanitize_for_serialization(dep.spec.strategy)
            template = copy.deepcopy(self.saved["template"])
            template["spec"]["containers"][0]["image"] = self.scenario.candidate.image
            annotations = template.setdefault("metadata", {}).setdefault("annotations", {}) or {}
            annotations.update(pod_annotations(self.scenario, "candidate"))
            template["metadata"]["annotations"] = {k: v for k, v in annotations.items() if v is not None}
            strategy: dict[str, Any] = (
                {"type": "Recreate", "rollingUpdate": None}
                if recreate
                else {
                    "type": "RollingUpdate",
                    "rollingUpdate": {
                        "maxSurge": self.plan.max_surge,
                        "maxUnavailable": self.plan.max_unavailable,
                    },
                }
            )
        else:  # rollout undo: the template (and strategy) the Deployment had before the run
            template = self.saved.get("template")
            if template is None:
                return
            strategy = self.saved.get("strategy") or {"type": "RollingUpdate"}
            if recreate:
                strategy = {"type": "Recreate", "rollingUpdate": None}
        # a JSON patch replaces the template whole: an undo must not keep the candidate's
        # annotations the way a merge patch would
        ops = [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/spec/strategy", "value": {k: v for k, v in strategy.items() if v is not None}},
            {"op": "replace", "path": "/spec/minReadySeconds", "value": int(self.plan.min_ready_seconds)},
            {"op": "replace", "path": "/spec/progressDeadlineSeconds", "value": int(self.plan.progress_deadline_seconds)},
            {"op": "replace", "path": "/spec/paused", "value": False},
        ]
        self.apps.patch_namespaced_deployment(name, self.namespace, ops)
        self._patch_deployment(
            name,
            {"metadata": {"annotations": {n.RUN_ANNOTATION: self.run_id}}},
            "spec.template.spec.containers[0].image",
            old_image,
            template["spec"]["containers"][0]["image"],
        )

    def _slot_for(self, version: str) -> str:
        stable = self.stable_slot_cached()
        return stable if version == "stable" else n.other_slot(stable)

    def _scale(self, version: str, replicas: int) -> None:
        if not self.two_slots:
            raise ValueError(
                "scale is for canary and blue-green; rolling updates go through the Deployment"
            )
        name = self.slot_deployment(self._slot_for(version))
        dep = self._get_deployment(name)
        body: dict[str, Any] = {
            "metadata": {"annotations": {n.RUN_ANNOTATION: self.run_id}},
            "spec": {
                "replicas": replicas,
                "progressDeadlineSeconds": int(self.plan.progress_deadline_seconds),
                "minReadySeconds": int(self.plan.min_ready_seconds),
            },
        }
        image = self.scenario.candidate.image if version == "candidate" else None
        wanted = pod_annotations(self.scenario, "candidate")
        if image and replicas > 0 and (_template_image(dep) != image or stale(dep.spec.template.metadata.annotations,
                                                                               wanted)):
            container = dep.spec.template.spec.containers[0].name
            body["spec"]["template"] = {
                "metadata": {"annotations": wanted},  # a None removes an earlier run's crash loop
                "spec": {"containers": [{"name": container, "image": image}]},
            }
        if image and replicas > 0 and _template_image(dep) != image:
            self.changes.append(
                Change(
                    self.now(),
                    f"Deployment/{name}",
                    "spec.template.spec.containers[0].image",
                    _template_image(dep),
                    image,
                )
            )
        self._patch_deployment(name, body, "spec.replicas", dep.spec.replicas, replicas)

    def _route(self, weight: float) -> None:
        # replica ratio: the router changes nothing; the plan's scale actions set the weight
        self.router.set_weight(weight)

    def finish(self, status: dict[str, Any]) -> None:
        """After a promotion the candidate's colour becomes the stable one."""
        if self.two_slots and status.get("outcome") == "promoted":
            cand = n.other_slot(self.stable_slot_cached())
            svc = self._get_service(self.service)
            old = (svc.metadata.annotations or {}).get(n.STABLE_SLOT_ANNOTATION)
            self.core.patch_namespaced_service(
                self.service,
                self.namespace,
                {
                    "metadata": {
                        "annotations": {
                            n.STABLE_SLOT_ANNOTATION: cand,
                            n.RUN_ANNOTATION: self.run_id,
                        }
                    }
                },
            )
            self.changes.append(
                Change(
                    self.now(),
                    f"Service/{self.service}",
                    f"metadata.annotations[{n.STABLE_SLOT_ANNOTATION}]",
                    old,
                    cand,
                )
            )

    # --- API helpers ----------------------------------------------------------------------

    def _read(self, kind: str, name: str) -> Any:
        if kind == "Deployment":
            return self._get_deployment(name)
        if kind == "Service":
            return self._get_service(name)
        if kind == "Ingress":
            return client.NetworkingV1Api(self.api).read_namespaced_ingress(name, self.namespace)
        return self._get_route(name)

    def _get_deployment(self, name: str) -> client.V1Deployment:
        return self.apps.read_namespaced_deployment(name, self.namespace)

    def _get_service(self, name: str) -> client.V1Service:
        return self.core.read_namespaced_service(name, self.namespace)

    def _get_route(self, name: str | None = None) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            n.HTTPROUTE_GROUP,
            n.HTTPROUTE_VERSION,
            self.namespace,
            n.HTTPROUTE_PLURAL,
            name or self.route,
        )

    def _patch_deployment(
        self, name: str, body: dict[str, Any], fld: str, old: Any, new: Any
    ) -> None:
        self.apps.patch_namespaced_deployment(name, self.namespace, body)
        self.changes.append(Change(self.now(), f"Deployment/{name}", fld, old, new))


def _template_image(obj: Any) -> str:
    return obj.spec.template.spec.containers[0].image


def _deployment_state(dep: client.V1Deployment) -> VersionState:
    s = dep.status
    fresh = (s.observed_generation or 0) >= (dep.metadata.generation or 0)
    updated = s.updated_replicas or 0
    desired = dep.spec.replicas or 0
    current = (s.replicas or 0) if fresh else -1
    if fresh and updated < (s.replicas or 0):
        current = -1  # a rollout inside the colour is still going on
    return VersionState(
        desired=desired,
        current=current,
        ready=s.ready_replicas or 0,
        available=s.available_replicas or 0,
    )


def _deadline_exceeded(dep: client.V1Deployment) -> bool:
    for cond in dep.status.conditions or []:
        if (
            cond.type == "Progressing"
            and cond.status == "False"
            and cond.reason == "ProgressDeadlineExceeded"
        ):
            return True
    return False
