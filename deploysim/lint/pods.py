"""Rules on what a pod runs: image references, probes, and the preStop hook against the
endpoint lag. Pure functions over plain data (the image string, a container mapping).

The endpoint lag. When a pod is deleted, the kubelet runs its ``preStop`` hook and sends
SIGTERM while, at the same time, the endpoints controller removes the pod from the Service's
EndpointSlices and every node's kube-proxy (and every ingress controller) catches up; until
they have, requests still arrive. :data:`ENDPOINT_LAG_SECONDS` is 5 s, the preStop sleep of
the worked example in Kubernetes' KEP-3960 (``kubernetes/enhancements``
``keps/sig-node/3960-pod-lifecycle-sleep-action/README.md``, Summary: "PreStop hook starts,
which will delay the shutdown sequence by 5 seconds. During this time, the Endpoint Controller
will remove the terminating pod"), the hook that made ``preStop.sleep`` part of the API
(``PodLifecycleSleepAction``, stable in 1.34). Large clusters and polling ingress controllers
take longer; 5 s is the floor, not a guarantee.

>>> parse_image("registry.example.com:5000/shop/cart:9.1.0")
('registry.example.com:5000/shop/cart', '9.1.0', None)
>>> [rule for rule, _, _ in image_problems("checkout:main")], [rule for rule, _, _ in image_problems("checkout")]
(['image-tag-mutable'], ['image-tag-missing'])
>>> image_problems("checkout@sha256:" + "ab" * 32)
[]
>>> prestop_seconds({"preStop": {"exec": {"command": ["sh", "-c", "sleep 10"]}}}), prestop_seconds(None)
(10.0, 0.0)
"""

from __future__ import annotations

import re
from typing import Any

ENDPOINT_LAG_SECONDS = 5.0
#: Kubernetes' default terminationGracePeriodSeconds
DEFAULT_GRACE_SECONDS = 30.0
#: tags that name a branch or a channel, not a version: each push moves them
MUTABLE_TAGS = frozenset({"latest", "main", "master", "dev", "develop", "stable", "edge", "nightly"})

_SLEEP = re.compile(r"(?:^|[\s;&|(])sleep\s+(\d+(?:\.\d+)?)s?(?=$|[\s;&|)])")


