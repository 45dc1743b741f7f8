"""What a pod template says about the pods' probes and shutdown: the scenario's ``pod.probes``,
``pod.pre_stop`` and ``pod.termination_grace_period``.

Read from the template of a Deployment, an Argo Rollout (``spec.template``, or the
Deployment its ``workloadRef`` names) and a Flagger Canary's target Deployment. The first
container is the application's: its ``readinessProbe``, ``livenessProbe`` and ``startupProbe``
(Kubernetes' defaults for the fields left out: core/v1 ``Probe``), and its ``preStop`` hook
when its length can be read (``sleep.seconds``, or an ``exec`` that sleeps). A template
with no probe at all leaves the scenario's ``pod.probes`` as they are (unset: ready exactly
when the application serves), so manifests without probes rehearse as they always did;
Kubernetes would route to such a pod as soon as its container runs, which ``--set
pod.probes={}`` rehearses, and which ``deploysim lint`` names and costs.

>>> from deploysim.manifests.documents import Document, Reader
>>> doc = Document(file="d.yaml", index=1, data={"kind": "Deployment", "metadata": {"name": "web"}})
>>> r = Reader(doc, [])
>>> t = {"spec": {"terminationGracePeriodSeconds": 45, "containers": [{"name": "web",
...      "readinessProbe": {"httpGet": {"path": "/ready"}, "periodSeconds": 5},
...      "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 10"]}}}}]}}
>>> got = pod_settings(r, t, "spec.template")
>>> got["probes"]["readiness"]["period"], got["probes"]["liveness"], got["pre_stop"], got["termination_grace_period"]
(5.0, None, 10.0, 45.0)
"""

from __future__ import annotations

import re
from typing import Any

from deploysim.manifests.documents import Reader
from deploysim.rules import probes as rules

PROBES = {"readinessProbe": "readiness", "livenessProbe": "liveness", "startupProbe": "startup"}
HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")
_SLEEP = re.compile(r"(?:^|[\s;&|(])sleep\s+(\d+(?:\.\d+)?)s?(?=$|[\s;&|)])")


def exec_sleep(command: Any) -> float | None:
    """Seconds an ``exec`` preStop command sleeps (the first ``sleep N`` in it), or None.

    >>> exec_sleep(["sleep", "15"]), exec_sleep(["/bin/sh", "-c", "sleep 5 && nginx -s quit"]), exec_sleep(["nginx", "-s", "quit"])
    (15.0, 5.0, None)
    """
    if not isinstance(command, list) or not all(isinstance(c, str | int | float) for c in command):
        return None
    found = _SLEEP.search(" ".join(str(c) for c in command))
    return float(found.group(1)) if found else None


def _probe(r: Reader, m: dict[str, Any], path: str) -> dict[str, Any]:
    """One probe's timing, Kubernetes' defaults for what is left out."""
    r.unused(m, path, ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold",
                       "failureThreshold"), quiet=HANDLERS)
    return {
        "initial_delay": float(r.integer(m, "initialDelaySeconds", path, 0, lo=0) or 0),
        "period": float(r.integer(m, "periodSeconds", path, int(rules.DEFAULT_PERIOD), lo=1) or rules.DEFAULT_PERIOD),
        "timeout": float(r.integer(m, "timeoutSeconds", path, int(rules.DEFAULT_TIMEOUT), lo=1) or rules.DEFAULT_TIMEOUT),
        "success_threshold": r.integer(m, "successThreshold", path, rules.DEFAULT_SUCCESS_THRESHOLD, lo=1),
        "failure_threshold": r.integer(m, "failureThreshold", path, rules.DEFAULT_FAILURE_THRESHOLD, lo=1),
    }


def _pre_stop(r: Reader, container: dict[str, Any], path: str) -> float | None:
    """The preStop hook's length in seconds, when it can be read; a warning when it cannot."""
    lifecycle = r.mapping(container.get("lifecycle"), f"{path}.lifecycle")
    hook = r.mapping(lifecycle.get("preStop"), f"{path}.lifecycle.preStop")
    if not hook:
        return None
    hpath = f"{path}.lifecycle.preStop"
    if "sleep" in hook:
        sleep = r.mapping(hook["sleep"], f"{hpath}.sleep")
        return float(r.integer(sleep, "seconds", f"{hpath}.sleep", 0, lo=0) or 0)
    if "exec" in hook:
        seconds = exec_sleep(r.mapping(hook["exec"], f"{hpath}.exec").get("command"))
        if seconds is not None:
            return seconds
    r.warn(hpath, "its length is not known (no sleep in it); the rehearsal keeps the scenario's pod.pre_stop")
    return None


def pod_settings(r: Reader, template: Any, path: str) -> dict[str, Any]:
    """The scenario's ``pod`` keys the pod template at ``path`` decides (none for no template)."""
    t = r.mapping(template, path)
    spec = r.mapping(t.get("spec"), f"{path}.spec")
    containers = r.items(spec.get("containers"), f"{path}.spec.containers")
    out: dict[str, Any] = {}
    if spec.get("terminationGracePeriodSeconds") is not None:
        out["termination_grace_period"] = float(
            r.integer(spec, "terminationGracePeriodSeconds", f"{path}.spec", 30, lo=0) or 0)
    if not containers:
        return out
    cpath = f"{path}.spec.containers[0]"
    first = r.mapping(containers[0], cpath)
    declared = {name: r.mapping(first.get(key), f"{cpath}.{key}") for key, name in PROBES.items() if key in first}
    if declared:
        out["probes"] = {name: (_probe(r, declared[name], f"{cpath}.{key}") if name in declared else None)
                         for key, name in PROBES.items()}
    for i, other in enumerate(containers[1:], start=1):
        if isinstance(other, dict) and any(k in other for k in PROBES):
            r.warn(f"{path}.spec.containers[{i}]", "probes of containers after the first are not simulated")
    pre_stop = _pre_stop(r, first, cpath)
    if pre_stop is not None:
        out["pre_stop"] = pre_stop
    return out
