"""An in-memory stand-in for the few Kubernetes API calls deploysim makes, for unit tests.

Objects are kept the way the API server keeps them, in their JSON form, and handed out as the
official client's models (``V1Deployment.from_dict``), so attribute access, required fields
and date parsing are the client's own. Every call is bound to the real client method's
signature (a call the real client would reject fails here too) and recorded in ``calls``.

Patches follow what the client sends: a list is a JSON patch (RFC 6902; like the API
server's ``evanphx/json-patch`` v4, ``replace`` of a missing object key sets it); a dict is
a strategic merge patch for built-in kinds (maps merge, ``null`` deletes, lists of named
items such as containers merge by ``name``) and a JSON merge patch (RFC 7386) for an
HTTPRoute. A spec change bumps ``metadata.generation``.

With ``controller=True`` a Deployment follows its spec one read later (a controller that
never fails): the read that sees a change returns it unsettled, then the ReplicaSet of the
current template gets every replica, as ready pods, and every other ReplicaSet none.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

#: the snake-case kind in a client method's name -> the kind
KINDS = {"deployment": "Deployment", "replica_set": "ReplicaSet", "service": "Service", "pod": "Pod",
         "config_map": "ConfigMap", "lease": "Lease", "endpoint_slice": "EndpointSlice",
         "custom_object": "HTTPRoute"}
APIS = ("AppsV1Api", "CoreV1Api", "CustomObjectsApi", "CoordinationV1Api", "DiscoveryV1Api")
SERIALIZER = client.ApiClient()


def wire(obj: Any) -> dict[str, Any]:
    """An object (a client model or a dict) in its JSON form, as the API server stores it."""
    return json.loads(json.dumps(SERIALIZER.sanitize_for_serialization(obj)))


def merge(target: Any, patch: Any, strategic: bool) -> Any:
    """``patch`` merged into ``target`` (RFC 7386; strategic: named lists merge by name)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        old = out.get(key)
        if value is None:
            out.pop(key, None)
        elif strategic and _named(value) and _named(old):
            items = [dict(item) for item in old]
            for item in value:
                at = next((i for i, x in enumerate(items) if x["name"] == item["name"]), None)
                if at is None:
                    items.append(merge({}, item, strategic))
                else:
                    items[at] = merge(items[at], item, strategic)
            out[key] = items
        else:
            out[key] = merge(old, value, strategic)
    return out


def _named(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, dict) and "name" in x for x in value)


def json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"][1:].split("/")]
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.get(part)
            if node is None:
                raise ApiException(status=422, reason=f"json patch: {op['path']}: missing path")
        key: Any = int(last) if isinstance(node, list) else last
        if op["op"] == "remove":
            del node[key]
        elif op["op"] in ("add", "replace"):
            node[key] = copy.deepcopy(op["value"])
        else:
            raise ApiException(status=422, reason=f"json patch: op {op['op']!r} not supported here")
    return doc


def matches(labels: dict[str, str] | None, selector: str | None) -> bool:
    """Equality-based label selector ``k=v,k2=v2``."""
    terms = [t.split("=", 1) for t in (selector or "").split(",") if t]
    return all((labels or {}).get(k) == v for k, v in terms)


class _Api:
    """One client API class: each method the real class has, bound to its signature."""

    def __init__(self, cluster: FakeCluster, real: type) -> None:
        self._cluster, self._real = cluster, real

    def __getattr__(self, method: str) -> Any:
        signature = inspect.signature(getattr(self._real, method))  # AttributeError: no such call
        verb, _, kind = method.partition("_namespaced_")

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(None, *args, **kwargs).arguments
            return self._cluster.handle(verb, KINDS[kind], bound)

        return call


