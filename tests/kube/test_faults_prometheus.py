"""Prometheus breaking mid-analysis: the canary runbook on the local control plane, its metrics
read through :class:`faultproxy.FaultProxy` standing in front of the cluster's real Prometheus.

What must hold is Argo Rollouts' error accounting (argoproj/argo-rollouts
``analysis/analysis.go``): in ``runMeasurements`` a measurement in phase Error adds to
``Error`` and ``ConsecutiveError`` but not to ``Count``, while a Successful, Failed or
Inconclusive one resets ``ConsecutiveError`` to 0; ``assessMetricStatus`` errs the metric once
``ConsecutiveError > consecutiveErrorLimit`` (``DefaultConsecutiveErrorLimit`` 4), and
``asssessRunStatus`` takes the worst metric phase as the run's. So errors are counted apart from
failures: with a limit of 2, two errors in a row are survived and a third aborts, and the
measurements still owed (``count``) are judged ones, not errors. deploysim follows it in
``deploysim.analysis.run.record_measurement``; the provider turns a refused connection and an
HTTP 5xx into a measurement's error (``deploysim.providers.prometheus.PrometheusProvider``).

The runbook runs in a subprocess so the proxy can be switched while it runs; the test watches
the run's status ConfigMap (what the drive loop saves after every pass) to switch at the right
measurement and to time the reaction. Each case prints its timings (``pytest -s``).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_app import CANDIDATE, PAPERMILL, REPLICAS, ROOT, STABLE, App
from faultproxy import FaultProxy, error_body
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.kube import naming as n

pytestmark = pytest.mark.cluster

LIMIT = 2  # consecutive_error_limit: LIMIT errors in a row are survived, LIMIT + 1 abort
COUNT = 3  # judged measurements the analysis owes before it passes
ARGS = ["-p", "image", CANDIDATE, "-p", "traffic_router", "True", "-y",
        f"{{weights: [25], step_pause: 8s, analysis: {{interval: 5s, count: {COUNT}, "
        f"consecutive_error_limit: {LIMIT}}}}}"]
DEADLINE = 120.0  # generous bound on any one wait; never an assertion on how long things took


class Runbook:
    """The canary runbook through the papermill CLI (the argv of :meth:`App.run`), reading
    metrics from ``prometheus_url``, running in the background."""

    def __init__(self, app: App, prometheus_url: str, label: str) -> None:
        self.app, self.label = app, label
        app.record_dir.mkdir(parents=True, exist_ok=True)
        self.out = app.record_dir / f"canary-{label}"
        args = [PAPERMILL, str(ROOT / "runbooks" / "canary.ipynb"), str(self.out) + ".ipynb",
                "-p", "target", "kubernetes", "-p", "scenario", str(app.scenario),
                "-p", "record_dir", str(app.record_dir / label),
                "-p", "kubeconfig", app.kubeconfig, "-p", "namespace", app.ns,
                "-p", "prometheus_url", prometheus_url, *ARGS]
        self._stdout = open(f"{self.out}.stdout", "w")  # noqa: SIM115 (closed in wait)
        self._stderr = open(f"{self.out}.stderr", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self._stdout, stderr=self._stderr, text=True)

    def output(self) -> str:
        return Path(f"{self.out}.stdout").read_text()[-3000:] + Path(f"{self.out}.stderr").read_text()[-3000:]

    def wait(self, timeout: float = 300.0) -> tuple[int, dict[str, Any]]:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the runbook did not end within {timeout:g}s:\n{self.output()}") from None
        finally:
            self._stdout.close()
            self._stderr.close()
        records = sorted((self.app.record_dir / self.label).glob("*/record.json"), key=lambda p: p.stat().st_mtime)
        assert records, f"no record.json written:\n{self.output()}"
        return code, json.loads(records[-1].read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- reading the run and the cluster as it goes -----------------------------------------------


def run_status(app: App) -> dict[str, Any]:
    """The run's status as the drive loop last saved it in its ConfigMap; {} before the first."""
    try:
        cm = client.CoreV1Api(app.admin).read_namespaced_config_map(n.status_configmap("web"), app.ns)
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return json.loads((cm.data or {}).get("status") or "{}")


