"""A team's own analysis, executed: Argo Rollouts / Flagger manifests through the canary
runbook (the papermill CLI, ``-p manifest``) against the local control plane.

Every metric here is the team's: an Argo ``AnalysisTemplate`` (Prometheus or web provider)
or a Flagger ``MetricTemplate``, its placeholders filled on the run and its query sent to
the session's Prometheus, which scrapes the traffic emulator's Istio, NGINX and deploysim
series. The manifests carry the fields a real one has and deploysim does not simulate
(selector, template, canaryService, service, ...), as the controllers' docs show them. The
rules these runs exercise one by one, without a cluster, are in
tests/test_providers_evaluate.py and tests/test_verdicts.py.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploysim.kube import naming as n
from deploysim.routers.nginx_ingress import CANARY_WEIGHT, canary_ingress_name, user_split

pytestmark = pytest.mark.cluster

from cluster_app import CANDIDATE, REPLICAS, STABLE, App, decision_sequence  # noqa: E402

BAD = {"error_rate": 0.3}
IMAGE = ("-p", "image", CANDIDATE)

# --- the manifests, as Argo Rollouts' and Flagger's docs write them -----------------------
# <NS>, <PROMETHEUS>, ... are filled per app by fill(); the rest is the manifest as written.

ROLLOUT = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 4
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: web:1.1.0
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
  strategy:
    canary:
      canaryService: web-green
      stableService: web-blue
      trafficRouting:
<ROUTING>
      steps:
        - setWeight: 50
        - pause: {duration: 8s}   # the first measurement, as the analysis starts, looks back 5s
        - analysis:
            templates:
              - templateName: <TEMPLATE>
            args:
<ARGS>
"""
GATEWAY_ROUTING = """\
        plugins:
          argoproj-labs/gatewayAPI:
            httpRoute: web
            namespace: <NS>"""
NGINX_ROUTING = """\
        nginx:
          stableIngress: web"""

# docs/analysis/prometheus.md, with interval and count short enough for a test
SUCCESS_RATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
    - name: service-name
  metrics:
    - name: success-rate
      interval: 5s
      count: 2
      # NOTE: prometheus queries return results in the form of a vector.
      # So it is common to access the index 0 of the returned array to obtain the value
      successCondition: result[0] >= 0.95
      failureLimit: 0
      consecutiveErrorLimit: 1
      provider:
        prometheus:
          address: <PROMETHEUS>
          # timeout is expressed in seconds
          timeout: 10
          headers:
            - key: X-Scope-OrgID
              value: tenant_a
          query: |
            sum(irate(
              istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code!~"5.*"}[5m]
            )) /
            sum(irate(
              istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}"}[5m]
            ))
"""

# a window with no request in it: the p99 of zero rates is NaN (the candidate answers no 503)
NO_UPSTREAM_P99 = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
    - name: service-name
  metrics:
    - name: unavailable-p99
      interval: 5s
      count: 2
      successCondition: result[0] < 500
      failureLimit: 0
      consecutiveErrorLimit: 1
      provider:
        prometheus:
          address: <PROMETHEUS>
          query: |
            histogram_quantile(0.99, sum(rate(
              istio_request_duration_milliseconds_bucket{reporter="source",destination_service=~"{{args.service-name}}",response_code="503"}[1m]
            )) by (le))
"""

# ingress-nginx's own counter, the canary's share of it (canary!="": what the canary took)
INGRESS_SUCCESS_RATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: ingress-success-rate
spec:
  args:
    - name: ingress
    - name: namespace
  metrics:
    - name: canary-success-rate
      interval: 5s
      count: 2
      successCondition: result[0] >= 0.95
      failureLimit: 0
      provider:
        prometheus:
          address: <PROMETHEUS>
          query: |
            sum(rate(nginx_ingress_controller_requests{namespace="{{args.namespace}}",ingress="{{args.ingress}}",canary!="",status!~"5.*"}[1m]))
            /
            sum(rate(nginx_ingress_controller_requests{namespace="{{args.namespace}}",ingress="{{args.ingress}}",canary!=""}[1m]))
"""

# docs/analysis/web.md: a JSON answer, the value by jsonPath
WEB_SUCCESS_RATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: web-success-rate
spec:
  args:
    - name: namespace
  metrics:
    - name: webmetric
      interval: 5s
      count: 2
      successCondition: result >= 0.95
      failureLimit: 0
      provider:
        web:
          url: "<STUB>/api/v1/measurement?namespace={{ args.namespace }}&version=candidate"
          timeoutSeconds: 5
          jsonPath: "{$.data.successRate}"
"""