class FakeCluster:
    """The objects of a few namespaces, what was asked of them, and optionally a controller."""

    def __init__(self, controller: bool = False) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []  # (verb, kind, name or label selector)
        self.controller = controller
        for name in APIS:
            setattr(self, name, _Api(self, getattr(client, name)))

    def install(self, monkeypatch: Any) -> FakeCluster:
        """Every ``client.<Api>(api)`` the code builds from now on talks to this cluster."""
        for name in APIS:
            monkeypatch.setattr(client, name, _returning(getattr(self, name)))
        return self

    # --- contents --------------------------------------------------------------------------

    def add(self, obj: Any, namespace: str = "shop") -> dict[str, Any]:
        raw = wire(obj)
        kind = raw.get("kind") or type(obj).__name__.removeprefix("V1")
        meta = raw.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
        if kind in ("Deployment", "ReplicaSet"):
            meta.setdefault("generation", 1)
        self.objects[(kind, meta["namespace"], meta["name"])] = raw
        return raw

    def raw(self, kind: str, name: str, namespace: str = "shop") -> dict[str, Any]:
        return self.objects[(kind, namespace, name)]

    def touched(self, *verbs: str) -> set[str]:
        """``Kind/name`` of every object called by name with one of ``verbs`` (all: none given)."""
        return {f"{k}/{n}" for v, k, n in self.calls if v != "list" and (not verbs or v in verbs)}

    def listed(self) -> set[str]:
        return {f"{k}?{sel}" for v, k, sel in self.calls if v == "list"}

    # --- the API -----------------------------------------------------------------------------

    def handle(self, verb: str, kind: str, a: dict[str, Any]) -> Any:
        ns = a["namespace"]
        if kind == "HTTPRoute" and a["plural"] != "httproutes":
            raise ApiException(status=404, reason=f"no resource {a['group']}/{a['plural']}")
        if verb == "list":
            self.calls.append(("list", kind, a.get("label_selector") or ""))
            return self._list(kind, ns, a.get("label_selector"))
        body = a.get("body")
        name = a.get("name") or wire(body)["metadata"]["name"]
        verb = "read" if verb == "get" else verb
        self.calls.append((verb, kind, name))
        key = (kind, ns, name)
        if verb == "create":
            if key in self.objects:
                raise ApiException(status=409, reason="AlreadyExists")
            return self._model(kind, self.add(body, ns))
        if key not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        old = self.objects[key]
        if verb == "read":
            out = self._model(kind, old)
            if self.controller and kind == "Deployment":
                self.sync(name, ns)
            return out
        if verb == "replace":
            new = wire(body)
        elif isinstance(body, list):
            new = json_patch(old, body)
        else:
            new = merge(old, wire(body), strategic=kind != "HTTPRoute")
        new.setdefault("metadata", {}).update(namespace=ns, name=name)
        if kind in ("Deployment", "ReplicaSet"):
            new["metadata"]["generation"] = old["metadata"]["generation"] + (new.get("spec") != old.get("spec"))
        self.objects[key] = new
        return self._model(kind, new)

    def _list(self, kind: str, ns: str, selector: str | None) -> Any:
        if kind == "EndpointSlice":
            items = self._endpoint_slices(ns, selector)
        else:
            items = [copy.deepcopy(o) for (k, n, _), o in self.objects.items()
                     if k == kind and n == ns and matches(o["metadata"].get("labels"), selector)]
        return getattr(client, f"V1{kind}List").from_dict({"items": items})

    def _model(self, kind: str, raw: dict[str, Any]) -> Any:
        # a custom object comes back as the dict it is; a built-in kind as the client's model
        return copy.deepcopy(raw) if kind == "HTTPRoute" else getattr(client, f"V1{kind}").from_dict(copy.deepcopy(raw))

    def _endpoint_slices(self, ns: str, selector: str | None) -> list[dict[str, Any]]:
        """One EndpointSlice per Service, its endpoints the pods its selector picks."""
        out = []
        for (k, n, name), svc in self.objects.items():
            if k != "Service" or n != ns or not matches({"kubernetes.io/service-name": name}, selector):
                continue
            picked = svc.get("spec", {}).get("selector") or {}
            endpoints = [{"addresses": ["10.0.0.1"], "conditions": {"ready": {"type": "Ready", "status": "True"} in
                                                                  (p.get("status") or {}).get("conditions", [])},
                          "targetRef": {"kind": "Pod", "name": p["metadata"]["name"]}}
                         for (pk, pn, _), p in self.objects.items()
                         if pk == "Pod" and pn == ns and picked
                         and all(p["metadata"].get("labels", {}).get(lk) == lv for lk, lv in picked.items())]
            out.append({"addressType": "IPv4", "endpoints": endpoints,
                        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": name}}})
        return out

    # --- the controller ----------------------------------------------------------------------

    def sync(self, name: str, ns: str = "shop") -> None:
        """The Deployment's status, ReplicaSets and pods as its spec asks, all pods available."""
        dep = self.objects[("Deployment", ns, name)]
        spec, meta = dep["spec"], dep["metadata"]
        replicas = spec.get("replicas", 1)
        template_hash = hashlib.sha256(json.dumps(spec["template"], sort_keys=True).encode()).hexdigest()[:10]
        current = f"{name}-{template_hash}"
        if ("ReplicaSet", ns, current) not in self.objects:
            labels = {**spec["selector"]["matchLabels"], "pod-template-hash": template_hash}
            self.add({"metadata": {"name": current, "labels": labels, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": f"uid-{name}",
                 "controller": True}]},
                "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": spec["template"]},
                "kind": "ReplicaSet"}, ns)
        owned = [(rs_name, rs) for (k, n, rs_name), rs in self.objects.items() if k == "ReplicaSet" and n == ns
                 and any(o["name"] == name for o in rs["metadata"].get("ownerReferences") or [])]
        for rs_name, rs in owned:
            size = replicas if rs_name == current else 0
            rs["spec"]["replicas"] = size
            rs["status"] = {"replicas": size, "readyReplicas": size, "availableReplicas": size,
                            "observedGeneration": rs["metadata"]["generation"]}
            for key in [k for k in self.objects if k[0] == "Pod" and k[1] == ns and k[2].startswith(f"{rs_name}-")]:
                del self.objects[key]
            for i in range(size):  # ready pods, for the Service's EndpointSlices
                self.add({"kind": "Pod", "metadata": {"name": f"{rs_name}-{i}", "labels": rs["metadata"]["labels"]},
                          "spec": rs["spec"]["template"]["spec"],
                          "status": {"conditions": [{"type": "Ready", "status": "True"}]}}, ns)
        dep["status"] = {"observedGeneration": meta["generation"], "replicas": replicas,
                         "updatedReplicas": replicas, "readyReplicas": replicas,
                         "availableReplicas": replicas}


