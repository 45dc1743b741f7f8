"""What a run tells the outside world: one :class:`Notice` per decision a person watching a
dashboard or a channel wants, with the reason and type a Kubernetes Event carries.

The reasons are Argo Rollouts' where Argo has one (argoproj/argo-rollouts
utils/conditions/conditions.go: ``RolloutPausedReason`` "RolloutPaused", ``RolloutResumedReason``
"RolloutResumed", ``RolloutAbortedReason`` "RolloutAborted", ``RolloutStepCompletedReason``
"RolloutStepCompleted" with ``RolloutStepCompletedMessage`` "Rollout step %d/%d completed (%s)",
emitted in rollout/canary.go when the step index moves on; an abort goes through ``Warnf``,
a Warning). Flagger records the same two types (fluxcd/flagger pkg/controller/events.go:
``recordEventInfof`` Normal, ``recordEventWarningf`` Warning). Where neither has a reason
deploysim names its own: ``RolloutStarted``, ``RolloutPromoted`` (the promotion is the
rollout's completion: Argo's ``RolloutCompleted``), ``RolloutRolledBack``, ``RolloutRunResumed``
and ``RolloutStopped``.

A ``step`` decision enters a step, so it is the completion of the one before: entering step
3 of 7 is "Rollout step 2/7 completed". The first step is announced by the start, the last
by the promotion.

>>> ctx = RunContext("web", "shop", "canary", "web:1.0.0", "web:1.1.0", ("set weight to 5%", "pause 2m"), "r1")
>>> n = notice_for({"kind": "step", "step": 1, "reason": "step 2: pause 2m"}, ctx, 1700000000.0)
>>> n.reason, n.type, n.message, n.trigger
('RolloutStepCompleted', 'Normal', 'Rollout step 1/2 completed (set weight to 5%); step 2/2: pause 2m', 'on-rollout-step-completed')
>>> notice_for({"kind": "measure", "step": 1, "reason": "analysis: Successful"}, ctx, 1700000000.0) is None
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NORMAL, WARNING = "Normal", "Warning"
#: the shapes a webhook's body takes (deploysim.notify.webhooks)
WEBHOOK_KINDS = ("generic", "slack")
#: longest message a notice carries (events.k8s.io/v1 caps an Event's note at 1 kB)
MESSAGE_LIMIT = 1024

#: decision kind -> (reason, type, what the message starts with)
KINDS: dict[str, tuple[str, str, str]] = {
    "start": ("RolloutStarted", NORMAL, "Rollout started"),
    "step": ("RolloutStepCompleted", NORMAL, "Rollout step completed"),
    "pause": ("RolloutPaused", NORMAL, "Rollout paused"),
    "resume": ("RolloutResumed", NORMAL, "Rollout resumed"),
    "resumed": ("RolloutRunResumed", NORMAL, "Run resumed"),
    "abort": ("RolloutAborted", WARNING, "Rollout aborted"),
    "complete": ("RolloutRolledBack", WARNING, "Rollout rolled back"),
    "promote": ("RolloutPromoted", NORMAL, "Rollout promoted"),
}
#: the decisions after which the rollout is over
TERMINAL_KINDS = ("promote", "complete")
#: decision kind -> Flagger's CanaryPhase a webhook body names (flaggerv1 CanaryPhase*)
PHASES = {"start": "Progressing", "step": "Progressing", "resume": "Progressing", "resumed": "Progressing",
          "pause": "Waiting", "abort": "Failed", "complete": "Failed", "promote": "Succeeded"}


@dataclass(frozen=True)
class RunContext:
    """The run a notice is about: what every sink names beside the message."""

    service: str
    namespace: str
    strategy: str
    stable_image: str
    candidate_image: str
    steps: tuple[str, ...] = ()  # each step as the plan describes it
    run_id: str = ""

    @classmethod
    def of(cls, scenario: Any, plan: Any, namespace: str, run_id: str) -> RunContext:
        return cls(scenario.service, namespace, plan.strategy, scenario.stable.image, scenario.candidate.image,
                   tuple(step.describe() for step in plan.steps), run_id)


@dataclass(frozen=True)
class Notice:
    """One thing worth telling, as every sink reads it."""

    kind: str  # the decision's kind, or "end" when the run is over
    reason: str  # UpperCamelCase, as a Kubernetes Event's reason
    type: str  # Normal or Warning
    message: str
    time: float  # epoch seconds when it was decided
    context: RunContext
    step: int | None = None  # the 1-based step it is about; None: the run as a whole
    objects: tuple[tuple[str, str], ...] = ()  # (kind, name) of each object the run changed so far
    announce: bool = True  # False: the run's end after a promotion or a rollback, told by Grafana only
    outcome: str | None = None  # the record's outcome, on the end notice

    @property
    def warning(self) -> bool:
        return self.type == WARNING

    @property
    def time_ms(self) -> int:
        """Epoch milliseconds, as Grafana's ``time`` and Flagger's ``timestamp`` count."""
        return int(round(self.time * 1000))

    @property
    def trigger(self) -> str:
        return trigger_name(self.reason)

    @property
    def phase(self) -> str:
        if self.kind == "end":
            return "Succeeded" if self.outcome == "promoted" else "Failed"
        return PHASES.get(self.kind, "Progressing")

    @property
    def step_label(self) -> str:
        """``3/7``, or empty for the run as a whole."""
        return f"{self.step}/{len(self.context.steps)}" if self.step is not None else ""


def trigger_name(reason: str) -> str:
    """Argo Rollouts' trigger for an Event reason (utils/record/record.go
    ``translateReasonToTrigger``): words split at capitals, joined by dashes, ``on-`` first.

    >>> [trigger_name(r) for r in ("RolloutStepCompleted", "ScalingReplicaSet", "AnalysisRunFailed")]
    ['on-rollout-step-completed', 'on-scaling-replica-set', 'on-analysis-run-failed']
    """
    text = re.sub(r"(.)([A-Z][a-z]+)", r"\1-\2", reason)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    return "on-" + text.lower()


def _cap(text: str, limit: int = MESSAGE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _step_index(decision: Mapping[str, Any], steps: int) -> int | None:
    step = decision.get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) and 0 <= step < steps else None


def notice_for(decision: Mapping[str, Any], context: RunContext, now: float,
               objects: tuple[tuple[str, str], ...] = ()) -> Notice | None:
    """The notice a decision (``Decision.to_dict()``) gives, or None for one told nowhere
    (a measurement, an analysis verdict, an outage: the record keeps those).

    >>> ctx = RunContext("web", "shop", "rolling", "web:1", "web:2", ("rolling update to the candidate",))
    >>> notice_for({"kind": "start", "step": 0, "reason": "rolling rollout of 4 replicas, 1 steps"}, ctx, 0.0).message
    'Rollout started: rolling rollout of web in shop, web:1 -> web:2, 1 steps; step 1/1: rolling update to the candidate'
    >>> a = notice_for({"kind": "abort", "step": 0, "reason": "error_rate 0.3 > 0.05"}, ctx, 0.0)
    >>> a.reason, a.type, a.step, a.message
    ('RolloutAborted', 'Warning', 1, 'Rollout aborted at step 1/1: error_rate 0.3 > 0.05')
    >>> notice_for({"kind": "complete", "step": 0, "reason": "rolled back: the stable version serves all traffic (x)"},
    ...            ctx, 0.0).message
    'Rollout rolled back: the stable version serves all traffic (x)'
    """
    kind = decision.get("kind")
    if kind not in KINDS:
        return None
    reason, kind_type, lead = KINDS[kind]
    steps = len(context.steps)
    index = _step_index(decision, steps)
    text = str(decision.get("reason") or "")
    step: int | None = None
    if kind == "step":
        entered = decision.get("step")
        if not isinstance(entered, int) or isinstance(entered, bool) or not 1 <= entered <= steps:
            return None  # the first step is the start's to announce
        step = entered  # entering step k+1 (index k) completes step k
        message = f"Rollout step {step}/{steps} completed ({context.steps[step - 1]})"
        if entered < steps:
            message += f"; step {entered + 1}/{steps}: {context.steps[entered]}"
    elif kind == "start":
        message = (f"{lead}: {context.strategy} rollout of {context.service} in {context.namespace}, "
                   f"{context.stable_image} -> {context.candidate_image}, {steps} steps")
        if steps:
            message += f"; step 1/{steps}: {context.steps[0]}"
    elif kind == "promote":
        message = f"{lead} after {steps}/{steps} steps: {text}"
    elif kind == "complete":
        message = f"{lead}: {text.removeprefix('rolled back: ')}"
    else:
        step = index + 1 if index is not None else None
        where = f" at step {step}/{steps}" if step is not None else ""
        message = f"{lead}{where}: {text}" if text else f"{lead}{where}"
    return Notice(kind, reason, kind_type, _cap(message), now, context, step, tuple(objects))


def end_notice(context: RunContext, now: float, *, outcome: str | None, error: str | None,
               told_end: bool, step: int | None = None,
               objects: tuple[tuple[str, str], ...] = ()) -> Notice:
    """The run is over. After a promotion or a rollback (``told_end``) that was told already:
    the notice only closes Grafana's region. Otherwise the rollout was left half-way (a gate
    never approved, the time limit, an error) and that is a Warning for every sink.

    >>> ctx = RunContext("web", "shop", "canary", "web:1", "web:2", ("a", "b", "c"), "r1")
    >>> n = end_notice(ctx, 0.0, outcome="paused", error=None, told_end=False, step=1)
    >>> n.reason, n.type, n.announce, n.message
    ('RolloutStopped', 'Warning', True, 'Run ended at step 2/3 with the rollout paused, neither promoted nor rolled back')
    >>> end_notice(ctx, 0.0, outcome="promoted", error=None, told_end=True).announce
    False
    """
    steps = len(context.steps)
    at = step + 1 if isinstance(step, int) and 0 <= step < steps else None
    where = f" at step {at}/{steps}" if at is not None else ""
    if told_end:  # an error after the promotion or the rollback (e.g. a last patch refused) is said too
        outcome = outcome or ("error" if error else None)
        kind_type = NORMAL if outcome == "promoted" else WARNING
        message = f"Run ended: {outcome}" + (f" ({error})" if error else "")
        return Notice("end", "RolloutFinished", kind_type, _cap(message), now, context, None,
                      tuple(objects), announce=bool(error), outcome=outcome)
    if error:
        message = f"Run stopped{where} by an error, neither promoted nor rolled back: {error}"
    else:
        message = f"Run ended{where} with the rollout {outcome or 'unfinished'}, neither promoted nor rolled back"
    return Notice("end", "RolloutStopped", WARNING, _cap(message), now, context, at, tuple(objects),
                  outcome=outcome or ("error" if error else None))
