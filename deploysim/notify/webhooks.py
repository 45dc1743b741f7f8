"""Webhooks: each notice POSTed as JSON, in Flagger's event-webhook shape or Slack's.

``generic`` is the body Flagger sends its event webhook (fluxcd/flagger
pkg/controller/webhook.go ``CallEventWebhook``: ``name``, ``namespace``, ``phase`` and
``metadata`` with ``eventMessage``, ``eventType`` and ``timestamp`` in epoch milliseconds as
text), with Argo Rollouts' trigger name beside it (``trigger``: utils/record/record.go
``translateReasonToTrigger``, e.g. ``on-rollout-aborted``, what an Argo notifications
subscription names) and the run's own fields. Flagger's ``checksum`` (a hash of the Canary's
spec) has nothing to stand for here and is left out.

``slack`` is the Slack-compatible body Flagger's Slack provider posts (pkg/notifier/slack.go
``Slack.Post``: ``username``, ``icon_emoji`` ``:rocket:``, one attachment with ``color`` good or
danger, ``author_name`` ``<workload>.<namespace>``, ``text``, ``mrkdwn_in`` and ``fields`` of
title and value), plus a top-level ``text`` for clients that show no attachments (Slack's
notification fallback, Mattermost and Rocket.Chat).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from deploysim.notify.delivery import DEFAULT_SENDING, Poster, Sending
from deploysim.notify.notices import Notice


@dataclass(frozen=True)
class Webhook:
    """One webhook a run posts its notices to."""

    url: str = field(repr=False)  # a Slack URL is its own secret
    kind: str = "generic"  # generic or slack
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "?"


def generic_body(notice: Notice) -> dict[str, Any]:
    """Flagger's event-webhook payload for ``notice``, with Argo's trigger and the run's fields.

    >>> from deploysim.notify.notices import RunContext, notice_for
    >>> ctx = RunContext("web", "shop", "canary", "web:1", "web:2", ("a", "b"), "r1")
    >>> body = generic_body(notice_for({"kind": "abort", "step": 1, "reason": "error rate"}, ctx, 1700000000.5))
    >>> body["name"], body["namespace"], body["phase"], body["metadata"]
    ('web', 'shop', 'Failed', {'eventMessage': 'Rollout aborted at step 2/2: error rate', 'eventType': 'Warning', 'timestamp': '1700000000500'})
    >>> body["reason"], body["trigger"], body["step"], body["steps"]
    ('RolloutAborted', 'on-rollout-aborted', 2, 2)
    """
    ctx = notice.context
    body: dict[str, Any] = {
        "name": ctx.service, "namespace": ctx.namespace, "phase": notice.phase,
        "metadata": {"eventMessage": notice.message, "eventType": notice.type, "timestamp": str(notice.time_ms)},
        "reason": notice.reason, "trigger": notice.trigger, "kind": notice.kind,
        "step": notice.step, "steps": len(ctx.steps), "strategy": ctx.strategy, "run": ctx.run_id,
        "stableImage": ctx.stable_image, "candidateImage": ctx.candidate_image,
    }
    if notice.outcome is not None:
        body["outcome"] = notice.outcome
    return body


def slack_body(notice: Notice) -> dict[str, Any]:
    """The Slack-compatible message for ``notice``: Flagger's attachment, and a plain text.

    >>> from deploysim.notify.notices import RunContext, notice_for
    >>> ctx = RunContext("web", "shop", "canary", "web:1", "web:2", ("a", "b"), "r1")
    >>> body = slack_body(notice_for({"kind": "promote", "step": 2, "reason": "all passed"}, ctx, 0.0))
    >>> body["text"]
    'web.shop: Rollout promoted after 2/2 steps: all passed'
    >>> a = body["attachments"][0]
    >>> a["color"], a["author_name"], a["mrkdwn_in"], [f["title"] for f in a["fields"]]
    ('good', 'web.shop', ['text'], ['Reason', 'Strategy', 'Images', 'Run'])
    """
    ctx = notice.context
    fields = [("Reason", notice.reason), ("Strategy", ctx.strategy)]
    if notice.step is not None:
        fields.append(("Step", notice.step_label))
    fields += [("Images", f"{ctx.stable_image} -> {ctx.candidate_image}"), ("Run", ctx.run_id)]
    who = f"{ctx.service}.{ctx.namespace}"
    return {
        "username": "deploysim", "icon_emoji": ":rocket:", "text": f"{who}: {notice.message}",
        "attachments": [{"color": "danger" if notice.warning else "good", "author_name": who,
                         "text": notice.message, "mrkdwn_in": ["text"],
                         "fields": [{"title": t, "value": v, "short": False} for t, v in fields if v]}],
    }


BODIES = {"generic": generic_body, "slack": slack_body}


class WebhookSink:
    """A sink: every announced notice POSTed to one webhook."""

    def __init__(self, webhook: Webhook, index: int = 0, sending: Sending = DEFAULT_SENDING) -> None:
        if webhook.kind not in BODIES:
            raise ValueError(f"webhook {index}: kind {webhook.kind!r}; allowed: {', '.join(BODIES)}")
        self.webhook = webhook
        self.name = f"webhook {index} {webhook.kind} {webhook.host}"
        parts = urlsplit(webhook.url)
        secrets = [webhook.url, parts.path if len(parts.path) > 1 else "", parts.query, *webhook.headers.values()]
        self.poster = Poster(sending, secrets=secrets)

    def deliver(self, notice: Notice) -> bool:
        if not notice.announce:
            return False
        body = BODIES[self.webhook.kind](notice)
        self.poster.send("POST", self.webhook.url, body, self.webhook.headers)
        return True

    def summary(self) -> dict[str, Any]:
        return {}

    def abandon(self) -> None:
        self.poster.abandon.set()

    def close(self) -> None:
        self.poster.close()