# secrets as args: a web metric's API key (in the URL and a bearer header) and a Prometheus
# tenant header, each from a key of the Secret web-metrics
SECRET_METRICS = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: web-success-rate
spec:
  args:
    - name: namespace
    - name: service-name
    - name: api-token
      valueFrom:
        secretKeyRef:
          name: web-metrics
          key: api-token
    - name: tenant
      valueFrom:
        secretKeyRef:
          name: web-metrics
          key: tenant
  metrics:
    - name: webmetric
      interval: 5s
      count: 2
      successCondition: result >= 0.95
      failureLimit: 0
      provider:
        web:
          url: "<STUB>/api/v1/measurement?namespace={{ args.namespace }}&version=candidate&apikey={{ args.api-token }}"
          headers:
            - key: Authorization
              value: "Bearer {{ args.api-token }}"
          jsonPath: "{$.data.successRate}"
    - name: success-rate
      interval: 5s
      count: 2
      successCondition: result[0] >= 0.95
      failureLimit: 0
      provider:
        prometheus:
          address: <STUB>/tenant
          headers:
            - key: X-Scope-OrgID
              value: "{{ args.tenant }}"
          query: |
            sum(irate(istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code!~"5.*"}[5m]))
            /
            sum(irate(istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}"}[5m]))
"""

# Flagger's docs (usage/metrics.md): the target Deployment, the Canary, a MetricTemplate
FLAGGER = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 4
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: web:1.1.0
          ports:
            - name: http
              containerPort: 8080
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: <NS>
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  progressDeadlineSeconds: 60
  service:
    port: 80
    targetPort: 8080
  analysis:
    interval: 10s
    threshold: 2
    maxWeight: 50
    stepWeight: 50
    metrics:
      - name: error-percentage
        templateRef:
          name: error-percentage
          namespace: <NS>
        thresholdRange:
          max: 5
        interval: 30s
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-percentage
  namespace: <NS>
spec:
  provider:
    type: prometheus
    address: <PROMETHEUS>
  query: |
    100 - sum(
        rate(
            istio_requests_total{
              reporter="destination",
              destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}",
              response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            istio_requests_total{
              reporter="destination",
              destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}"
            }[{{ interval }}]
        )
    ) * 100
"""


def fill(text: str, **values: str) -> str:
    for key, value in values.items():
        text = text.replace(f"<{key.upper()}>", value)
    assert not re.search(r"<[A-Z]+>", text), text  # every placeholder filled
    return text


def args_yaml(**args: str) -> str:
    return "\n".join(f"              - name: {k.replace('_', '-')}\n                value: {v}" for k, v in args.items())


def canary_fqdn(app: App) -> str:
    return f"web-green.{app.ns}.svc.cluster.local"


def argo_manifest(app: App, template: str, template_name: str, routing: str = GATEWAY_ROUTING,
                  prometheus: str | None = None, stub: str = "", **args: str) -> Path:
    """The Rollout (its analysis step naming ``template_name`` with ``args``) and the
    template, one file of two documents in the app's folder."""
    values = {"ns": app.ns, "prometheus": prometheus or app.info.prometheus_url, "stub": stub}
    text = fill(ROLLOUT, routing=fill(routing, ns=app.ns), template=template_name, args=args_yaml(**args))
    path = app.tmp_path / f"{template_name}-{uuid.uuid4().hex[:4]}.yaml"
    path.write_text(text + "---\n" + fill(template, **values))
    return path


# --- a tiny HTTP server beside the cluster --------------------------------------------------


class Stub:
    """HTTP on 127.0.0.1 for the metrics sources the tests need besides Prometheus:

    - ``/broken/api/v1/query``: a Prometheus that answers 500 (its API's error body);
    - ``/api/v1/measurement?namespace=NS``: a web metric, the candidate's success rate over
      the last 10 s as the namespace's traffic exporter served it (``null`` before any
      request); with a token set for NS, only for ``Authorization: Bearer <token>`` and
      ``apikey=<token>`` (else 401);
    - ``/tenant/api/v1/query``: the session's Prometheus, through a proxy that keeps the
      headers it was sent.
    """

    def __init__(self, prometheus_url: str) -> None:
        self.prometheus_url = prometheus_url
        self.exporters: dict[str, object] = {}
        self.tokens: dict[str, str] = {}
        self.seen: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                params = parse_qs(url.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.seen.append((url.path, params, headers))
                status, body = stub.answer(url.path, params, headers)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, params: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, object]:
        if path == "/broken/api/v1/query":
            return 500, {"status": "error", "errorType": "internal", "error": "query processing failed"}
        if path == "/tenant/api/v1/query":
            r = httpx.get(f"{self.prometheus_url}/api/v1/query", params={k: v[0] for k, v in params.items()},
                          timeout=10)
            return r.status_code, r.json()
        if path == "/api/v1/measurement":
            ns = params["namespace"][0]
            token = self.tokens.get(ns)
            if token is not None and (headers.get("authorization") != f"Bearer {token}"
                                      or params.get("apikey") != [token]):
                return 401, {"error": "unauthorized"}
            now = time.time()
            requests, errors = self.exporters[ns].served(now - 10, now)["candidate"]  # type: ignore[attr-defined]
            rate = None if requests == 0 else 1 - errors / requests
            return 200, {"data": {"successRate": rate, "requests": requests}}
        return 404, {"error": f"no {path}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stub(cluster):
    s = Stub(cluster[0].prometheus_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def failing(cluster, tmp_path_factory, stub):
    """One app whose candidate fails 30% of requests, shared by the runs that roll back
    (each leaves the stable colour serving, as it found it)."""
    app = App(cluster, tmp_path_factory.mktemp("failing"), "canary", True, BAD, {})
    stub.exporters[app.ns] = app.exporter
    yield app
    app.close()


@pytest.fixture
def healthy(cluster, tmp_path, stub):
    """A new app per test (a promoted run swaps its colours); ``healthy(ingress=True)`` with
    the stable Ingress ``web`` for the NGINX router instead of the HTTPRoute."""
    apps: list[App] = []

    def make(ingress: bool = False, candidate: dict | None = None) -> App:
        folder = tmp_path / f"app{len(apps)}"
        folder.mkdir()
        app = App(cluster, folder, "canary", not ingress, candidate or {}, {}, ingress=ingress)
        stub.exporters[app.ns] = app.exporter
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


# --- reading the record and the cluster ------------------------------------------------------


def measured(record: dict) -> list[dict]:
    """Every team metric's result, measurement by measurement, as the record keeps them in
    the analysis steps' measurements."""
    return [r for step in record["steps"] for m in step["measurements"] for r in m.get("metrics", [])]


def abort_reason(record: dict) -> str:
    return next(d["reason"] for d in record["decisions"] if d["kind"] == "abort")


def assert_promoted(app: App, proc, record: dict) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert record["summary"]["outcome"] == "promoted"
    serving = app.serving()
    assert serving.get(CANDIDATE) == REPLICAS and serving.get(STABLE, 0) == 0, serving
    assert app.stable_slot() == "green"


def assert_rolled_back(app: App, proc, record: dict) -> None:
    assert proc.returncode != 0
    assert record["summary"]["outcome"] == "rolled_back"
    serving = app.serving()
    assert serving.get(STABLE) == REPLICAS and serving.get(CANDIDATE, 0) == 0, serving
    assert app.stable_slot() == "blue"
    assert app.deployment("web-green").spec.replicas == 0


def route_weights(app: App) -> dict[str, int]:
    route = client.CustomObjectsApi(app.admin).get_namespaced_custom_object(
        n.HTTPROUTE_GROUP, n.HTTPROUTE_VERSION, app.ns, n.HTTPROUTE_PLURAL, "web")
    return {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}


# --- Argo Rollouts: AnalysisTemplate success-rate over Istio's series -----------------------


def test_argo_success_rate_promotes_a_healthy_candidate_as_rehearsed(healthy):
    app = healthy()
    manifest = argo_manifest(app, SUCCESS_RATE, "success-rate", service_name=canary_fqdn(app))
    proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE)
    assert_promoted(app, proc, record)
    assert route_weights(app) == {"web-blue": 0, "web-green": 100}
    results = measured(record)
    assert [r["phase"] for r in results] == ["Successful", "Successful"]
    for r in results:
        # the query as sent: the template's, the arg filled with the canary Service's FQDN
        assert "{{" not in r["query"]
        assert r["query"].count(f'destination_service=~"{canary_fqdn(app)}"') == 2
        assert 'response_code!~"5.*"' in r["query"]
        # Prometheus's answer as it came, and Argo's value of it
        raw = json.loads(r["raw"])
        assert raw["resultType"] == "vector" and len(raw["result"]) == 1
        assert r["value"] == f"[{raw['result'][0]['value'][1]}]"
        assert r["number"] == pytest.approx(1.0)  # the candidate failed nothing
    # the same manifest rehearsed: its stand-in check takes the same decisions
    _, sim = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, target="sim")
    assert decision_sequence(sim) == decision_sequence(record)
    assert sim["summary"]["outcome"] == "promoted"


def test_argo_success_rate_aborts_a_failing_candidate_as_rehearsed(failing):
    app = failing
    manifest = argo_manifest(app, SUCCESS_RATE, "success-rate", service_name=canary_fqdn(app))
    proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, label="argo-failing")
    assert_rolled_back(app, proc, record)
    assert route_weights(app) == {"web-blue": 100, "web-green": 0}
    [r] = measured(record)  # failureLimit 0: the first failed measurement aborts
    assert r["phase"] == "Failed"
    # 30% of the candidate's requests fail; irate reads the last two scrapes, about 40 requests
    assert r["number"] == pytest.approx(0.7, abs=0.3)
    # the abort names the metric, the value Argo measured and the condition it failed
    reason = abort_reason(record)
    assert "success-rate" in reason and r["value"] in reason and "result[0] >= 0.95" in reason
    assert f"destination_service=~\"{canary_fqdn(app)}\"" in r["query"]
    _, sim = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, target="sim", label="argo-failing-sim")
    assert decision_sequence(sim) == decision_sequence(record)
    assert sim["summary"]["outcome"] == "rolled_back"


