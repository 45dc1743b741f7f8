"""Grafana annotations and webhooks as a local HTTP server receives them: the documented
request shapes, retries on 500, a server that never answers, and a run that never waits.

Nothing here measures time: a server that holds a request is released by the test, and what
the notifier did is read from its report and from the requests the server got.
"""

from __future__ import annotations

import itertools
import re

import pytest
from notify_server import Answer, Receiver, Request, grafana_script

from deploysim.notify import Notifier, NotifyConfig, RunContext, Sending, Webhook, sinks_for

CTX = RunContext("web", "shop", "canary", "web:1.0.0", "web:1.1.0",
                 ("set weight to 25%", "pause 8s", "set weight to 100%"), "run-7")
TOKEN = "glsa_Zk3xQ9TestTokenValue_0a1b2c3d"
FAST = Sending(timeout=5.0, retries=3, wait=(0.01, 0.02))  # the waits of a test, not of a run
START = {"kind": "start", "step": 0, "reason": "canary rollout of 4 replicas, 3 steps"}
STEP = {"kind": "step", "step": 1, "reason": "step 2: pause 8s"}
PAUSE = {"kind": "pause", "step": 1, "reason": "manual gate: waiting for approval"}
RESUME = {"kind": "resume", "step": 1, "reason": "approved (manual gate)"}
ABORT = {"kind": "abort", "step": 2, "reason": "error_rate 0.31 > 0.05"}
COMPLETE = {"kind": "complete", "step": 2, "reason": "rolled back: the stable version serves all traffic (x)"}
PROMOTE = {"kind": "promote", "step": 3, "reason": "every step passed; the candidate serves all traffic"}


def _clock(start: float = 1507037197.339, step: float = 60.0):
    times = itertools.count()
    return lambda: start + step * next(times)


def _notifier(config: NotifyConfig, **kw) -> Notifier:
    return Notifier(sinks_for(config), CTX, clock=_clock(), **kw)


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 13


# --- Grafana -------------------------------------------------------------------------------------------


def test_grafana_gets_a_region_opened_at_the_start_a_point_at_the_abort_and_a_patch_closing_it() -> None:
    with Receiver() as grafana:
        config = NotifyConfig(grafana_url=grafana.url + "/grafana/", grafana_token=TOKEN,
                              grafana_dashboard_uid="jcIIG-07z", sending=FAST)
        notifier = _notifier(config)
        for decision in (START, STEP, ABORT, COMPLETE):
            notifier.decision(decision)
        report = notifier.close(outcome="rolled_back")
    opened, point, closed = grafana.requests
    tags = ["deploysim", "service:web", "namespace:shop", "strategy:canary", "run:run-7"]
    # POST /api/annotations (Grafana's sub-path kept), as the docs' "Create Annotation" example
    assert (opened.method, opened.path) == ("POST", "/grafana/api/annotations")
    assert opened.header("Authorization") == f"Bearer {TOKEN}"
    assert opened.header("Content-Type") == "application/json" and opened.header("Accept") == "application/json"
    assert opened.body == {"time": 1507037197339, "timeEnd": 1507037197339, "tags": tags,
                           "text": "deploysim canary rollout of web in shop: web:1.0.0 -> web:1.1.0 (run run-7)",
                           "dashboardUID": "jcIIG-07z"}
    # the abort: a point in the region (time == timeEnd), tagged
    assert (point.method, point.path) == ("POST", "/grafana/api/annotations")
    assert point.body["time"] == point.body["timeEnd"] == 1507037197339 + 2 * 60_000
    assert point.body["tags"] == [*tags, "abort"] and "error_rate 0.31 > 0.05" in point.body["text"]
    # PATCH /api/annotations/:id with only the fields the docs' "Patch Annotation" allows
    region = 1000 + len(tags)  # the id the server gave the region
    assert (closed.method, closed.path) == ("PATCH", f"/grafana/api/annotations/{region}")
    assert closed.header("Authorization") == f"Bearer {TOKEN}"
    assert set(closed.body) <= {"text", "tags", "time", "timeEnd"}
    assert closed.body["timeEnd"] == 1507037197339 + 4 * 60_000 and _is_ms(closed.body["timeEnd"])
    assert closed.body["tags"] == [*tags, "outcome:rolled_back"] and closed.body["text"].endswith(": rolled_back")
    assert all(_is_ms(r.body[k]) for r in (opened, point) for k in ("time", "timeEnd"))
    assert report["sinks"]["grafana"] == {"sent": 3, "failed": 0, "undelivered": 0, "region": region, "annotations": 2}


