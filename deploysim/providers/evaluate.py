"""A team's own metrics on a cluster: each definition run against its source and judged as
its controller would.

:class:`TeamMetrics` runs the :class:`~deploysim.analysis.metrics.MetricDef` of an analysis:

- the query is substituted first: Argo's ``{{args.*}}`` from the Rollout's analysis args
  (a value, a Secret's key read through the API, a field of the Rollout), or Flagger's
  ``{{ namespace }}``, ``{{ target }}``, ``{{ interval }}`` and ``{{ variables.* }}``;
- a Prometheus metric is one instant query at the measurement's end (Argo's and Flagger's
  Prometheus providers both ask ``/api/v1/query``, Argo's without retries), sent to the
  template's ``address`` or the run's Prometheus; a web metric is one request to its URL
  (Argo's webmetric provider: a 10 s default timeout, a non-2xx answer is an Error);
- the answer is judged by :mod:`deploysim.analysis.verdicts`: Argo's conditions over
  ``result``, or Flagger's ``thresholdRange``.

Every :class:`~deploysim.analysis.measurement.MetricResult` keeps the query as sent and the
raw answer, each with the secrets it was built from replaced by ``[REDACTED]``.

:class:`AnalysisSources` is the :class:`~deploysim.providers.MetricProvider` a cluster run
measures through: the standard window of its window source when the analysis has checks of
its own, plus the team metrics. A team metric in Error with none Failed makes the
measurement an error, counted toward ``consecutiveErrorLimit`` as Argo counts it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from deploysim.analysis.judges import ERROR, FAILED
from deploysim.analysis.measurement import RAW_LIMIT, Measurement, MetricResult
from deploysim.analysis.metrics import MetricDef
from deploysim.analysis.templating import TemplateError
from deploysim.errors import ParameterError, PrometheusError
from deploysim.plan import AnalysisSpec, Plan
from deploysim.providers.prometheus import PrometheusProvider

#: Argo's webmetric provider waits this long for an answer when the metric sets no timeout
WEB_TIMEOUT = 10.0
#: a Prometheus query of a team metric waits this long unless the metric says
PROMETHEUS_TIMEOUT = 10.0

ReadSecret = Callable[[str, str], str]


@dataclass(frozen=True)
class EvalContext:
    """What a query's placeholders are filled from on this cluster run.

    ``target`` is Flagger's ``{{ target }}``: the workload the candidate runs as;
    ``rollout`` is the object Argo's ``valueFrom.fieldRef`` args read (a Rollout or the
    candidate Deployment, as a dict).
    """

    namespace: str
    service: str
    target: str
    ingress: str = ""
    route: str = ""
    rollout: Mapping[str, Any] | None = None


def _no_secrets(name: str, key: str) -> str:
    raise ParameterError(f"Secret {name!r} key {key!r}: this run reads no Secrets")


class TeamMetrics:
    """Runs the team metrics of analysis specs; one instance per run (it keeps the resolved
    args, the secrets to redact and one HTTP client per Prometheus)."""

    def __init__(
        self,
        context: EvalContext,
        prometheus_url: str | None = None,
        prometheus_token: str | None = None,
        read_secret: ReadSecret = _no_secrets,
        client: httpx.Client | None = None,
    ) -> None:
        self.context = context
        self.prometheus_url = prometheus_url
        self.prometheus_token = prometheus_token
        self.read_secret = read_secret
        self.secrets: set[str] = {prometheus_token} if prometheus_token else set()
        self._client = client or httpx.Client()
        self._own_client = client is None
        self._args: dict[str, dict[str, str]] = {}
        self._proms: dict[tuple[str, tuple[tuple[str, str], ...], float], PrometheusProvider] = {}

    def close(self) -> None:
        for prom in self._proms.values():
            prom.close()
        if self._own_client:
            self._client.close()

    # -- substitution ------------------------------------------------------------------------

    def args(self, spec: AnalysisSpec) -> dict[str, str]:
        """The spec's Argo args resolved (once per spec); secret values join :attr:`secrets`."""
        if spec.name not in self._args:
            from deploysim.analysis.templating import field_value, resolve_args

            rollout = self.context.rollout or {}
            values, secrets = resolve_args(list(spec.args), self.read_secret,
                                           lambda path: field_value(rollout, path))
            self.secrets |= {s for s in secrets if s}
            self._args[spec.name] = dict(values)
        return self._args[spec.name]

    def render(self, metric: MetricDef, spec: AnalysisSpec, text: str) -> str:
        """``text`` of ``metric`` with its placeholders filled as its dialect fills them."""
        c = self.context
        if metric.builtin is not None and text == metric.source.query:
            from deploysim.manifests.flagger_builtins import builtin_query

            return builtin_query(metric.builtin, metric.name, namespace=c.namespace, target=c.target,
                                 service=c.service, ingress=c.ingress, route=c.route,
                                 interval=metric.interval or "1m")
        if metric.dialect == "flagger":
            from deploysim.analysis.templating import render_flagger_query

            return render_flagger_query(
                text, name=c.service, namespace=c.namespace, target=c.target, service=c.service,
                ingress=c.ingress, route=c.route, interval=metric.interval or "1m",
                variables=dict(metric.variables))
        from deploysim.analysis.templating import substitute_args

        return substitute_args(text, self.args(spec))

    def redact(self, text: str) -> str:
        """``text`` with every secret this run read replaced by ``[REDACTED]``."""
        from deploysim.analysis.templating import redact

        return redact(text, self.secrets)

    def preflight(self, plan: Plan) -> list[str]:
        """Resolve every analysis' args and fill every team metric's query before the run
        starts, so a missing arg or Secret stops the run before the cluster is changed.
        Returns one line per metric: the query as it will be sent, redacted."""
        lines = []
        for spec in plan.analyses():
            for metric in spec.metrics:
                try:
                    sent = self.render(metric, spec, metric.source.text)
                    self._source_settings(metric, spec)
                except (ValueError, KeyError, TemplateError) as exc:
                    raise ParameterError(f"analysis {spec.name!r} metric {metric.name!r}: {exc}") from None
                lines.append(f"analysis {spec.name}: metric {metric.name}: {self.redact(sent)}")
        return lines

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self, spec: AnalysisSpec, at: float) -> tuple[MetricResult, ...]:
        """Every team metric of ``spec`` measured at ``at`` (epoch seconds)."""
        return tuple(self.evaluate_one(metric, spec, at) for metric in spec.metrics)

    def evaluate_one(self, metric: MetricDef, spec: AnalysisSpec, at: float) -> MetricResult:
        try:
            query = self.render(metric, spec, metric.source.text)
        except (ValueError, KeyError, TemplateError) as exc:
            return self._result(metric, ERROR, "", message=f"cannot fill the query: {exc}")
        if metric.source.kind == "prometheus":
            return self._prometheus(metric, spec, query, at)
        return self._web(metric, spec, query)

    def _source_settings(self, metric: MetricDef, spec: AnalysisSpec) -> tuple[str, dict[str, str]]:
        """(Prometheus address or web URL, headers) with placeholders and Secrets filled."""
        source = metric.source
        headers = {k: self.render(metric, spec, v) for k, v in source.headers}
        self.secrets |= {v for k, v in headers.items() if k.lower() in ("authorization", "x-api-key") and v}
        if source.kind == "web":
            return self.render(metric, spec, str(source.url)), headers
        address = self.render(metric, spec, source.address) if source.address else self.prometheus_url
        token = self.prometheus_token if not source.address else None
        if source.secret_ref:
            address, token, headers = self._flagger_secret(source.secret_ref, address, token, headers)
        if not address:
            raise ValueError("no Prometheus to ask: the metric names no address and the run has no prometheus_url")
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        return address, headers

    def _flagger_secret(self, name: str, address: str | None, token: str | None,
                        headers: dict[str, str]) -> tuple[str | None, str | None, dict[str, str]]:
        """Flagger's MetricTemplate ``provider.secretRef``: the Secret's ``address`` replaces
        the address, ``token`` is a bearer token, ``username`` and ``password`` basic auth
        (pkg/metrics/providers/prometheus.go NewPrometheusProvider)."""
        def key(k: str) -> str | None:
            try:
                return self.read_secret(name, k)
            except KeyError:
                return None

        address = key("address") or address
        secret_token = key("token")
        user, password = key("username"), key("password")
        self.secrets |= {v for v in (secret_token, password) if v}
        if secret_token:
            token = secret_token
        elif user and password:
            import base64

            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.secrets.add(basic)
            headers = {**headers, "Authorization": f"Basic {basic}"}
        return address, token, headers

    def _prometheus(self, metric: MetricDef, spec: AnalysisSpec, query: str, at: float) -> MetricResult:
        from deploysim.analysis.verdicts import (
            ResultError,
            argo_prometheus_measurement,
            flagger_phase,
            flagger_prometheus_value,
        )

        flagger = metric.dialect == "flagger"
        # Flagger counts any query it cannot answer as a failed check; Argo as an Error
        unanswered = FAILED if flagger else ERROR
        try:
            address, headers = self._source_settings(metric, spec)
        except (ValueError, KeyError, TemplateError) as exc:
            return self._result(metric, unanswered, query, message=str(exc))
        prom = self._prom(address, headers, metric.source.timeout or PROMETHEUS_TIMEOUT)
        try:
            data = prom.query_data(query, at)
        except PrometheusError as exc:
            return self._result(metric, unanswered, query, message=str(exc))
        raw = json.dumps(data, separators=(",", ":"))
        if not flagger:
            success, failure = (self._condition(metric, spec, c)
                                for c in (metric.success_condition, metric.failure_condition))
            v = argo_prometheus_measurement(data, success, failure)
            return self._result(metric, v.phase, query, raw, v.value, _first_number(v.number), v.message)
        try:
            number = flagger_prometheus_value(data)
        except ResultError as exc:
            return self._result(metric, FAILED, query, raw, message=f"{exc}; Flagger counts a failed check")
        if metric.builtin is not None:
            from deploysim.manifests.flagger_builtins import flagger_value

            number = flagger_value(metric.builtin, metric.name, number)
        phase, message = flagger_phase(number, metric.min, metric.max)
        return self._result(metric, phase, query, raw, f"{number:g}", number, message)

    def _condition(self, metric: MetricDef, spec: AnalysisSpec, condition: str | None) -> str | None:
        """An Argo condition with the spec's args filled (Argo resolves args over the whole metric)."""
        return self.render(metric, spec, condition) if condition else condition

    def _web(self, metric: MetricDef, spec: AnalysisSpec, shown: str) -> MetricResult:
        from deploysim.analysis.verdicts import argo_web_measurement, flagger_phase

        source = metric.source
        try:
            url, headers = self._source_settings(metric, spec)
            body = self.render(metric, spec, source.body) if source.body else None
        except (ValueError, KeyError, TemplateError) as exc:
            return self._result(metric, ERROR, shown, message=str(exc))
        timeout = source.timeout or WEB_TIMEOUT
        try:
            resp = self._client.request(source.method, url, headers=headers, content=body, timeout=timeout)
        except httpx.TimeoutException:
            return self._result(metric, ERROR, shown, message=f"no answer within {timeout:g}s")
        except httpx.HTTPError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else f"{type(exc).__name__}: {exc}"
            return self._result(metric, ERROR, shown, message=reason)
        raw = resp.text
        if not 200 <= resp.status_code < 300:
            return self._result(metric, ERROR, shown, raw, message=f"received non 2xx response code: {resp.status_code}")
        if metric.dialect == "flagger":
            v = argo_web_measurement(resp.content, source.json_path)
            if v.phase == ERROR or v.number is None:
                return self._result(metric, ERROR, shown, raw, v.value, message=v.message or f"{v.value!r} is not a number")
            phase, message = flagger_phase(v.number, metric.min, metric.max)
            return self._result(metric, phase, shown, raw, v.value, v.number, message)
        success, failure = (self._condition(metric, spec, c) for c in (metric.success_condition, metric.failure_condition))
        v = argo_web_measurement(resp.content, source.json_path, success, failure)
        return self._result(metric, v.phase, shown, raw, v.value, _first_number(v.number), v.message)

    def _prom(self, address: str, headers: dict[str, str], timeout: float) -> PrometheusProvider:
        key = (address, tuple(sorted(headers.items())), timeout)
        if key not in self._proms:
            self._proms[key] = PrometheusProvider(address, "", timeout=timeout, retries=0, headers=headers,
                                                 client=self._client)
        return self._proms[key]

    def _result(self, metric: MetricDef, phase: str, query: str, raw: str = "", value: str = "",
                number: float | None = None, message: str = "") -> MetricResult:
        return MetricResult(
            metric.name, phase, value=self.redact(value), number=number, query=self.redact(query),
            raw=self.redact(raw)[:RAW_LIMIT], message=self.redact(message), dry_run=metric.dry_run,
        )