def parse_image(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference; a registry's port is not a tag.

    >>> parse_image("ghcr.io/stefanprodan/podinfo"), parse_image("app:1.2@sha256:ab")
    (('ghcr.io/stefanprodan/podinfo', None, None), ('app', '1.2', 'sha256:ab'))
    """
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1:], digest or None
    return rest, None, digest or None


def image_problems(image: str) -> list[tuple[str, str, str]]:
    """(rule id, message, fix hint) for one image reference: a digest is fine whatever the
    tag; no tag is pulled as latest; a branch or channel tag moves; any other tag is fine but
    could be moved by a push, so a digest is recommended.

    >>> [p[0] for p in image_problems("app:1.4.2")]
    ['image-not-pinned-by-digest']
    """
    name, tag, digest = parse_image(image.strip())
    if digest:
        return []
    if not name or not tag:
        return [("image-tag-missing", f"{image!r} has no tag, so it is pulled as latest",
                 f"name an immutable version: {name or 'app'}:<semver> or {name or 'app'}@sha256:<digest>")]
    if tag.lower() in MUTABLE_TAGS:
        return [("image-tag-mutable", f"{image!r} is a mutable tag ({tag!r} moves with every push)",
                 f"name an immutable version: {name}:<semver> or {name}@sha256:<digest>")]
    return [("image-not-pinned-by-digest", f"{image!r} is pinned by tag; a push can move {tag!r}",
             f"pin by digest: {name}@sha256:<digest> (the tag may stay: {name}:{tag}@sha256:<digest>)")]


def probe_handler(probe: Any) -> tuple[Any, ...] | None:
    """What a probe asks, without its timings: ``("httpGet", path, port)``, ``("tcpSocket",
    port)``, ``("exec", command...)`` or ``("grpc", port, service)``; None when it asks
    nothing known. Two probes with the same handler fail together (kube-score's
    ``containerProbes`` in ``score/probes/probes.go`` compares the same fields).

    >>> probe_handler({"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5})
    ('httpGet', '/healthz', '8080')
    >>> probe_handler({"tcpSocket": {"port": "http"}}), probe_handler({"initialDelaySeconds": 3})
    (('tcpSocket', 'http'), None)
    """
    if not isinstance(probe, dict):
        return None
    if isinstance(probe.get("httpGet"), dict):
        h = probe["httpGet"]
        return ("httpGet", str(h.get("path", "/")), str(h.get("port")))
    if isinstance(probe.get("tcpSocket"), dict):
        return ("tcpSocket", str(probe["tcpSocket"].get("port")))
    if isinstance(probe.get("exec"), dict):
        command = probe["exec"].get("command") or []
        return ("exec", *[str(c) for c in command]) if isinstance(command, list) else ("exec", str(command))
    if isinstance(probe.get("grpc"), dict):
        g = probe["grpc"]
        return ("grpc", str(g.get("port")), str(g.get("service", "")))
    return None


def prestop_seconds(lifecycle: Any) -> float | None:
    """How long a container's ``preStop`` hook keeps it serving: ``sleep.seconds``, or the
    ``sleep N`` of an ``exec`` command; 0 without a hook; None when it cannot be read (an
    ``httpGet`` hook, a command that does something else), which no rule judges.

    >>> prestop_seconds({"preStop": {"sleep": {"seconds": 15}}})
    15.0
    >>> prestop_seconds({"preStop": {"exec": {"command": ["/bin/sh", "-c", "nginx -s quit; sleep 3"]}}})
    3.0
    >>> prestop_seconds({"preStop": {"httpGet": {"path": "/drain", "port": 8080}}}) is None
    True
    """
    if not isinstance(lifecycle, dict) or not isinstance(lifecycle.get("preStop"), dict):
        return 0.0
    hook = lifecycle["preStop"]
    sleep = hook.get("sleep")
    if isinstance(sleep, dict) and isinstance(sleep.get("seconds"), int | float) and not isinstance(sleep["seconds"], bool):
        return float(sleep["seconds"])
    command = hook.get("exec", {}).get("command") if isinstance(hook.get("exec"), dict) else None
    if isinstance(command, list):
        words = " ".join(str(c) for c in command)
        found = _SLEEP.search(words)
        if found:
            return float(found.group(1))
    return None


def grace_seconds(pod_spec: dict[str, Any]) -> float:
    """The pod's ``terminationGracePeriodSeconds`` (30 unless set)."""
    value = pod_spec.get("terminationGracePeriodSeconds")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return DEFAULT_GRACE_SECONDS


Problem = tuple[str, str, str, str, dict[str, Any]]


def container_problems(container: dict[str, Any], grace: float) -> list[Problem]:
    """(rule id, path below the container, message, fix hint, facts) for one serving
    container: its readiness probe, whether liveness asks the same thing, and its preStop hook.

    >>> c = {"name": "web", "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80}},
    ...      "livenessProbe": {"httpGet": {"path": "/healthz", "port": 80}}}
    >>> [(rule, path, facts) for rule, path, _, _, facts in container_problems(c, 30.0)]
    [('liveness-equals-readiness', 'livenessProbe', {}), ('prestop-shorter-than-endpoint-lag', 'lifecycle', {'pre_stop': 0.0, 'grace': 30.0})]
    """
    name = container.get("name", "?")
    out: list[Problem] = []
    readiness = container.get("readinessProbe")
    if readiness is None:
        out.append(("no-readiness-probe", "readinessProbe",
                    f"container {name!r} has no readinessProbe: it takes requests as soon as it runs",
                    "add a readinessProbe that answers only when the application serves (an httpGet on a "
                    "readiness path, not the liveness one)", {}))
    handler = probe_handler(readiness)
    if handler is not None and handler == probe_handler(container.get("livenessProbe")):
        out.append(("liveness-equals-readiness", "livenessProbe",
                    f"container {name!r}: livenessProbe asks the same as readinessProbe ({_describe(handler)})",
                    "give liveness its own cheap check (is the process stuck?) or drop it; keep dependencies "
                    "in readiness only", {}))
    seconds = prestop_seconds(container.get("lifecycle"))
    if seconds is not None and seconds < ENDPOINT_LAG_SECONDS:
        what = "no preStop hook" if seconds == 0 else f"preStop waits {seconds:g} s"
        out.append(("prestop-shorter-than-endpoint-lag", "lifecycle",
                    f"container {name!r}: {what}, shorter than the {ENDPOINT_LAG_SECONDS:g} s endpoint lag: "
                    "requests routed to it while it stops fail",
                    f"add lifecycle.preStop.sleep.seconds: {ENDPOINT_LAG_SECONDS:g} or more (or exec sleep), "
                    f"within terminationGracePeriodSeconds ({grace:g} s) with room for the drain",
                    {"pre_stop": seconds, "grace": grace}))
    return out


def _describe(handler: tuple[Any, ...]) -> str:
    kind, *rest = handler
    return f"{kind} {' '.join(rest)}".strip()