def test_without_a_token_no_authorization_header_and_without_a_dashboard_an_organization_annotation() -> None:
    with Receiver() as grafana:
        notifier = _notifier(NotifyConfig(grafana_url=grafana.url, sending=FAST))
        notifier.decision(START)
        notifier.close(outcome="incomplete")
    opened, closed = grafana.requests
    assert opened.header("Authorization") is None and "dashboardUID" not in opened.body
    assert closed.body["text"].endswith(": incomplete (Run ended at step 1/3 with the rollout incomplete, neither promoted "
                                        "nor rolled back)")


def test_a_grafana_answer_without_an_id_is_a_failure_and_nothing_is_patched() -> None:
    with Receiver(lambda r, n: Answer(200, {"message": "ok"})) as grafana:
        notifier = _notifier(NotifyConfig(grafana_url=grafana.url, sending=FAST))
        notifier.decision(START)
        report = notifier.close(outcome="promoted")
    assert [r.method for r in grafana.requests] == ["POST"]
    (failure,) = report["failures"]
    assert failure["reason"] == "RolloutStarted" and "without an annotation id" in failure["error"]


# --- webhooks ------------------------------------------------------------------------------------------


def test_webhooks_get_flaggers_event_payload_and_a_slack_message_for_each_decision_told() -> None:
    with Receiver(lambda r, n: Answer(200, {"ok": True})) as hooks:
        config = NotifyConfig(webhooks=(Webhook(hooks.url + "/generic", "generic", {"X-Deploy-Token": "hdr-1"}),
                                        Webhook(hooks.url + "/services/slack", "slack")), sending=FAST)
        notifier = _notifier(config)
        for decision in (START, STEP, PAUSE, RESUME, PROMOTE):
            notifier.decision(decision)
        report = notifier.close(outcome="promoted")
    generic = [r for r in hooks.requests if r.path == "/generic"]
    slack = [r for r in hooks.requests if r.path == "/services/slack"]
    reasons = ["RolloutStarted", "RolloutStepCompleted", "RolloutPaused", "RolloutResumed", "RolloutPromoted"]
    assert [r.body["reason"] for r in generic] == reasons  # the end after a promotion is Grafana's only
    for i, request in enumerate(generic):
        assert request.method == "POST" and request.header("Content-Type") == "application/json"
        assert request.header("X-Deploy-Token") == "hdr-1"
        body = request.body
        # Flagger's CallEventWebhook payload
        assert (body["name"], body["namespace"]) == ("web", "shop")
        assert set(body["metadata"]) == {"eventMessage", "eventType", "timestamp"}
        assert body["metadata"]["eventType"] == "Normal"
        assert body["metadata"]["timestamp"] == str(1507037197339 + i * 60_000)  # ms, as text
        assert body["trigger"] == "on-" + re.sub(r"(?<!^)([A-Z])", r"-\1", body["reason"]).lower()
    assert [r.body["phase"] for r in generic] == ["Progressing", "Progressing", "Waiting", "Progressing", "Succeeded"]
    assert generic[1].body["metadata"]["eventMessage"] == ("Rollout step 1/3 completed (set weight to 25%); "
                                                           "step 2/3: pause 8s")
    assert [r.body["attachments"][0]["color"] for r in slack] == ["good"] * 5
    first = slack[0].body
    assert first["text"].startswith("web.shop: Rollout started: canary rollout of web in shop")
    assert first["attachments"][0]["author_name"] == "web.shop" and first["attachments"][0]["mrkdwn_in"] == ["text"]
    assert {f["title"] for f in first["attachments"][0]["fields"]} >= {"Reason", "Strategy", "Images", "Run"}
    assert report["failures"] == []
    assert {k: v["sent"] for k, v in report["sinks"].items()} == {
        "webhook 0 generic 127.0.0.1": 5, "webhook 1 slack 127.0.0.1": 5}


def test_an_abort_and_its_rollback_are_warnings_in_danger_colour() -> None:
    with Receiver(lambda r, n: Answer(200, {})) as hooks:
        config = NotifyConfig(webhooks=(Webhook(hooks.url + "/g"), Webhook(hooks.url + "/s", "slack")), sending=FAST)
        notifier = _notifier(config)
        for decision in (START, ABORT, COMPLETE):
            notifier.decision(decision)
        notifier.close(outcome="rolled_back")
    generic = [r.body for r in hooks.requests if r.path == "/g"]
    slack = [r.body for r in hooks.requests if r.path == "/s"]
    assert [(b["reason"], b["metadata"]["eventType"], b["phase"]) for b in generic] == [
        ("RolloutStarted", "Normal", "Progressing"), ("RolloutAborted", "Warning", "Failed"),
        ("RolloutRolledBack", "Warning", "Failed")]
    assert [b["attachments"][0]["color"] for b in slack] == ["good", "danger", "danger"]