def analysis_phases(app: App) -> list[str]:
    """The phases of the running step analysis' measurements, in order ([] when none runs)."""
    run = run_status(app).get("analysis") or {}
    return [m["phase"] for m in run.get("measurements", [])]


def trailing_errors(phases: list[str]) -> int:
    """Errors in a row at the end of ``phases``.

    >>> trailing_errors(["Successful", "Error", "Error"]), trailing_errors(["Error", "Successful"])
    (2, 0)
    """
    count = 0
    for phase in reversed(phases):
        if phase != "Error":
            break
        count += 1
    return count


def route_weights(app: App) -> dict[str, int]:
    route = client.CustomObjectsApi(app.admin).get_namespaced_custom_object(
        n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, app.ns, n.HTTPROUTE_PLURAL, "web")
    return {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}


def stable_routed(app: App) -> bool:
    """Users reach the stable version alone: the candidate's colour has weight 0."""
    return route_weights(app) == {"web-blue": 100, "web-green": 0}


def stable_serves_all(app: App) -> bool:
    serving = app.serving()
    return stable_routed(app) and serving.get(STABLE) == REPLICAS and serving.get(CANDIDATE, 0) == 0


def wait_until(what: str, check: Callable[[], bool], runbook: Runbook, timeout: float = DEADLINE) -> float:
    """Poll ``check`` until it holds; the time.monotonic() it first held. Fails at once, with
    the runbook's output, if the runbook ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = runbook.proc.poll() is not None
        if check():
            return time.monotonic()
        if ended:  # it ended before the last look, and still not: it never will
            raise AssertionError(f"the runbook ended (exit {runbook.proc.returncode}) before {what}:\n"
                                 f"{runbook.output()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}:\n{runbook.output()}")


def measures(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in record["decisions"] if d["kind"] == "measure"]


def phase_of(decision: dict[str, Any]) -> str:
    """``analysis: Error (prometheus at ...)`` -> ``Error``."""
    return decision["reason"].split(": ", 1)[1].split(" ", 1)[0]


def report(case: str, **seconds: float) -> None:
    print(f"\n[{case}] " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))


@pytest.fixture
def proxied(make_app):
    """A canary app behind an HTTPRoute, and a proxy in front of the cluster's Prometheus."""
    app = make_app("canary", router=True)
    with FaultProxy(app.info.prometheus_url) as proxy:
        yield app, proxy


def _start_and_see_one_success(app: App, proxy: FaultProxy, label: str) -> Runbook:
    runbook = Runbook(app, proxy.url, label)
    # the analysis has judged one real answer read through the proxy before anything breaks
    wait_until("a Successful measurement", lambda: "Successful" in analysis_phases(app), runbook)
    assert proxy.seen("pass") > 0
    assert trailing_errors(analysis_phases(app)) == 0
    return runbook


# --- the cases -------------------------------------------------------------------------------


def test_fault_proxy_passes_refuses_and_errs_on_one_port(local_cluster):
    with FaultProxy(local_cluster.prometheus_url) as proxy:
        port = proxy.port
        r = httpx.get(f"{proxy.url}/api/v1/query", params={"query": "up"}, timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "success" and r.json()["data"]["result"]
        proxy.set_mode("down")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{proxy.url}/api/v1/query", params={"query": "up"}, timeout=5)
        proxy.set_mode("error")
        assert proxy.port == port  # the same port, listening again
        r = httpx.get(f"{proxy.url}/api/v1/query", params={"query": "up"}, timeout=5)
        assert (r.status_code, r.content) == (500, error_body())
        proxy.set_mode("pass")
        assert httpx.get(f"{proxy.url}/api/v1/query", params={"query": "up"}, timeout=5).status_code == 200
        assert (proxy.seen("pass"), proxy.seen("down"), proxy.seen("error")) == (2, 0, 1)
    with pytest.raises(httpx.ConnectError):  # closed for good: nothing listens there any more
        httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=5)


@pytest.mark.parametrize(("mode", "cause"), [("down", "connection refused"), ("error", "HTTP 500")],
                         ids=["down", "http-500"])