# --- Flagger: a Canary and its MetricTemplate -----------------------------------------------


def flagger_manifest(app: App) -> Path:
    path = app.tmp_path / f"flagger-{uuid.uuid4().hex[:4]}.yaml"
    path.write_text(fill(FLAGGER, ns=app.ns, prometheus=app.info.prometheus_url))
    return path


def assert_flagger_query(app: App, query: str) -> None:
    """{{ namespace }}, {{ target }} (the candidate's Deployment) and {{ interval }} filled."""
    assert "{{" not in query
    assert query.count(f'destination_workload_namespace="{app.ns}"') == 2
    assert query.count('destination_workload="web-green"') == 2
    assert query.count("}[30s]") == 2


def test_flagger_metric_template_promotes_a_healthy_candidate_as_rehearsed(healthy):
    app = healthy()
    manifest = flagger_manifest(app)
    proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE)
    assert_promoted(app, proc, record)
    [r] = measured(record)  # one passing check per weight, and one weight (50)
    assert r["phase"] == "Successful" and r["number"] == pytest.approx(0.0)
    assert r["message"] == "0 within thresholdRange max 5"
    assert_flagger_query(app, r["query"])
    _, sim = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, target="sim")
    assert decision_sequence(sim) == decision_sequence(record)


def test_flagger_metric_template_rolls_back_a_failing_candidate_as_rehearsed(failing):
    app = failing
    manifest = flagger_manifest(app)
    proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, label="flagger-failing")
    assert_rolled_back(app, proc, record)
    results = measured(record)
    assert [r["phase"] for r in results] == ["Failed", "Failed"]  # threshold 2
    for r in results:
        assert_flagger_query(app, r["query"])
        assert r["number"] == pytest.approx(30, abs=15)  # percent of the candidate's answers
        assert r["message"].endswith("> thresholdRange max 5")
    reason = abort_reason(record)
    assert "error-percentage" in reason and "2 failed" in reason
    _, sim = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, target="sim", label="flagger-failing-sim")
    assert decision_sequence(sim) == decision_sequence(record)


