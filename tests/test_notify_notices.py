"""The notices a run's decisions give, and the retry rule they are sent with: tables of cases,
with Argo Rollouts' and go-retryablehttp's worked cases."""

from __future__ import annotations

import pytest

from deploysim.notify import (
    Notifier,
    RunContext,
    end_notice,
    notice_for,
    retry_wait,
    transient_status,
    trigger_name,
)
from deploysim.notify.settings import webhooks_checked
from deploysim.scenario import load_scenario
from deploysim.strategies import compile_plan

CTX = RunContext("web", "shop", "canary", "web:1.0.0", "web:1.1.0",
                 ("set weight to 25%", "pause 8s", "analysis", "set weight to 100%"), "run-1")


@pytest.mark.parametrize(("reason", "trigger"), [
    # Argo's notification triggers as its docs name them, from the reasons its controller records
    ("RolloutCompleted", "on-rollout-completed"),
    ("RolloutStepCompleted", "on-rollout-step-completed"),
    ("RolloutUpdated", "on-rollout-updated"),
    ("ScalingReplicaSet", "on-scaling-replica-set"),
    ("RolloutAborted", "on-rollout-aborted"),
    ("RolloutPaused", "on-rollout-paused"),
    ("AnalysisRunFailed", "on-analysis-run-failed"),
    ("RolloutPromoted", "on-rollout-promoted"),
])
def test_triggers_are_argos_translation_of_the_reason(reason: str, trigger: str) -> None:
    assert trigger_name(reason) == trigger


@pytest.mark.parametrize(("decision", "reason", "kind_type", "step", "message"), [
    ({"kind": "start", "step": 0, "reason": "canary rollout of 4 replicas, 4 steps"}, "RolloutStarted", "Normal", None,
     "Rollout started: canary rollout of web in shop, web:1.0.0 -> web:1.1.0, 4 steps; step 1/4: set weight to 25%"),
    ({"kind": "step", "step": 1, "reason": "step 2: pause 8s"}, "RolloutStepCompleted", "Normal", 1,
     "Rollout step 1/4 completed (set weight to 25%); step 2/4: pause 8s"),
    ({"kind": "step", "step": 3, "reason": "step 4: set weight to 100%"}, "RolloutStepCompleted", "Normal", 3,
     "Rollout step 3/4 completed (analysis); step 4/4: set weight to 100%"),
    ({"kind": "pause", "step": 1, "reason": "manual gate: waiting for approval"}, "RolloutPaused", "Normal", 2,
     "Rollout paused at step 2/4: manual gate: waiting for approval"),
    ({"kind": "resume", "step": 1, "reason": "approved (manual gate)"}, "RolloutResumed", "Normal", 2,
     "Rollout resumed at step 2/4: approved (manual gate)"),
    ({"kind": "resumed", "step": 2, "reason": "run r0 resumed at step 3"}, "RolloutRunResumed", "Normal", 3,
     "Run resumed at step 3/4: run r0 resumed at step 3"),
    ({"kind": "abort", "step": 2, "reason": "error_rate 0.31 > 0.05"}, "RolloutAborted", "Warning", 3,
     "Rollout aborted at step 3/4: error_rate 0.31 > 0.05"),
    ({"kind": "complete", "step": 2, "reason": "rolled back: the stable version serves all traffic (e)"},
     "RolloutRolledBack", "Warning", None, "Rollout rolled back: the stable version serves all traffic (e)"),
    ({"kind": "promote", "step": 4, "reason": "every step passed; the candidate serves all traffic"},
     "RolloutPromoted", "Normal", None,
     "Rollout promoted after 4/4 steps: every step passed; the candidate serves all traffic"),
])
def test_each_decision_told_gives_its_reason_type_and_message(decision, reason, kind_type, step, message) -> None:
    notice = notice_for(decision, CTX, 1700000000.25, (("Deployment", "web-green"),))
    assert notice is not None
    assert (notice.reason, notice.type, notice.step, notice.message) == (reason, kind_type, step, message)
    assert notice.time_ms == 1700000000250 and notice.objects == (("Deployment", "web-green"),)


@pytest.mark.parametrize("decision", [
    {"kind": "step", "step": 0, "reason": "step 1: set weight to 25%"},  # the start announces it
    {"kind": "measure", "step": 2, "reason": "analysis: Successful"},
    {"kind": "analysis", "step": 2, "reason": "analysis: Successful (3 of 3)"},
    {"kind": "outage", "step": 2, "reason": "the Kubernetes API is out of reach"},
    {"kind": "recovered", "step": 2, "reason": "answering again"},
    {"kind": "step", "step": 9, "reason": "a step the plan does not have"},
    {"reason": "no kind"},
])
def test_decisions_the_record_keeps_are_told_nowhere(decision) -> None:
    assert notice_for(decision, CTX, 0.0) is None


