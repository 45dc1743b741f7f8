"""A team's own analysis metrics: where each value comes from and how it is judged.

An Argo ``AnalysisTemplate`` metric, a Flagger ``MetricTemplate`` with the Canary's
``thresholdRange``, or a check a runbook declares with a query of its own is a
:class:`MetricDef`. One definition has two evaluations:

- **rehearsal** judges the simulated metric the definition stands for (its ``stand_in``
  :class:`~deploysim.plan.Check`, read from the query by :mod:`deploysim.manifests.queries`);
- **execution** runs the definition itself against its source (the team's Prometheus or web
  endpoint) through :mod:`deploysim.providers.evaluate`, substituting the Rollout's ``args`` or
  Flagger's template variables first, and judges the answer as the controller that owns the
  dialect does (Argo's ``successCondition`` / ``failureCondition``, Flagger's ``thresholdRange``).

>>> d = MetricDef("error-rate", MetricSource("prometheus", query="sum(rate(x[1m]))"),
...               success_condition="result[0] <= 0.01")
>>> d.describe()
'error-rate: prometheus sum(rate(x[1m])), success when result[0] <= 0.01'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deploysim.analysis.templating import Arg
from deploysim.errors import ScenarioError

__all__ = ["DIALECTS", "SOURCE_KINDS", "WEB_METHODS", "Arg", "MetricDef", "MetricSource", "metric_from_mapping"]

#: where a metric's value comes from on a cluster
SOURCE_KINDS = ("prometheus", "web")
#: whose rules substitute the query and judge the answer
DIALECTS = ("argo", "flagger")
#: HTTP methods a web metric may use (Argo's web provider: GET, POST, PUT)
WEB_METHODS = ("GET", "POST", "PUT")


@dataclass(frozen=True)
class MetricSource:
    """A metric's source, as its template writes it.

    - ``prometheus``: ``query`` (PromQL, placeholders unresolved), ``address`` of the server
      (None: the run's ``prometheus_url``), ``headers`` sent with it (an auth header), and
      ``secret_ref``: the Secret holding ``address`` / ``token`` / ``username`` /
      ``password`` (Flagger's MetricTemplate ``provider.secretRef``);
    - ``web``: ``url``, ``method``, ``headers``, ``body`` and ``json_path`` (Kubernetes
      JSONPath, e.g. ``{$.data.ok}``).

    ``timeout`` bounds one request (seconds; None: the provider's default).
    """

    kind: str
    query: str | None = None
    address: str | None = None
    url: str | None = None
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    body: str | None = None
    json_path: str | None = None
    timeout: float | None = None
    insecure: bool = False
    secret_ref: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ScenarioError("metric.provider", self.kind, f"one of {', '.join(SOURCE_KINDS)}")
        if self.kind == "prometheus" and not self.query:
            raise ScenarioError("metric.query", self.query, "a PromQL expression")
        if self.kind == "web" and not self.url:
            raise ScenarioError("metric.url", self.url, "the URL the web metric reads")
        if self.method not in WEB_METHODS:
            raise ScenarioError("metric.method", self.method, f"one of {', '.join(WEB_METHODS)}")
        if self.timeout is not None and not self.timeout > 0:
            raise ScenarioError("metric.timeout", self.timeout, "more than 0 seconds")

    @property
    def text(self) -> str:
        """What the source is asked, before substitution: the query, or the method and URL."""
        if self.kind == "prometheus":
            return str(self.query)
        return f"{self.method} {self.url}"


@dataclass(frozen=True)
class MetricDef:
    """One metric a team judges its canary by.

    ``dialect`` ``argo``: ``success_condition`` / ``failure_condition`` over ``result``;
    ``flagger``: the value within [``min``, ``max``] (``thresholdRange``), with the Canary's
    ``variables`` and ``interval`` substituted into the query; ``builtin`` names the mesh
    provider of a Flagger built-in (``request-success-rate``, ``request-duration``), whose
    query and unit are that provider's. ``dry_run`` metrics are
    measured and recorded, never failing the rollout. ``stand_in`` says, for the record, what
    rehearsal judges in its place (e.g. ``error_rate <= 0.01``), or why nothing.
    """

    name: str
    source: MetricSource
    dialect: str = "argo"
    success_condition: str | None = None
    failure_condition: str | None = None
    min: float | None = None
    max: float | None = None
    dry_run: bool = False
    variables: tuple[tuple[str, str], ...] = ()
    interval: str | None = None
    stand_in: str = ""
    builtin: str | None = None

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ScenarioError(f"metric {self.name}.dialect", self.dialect, f"one of {', '.join(DIALECTS)}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ScenarioError(f"metric {self.name}.min", self.min, f"at most max ({self.max})")

    def describe(self) -> str:
        """The metric in a line: name, source and what passes."""
        if self.dialect == "flagger":
            bounds = " and ".join(
                s for s in (f">= {self.min:g}" if self.min is not None else "",
                            f"<= {self.max:g}" if self.max is not None else "") if s)
            judged = f"passes when {bounds}" if bounds else "always passes"
        elif self.success_condition or self.failure_condition:
            parts = []
            if self.success_condition:
                parts.append(f"success when {self.success_condition}")
            if self.failure_condition:
                parts.append(f"failure when {self.failure_condition}")
            judged = ", ".join(parts)
        else:
            judged = "always passes"
        dry = " (dry run)" if self.dry_run else ""
        return f"{self.name}: {self.source.kind} {self.source.text}, {judged}{dry}"


def metric_from_mapping(data: dict[str, Any], path: str = "analysis.checks") -> MetricDef:
    """A metric a scenario or runbook declares directly, in Flagger's words with Argo's as
    an alternative: ``{name, query, max|min}`` or ``{name, query, success_condition}``;
    a web metric gives ``url`` (and ``json_path``, ``method``, ``headers``, ``body``).

    >>> metric_from_mapping({"name": "errors", "query": "sum(rate(x[1m]))", "max": 0.01}).describe()
    'errors: prometheus sum(rate(x[1m])), passes when <= 0.01'
    >>> metric_from_mapping({"name": "ok", "url": "http://127.0.0.1/health", "json_path": "{$.ok}",
    ...                      "success_condition": "result == true"}).dialect
    'argo'
    >>> metric_from_mapping({"name": "x", "query": "up", "colour": "red"})
    Traceback (most recent call last):
    ...
    deploysim.errors.ScenarioError: analysis.checks[x].colour: got 'red'; allowed: address, body, failure_condition, headers, json_path, max, method, min, name, query, success_condition, timeout, url
    """
    allowed = {"name", "query", "address", "url", "method", "headers", "body", "json_path", "timeout",
               "max", "min", "success_condition", "failure_condition"}
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{path}.name", name, "a name for the metric")
    where = f"{path}[{name}]"
    for key in data:
        if key not in allowed:
            raise ScenarioError(f"{where}.{key}", data[key], f"allowed: {', '.join(sorted(allowed))}")
    kind = "prometheus" if data.get("query") else "web" if data.get("url") else None
    if kind is None or (data.get("query") and data.get("url")):
        raise ScenarioError(f"{where}.query", data.get("query"), "exactly one of query (PromQL) or url (a web metric)")
    argo = bool(data.get("success_condition") or data.get("failure_condition"))
    bounded = data.get("max") is not None or data.get("min") is not None
    if argo and bounded:
        raise ScenarioError(f"{where}.max", data.get("max"),
                            "either max/min or success_condition/failure_condition, not both")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict):
        raise ScenarioError(f"{where}.headers", headers, "a mapping of header name to value")
    source = MetricSource(
        kind, query=data.get("query"), address=data.get("address"), url=data.get("url"),
        method=str(data.get("method") or "GET").upper(),
        headers=tuple((str(k), str(v)) for k, v in headers.items()), body=data.get("body"),
        json_path=data.get("json_path"), timeout=_seconds(data.get("timeout"), f"{where}.timeout"),
    )
    return MetricDef(
        name, source, dialect="argo" if argo else "flagger",
        success_condition=data.get("success_condition"), failure_condition=data.get("failure_condition"),
        min=_number(data.get("min"), f"{where}.min"), max=_number(data.get("max"), f"{where}.max"),
    )


def _number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (
            float("inf"), float("-inf")):
        raise ScenarioError(path, value, "a finite number")
    return float(value)


def _seconds(value: Any, path: str) -> float | None:
    if value is None:
        return None
    from deploysim.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError:
        raise ScenarioError(path, value, "a duration such as 10s") from None