# --- a web metric: JSON from a local endpoint, the value by jsonPath --------------------------


@pytest.mark.parametrize("candidate", ["healthy", "failing"])
def test_web_metric_reads_the_value_by_json_path(request, stub, candidate):
    app = request.getfixturevalue("healthy")() if candidate == "healthy" else request.getfixturevalue("failing")
    manifest = argo_manifest(app, WEB_SUCCESS_RATE, "web-success-rate", stub=stub.url, namespace=app.ns)
    proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, label=f"web-{candidate}")
    results = measured(record)
    asked = [p for p, params, _ in stub.seen if p == "/api/v1/measurement" and params["namespace"] == [app.ns]]
    assert len(asked) == len(results)  # one request per measurement
    for r in results:
        assert r["query"] == f"GET {stub.url}/api/v1/measurement?namespace={app.ns}&version=candidate"
        assert json.loads(r["raw"])["data"]["successRate"] == pytest.approx(r["number"])
        assert float(r["value"]) == r["number"]  # Argo's value: the JSON found, as Go writes it
    if candidate == "healthy":
        assert_promoted(app, proc, record)
        assert [r["phase"] for r in results] == ["Successful", "Successful"]
        assert all(r["number"] == 1.0 for r in results)
    else:
        assert_rolled_back(app, proc, record)
        [r] = results
        assert r["phase"] == "Failed" and r["number"] == pytest.approx(0.7, abs=0.15)
        assert "webmetric" in abort_reason(record) and r["value"] in abort_reason(record)


