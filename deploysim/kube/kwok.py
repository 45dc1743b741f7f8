"""How a scenario's pods behave on a local control plane: the annotations the KWOK stages
of deploysim/kube/stages read from a pod (its template's), which a real kubelet ignores.

Durations are written in whole milliseconds, the form every stage's expression parses
(``f"{1e-05:g}s"`` would read ``1e-05s``, which the stages' ``[0-9.]+`` scan takes for 5 s).

>>> from deploysim.scenario import load_scenario
>>> s = load_scenario().model_copy(update={"candidate": load_scenario().candidate.model_copy(update={"fail_after": 6.0})})
>>> ann = pod_annotations(s, "candidate")
>>> ann[KWOK_READY_DELAY], ann[KWOK_FAIL_AFTER], pod_annotations(s, "stable")[KWOK_FAIL_AFTER]
('20000ms', '6000ms', None)

With probes, ``deploysim.io/probes`` carries the readiness and startup probes' timing for the
pod-probe-clock, pod-serving and pod-ready stages (:func:`probes_annotation`).
"""

from __future__ import annotations

import json
from typing import Any

from deploysim.rules.shutdown import exits_after

KWOK_READY_DELAY = "deploysim.io/ready-delay"
KWOK_READY_JITTER = "deploysim.io/ready-jitter"
KWOK_NEVER_READY = "deploysim.io/never-ready"
KWOK_TERMINATE_DELAY = "deploysim.io/terminate-delay"
KWOK_FAIL_AFTER = "deploysim.io/fail-after"  # pod-fail.yaml: ready, then failed this long after
KWOK_PROBES = "deploysim.io/probes"  # pod-ready.yaml: Ready on the probes' grid (JSON, milliseconds)
# set on the pod by the stages themselves: when its container started, when its application answered
KWOK_STARTED_MS = "deploysim.io/started-ms"
KWOK_SERVING_MS = "deploysim.io/serving-ms"


def kwok_ms(seconds: float, least: int = 0) -> str:
    """``seconds`` as whole milliseconds, at least ``least``.

    >>> kwok_ms(1e-05), kwok_ms(1e6), kwok_ms(2.5), kwok_ms(1e-05, least=1)
    ('0ms', '1000000000ms', '2500ms', '1ms')
    """
    return f"{max(round(seconds * 1000), least)}ms"


def probes_annotation(probes: Any) -> str | None:
    """The readiness and startup probes' timing, in milliseconds, as the pod-ready stage reads
    it; None without probes (ready when the application serves) and for a pod that is ready
    as soon as its container runs (no readiness or startup probe: the stages need no grid).

    >>> from deploysim.scenario import Probe, Probes
    >>> probes_annotation(Probes(readiness=Probe(initial_delay=2, period=4)))
    '{"readiness": {"initial_delay": 2000, "period": 4000, "success_threshold": 1}, "startup": null}'
    >>> probes_annotation(None), probes_annotation(Probes(liveness=Probe()))
    (None, None)
    """
    if probes is None or (probes.readiness is None and probes.startup is None):
        return None

    def timing(probe: Any) -> dict[str, int] | None:
        if probe is None:
            return None
        return {"initial_delay": round(probe.initial_delay * 1000), "period": round(probe.period * 1000),
                "success_threshold": probe.success_threshold}

    return json.dumps({"readiness": timing(probes.readiness), "startup": timing(probes.startup)})


def pod_annotations(scenario: Any, version: str) -> dict[str, str | None]:
    """The version's pod behaviour as annotations; ``None`` for one to remove (a merge patch
    deletes it, so a crash loop of an earlier run does not outlive that run).

    A version with probes but neither a readiness nor a startup probe is Ready as soon as
    its container runs, whether or not its application will ever answer."""
    spec, pod = (scenario.candidate if version == "candidate" else scenario.stable), scenario.pod
    probes = spec.probes if spec.probes is not None else pod.probes
    at_once = probes is not None and probes.readiness is None and probes.startup is None
    return {
        KWOK_READY_DELAY: kwok_ms(0.0 if at_once else pod.startup),
        KWOK_READY_JITTER: kwok_ms(0.0 if at_once else pod.startup_jitter),
        KWOK_TERMINATE_DELAY: kwok_ms(exits_after(pod.pre_stop, pod.termination, pod.termination_grace_period)),
        KWOK_NEVER_READY: "true" if spec.never_ready and not at_once else "false",
        KWOK_FAIL_AFTER: kwok_ms(spec.fail_after, least=1) if spec.fail_after is not None else None,
        KWOK_PROBES: probes_annotation(probes),
    }


def stale(current: dict[str, str] | None, wanted: dict[str, str | None]) -> bool:
    """The pod template's annotations differ from ``wanted`` (``None``: absent).

    >>> stale({KWOK_FAIL_AFTER: "6000ms"}, {KWOK_FAIL_AFTER: None}), stale({}, {KWOK_FAIL_AFTER: None})
    (True, False)
    """
    current = current or {}
    return any(current.get(k) != v for k, v in wanted.items())
