"""Grafana annotations: the rollout as a region on the dashboards, an abort as a point in it.

Grafana's Annotations HTTP API (grafana/grafana docs/sources/developers/http_api/annotations.md,
"Create Annotation" and "Patch Annotation"): ``POST /api/annotations`` with ``text`` (the one
required field), ``time`` and ``timeEnd`` in epoch milliseconds (a region when they differ),
``tags`` and an optional ``dashboardUID`` (without it the annotation belongs to the
organization and shows on any dashboard querying its tags); the answer is ``{"message":
"Annotation added", "id": 1}``. ``PATCH /api/annotations/:id`` changes only ``text``,
``tags``, ``time`` and ``timeEnd``. The token goes as ``Authorization: Bearer``, the way
Argo's notifications-engine posts its Grafana annotations (pkg/services/grafana.go
``grafanaService.Send``).

The region opens at the run's start with ``timeEnd`` equal to ``time`` and is closed at the
end by a PATCH that sets ``timeEnd``, the outcome in its text and an ``outcome:`` tag.
"""

from __future__ import annotations

from typing import Any

from deploysim.notify.delivery import DEFAULT_SENDING, Poster, SendError, Sending
from deploysim.notify.notices import Notice, RunContext


def annotation_tags(context: RunContext) -> list[str]:
    """
    >>> annotation_tags(RunContext("web", "shop", "canary", "web:1", "web:2", (), "r1"))
    ['deploysim', 'service:web', 'namespace:shop', 'strategy:canary', 'run:r1']
    """
    tags = ["deploysim", f"service:{context.service}", f"namespace:{context.namespace}",
            f"strategy:{context.strategy}"]
    return tags + ([f"run:{context.run_id}"] if context.run_id else [])


def region_text(context: RunContext) -> str:
    """
    >>> region_text(RunContext("web", "shop", "canary", "web:1", "web:2", (), "r1"))
    'deploysim canary rollout of web in shop: web:1 -> web:2 (run r1)'
    """
    run = f" (run {context.run_id})" if context.run_id else ""
    return (f"deploysim {context.strategy} rollout of {context.service} in {context.namespace}: "
            f"{context.stable_image} -> {context.candidate_image}{run}")


def annotation_body(notice: Notice, text: str, tags: list[str], dashboard_uid: str | None = None,
                    time_end_ms: int | None = None) -> dict[str, Any]:
    """The ``POST /api/annotations`` body: a point at the notice's time, or a region to
    ``time_end_ms``.

    >>> from deploysim.notify.notices import notice_for
    >>> ctx = RunContext("web", "shop", "canary", "web:1", "web:2", ("a",), "r1")
    >>> start = notice_for({"kind": "start", "step": 0, "reason": ""}, ctx, 1507037197.339)
    >>> annotation_body(start, "rollout", ["deploysim"], "jcIIG-07z", start.time_ms)
    {'time': 1507037197339, 'timeEnd': 1507037197339, 'tags': ['deploysim'], 'text': 'rollout', 'dashboardUID': 'jcIIG-07z'}
    """
    body: dict[str, Any] = {"time": notice.time_ms, "timeEnd": time_end_ms if time_end_ms is not None
                            else notice.time_ms, "tags": list(tags), "text": text}
    if dashboard_uid:
        body["dashboardUID"] = dashboard_uid
    return body


def close_body(notice: Notice, start_ms: int, text: str, tags: list[str]) -> dict[str, Any]:
    """The ``PATCH /api/annotations/:id`` body that closes the region at the end notice.

    >>> from deploysim.notify.notices import end_notice
    >>> ctx = RunContext("web", "shop", "canary", "web:1", "web:2", ("a",), "r1")
    >>> end = end_notice(ctx, 1507180805.056, outcome="promoted", error=None, told_end=True)
    >>> close_body(end, 1507037197339, "rollout", ["deploysim"])
    {'timeEnd': 1507180805056, 'text': 'rollout: promoted', 'tags': ['deploysim', 'outcome:promoted']}
    """
    outcome = notice.outcome or "ended"
    text = f"{text}: {outcome}" if notice.announce is False else f"{text}: {outcome} ({notice.message})"
    return {"timeEnd": max(notice.time_ms, start_ms), "text": text, "tags": [*tags, f"outcome:{outcome}"]}


class GrafanaAnnotations:
    """A sink: the run's region (opened at the start, closed at the end) and a point at an abort."""

    name = "grafana"

    def __init__(self, url: str, token: str | None = None, dashboard_uid: str | None = None,
                 sending: Sending = DEFAULT_SENDING) -> None:
        self.base = url.rstrip("/")
        self.token, self.dashboard_uid = token, dashboard_uid
        self.poster = Poster(sending, secrets=[token or ""])
        self.region: int | None = None
        self._start_ms = 0
        self.posted = 0

    @property
    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _post(self, body: dict[str, Any]) -> int:
        resp = self.poster.send("POST", f"{self.base}/api/annotations", body, self._headers)
        try:
            annotation = resp.json().get("id")
        except (ValueError, AttributeError):
            annotation = None
        if not isinstance(annotation, int) or isinstance(annotation, bool):
            raise SendError(f"Grafana answered HTTP {resp.status_code} without an annotation id")
        self.posted += 1
        return annotation

    def deliver(self, notice: Notice) -> bool:
        ctx = notice.context
        if notice.kind in ("start", "resumed"):
            if self.region is not None:
                return False
            self._start_ms = notice.time_ms
            self.region = self._post(annotation_body(notice, region_text(ctx), annotation_tags(ctx),
                                                     self.dashboard_uid))
            return True
        if notice.kind == "abort":
            self._post(annotation_body(notice, notice.message, [*annotation_tags(ctx), "abort"], self.dashboard_uid))
            return True
        if notice.kind == "end" and self.region is not None:
            body = close_body(notice, self._start_ms, region_text(ctx), annotation_tags(ctx))
            self.poster.send("PATCH", f"{self.base}/api/annotations/{self.region}", body, self._headers)
            return True
        return False

    def summary(self) -> dict[str, Any]:
        return {"region": self.region, "annotations": self.posted}

    def abandon(self) -> None:
        self.poster.abandon.set()

    def close(self) -> None:
        self.poster.close()