def test_a_message_is_bounded_at_one_kilobyte() -> None:
    notice = notice_for({"kind": "abort", "step": 0, "reason": "x" * 5000}, CTX, 0.0)
    assert len(notice.message) == 1024 and notice.message.endswith("...")


@pytest.mark.parametrize(("outcome", "error", "told_end", "reason", "kind_type", "announce"), [
    ("promoted", None, True, "RolloutFinished", "Normal", False),
    ("rolled_back", None, True, "RolloutFinished", "Warning", False),
    ("paused", None, False, "RolloutStopped", "Warning", True),
    ("incomplete", None, False, "RolloutStopped", "Warning", True),
    (None, "ClusterError: forbidden", False, "RolloutStopped", "Warning", True),
    # an error after the promotion or rollback (the last patch refused) is news too
    (None, "ClusterError: the last patch refused", True, "RolloutFinished", "Warning", True),
])
def test_the_end_is_announced_only_when_no_promotion_or_rollback_was(outcome, error, told_end, reason, kind_type,
                                                                     announce) -> None:
    notice = end_notice(CTX, 0.0, outcome=outcome, error=error, told_end=told_end, step=1)
    assert (notice.kind, notice.reason, notice.type, notice.announce) == ("end", reason, kind_type, announce)
    if error:
        assert error in notice.message and notice.outcome == "error"


def test_every_step_of_a_compiled_plan_is_told_once_start_to_promotion() -> None:
    scenario = load_scenario(overrides=["strategy.kind=canary"])
    plan = compile_plan(scenario)
    ctx = RunContext.of(scenario, plan, "shop", "r1")
    steps = len(plan.steps)
    decisions = [{"kind": "start", "step": 0, "reason": ""}]
    decisions += [{"kind": "step", "step": i, "reason": f"step {i + 1}"} for i in range(steps)]
    decisions.append({"kind": "promote", "step": steps, "reason": "every step passed"})
    notices = [notice_for(d, ctx, 0.0) for d in decisions]
    told = [n for n in notices if n is not None]
    completed = [n.step for n in told if n.reason == "RolloutStepCompleted"]
    assert completed == list(range(1, steps))  # the last step's completion is the promotion
    assert told[0].reason == "RolloutStarted" and told[-1].reason == "RolloutPromoted"
    assert all(ctx.steps[n.step - 1] in n.message for n in told if n.reason == "RolloutStepCompleted")


def test_a_notifier_without_sinks_takes_decisions_and_reports_nothing() -> None:
    notifier = Notifier([], CTX)
    assert notifier.decision({"kind": "start", "step": 0, "reason": ""}) is None
    assert notifier.close(outcome="promoted") == {"sinks": {}, "failures": [], "drain_seconds": 10.0}


@pytest.mark.parametrize(("status", "transient"), [
    (200, False), (201, False), (400, False), (401, False), (403, False), (404, False),
    (429, True), (500, True), (501, False), (502, True), (503, True), (504, True),
])
def test_which_answers_are_asked_again_follow_retryablehttp(status: int, transient: bool) -> None:
    assert transient_status(status) is transient


@pytest.mark.parametrize(("attempt", "retry_after", "wait"), [
    (0, None, 1.0), (1, None, 2.0), (2, None, 4.0), (3, None, 5.0), (10, None, 5.0),  # min·2^n capped at max
    (0, "2", 2.0), (2, "0", 0.0), (0, "3600", 5.0), (1, "Wed, 21 Oct 2015 07:28:00 GMT", 2.0),
])
def test_waits_between_attempts_are_retryablehttps_default_backoff(attempt, retry_after, wait) -> None:
    assert retry_wait(attempt, 1.0, 5.0, retry_after) == wait


@pytest.mark.parametrize(("hooks", "error"), [
    ([{"url": "hooks.example.com/x"}], "entry 0: url must be an http:// or https:// URL"),
    ([{"url": "https://a.example/x"}, {"url": "https://b.example/y", "kind": "teams"}],
     "entry 1: kind must be generic or slack, not 'teams'"),
    ([{"url": "https://a.example/x", "token": "t"}], "entry 0: unknown key 'token'"),
    ([{"url": "https://a.example/x", "headers": {"X-Id": 7}}], "entry 0: headers must map header names to text"),
])
def test_a_bad_webhook_entry_is_named(hooks, error) -> None:
    with pytest.raises(ValueError, match=error):
        webhooks_checked(hooks)
