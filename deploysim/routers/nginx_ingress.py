"""NGINX Ingress canary: the candidate's weight is a canary Ingress's ``canary-weight``.

Follows Argo Rollouts' NGINX router (``rollout/trafficrouting/nginx/nginx.go``,
``SetWeightPerIngress`` and ``buildCanaryIngress``): the canary Ingress is named
``<rollout>-<stable ingress>-canary`` (``utils/ingress.GetCanaryIngressName``, cut to 253
characters) and is the stable Ingress's copy with

- only the rules that have a path to the stable Service, those paths' backends renamed to the
  candidate's Service (other paths of a copied rule kept as they are);
- the stable Ingress's ``spec.tls``, ``spec.ingressClassName`` and
  ``kubernetes.io/ingress.class`` annotation, and no other of its annotations;
- ``nginx.ingress.kubernetes.io/canary: "true"``, ``canary-weight: "<w>"`` and, when a weight
  total is given (Argo's ``maxTrafficWeight``), ``canary-weight-total``.

It is created when missing (a create that finds it made meanwhile reads it and patches, as
Argo does on AlreadyExists), patched when it differs (annotations it should not carry are
removed, as Argo's merge patch from the current to the desired object removes them) and left
alone when it is as wanted. Argo refuses a canary Ingress its Rollout does not control; here,
with no Rollout object to own it, the mark is the annotation ``deploysim.io/canary-of``.

Where this differs from Argo: deploysim's colours swap roles after a promotion (Argo keeps the
stable Service's name and moves its selector instead), so a stable Ingress path that names the
candidate colour's Service is first pointed back at the stable colour's; Argo never writes the
stable Ingress.

Flagger (``pkg/router/ingress.go``, ``IngressRouter``) differs: its canary Ingress is
``<ingressRef>-canary``; it copies the whole spec, renaming the apex Service to
``<target>-canary``; ``SetRoutes`` updates the annotations with a full update and sets
``canary: "false"`` (dropping the other canary annotations) at weight 0; ``GetRoutes`` reads
``canary-weight`` alone (``100 - weight`` to the primary, ``canary-weight-total`` not read).

The weight is read back the way ingress-nginx routes (see :func:`user_split`): only an
Ingress whose ``canary`` annotation parses true (Go's ``strconv.ParseBool``) is a canary; it
joins the location of the same host, path and pathType (``mergeAlternativeBackends`` in
``internal/ingress/controller/controller.go``); a request goes to it with probability
``weight / total`` (``route_to_alternative_balancer`` in ``rootfs/etc/nginx/lua/balancer.lua``:
``math.random(total) <= weight``, the total 100 unless ``canary-weight-total`` is above 100).
``networking.k8s.io/v1`` Ingress is built into kube-apiserver, so this router works on a
control plane with no ingress controller; the traffic emulator reads the same objects.

>>> canary_ingress_name("checkout", "checkout")
'checkout-checkout-canary'
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.errors import ClusterError
from deploysim.routers.names import Note, RouteNames, ignore

PREFIX = "nginx.ingress.kubernetes.io"
CANARY = f"{PREFIX}/canary"
CANARY_WEIGHT = f"{PREFIX}/canary-weight"
CANARY_WEIGHT_TOTAL = f"{PREFIX}/canary-weight-total"
INGRESS_CLASS = "kubernetes.io/ingress.class"
CANARY_OF = "deploysim.io/canary-of"  # the stable Ingress a canary Ingress was made from
SUFFIX = "-canary"
MAX_NAME = 253
DEFAULT_SERVER = "_"  # ingress-nginx's catch-all server: a rule without a host
_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # strconv.ParseBool
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def canary_ingress_name(rollout: str, stable_ingress: str) -> str:
    """``<rollout>-<stable ingress>-canary``, the prefix cut so the name fits 253 characters.

    >>> canary_ingress_name("rollout", "stable-ingress")
    'rollout-stable-ingress-canary'
    >>> len(canary_ingress_name("r", "x" * 300))
    253
    """
    prefix = f"{rollout}-{stable_ingress}"[: MAX_NAME - len(SUFFIX)]
    return prefix + SUFFIX


def parse_bool(value: str | None) -> bool | None:
    """An annotation as Go's ``strconv.ParseBool`` reads it; None when it does not parse.

    >>> parse_bool("true"), parse_bool("1"), parse_bool("False"), parse_bool("yes")
    (True, True, False, None)
    """
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def canary_weight(annotations: Mapping[str, str] | None) -> tuple[int, int] | None:
    """(weight, total) of a canary Ingress as ingress-nginx routes by; None: not a canary.

    A weight that does not parse counts 0 (the annotation parser's error leaves the default);
    a total counts only above 100, as ``balancer.lua`` reads it.

    >>> canary_weight({CANARY: "true", CANARY_WEIGHT: "30"})
    (30, 100)
    >>> canary_weight({CANARY: "true", CANARY_WEIGHT: "30", CANARY_WEIGHT_TOTAL: "1000"})
    (30, 1000)
    >>> canary_weight({CANARY: "true", CANARY_WEIGHT: "30", CANARY_WEIGHT_TOTAL: "50"})
    (30, 100)
    >>> canary_weight({CANARY: "false", CANARY_WEIGHT: "30"}) is None
    True
    >>> canary_weight({CANARY: "true", CANARY_WEIGHT: "ten"})
    (0, 100)
    """
    annotations = annotations or {}
    if not parse_bool(annotations.get(CANARY)):
        return None
    weight = _int(annotations.get(CANARY_WEIGHT)) or 0
    total = _int(annotations.get(CANARY_WEIGHT_TOTAL)) or 0
    return weight, total if total > 100 else 100


def canary_share(weight: int, total: int) -> float:
    """The share (0-1) of a location's requests its canary takes: ``P(random(total) <= weight)``.

    >>> canary_share(30, 100), canary_share(300, 1000), canary_share(150, 100), canary_share(-5, 100)
    (0.3, 0.3, 1.0, 0.0)
    """
    return min(max(weight, 0), total) / total


@dataclass(frozen=True)
class IngressPath:
    """One path of an Ingress rule and the Service it leads to (``port``: number or name)."""

    host: str
    path: str
    path_type: str
    service: str
    port: str


def ingress_paths(ingress: Mapping[str, Any]) -> list[IngressPath]:
    """The http paths with a Service backend of an Ingress (its JSON form), rule by rule.

    >>> ing = {"spec": {"rules": [{"host": "a.example", "http": {"paths": [
    ...     {"path": "/", "pathType": "Prefix",
    ...      "backend": {"service": {"name": "s-blue", "port": {"number": 80}}}}]}}]}}
    >>> ingress_paths(ing)
    [IngressPath(host='a.example', path='/', path_type='Prefix', service='s-blue', port='80')]
    """
    out = []
    for rule in (ingress.get("spec") or {}).get("rules") or []:
        for p in ((rule.get("http") or {}).get("paths")) or []:
            svc = (p.get("backend") or {}).get("service")
            if not svc or not svc.get("name"):
                continue
            port = svc.get("port") or {}
            out.append(IngressPath(rule.get("host") or DEFAULT_SERVER, p.get("path") or "/",
                                   p.get("pathType") or "", svc["name"],
                                   str(port.get("number") or port.get("name") or "")))
    return out


def upstream_name(namespace: str, path: IngressPath) -> str:
    """ingress-nginx's upstream for a path's backend (``upstreamName``: namespace-service-port).

    >>> upstream_name("shop", IngressPath("_", "/", "Prefix", "s-green", "80"))
    'shop-s-green-80'
    """
    return f"{namespace}-{path.service}-{path.port}" if path.port else f"{namespace}-INVALID"


@dataclass(frozen=True)
class Split:
    """A share of the requests to the stable Ingress's first path.

    ``service``: the Service they reach; ``canary``: the canary upstream's name when the canary
    Ingress routed them, "" for the location's own backend (ingress-nginx's ``canary`` label);
    ``ingress``, ``host``, ``path``, ``location_service``: the location that took them, as
    ingress-nginx labels every request of it, the canary's too (``$ingress_name``,
    ``$service_name``, ``$location_path`` are the location's).
    """

    service: str
    share: float
    canary: str
    ingress: str
    host: str
    path: str
    location_service: str


def user_split(stable: Mapping[str, Any], ingresses: Iterable[Mapping[str, Any]],
               namespace: str) -> list[Split] | None:
    """Where users of the stable Ingress's first path go (None: it has no Service path).

    The first canary Ingress (in the order given) with a path of the same host, path and
    pathType to another upstream takes ``weight / total``, the location's own backend the rest
    (a canary at weight 0 is listed, with share 0).

    >>> def ing(name, svc, **ann):
    ...     return {"metadata": {"name": name, "annotations": ann}, "spec": {"rules": [{"http": {"paths": [
    ...         {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": 80}}}}]}}]}}
    >>> stable = ing("s", "s-blue")
    >>> [(x.service, x.share, x.canary) for x in user_split(stable, [stable], "shop")]
    [('s-blue', 1.0, '')]
    >>> canary = ing("s-s-canary", "s-green", **{CANARY: "true", CANARY_WEIGHT: "30"})
    >>> [(x.service, round(x.share, 2), x.canary, x.ingress) for x in user_split(stable, [stable, canary], "shop")]
    [('s-blue', 0.7, '', 's'), ('s-green', 0.3, 'shop-s-green-80', 's')]
    """
    paths = ingress_paths(stable)
    if not paths:
        return None
    p = paths[0]
    name = (stable.get("metadata") or {}).get("name", "")

    def split(service: str, share: float, canary: str) -> Split:
        return Split(service, share, canary, name, p.host, p.path, p.service)

    own = upstream_name(namespace, p)
    for other in ingresses:
        meta = other.get("metadata") or {}
        if meta.get("name") == name:
            continue
        weights = canary_weight(meta.get("annotations"))
        if weights is None:
            continue
        for q in ingress_paths(other):
            if (q.host, q.path, q.path_type) == (p.host, p.path, p.path_type) and upstream_name(namespace, q) != own:
                share = canary_share(*weights)
                return [split(p.service, 1.0 - share, ""), split(q.service, share, upstream_name(namespace, q))]
    return [split(p.service, 1.0, "")]


def canary_rules(rules: list[dict[str, Any]], stable_service: str, canary_service: str) -> list[dict[str, Any]]:
    """The rules with a path to ``stable_service``, those paths' backends renamed (Argo's copy).

    >>> rules = [{"host": "a", "http": {"paths": [{"path": "/", "backend": {"service": {"name": "s-blue"}}}]}},
    ...          {"host": "b", "http": {"paths": [{"path": "/", "backend": {"service": {"name": "other"}}}]}}]
    >>> canary_rules(rules, "s-blue", "s-green")
    [{'host': 'a', 'http': {'paths': [{'path': '/', 'backend': {'service': {'name': 's-green'}}}]}}]
    """
    out = []
    for rule in rules:
        rule = copy.deepcopy(rule)
        hit = False
        for p in (rule.get("http") or {}).get("paths") or []:
            svc = (p.get("backend") or {}).get("service") or {}
            if svc.get("name") == stable_service:
                svc["name"] = canary_service
                hit = True
        if hit:
            out.append(rule)
    return out


def desired_canary(stable: Mapping[str, Any], name: str, stable_service: str, canary_service: str,
                   weight: int, weight_total: int | None = None,
                   extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The canary Ingress ``name`` for ``stable`` at ``weight`` (Argo's ``buildCanaryIngress``).

    Raises ValueError when no rule of ``stable`` has a path to ``stable_service``.
    """
    meta, spec = stable.get("metadata") or {}, stable.get("spec") or {}
    rules = canary_rules(list(spec.get("rules") or []), stable_service, canary_service)
    if not rules:
        raise ValueError(f"Ingress {meta.get('name')!r} has no rule with a path to Service {stable_service!r}")
    annotations = dict(extra or {})
    if INGRESS_CLASS in (meta.get("annotations") or {}):
        annotations[INGRESS_CLASS] = meta["annotations"][INGRESS_CLASS]
    annotations[CANARY_OF] = meta.get("name", "")
    annotations[CANARY] = "true"
    annotations[CANARY_WEIGHT] = str(weight)
    if weight_total is not None:
        annotations[CANARY_WEIGHT_TOTAL] = str(weight_total)
    new_spec: dict[str, Any] = {"rules": rules}
    for key in ("ingressClassName", "tls"):
        if spec.get(key):
            new_spec[key] = copy.deepcopy(spec[key])
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "annotations": annotations}, "spec": new_spec}


def canary_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """The patch from the current canary Ingress to the desired one; None when they agree.

    >>> cur = {"metadata": {"annotations": {CANARY: "true", CANARY_WEIGHT: "10", "x": "y"}}, "spec": {"rules": []}}
    >>> want = {"metadata": {"annotations": {CANARY: "true", CANARY_WEIGHT: "15"}}, "spec": {"rules": []}}
    >>> canary_patch(cur, want)
    {'metadata': {'annotations': {'nginx.ingress.kubernetes.io/canary-weight': '15', 'x': None}}}
    >>> canary_patch(want, want) is None
    True
    """
    have = (current.get("metadata") or {}).get("annotations") or {}
    want = desired["metadata"]["annotations"]
    annotations = {k: v for k, v in want.items() if have.get(k) != v}
    annotations.update({k: None for k in have if k not in want})
    body: dict[str, Any] = {}
    if annotations:
        body["metadata"] = {"annotations": annotations}
    if (current.get("spec") or {}) != desired["spec"]:
        body["spec"] = desired["spec"]
    return body or None


_SERIALIZER: client.ApiClient | None = None


def wire(obj: Any) -> dict[str, Any]:
    """A client model (or a dict) in its JSON form, as the functions above read it."""
    global _SERIALIZER
    if isinstance(obj, dict):
        return obj
    if _SERIALIZER is None:
        _SERIALIZER = client.ApiClient()
    return _SERIALIZER.sanitize_for_serialization(obj)


class NginxIngressRouter:
    """Exact weights through a canary Ingress beside the stable one (``networking.k8s.io/v1``)."""

    name = "nginx-ingress"
    exact = True

    def __init__(
        self,
        networking: client.NetworkingV1Api,
        namespace: str,
        stable_ingress: str,
        canary_ingress: str,
        stable_service: str,
        candidate_service: str,
        run_metadata: dict[str, Any] | None = None,
        note: Note = ignore,
        weight_total: int | None = None,
    ) -> None:
        if weight_total is not None and weight_total < 100:
            raise ValueError(f"weight_total: got {weight_total!r}; must be 100 or more (ingress-nginx "
                             "reads a canary-weight-total only above 100)")
        self.networking = networking
        self.namespace = namespace
        self.stable_ingress = stable_ingress
        self.canary_ingress = canary_ingress
        self.stable_service = stable_service
        self.candidate_service = candidate_service
        self.run_metadata = run_metadata or {}
        self.note = note
        self.weight_total = weight_total

    @classmethod
    def build(cls, api: client.ApiClient, names: RouteNames, note: Note = ignore) -> NginxIngressRouter:
        stable = getattr(names, "ingress", None) or names.route
        return cls(client.NetworkingV1Api(api), names.namespace, stable, canary_ingress_name(names.service, stable),
                   names.stable_backend, names.candidate_backend, names.run_annotation(), note)

    def needs(self) -> list[tuple[str, str]]:
        return [("Service", self.stable_service), ("Service", self.candidate_service),
                ("Ingress", self.stable_ingress)]

    def _where(self, name: str) -> str:
        return f"Ingress {self.namespace}/{name}"

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            return wire(self.networking.read_namespaced_ingress(name, self.namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _stable(self) -> dict[str, Any]:
        stable = self._read(self.stable_ingress)
        if stable is None:
            raise ClusterError(f"{self._where(self.stable_ingress)} does not exist; create it with a path to "
                               f"Service {self.stable_service}")
        return stable

    def _keep_stable_on_stable(self, stable: dict[str, Any]) -> dict[str, Any]:
        """Point the stable Ingress's paths at the candidate colour back at the stable one."""
        rules = list((stable.get("spec") or {}).get("rules") or [])
        new_rules = [(canary_rules([r], self.candidate_service, self.stable_service) or [r])[0] for r in rules]
        if new_rules == rules:
            return stable
        body: dict[str, Any] = {"spec": {"rules": new_rules}}
        if self.run_metadata:
            body["metadata"] = self.run_metadata
        self.networking.patch_namespaced_ingress(self.stable_ingress, self.namespace, body)
        self.note(f"Ingress/{self.stable_ingress}", "spec.rules[].http.paths[].backend.service.name",
                  self.candidate_service, self.stable_service)
        return {**stable, "spec": {**stable["spec"], "rules": new_rules}}

    def set_weight(self, weight: float) -> None:
        if not 0 <= weight <= 100:
            raise ValueError(f"weight: got {weight!r}; must be within 0-100")
        total = self.weight_total or 100
        w = int(round(weight * total / 100))
        stable = self._keep_stable_on_stable(self._stable())
        try:
            desired = desired_canary(stable, self.canary_ingress, self.stable_service, self.candidate_service, w,
                                     self.weight_total, (self.run_metadata.get("annotations") or {}))
        except ValueError as exc:
            raise ClusterError(f"{self._where(self.stable_ingress)}: {exc}; give it a path whose backend is "
                               f"Service {self.stable_service} or {self.candidate_service}") from None
        current = self._read(self.canary_ingress)
        if current is None:
            try:
                self.networking.create_namespaced_ingress(self.namespace, desired)
                self.note(f"Ingress/{self.canary_ingress}", f"metadata.annotations[{CANARY_WEIGHT}]", None, str(w))
                return
            except ApiException as exc:
                if exc.status != 409:  # made meanwhile: read it and patch, as Argo does
                    raise
            current = self._read(self.canary_ingress) or {}
        owner = ((current.get("metadata") or {}).get("annotations") or {}).get(CANARY_OF)
        if owner != self.stable_ingress:
            raise ClusterError(f"{self._where(self.canary_ingress)} exists but was not made for "
                               f"Ingress {self.stable_ingress} (annotation {CANARY_OF} is {owner!r}); "
                               "delete or rename it")
        body = canary_patch(current, desired)
        if body is None:
            return
        self.networking.patch_namespaced_ingress(self.canary_ingress, self.namespace, body)
        old = ((current.get("metadata") or {}).get("annotations") or {}).get(CANARY_WEIGHT)
        self.note(f"Ingress/{self.canary_ingress}", f"metadata.annotations[{CANARY_WEIGHT}]", old, str(w))

    def observed_weight(self) -> float:
        stable = self._stable()
        canary = self._read(self.canary_ingress)
        splits = user_split(stable, [canary] if canary else [], self.namespace)
        if splits is None:
            raise ClusterError(f"{self._where(self.stable_ingress)} has no path to a Service; give it a path "
                               f"whose backend is Service {self.stable_service}")
        return 100.0 * sum(s.share for s in splits if s.service == self.candidate_service)

    def reset(self) -> None:
        """Every request to the stable Service, as before the rollout."""
        self.set_weight(0)