def _returning(api: _Api) -> Any:
    return lambda api_client=None: api


# --- objects as a test writes them -------------------------------------------------------------


def deployment(name: str, labels: dict[str, str], size: int, image: str, **status: int) -> client.V1Deployment:
    """A Deployment of ``size`` pods running ``image``; ``status`` as ``ready_replicas=3`` etc."""
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels, generation=1),
        spec=client.V1DeploymentSpec(
            replicas=size, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=image)]))),
        status=client.V1DeploymentStatus(**{"observed_generation": 1, **status}))


def replica_set(owner: str, name: str, labels: dict[str, str], image: str, size: int,
                generation: int = 1, **status: int) -> client.V1ReplicaSet:
    """A ReplicaSet of ``owner`` asked for ``size`` pods; ``status`` as ``ready_replicas=3`` etc."""
    return client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name=name, labels=labels, generation=generation, owner_references=[
            client.V1OwnerReference(api_version="apps/v1", kind="Deployment", name=owner, uid=f"uid-{owner}")]),
        spec=client.V1ReplicaSetSpec(
            replicas=size, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=image)]))),
        status=client.V1ReplicaSetStatus(**{"replicas": 0, **status}))


def service(name: str, selector: dict[str, str], annotations: dict[str, str] | None = None) -> client.V1Service:
    return client.V1Service(metadata=client.V1ObjectMeta(name=name, annotations=annotations),
                            spec=client.V1ServiceSpec(selector=selector))


def pod(name: str, labels: dict[str, str], image: str, ready: bool = True, deleting: bool = False) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels,
                                     deletion_timestamp="2030-01-01T00:00:00Z" if deleting else None),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=image)]),
        status=client.V1PodStatus(conditions=[client.V1PodCondition(type="Ready", status=str(ready))]))


def httproute(name: str, weights: dict[str, int]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name},
            "spec": {"rules": [{"backendRefs": [{"name": b, "port": 80, "weight": w} for b, w in weights.items()]}]}}