def test_a_run_left_half_way_is_announced_to_the_webhooks_at_its_end() -> None:
    with Receiver(lambda r, n: Answer(200, {})) as hooks:
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(hooks.url + "/g"),), sending=FAST))
        notifier.decision(START)
        notifier.decision(PAUSE)
        notifier.close(outcome="paused")
    last = hooks.requests[-1].body
    assert (last["reason"], last["kind"], last["outcome"], last["metadata"]["eventType"]) == (
        "RolloutStopped", "end", "paused", "Warning")
    assert last["metadata"]["eventMessage"].startswith("Run ended at step 2/3 with the rollout paused")


# --- retries, timeouts, never waiting ------------------------------------------------------------------


def test_a_500_is_asked_again_and_the_200_after_it_counts_as_sent() -> None:
    def script(request: Request, before: int) -> Answer:
        return Answer(500, {"error": "busy"}) if before == 0 else Answer(200, {})

    with Receiver(script) as hooks:
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(hooks.url + "/g"),), sending=FAST))
        notifier.decision(START)
        report = notifier.close(outcome="incomplete")
    reasons = [r.body["reason"] for r in hooks.requests]
    assert reasons == ["RolloutStarted", "RolloutStarted", "RolloutStopped"]  # the start sent twice
    assert report["sinks"]["webhook 0 generic 127.0.0.1"] == {"sent": 2, "failed": 0, "undelivered": 0}


def test_a_429_with_retry_after_is_asked_again_and_a_400_is_not() -> None:
    limited = itertools.count()

    def script(request: Request, before: int) -> Answer:
        if request.path == "/limited":
            return Answer(429, {}, {"Retry-After": "0"}) if next(limited) < 2 else Answer(200, {})
        return Answer(400, {"error": "bad payload"})

    with Receiver(script) as hooks:
        config = NotifyConfig(webhooks=(Webhook(hooks.url + "/limited"), Webhook(hooks.url + "/refusing")),
                              sending=FAST)
        notifier = _notifier(config)
        notifier.decision(START)
        report = notifier.close(outcome="incomplete")
    limited = [r.body["reason"] for r in hooks.requests if r.path == "/limited"]
    refusing = [r.body["reason"] for r in hooks.requests if r.path == "/refusing"]
    assert limited == ["RolloutStarted"] * 3 + ["RolloutStopped"]  # 429, 429, 200; then the end
    assert refusing == ["RolloutStarted", "RolloutStopped"]  # a refusal is not asked again
    assert report["sinks"]["webhook 0 generic 127.0.0.1"] == {"sent": 2, "failed": 0, "undelivered": 0}
    for refused in report["failures"]:
        assert refused["sink"] == "webhook 1 generic 127.0.0.1" and refused["attempts"] == 1
        assert refused["error"] == 'HTTP 400: {"error": "bad payload"}'


def test_a_refusal_after_a_503_says_it_took_two_attempts() -> None:
    def script(request: Request, before: int) -> Answer:
        return Answer(503, {}) if before == 0 else Answer(422, {"error": "unknown field"})

    with Receiver(script) as hooks:
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(hooks.url + "/g"),), sending=FAST))
        notifier.decision(START)
        notifier.decision(PROMOTE)
        report = notifier.close(outcome="promoted")
    assert [(f["reason"], f["attempts"], f["error"]) for f in report["failures"]] == [
        ("RolloutStarted", 2, 'HTTP 422: {"error": "unknown field"}'),
        ("RolloutPromoted", 1, 'HTTP 422: {"error": "unknown field"}')]


def test_retries_stop_after_the_last_attempt_and_the_failure_says_how_many() -> None:
    with Receiver(lambda r, n: Answer(503, {"error": "down"})) as hooks:
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(hooks.url + "/g"),), sending=FAST))
        notifier.decision(START)
        report = notifier.close(outcome="incomplete")
    assert len(hooks.requests) == 2 * 4  # the start and the end, each 1 + 3 retries
    assert [(f["reason"], f["attempts"]) for f in report["failures"]] == [("RolloutStarted", 4), ("RolloutStopped", 4)]
    assert report["failures"][0]["error"] == 'HTTP 503: {"error": "down"} (4 attempts)'


def test_a_server_that_never_answers_times_out_and_the_report_says_so() -> None:
    with Receiver(lambda r, n: Answer(200, {}, hold=True)) as silent:
        sending = Sending(timeout=0.2, retries=1, wait=(0.01, 0.01))
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(silent.url + "/g"),), sending=sending),
                             drain_seconds=120.0)
        notifier.decision(START)
        report = notifier.close(outcome="incomplete")
    # each notice asked again once, then given up
    assert [r.body["reason"] for r in silent.requests] == ["RolloutStarted"] * 2 + ["RolloutStopped"] * 2
    assert report["failures"] == [{"sink": "webhook 0 generic 127.0.0.1", "reason": reason,
                                   "error": "no answer within 0.2s (2 attempts)", "attempts": 2}
                                  for reason in ("RolloutStarted", "RolloutStopped")]
    assert report["sinks"]["webhook 0 generic 127.0.0.1"] == {"sent": 0, "failed": 2, "undelivered": 0}