# --- verdicts the whole way: no series, NaN, a Prometheus that fails or is not there ----------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


VERDICTS: dict[str, tuple[str, Callable[[App, Stub], tuple[str, str]], str]] = {
    # case: (template, (address, service-name arg), what the measurement's message says)
    # a canaryService that does not exist: an empty vector, and result[0] cannot be evaluated
    "no-series": (SUCCESS_RATE, lambda app, stub: (app.info.prometheus_url, f"web-canary.{app.ns}.svc.cluster.local"),
                  "index out of range"),
    "prometheus-500": (SUCCESS_RATE, lambda app, stub: (f"{stub.url}/broken", canary_fqdn(app)), "500"),
    "prometheus-down": (SUCCESS_RATE, lambda app, stub: (f"http://127.0.0.1:{_closed_port()}", canary_fqdn(app)),
                        "refused"),
}


@pytest.mark.parametrize("case", list(VERDICTS))
def test_an_unanswerable_metric_is_an_error_and_aborts_past_the_consecutive_error_limit(failing, stub, case):
    """Argo: a measurement the provider cannot make, or whose condition cannot be evaluated,
    is Error; errors count toward consecutiveErrorLimit (1 here), never toward failureLimit,
    so the second in a row ends the analysis and aborts the rollout."""
    app = failing
    template, source, said = VERDICTS[case]
    address, service = source(app, stub)
    manifest = argo_manifest(app, template, "success-rate", prometheus=address, service_name=service)
    proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, label=case)
    assert_rolled_back(app, proc, record)
    results = measured(record)
    assert [r["phase"] for r in results] == ["Error", "Error"]
    assert all(said in r["message"] for r in results), results
    if case != "no-series":
        assert all(r["value"] == "" for r in results)  # no answer, no value (MarkMeasurementError)
    errors = [d for d in record["decisions"] if d["kind"] == "measure"]
    assert [d["reason"].split(": ")[1].split(" ")[0] for d in errors] == ["Error", "Error"]
    reason = abort_reason(record)
    assert "Error" in reason and "2 consecutive provider errors (limit 1)" in reason and "success-rate" in reason
    if case == "prometheus-500":
        assert any(p == "/broken/api/v1/query" for p, _, _ in stub.seen)


def test_a_nan_result_fails_the_success_condition_as_in_argo(failing):
    """Argo passes NaN through to the condition (prometheus.go processResponse) and any
    comparison with NaN is false, so ``result[0] < 500`` fails: Failed, not Error, and
    failureLimit 0 aborts at once (evaluate.go EvaluateResult)."""
    app = failing
    manifest = argo_manifest(app, NO_UPSTREAM_P99, "success-rate", service_name=canary_fqdn(app))
    proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE, label="nan")
    assert_rolled_back(app, proc, record)
    [r] = measured(record)
    assert (r["phase"], r["value"], r["number"]) == ("Failed", "[NaN]", None)
    assert json.loads(r["raw"])["result"][0]["value"][1] == "NaN"
    reason = abort_reason(record)
    assert "1 failed measurements (limit 0)" in reason and "unavailable-p99" in reason and "[NaN]" in reason


# --- NGINX Ingress: the canary Ingress's weight ---------------------------------------------


