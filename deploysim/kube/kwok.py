"""How a scenario's pods behave on a local control plane: the annotations the KWOK stages
of deploysim/kube/stages read from a pod (its template's), which a real kubelet ignores.

Durations are written in whole milliseconds, the form every stage's expression parses
(``f"{1e-05:g}s"`` would read ``1e-05s``, which the stages' ``[0-9.]+`` scan takes for 5 s).

>>> from deploysim.scenario import load_scenario
>>> s = load_scenario().model_copy(update={"candidate": load_scenario().candidate.model_copy(update={"fail_after": 6.0})})
>>> ann = pod_annotations(s, "candidate")
>>> ann[KWOK_READY_DELAY], ann[KWOK_FAIL_AFTER], pod_annotations(s, "stable")[KWOK_FAIL_AFTER]
('10000ms', '6000ms', None)
"""

from __future__ import annotations

from typing import Any

KWOK_READY_DELAY = "deploysim.io/ready-delay"
KWOK_READY_JITTER = "deploysim.io/ready-jitter"
KWOK_NEVER_READY = "deploysim.io/never-ready"
KWOK_TERMINATE_DELAY = "deploysim.io/terminate-delay"
KWOK_FAIL_AFTER = "deploysim.io/fail-after"  # pod-fail.yaml: ready, then failed this long after


def kwok_ms(seconds: float, least: int = 0) -> str:
    """``seconds`` as whole milliseconds, at least ``least``.

    >>> kwok_ms(1e-05), kwok_ms(1e6), kwok_ms(2.5), kwok_ms(1e-05, least=1)
    ('0ms', '1000000000ms', '2500ms', '1ms')
    """
    return f"{max(round(seconds * 1000), least)}ms"


def pod_annotations(scenario: Any, version: str) -> dict[str, str | None]:
    """The version's pod behaviour as annotations; ``None`` for one to remove (a merge patch
    deletes it, so a crash loop of an earlier run does not outlive that run)."""
    spec = scenario.candidate if version == "candidate" else scenario.stable
    return {
        KWOK_READY_DELAY: kwok_ms(scenario.pod.startup),
        KWOK_READY_JITTER: kwok_ms(scenario.pod.startup_jitter),
        KWOK_TERMINATE_DELAY: kwok_ms(scenario.pod.termination),
        KWOK_NEVER_READY: "true" if spec.never_ready else "false",
        KWOK_FAIL_AFTER: kwok_ms(spec.fail_after, least=1) if spec.fail_after is not None else None,
    }


def stale(current: dict[str, str] | None, wanted: dict[str, str | None]) -> bool:
    """The pod template's annotations differ from ``wanted`` (``None``: absent).

    >>> stale({KWOK_FAIL_AFTER: "6000ms"}, {KWOK_FAIL_AFTER: None}), stale({}, {KWOK_FAIL_AFTER: None})
    (True, False)
    """
    current = current or {}
    return any(current.get(k) != v for k, v in wanted.items())