def test_a_decision_returns_before_the_webhook_answers() -> None:
    # the server answers only once the test releases it, after decision() returned: a notifier
    # that waited for the answer would time out (retries 0) and count a failure, not a send
    with Receiver(lambda r, n: Answer(200, {}, hold=True)) as held:
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(held.url + "/g"),),
                                          sending=Sending(timeout=60.0, retries=0)), drain_seconds=120.0)
        notice = notifier.decision(START)
        assert notice is not None and notice.reason == "RolloutStarted"
        assert held.wait_for(1)[0].body["reason"] == "RolloutStarted"  # in flight, unanswered
        held.released.set()
        report = notifier.close(outcome="incomplete")
    assert report["sinks"]["webhook 0 generic 127.0.0.1"] == {"sent": 2, "failed": 0, "undelivered": 0}


def test_the_drain_at_the_end_is_bounded_and_what_was_left_is_reported_undelivered() -> None:
    with Receiver(lambda r, n: Answer(200, {}, hold=True)) as held:
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(held.url + "/g"),),
                                          sending=Sending(timeout=60.0, retries=3, wait=(0.01, 0.01))),
                             drain_seconds=0.2)
        notifier.decision(START)
        notifier.decision(STEP)
        held.wait_for(1)
        report = notifier.close(outcome="incomplete")  # the start is held: the rest cannot go
        assert report["sinks"]["webhook 0 generic 127.0.0.1"] == {"sent": 0, "failed": 0, "undelivered": 3}
        held.released.set()
        delivery = notifier.deliveries[0]
        delivery._thread.join(30)
        assert not delivery._thread.is_alive()
    # past the bound the worker sends nothing more: only the request in flight went
    assert [r.body["reason"] for r in held.requests] == ["RolloutStarted"]
    assert notifier.close() is report  # closing again reports the same


def test_a_full_queue_drops_the_notice_and_counts_it() -> None:
    with Receiver(lambda r, n: Answer(200, {}, hold=True)) as held:
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(held.url + "/g"),), sending=Sending(timeout=60.0)),
                             capacity=1, drain_seconds=0.1)
        notifier.decision(START)
        held.wait_for(1)  # the worker holds the start; the queue has room for one more
        notifier.decision(STEP)
        notifier.decision(PAUSE)
        report = notifier.close(outcome="paused")
    assert [f["reason"] for f in report["failures"]][:1] == ["RolloutPaused"]
    assert report["failures"][0]["error"] == "not sent: the queue was full"


@pytest.mark.parametrize("kind", ["generic", "slack"])
def test_the_webhook_urls_secret_path_never_reaches_a_failure(kind: str) -> None:
    secret = "T0A1B2C3/B0Z9Y8X7/s3cr3tPathPart"

    def script(request: Request, before: int) -> Answer:
        return Answer(404, f"no hook at {request.path}")

    with Receiver(script) as hooks:
        notifier = _notifier(NotifyConfig(webhooks=(Webhook(f"{hooks.url}/services/{secret}", kind),), sending=FAST))
        notifier.decision(START)
        report = notifier.close(outcome="incomplete")
    assert hooks.requests[0].path == f"/services/{secret}"
    assert [f["error"].split(":")[0] for f in report["failures"]] == ["HTTP 404", "HTTP 404"]
    assert "s3cr3tPathPart" not in str(report)


def test_grafana_echoing_the_token_back_does_not_put_it_in_the_report() -> None:
    def script(request: Request, before: int) -> Answer:
        return Answer(401, {"message": f"invalid API key: {request.header('Authorization')}"})

    with Receiver(script) as grafana:
        notifier = _notifier(NotifyConfig(grafana_url=grafana.url, grafana_token=TOKEN, sending=FAST))
        notifier.decision(START)
        report = notifier.close(outcome="promoted")
    assert grafana.requests[0].header("Authorization") == f"Bearer {TOKEN}"
    assert "HTTP 401" in report["failures"][0]["error"]
    assert TOKEN not in str(report) and TOKEN not in repr(NotifyConfig(grafana_token=TOKEN))


def test_the_grafana_script_is_what_the_docs_answer() -> None:
    request = Request("POST", "/api/annotations", {}, {"tags": ["a"]})
    assert grafana_script(request, 0).body == {"message": "Annotation added", "id": 1001}
