"""Names and labels the real world uses, shared by the world, the traffic model and tests.

One service ``S`` in one namespace:

- rolling / recreate: one Deployment ``S``; its pods carry ``app.kubernetes.io/name: S``.
- canary and blue-green: two Deployments, the colours ``S-blue`` and ``S-green``; their pods
  carry ``app.kubernetes.io/name: S`` and ``deploysim.io/slot: blue|green``. Which colour is
  stable is written on the Service ``S`` (annotation ``deploysim.io/stable-slot``), so after
  a promotion the roles swap without renaming anything.
- Service ``S``: what users reach. Replica-ratio canary: selects every pod of the service
  (weight = share of ready endpoints). Blue-green: selects the active colour. With a traffic
  router: the HTTPRoute ``S`` splits requests between Services ``S-blue`` and ``S-green`` by
  ``backendRefs[].weight``.
- Service ``S-preview`` (blue-green): selects the idle colour, for pre-promotion checks.

A pod's version is its first container's image: the candidate's image makes it the
candidate, any other image the stable version.

Every object a run changes carries the annotation ``deploysim.io/run: <run id>``, so what a
run touched can be listed and undone; a run's status lives in the ConfigMap
``deploysim-<S>`` (plain JSON), so a runbook that died half-way resumes where it stopped.
"""

from __future__ import annotations

APP_LABEL = "app.kubernetes.io/name"
SLOT_LABEL = "deploysim.io/slot"
RUN_ANNOTATION = "deploysim.io/run"
STABLE_SLOT_ANNOTATION = "deploysim.io/stable-slot"
PROMOTE_ANNOTATION = "deploysim.io/promote"  # a person sets "true" to pass a manual gate
ABORT_ANNOTATION = "deploysim.io/abort"  # a person sets "true" to abort
SLOTS = ("blue", "green")
HTTPROUTE_GROUP = "gateway.networking.k8s.io"
HTTPROUTE_VERSION = "v1"
HTTPROUTE_PLURAL = "httproutes"


def other_slot(slot: str) -> str:
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


def slot_deployment(service: str, slot: str) -> str:
    return f"{service}-{slot}"


def slot_service(service: str, slot: str) -> str:
    return f"{service}-{slot}"


def preview_service(service: str) -> str:
    return f"{service}-preview"


def status_configmap(service: str) -> str:
    return f"deploysim-{service}"


def selector(service: str, slot: str | None = None) -> dict[str, str]:
    labels = {APP_LABEL: service}
    if slot is not None:
        labels[SLOT_LABEL] = slot
    return labels


def label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