class IngressWatch:
    """The canary Ingress's ``canary-weight`` as read from the cluster while a run goes on."""

    def __init__(self, app: App) -> None:
        self.app, self.name = app, canary_ingress_name("web", "web")
        self.seen: list[str | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def read(self) -> dict | None:
        try:
            return self.app.admin.sanitize_for_serialization(
                client.NetworkingV1Api(self.app.admin).read_namespaced_ingress(self.name, self.app.ns))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _poll(self) -> None:
        while not self._stop.wait(0.3):
            ing = self.read()
            weight = None if ing is None else (ing["metadata"].get("annotations") or {}).get(CANARY_WEIGHT)
            if not self.seen or self.seen[-1] != weight:
                self.seen.append(weight)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("candidate", ["healthy", "failing"])
def test_nginx_ingress_router_weights_the_canary_ingress(healthy, candidate):
    app = healthy(ingress=True, candidate=BAD if candidate == "failing" else None)
    manifest = argo_manifest(app, INGRESS_SUCCESS_RATE, "ingress-success-rate", routing=NGINX_ROUTING,
                             ingress="web", namespace=app.ns)
    watch = IngressWatch(app)
    try:
        proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE)
    finally:
        watch.stop()
    net = client.NetworkingV1Api(app.admin)
    stable = app.admin.sanitize_for_serialization(net.read_namespaced_ingress("web", app.ns))
    canary = watch.read()
    assert canary is not None
    annotations = canary["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-green"
    # the stable Ingress itself still leads to the stable colour's Service
    assert stable["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-blue"
    weights = [(c["old"], c["new"]) for c in record["changes"] if c["object"] == f"Ingress/{watch.name}"]
    results = measured(record)
    assert all(f'namespace="{app.ns}",ingress="web",canary!=""' in r["query"] for r in results)
    split = {s.service: s.share for s in user_split(stable, [canary], app.ns)}
    if candidate == "healthy":
        assert_promoted(app, proc, record)
        assert [r["phase"] for r in results] == ["Successful", "Successful"]
        assert weights == [(None, "50"), ("50", "100")]
        assert annotations[CANARY_WEIGHT] == "100" and split == {"web-blue": 0.0, "web-green": 1.0}
    else:
        assert_rolled_back(app, proc, record)
        [r] = results
        assert r["phase"] == "Failed" and r["number"] == pytest.approx(0.7, abs=0.15)
        assert weights == [(None, "50"), ("50", "0")]
        assert annotations[CANARY_WEIGHT] == "0" and split == {"web-blue": 1.0, "web-green": 0.0}
    # the weights as the cluster held them while the run went on, in order
    assert watch.seen[0] is None and "50" in watch.seen and watch.seen[-1] == annotations[CANARY_WEIGHT]
    assert watch.seen.index("50") < len(watch.seen) - 1


# --- a Secret as an arg: used on the wire, never written down -------------------------------


def test_a_secret_arg_is_sent_and_never_reaches_the_audit_trail(healthy, stub):
    app = healthy()
    token, tenant = f"tok-{uuid.uuid4().hex}", f"tenant-{uuid.uuid4().hex}"
    client.CoreV1Api(app.admin).create_namespaced_secret(app.ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="web-metrics"), string_data={"api-token": token, "tenant": tenant}))
    stub.tokens[app.ns] = token
    manifest = argo_manifest(app, SECRET_METRICS, "web-success-rate", stub=stub.url, namespace=app.ns,
                             service_name=canary_fqdn(app))
    proc, record = app.run("canary", "-p", "manifest", str(manifest), *IMAGE)
    # the secrets reached their sources: the web metric was let in (else 401, an Error) and
    # the Prometheus behind the proxy was asked with the tenant header
    assert_promoted(app, proc, record)
    results = measured(record)
    assert sorted({r["name"] for r in results}) == ["success-rate", "webmetric"]
    assert all(r["phase"] == "Successful" for r in results), results
    web = [(params, headers) for p, params, headers in stub.seen
           if p == "/api/v1/measurement" and params["namespace"] == [app.ns]]
    assert len(web) == 2 and all(params["apikey"] == [token] for params, _ in web)
    tenants = [h.get("x-scope-orgid") for p, _, h in stub.seen if p == "/tenant/api/v1/query"]
    assert tenants.count(tenant) == 2
    # what the record shows of them: the query with the key redacted
    assert {r["query"] for r in results if r["name"] == "webmetric"} == {
        f"GET {stub.url}/api/v1/measurement?namespace={app.ns}&version=candidate&apikey=[REDACTED]"}
    # no file the run wrote holds either secret, plain or base64 (as the API carries it)
    files = [p for p in app.record_dir.rglob("*") if p.is_file()]
    assert any(p.name == "canary.html" for p in files) and any(p.name == "canary.ipynb" for p in files)
    assert any(p.name == "record.json" for p in files)
    notebook = next(p for p in files if p.name == "canary.ipynb").read_text()
    assert "apikey=[REDACTED]" in notebook  # the run printed what it would send, redacted
    for secret in (token, tenant):
        for form in (secret.encode(), base64.b64encode(secret.encode())):
            leaked = [str(p) for p in files if form in p.read_bytes()]
            assert not leaked, (secret, leaked)
