"""The runbook's notification parameters, checked before anything runs, and a Grafana token
that reaches Grafana but no file of the audit trail."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from notify_server import Answer, Receiver, Request

from deploysim import runbooks
from deploysim.errors import ParameterError
from deploysim.runbooks import session

TOKEN = "glsa_q7Wn3TrailTokenMustNotLeak_9f8e7d6c"
HOOK_SECRET = "Bearer hook-h34der-s3cret-value-55"
BASE = {"target": "kubernetes", "namespace": "shop", "kubeconfig": "/etc/kube/config", "workload": "checkout",
        "duration": "20m", "step_pause": "30s", "candidate": {"error_rate": 0.001}}


@pytest.mark.parametrize(("given", "error"), [
    ({"grafana_url": "grafana.shop:3000"}, r"parameter 'grafana_url': got 'grafana.shop:3000'; .*http:// or https://"),
    ({"webhooks": [{"url": "https://hooks.example/x", "kind": "teams"}]},
     r"parameter 'webhooks': .*entry 0: kind must be generic or slack, not 'teams'"),
    ({"webhooks": [{"kind": "slack"}]}, r"parameter 'webhooks': .*entry 0: url must be an http:// or https:// URL"),
    ({"webhooks": ["https://hooks.example/x"]}, r"parameter 'webhooks' \(webhooks.0\)"),
    ({"events": "yes"}, r"parameter 'events': got 'yes'"),
    ({"grafana_token": 12345678}, r"parameter 'grafana_token': got '\[REDACTED\]'"),
])
def test_bad_notification_parameters_stop_the_run_naming_the_parameter(given, error) -> None:
    with pytest.raises(ParameterError, match=error):
        runbooks.validate_parameters("canary", {**BASE, **given})


def test_the_target_carries_the_notification_settings_and_the_token_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DEPLOYSIM_GRAFANA_TOKEN", TOKEN)
    run = runbooks.validate_parameters("canary", {**BASE, "grafana_url": "https://grafana.shop", "events": False,
                                                  "webhooks": [{"url": "https://hooks.example/x"}]})
    target = runbooks.kube_target(run.params, run.scenario)
    assert (target.events, target.grafana_url, target.grafana_token) == (False, "https://grafana.shop", TOKEN)
    assert target.webhooks == ({"url": "https://hooks.example/x", "kind": "generic", "headers": {}},)
    assert TOKEN not in repr(target)
    monkeypatch.delenv("DEPLOYSIM_GRAFANA_TOKEN")
    given = runbooks.validate_parameters("canary", {**BASE, "grafana_token": "from-the-parameter"})
    assert runbooks.kube_target(given.params, given.scenario).grafana_token == "from-the-parameter"


def _fake_kube(monkeypatch) -> None:
    """The kubernetes world replaced by a rehearsal, with the real notifier of execute_plan
    (no API: no Events) hearing every decision."""
    import deploysim.kube
    from deploysim.sim import rehearse

    def fake_execute_plan(scenario, plan, target, run_id=None, approve_after=0.0, on_decision=None):  # noqa: ANN001, ANN202
        notifier = deploysim.kube.run_notifier(target, scenario, plan, run_id or "r")
        record = rehearse(scenario, plan)
        for decision in record.decisions:
            notifier.decision(decision)
            on_decision(decision)
        record.status = {**record.status, "context": "prod-eu",
                         "notifications": notifier.close(outcome=record.summary["outcome"])}
        return record

    monkeypatch.setattr(deploysim.kube, "execute_plan", fake_execute_plan)
    monkeypatch.setattr(session, "notebook_output_path", lambda hint=None: None)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("token_from", ["parameter", "environment"])
def test_the_grafana_token_reaches_grafana_and_no_file_of_the_trail(tmp_path, monkeypatch, token_from) -> None:
    def script(request: Request, before: int) -> Answer:
        if request.path.startswith("/hook"):  # a receiver echoing what it was sent into its error
            return Answer(401, f"rejected {request.header('Authorization')}")
        if request.method == "PATCH":  # a Grafana that takes the region, then echoes the header into its error
            return Answer(401, {"message": f"invalid API key {request.header('Authorization')}"})
        return Answer(200, {"message": "Annotation added", "id": 42})

    _fake_kube(monkeypatch)
    given = {**BASE, "record_dir": str(tmp_path)}
    if token_from == "parameter":
        given["grafana_token"] = TOKEN
    else:
        monkeypatch.setenv("DEPLOYSIM_GRAFANA_TOKEN", TOKEN)
    with Receiver(script) as server:
        given["grafana_url"] = server.url
        given["webhooks"] = [{"url": server.url + "/hook", "kind": "generic", "headers": {"Authorization": HOOK_SECRET}}]
        run = runbooks.validate_parameters("canary", given)
        with redirect_stdout(io.StringIO()) as out:
            run.execute()
            run.finish()
    grafana = [r for r in server.requests if r.path.startswith("/api/annotations")]
    assert grafana and all(r.header("Authorization") == f"Bearer {TOKEN}" for r in grafana)
    hooks = [r for r in server.requests if r.path == "/hook"]
    assert hooks and all(r.header("Authorization") == HOOK_SECRET for r in hooks)
    record = json.loads((run.folder / "record.json").read_text())
    notifications = record["run"]["target"]["notifications"]
    failures = {f["sink"]: f for f in notifications["failures"]}
    assert failures["grafana"]["reason"] == "RolloutFinished"  # the echoing 401s are in the trail, scrubbed
    assert failures["grafana"]["error"].startswith("HTTP 401: {\"message\": \"invalid API key Bearer ")
    assert failures["webhook 0 generic 127.0.0.1"]["error"].startswith("HTTP 401: rejected ")
    assert notifications["sinks"]["grafana"]["region"] == 42
    assert record["run"]["target"]["grafana"] == {"url": server.url, "dashboard_uid": None}
    assert record["run"]["target"]["webhooks"] == [{"kind": "generic", "host": "127.0.0.1"}]
    for name, content in {**_files(run.folder), "stdout": out.getvalue().encode()}.items():
        assert TOKEN.encode() not in content, name
        assert b"h34der-s3cret" not in content, name