def _first_number(result: Any) -> float | None:
    """The number a result holds first: a float, a list's first float, a numeric string."""
    if isinstance(result, list | tuple):
        result = result[0] if result else None
    if isinstance(result, bool) or result is None:
        return None
    try:
        x = float(result)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def needs_window(spec: AnalysisSpec | None) -> bool:
    """Whether an analysis reads the standard window: it has checks of its own, a judge that
    compares versions, or no team metrics at all."""
    if spec is None or not spec.metrics:
        return True
    return bool(spec.own_checks) or spec.judge != "threshold"


class AnalysisSources:
    """The standard window (when the analysis needs it) plus the analysis' team metrics."""

    kind = "analysis"

    def __init__(self, window: Any, team: TeamMetrics | None) -> None:
        self.window = window
        self.team = team

    def measure(self, start: float, end: float, spec: AnalysisSpec | None = None) -> Measurement:
        wants_window = needs_window(spec)
        m = self.window.measure(start, end, spec) if wants_window else Measurement(start, end)
        if spec is None or not spec.metrics or self.team is None:
            return m
        results = self.team.evaluate(spec, end)
        error = m.error
        judged = [r for r in results if not r.dry_run]
        errors = [r for r in judged if r.phase == ERROR]
        if error is None and errors and not any(r.phase == FAILED for r in judged):
            error = "; ".join(f"{r.name}: {r.message}" for r in errors)
        return replace(m, metrics=results, error=error)

    def close(self) -> None:
        self.window.close()
        if self.team is not None:
            self.team.close()