def test_prometheus_failing_mid_analysis_past_the_limit_rolls_back(proxied, mode, cause):
    app, proxy = proxied
    runbook = _start_and_see_one_success(app, proxy, f"fault-{mode}")
    try:
        fault = time.monotonic()
        proxy.set_mode(mode)
        aborted = wait_until("the abort", lambda: bool(run_status(app).get("abort")), runbook)
        routed = wait_until("traffic back on the stable version", lambda: stable_routed(app), runbook)
        recovered = wait_until("the stable version serving everything", lambda: stable_serves_all(app), runbook)
        code, record = runbook.wait()
    finally:
        runbook.kill()
    report(f"prometheus {mode} past the limit", fault_to_abort=aborted - fault,
           fault_to_stable_routed=routed - fault, fault_to_stable_serves_all=recovered - fault)

    assert code != 0, runbook.output()
    assert record["summary"]["outcome"] == "rolled_back"
    phases = [phase_of(d) for d in measures(record)]
    # >= 1 judged measurement from the real Prometheus, then LIMIT + 1 errors in a row
    assert trailing_errors(phases) == LIMIT + 1, phases
    assert "Successful" in phases[: -(LIMIT + 1)], phases
    errors = measures(record)[-(LIMIT + 1):]
    assert all(cause in d["reason"] for d in errors), [d["reason"] for d in errors]
    if mode == "error":
        assert all(proxy.error_message in d["reason"] for d in errors)  # Prometheus' own error text
        assert proxy.seen("error") >= LIMIT + 1
    # the abort is the very next decision, and says why
    decisions = record["decisions"]
    after = decisions[decisions.index(errors[-1]) + 1]
    assert after["kind"] == "abort", decisions
    assert "consecutive provider errors" in after["reason"] and f"limit {LIMIT}" in after["reason"]
    assert not any(d["kind"] == "promote" for d in decisions)
    # the cluster afterwards: the stable version serves everything, the candidate is gone
    serving = app.serving()
    assert serving.get(STABLE) == REPLICAS and serving.get(CANDIDATE, 0) == 0, serving
    assert app.stable_slot() == "blue" and app.deployment("web-green").spec.replicas == 0


def test_prometheus_erring_briefly_is_survived_and_the_candidate_promoted(proxied):
    app, proxy = proxied
    runbook = _start_and_see_one_success(app, proxy, "brief-500")
    try:
        fault = time.monotonic()
        proxy.set_mode("error")
        # exactly LIMIT errors in a row: one short of the abort
        wait_until(f"{LIMIT} errors in a row", lambda: trailing_errors(analysis_phases(app)) >= LIMIT, runbook)
        healed = time.monotonic()
        proxy.set_mode("pass")
        judged = wait_until("a judged measurement after the errors",
                            lambda: (p := analysis_phases(app)) != [] and p[-1] != "Error"
                            or bool(run_status(app).get("completed_at")), runbook)
        code, record = runbook.wait()
    finally:
        runbook.kill()
    promoted = time.monotonic()
    report("prometheus 500 for LIMIT measurements", fault_to_healed=healed - fault,
           healed_to_next_judged=judged - healed, fault_to_promoted=promoted - fault)

    assert code == 0, runbook.output()
    assert record["summary"]["outcome"] == "promoted"
    assert not any(d["kind"] == "abort" for d in record["decisions"])
    phases = [phase_of(d) for d in measures(record)]
    assert phases.count("Error") == LIMIT, phases
    first = phases.index("Error")
    assert phases[first: first + LIMIT] == ["Error"] * LIMIT, phases  # in a row, and survived
    assert "Successful" in phases[:first], phases
    # the errors do not count toward the analysis' count: COUNT judged measurements besides them
    assert phases.count("Successful") == COUNT and len(phases) == COUNT + LIMIT, phases
    errors = [d for d in measures(record) if phase_of(d) == "Error"]
    assert all("HTTP 500" in d["reason"] and proxy.error_message in d["reason"] for d in errors), errors
    assert proxy.seen("error") >= LIMIT
    # the candidate serves everything afterwards
    serving = app.serving()
    assert serving.get(CANDIDATE) == REPLICAS and serving.get(STABLE, 0) == 0, serving
    assert app.stable_slot() == "green" and app.deployment("web-blue").spec.replicas == 0
