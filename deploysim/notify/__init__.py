"""Deploy annotations and notifications: a run's decisions told to Kubernetes Events, Grafana
and webhooks, without ever holding the run up.

A :class:`Notifier` turns each decision into a :class:`Notice` (:mod:`.notices`) on the run's
own thread, then hands it to every sink's queue (:mod:`.delivery`) and returns: each sink
sends from a thread of its own, with a timeout and retries with backoff. ``close`` tells the
sinks the run is over (Grafana closes its region), waits at most ``drain_seconds`` for what is
queued, and returns the report the record keeps: per sink what was sent, what failed and
why, and what was still undelivered when the bound passed. A failure is reported, never
raised into the run.

Sinks: :class:`~.events.KubeEvents` (core/v1 Events on every object the run changed),
:class:`~.grafana.GrafanaAnnotations` (a region over the rollout, a point at an abort),
:class:`~.webhooks.WebhookSink` (Flagger's event-webhook JSON or a Slack-compatible body).

>>> class Kept:
...     name, seen = "kept", []
...     def deliver(self, notice): self.seen.append(notice.reason); return True
...     def summary(self): return {}
...     def abandon(self): pass
...     def close(self): pass
>>> sink = Kept()
>>> notifier = Notifier([sink], RunContext("web", "shop", "rolling", "web:1", "web:2", ("rolling update",)))
>>> for d in ({"kind": "start", "step": 0, "reason": ""}, {"kind": "promote", "step": 1, "reason": "ok"}):
...     _ = notifier.decision(d)
>>> report = notifier.close(outcome="promoted")
>>> sink.seen, report["sinks"]["kept"]
(['RolloutStarted', 'RolloutPromoted', 'RolloutFinished'], {'sent': 3, 'failed': 0, 'undelivered': 0})
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploysim.notify.delivery import (
    CAPACITY,
    DRAIN_SECONDS,
    Delivery,
    SendError,
    Sending,
    Sink,
    retry_wait,
    transient_status,
)
from deploysim.notify.grafana import GrafanaAnnotations, annotation_body, close_body
from deploysim.notify.notices import (
    KINDS,
    NORMAL,
    TERMINAL_KINDS,
    WARNING,
    WEBHOOK_KINDS,
    Notice,
    RunContext,
    end_notice,
    notice_for,
    trigger_name,
)
from deploysim.notify.webhooks import Webhook, WebhookSink, generic_body, slack_body

__all__ = [
    "DRAIN_SECONDS", "KINDS", "NORMAL", "WARNING", "WEBHOOK_KINDS", "GrafanaAnnotations", "Notice", "NotifyConfig",
    "Notifier", "RunContext", "SendError", "Sending", "Sink", "Webhook", "WebhookSink", "annotation_body",
    "close_body", "end_notice", "generic_body", "notice_for", "retry_wait", "sinks_for", "slack_body",
    "summary_line", "transient_status", "trigger_name",
]


@dataclass(frozen=True)
class NotifyConfig:
    """Where a run's notices go (a runbook's ``events``, ``grafana_*`` and ``webhooks``)."""

    events: bool = True
    grafana_url: str | None = None
    grafana_token: str | None = field(default=None, repr=False)
    grafana_dashboard_uid: str | None = None
    webhooks: tuple[Webhook, ...] = ()
    sending: Sending = Sending()


def sinks_for(config: NotifyConfig, api: Any = None, namespace: str = "default") -> list[Sink]:
    """The sinks ``config`` names; Events only with an API client to create them through."""
    sinks: list[Sink] = []
    if config.events and api is not None:
        from deploysim.notify.events import KubeEvents

        sinks.append(KubeEvents(api, namespace, sending=config.sending))
    if config.grafana_url:
        sinks.append(GrafanaAnnotations(config.grafana_url, config.grafana_token, config.grafana_dashboard_uid,
                                        sending=config.sending))
    sinks += [WebhookSink(hook, i, sending=config.sending) for i, hook in enumerate(config.webhooks)]
    return sinks


class Notifier:
    """Fans a run's decisions out to its sinks; :meth:`decision` never waits, never raises."""

    def __init__(self, sinks: Sequence[Sink], context: RunContext, *,
                 objects: Callable[[], Iterable[tuple[str, str]]] | None = None,
                 clock: Callable[[], float] = time.time, drain_seconds: float = DRAIN_SECONDS,
                 capacity: int = CAPACITY) -> None:
        self.context = context
        self.objects = objects or (lambda: ())
        self.clock = clock
        self.drain_seconds = drain_seconds
        self.deliveries = [Delivery(sink, capacity) for sink in sinks]
        self.told_end = False
        self.started = False  # a notice was sent: the run began
        self.step: int | None = None
        self.errors: list[str] = []
        self.report: dict[str, Any] | None = None

    @property
    def sinks(self) -> list[str]:
        return [d.sink.name for d in self.deliveries]

    def rename(self, run_id: str) -> None:
        """The run took another id (a resumed run continues the earlier one's)."""
        if run_id != self.context.run_id:
            self.context = dataclasses.replace(self.context, run_id=run_id)

    def _objects(self) -> tuple[tuple[str, str], ...]:
        try:
            return tuple(self.objects())
        except Exception as exc:  # noqa: BLE001 - the notice goes without them
            self.errors.append(f"objects: {type(exc).__name__}")
            return ()

    def decision(self, decision: Mapping[str, Any]) -> Notice | None:
        """Queue the notice ``decision`` gives (if any) for every sink, and return it."""
        if self.report is not None or not self.deliveries:
            return None
        try:
            if isinstance(decision.get("step"), int):
                self.step = decision["step"]
            notice = notice_for(decision, self.context, self.clock(), self._objects())
        except Exception as exc:  # noqa: BLE001 - a decision the notifier cannot read is not the run's failure
            self.errors.append(f"{decision.get('kind')!r}: {type(exc).__name__}: {exc}"[:200])
            return None
        if notice is None:
            return None
        self.told_end = self.told_end or notice.kind in TERMINAL_KINDS
        self.started = True
        for delivery in self.deliveries:
            delivery.submit(notice)
        return notice

    def close(self, outcome: str | None = None, error: str | None = None) -> dict[str, Any]:
        """Tell the sinks the run is over, drain for at most ``drain_seconds``, and report
        (the same report again on a second call)."""
        if self.report is not None:
            return self.report
        if self.deliveries and self.started:  # a run refused before it began told nobody anything
            end = end_notice(self.context, self.clock(), outcome=outcome, error=error, told_end=self.told_end,
                             step=self.step, objects=self._objects())
            for delivery in self.deliveries:
                delivery.submit(end)
        deadline = time.monotonic() + self.drain_seconds
        sinks = {d.sink.name: d.stop(deadline) for d in self.deliveries}
        self.report = {"sinks": sinks, "failures": [f for d in self.deliveries for f in list(d.failures)],
                       "drain_seconds": self.drain_seconds}
        if self.errors:
            self.report["errors"] = self.errors[:20]
        return self.report


def summary_line(report: Mapping[str, Any]) -> str | None:
    """One line for the run's output when something did not get through; None otherwise.

    >>> summary_line({"sinks": {"grafana": {"sent": 2, "failed": 1, "undelivered": 0}},
    ...               "failures": [{"sink": "grafana", "reason": "RolloutStarted", "error": "HTTP 401"}]})
    'notifications: 1 failed, 0 undelivered (grafana RolloutStarted: HTTP 401); the run is not affected'
    """
    sinks = report.get("sinks") or {}
    failed = sum(s.get("failed", 0) for s in sinks.values())
    undelivered = sum(s.get("undelivered", 0) for s in sinks.values())
    if not failed and not undelivered:
        return None
    first = (report.get("failures") or [None])[0]
    why = f" ({first['sink']} {first['reason']}: {first['error']})" if first else ""
    return f"notifications: {failed} failed, {undelivered} undelivered{why}; the run is not affected"
