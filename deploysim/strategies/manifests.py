"""The manifests teams already have in, the same plan out: Argo Rollouts, Flagger, Deployments.

``deploysim rehearse --manifest rollout.yaml --manifest templates.yaml`` reads multi-document
YAML files and finds one rollout in them: an Argo Rollouts ``Rollout`` (with the
``AnalysisTemplate`` / ``ClusterAnalysisTemplate`` objects it names), a Flagger ``Canary``
(with its ``MetricTemplate`` objects and target ``Deployment``) or a lone ``apps/v1
Deployment``. The manifest gives the strategy, the replicas and the analysis; the scenario
still gives the traffic, the pods, the two versions and the faults.

What the rehearsal cannot model is never dropped in silence: it is named, with its path, in
``Plan.warnings`` (and an analysis metric in ``AnalysisSpec.not_simulated``). What is wrong
raises :class:`~deploysim.errors.ManifestError` naming the file, the document (from 1) and
the path, before anything runs:

>>> import tempfile, pathlib
>>> bad = pathlib.Path(tempfile.mkdtemp()) / "rollout.yaml"
>>> _ = bad.write_text("kind: Rollout\\napiVersion: argoproj.io/v1alpha1\\n"
...                    "spec: {strategy: {canary: {steps: [{setWeight: 150}]}}}\\n")
>>> try:
...     read_rollout([bad])
... except ManifestError as exc:
...     print(str(exc).split(": ", 1)[1])
spec.strategy.canary.steps[0].setWeight: got 150; a weight is a whole number from 0 to 100

Provider queries map to the simulated metrics by what they measure (:func:`classify_query`):
a PromQL ratio of 5xx (or error) requests is ``error_rate``; a ratio of non-5xx requests is
a success rate, judged as ``1 - error_rate``; ``histogram_quantile(0.99, ...)`` is
``latency_p99`` (Prometheus histograms count seconds, the simulator milliseconds); a bare
``rate(...)`` of requests is ``request_rate``. Conditions such as ``result[0] >= 0.95`` become
:class:`~deploysim.plan.Check` bounds (:func:`condition_bounds`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import yaml

from deploysim.errors import ManifestError
from deploysim.plan import (
    AnalysisSpec,
    Analyze,
    Check,
    Pause,
    Plan,
    Recreate,
    RollingUpdate,
    ScaleCandidate,
    ScaleDownStable,
    SetCanaryScale,
    SetWeight,
    Step,
    SwitchTraffic,
)
from deploysim.scenario import (
    Scenario,
    _int_or_percent,
    apply_overrides,
    default_scenario_path,
    load_scenario,
    read_yaml,
)

__all__ = [
    "ImportedRollout",
    "classify_query",
    "condition_bounds",
    "plan_from_manifests",
    "read_documents",
    "read_rollout",
    "scenario_from_manifests",
]

ManifestPaths = Sequence[str | Path] | str | Path

# --- documents -------------------------------------------------------------------------------

ROLLOUT_KINDS = {"Rollout": "argoproj.io", "Canary": "flagger.app", "Deployment": "apps"}
TEMPLATE_KINDS = {
    "AnalysisTemplate": "argoproj.io",
    "ClusterAnalysisTemplate": "argoproj.io",
    "MetricTemplate": "flagger.app",
}
# objects that travel with a rollout and change nothing the rehearsal models
COMPANION_KINDS = {
    "Service", "Ingress", "HTTPRoute", "GRPCRoute", "Gateway", "VirtualService", "DestinationRule",
    "TrafficSplit", "TraefikService", "Mapping", "ApisixRoute", "HorizontalPodAutoscaler",
    "ConfigMap", "Secret", "ServiceAccount", "Namespace", "PodDisruptionBudget", "NetworkPolicy",
    "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceMonitor", "PodMonitor",
    "AlertProvider", "ScaledObject", "HTTPScaledObject", "Upstream", "TrafficTarget",
}


@dataclass(frozen=True)
class Document:
    """One YAML document of one file; ``index`` counts from 1 as people do."""

    file: str
    index: int
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind"))

    @property
    def group(self) -> str:
        api = str(self.data.get("apiVersion") or "")
        return api.rsplit("/", 1)[0] if "/" in api else ""

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    def error(self, path: str, message: str) -> ManifestError:
        return ManifestError(self.file, self.index, path, message)


class Reader:
    """Reads one document: typed fields by path, errors that name the path, and warnings
    for what the rehearsal does not model."""

    def __init__(self, doc: Document, warnings: list[str]) -> None:
        self.doc = doc
        self.warnings = warnings

    def fail(self, path: str, message: str) -> NoReturn:
        raise self.doc.error(path, message)

    def warn(self, path: str, message: str) -> None:
        note = f"{Path(self.doc.file).name} (document {self.doc.index}): {path}: {message}"
        if note not in self.warnings:
            self.warnings.append(note)

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"got {value!r}; expected a mapping of keys")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"got {value!r}; expected a list")
        return value

    def integer(self, m: dict[str, Any], key: str, path: str, default: int | None,
                lo: int | None = None, hi: int | None = None, allowed: str = "") -> int | None:
        """An int, or a string of digits (Kubernetes' int-or-string fields)."""
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{path}.{key}", f"got {m[key]!r}; {allowed or 'expected a whole number'}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = allowed or (f"must be from {lo} to {hi}" if hi is not None else f"must be {lo} or more")
            self.fail(f"{path}.{key}", f"got {value!r}; {bounds}")
        return value

    def boolean(self, m: dict[str, Any], key: str, path: str, default: bool) -> bool:
        if key not in m or m[key] is None:
            return default
        if not isinstance(m[key], bool):
            self.fail(f"{path}.{key}", f"got {m[key]!r}; expected true or false")
        return m[key]

    def string(self, m: dict[str, Any], key: str, path: str, default: str | None = None) -> str | None:
        if key not in m or m[key] is None:
            return default
        if not isinstance(m[key], str | int | float) or isinstance(m[key], bool):
            self.fail(f"{path}.{key}", f"got {m[key]!r}; expected a string")
        return str(m[key])

    def duration(self, value: Any, path: str, numbers: bool = True) -> float:
        """Go durations (``30s``, ``5m``, ``1h30m``, ``250ms``); a bare number is seconds
        where the tool allows it (Argo Rollouts does, Flagger does not)."""
        try:
            return go_duration(value, numbers=numbers)
        except ValueError as exc:
            self.fail(path, f"got {value!r}; {exc}")

    def int_or_percent(self, m: dict[str, Any], key: str, path: str, default: int | str) -> int | str:
        if key not in m or m[key] is None:
            return default
        try:
            return _int_or_percent(m[key])
        except ValueError as exc:
            self.fail(f"{path}.{key}", f"got {m[key]!r}; {exc}")

    def unused(self, m: dict[str, Any], path: str, used: Iterable[str], quiet: Iterable[str] = ()) -> None:
        """Warn, by path, about every key the rehearsal neither uses nor can safely ignore."""
        known = set(used) | set(quiet)
        for key in m:
            if key not in known:
                self.warn(f"{path}.{key}", "not simulated; the rehearsal ignores it")


_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
GO_DURATION_HELP = "expected a duration like 30s, 10m, 1h or 1h30m"


def go_duration(value: Any, numbers: bool = True) -> float:
    """Seconds from a Go duration string, or from a bare number of seconds if ``numbers``.

    >>> go_duration("1h30m"), go_duration(10), go_duration("10"), go_duration("250ms")
    (5400.0, 10.0, 10.0, 0.25)
    >>> go_duration("5 minutes")
    Traceback (most recent call last):
    ...
    ValueError: expected a duration like 30s, 10m, 1h or 1h30m (a bare number is seconds)
    """
    help_ = GO_DURATION_HELP + (" (a bare number is seconds)" if numbers else "")
    if isinstance(value, bool):
        raise ValueError(help_)
    if isinstance(value, int | float):
        if not numbers:
            raise ValueError(f"{help_}; a number needs a unit here")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(help_)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        if not numbers:
            raise ValueError(f"{help_}; {text} needs a unit here, e.g. {text}s")
        return float(text)
    pos, total = 0, 0.0
    for match in _GO_PART.finditer(text):
        if match.start() != pos:
            raise ValueError(help_)
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(help_)
    return total


def _as_list(manifests: ManifestPaths) -> list[Path]:
    if isinstance(manifests, str | Path):
        return [Path(manifests)]
    return [Path(m) for m in manifests]


def read_documents(manifests: ManifestPaths) -> list[Document]:
    """Every non-empty YAML document of every file, in order."""
    docs: list[Document] = []
    for path in _as_list(manifests):
        name = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ManifestError(name, 0, "(file)", f"cannot read the file ({exc.strerror})") from None
        index = 0
        try:
            for index, data in enumerate(yaml.safe_load_all(text), start=1):  # noqa: B007
                if data is None:
                    continue
                if not isinstance(data, dict):
                    raise ManifestError(name, index, "(document)",
                                        f"got a {type(data).__name__}; a manifest is a mapping with kind and apiVersion")
                docs.append(Document(name, index, data))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ManifestError(name, index + 1, "(yaml)", f"not valid YAML{where}: "
                                f"{getattr(exc, 'problem', None) or exc}") from None
    if not docs:
        raise ManifestError(", ".join(str(p) for p in _as_list(manifests)) or "(none)", 0, "(file)",
                            "no manifests found; expected a Rollout, a Canary or a Deployment")
    return docs


def _check_kind(doc: Document) -> str:
    """'rollout', 'template' or 'companion'; an unknown kind or API group is an error."""
    kind = doc.data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise doc.error("kind", "missing; expected Rollout, Canary, Deployment or an analysis template")
    expected = ROLLOUT_KINDS.get(kind) or TEMPLATE_KINDS.get(kind)
    if expected is not None:
        if doc.group != expected:
            raise doc.error("apiVersion", f"got {doc.data.get('apiVersion')!r}; a {kind} is "
                            f"{expected}/{'v1' if expected == 'apps' else '...'}")
        return "rollout" if kind in ROLLOUT_KINDS else "template"
    if kind in COMPANION_KINDS:
        return "companion"
    allowed = ", ".join([*ROLLOUT_KINDS, *TEMPLATE_KINDS])
    raise doc.error("kind", f"unknown kind {kind!r}; allowed: {allowed} "
                    f"(and companions such as Service or Ingress, which are skipped)")


# --- what a query measures -------------------------------------------------------------------

_SUCCESS = re.compile(r'!~\s*"5|!=\s*"5|success|=~\s*"2|2xx|"2\.\."', re.I)
_ERROR = re.compile(r'5\.\.|5xx|=~\s*"5|=\s*"5\d\d"|error|fail', re.I)
_QUANTILE = re.compile(r'histogram_quantile\s*\(\s*([0-9.]+)|quantile\s*=\s*"([0-9.]+)"', re.I)
_RATE = re.compile(r"\b(i?rate)\s*\(", re.I)
_TIMES = re.compile(r"\*\s*(\d+(?:\.\d+)?)")
_RANGE = re.compile(r"\[\s*(\d+[smhd])\s*\]")
_QUANTILE_METRIC = {0.5: "latency_p50", 0.95: "latency_p95", 0.99: "latency_p99"}


@dataclass(frozen=True)
class Measures:
    """What a query measures in the simulator's words: ``metric`` is a simulated metric, or
    ``success_rate`` (judged as 1 - error_rate); ``scale`` turns the query's result into the
    simulated metric's unit (a percentage × 0.01, seconds × 1000)."""

    metric: str
    scale: float = 1.0
    note: str = ""


def classify_query(text: str, web: bool = False) -> Measures | None:
    """What a provider query measures, or None when it is nothing the simulator models.

    >>> classify_query('sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))')
    Measures(metric='error_rate', scale=1.0, note='')
    >>> classify_query('histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[1m])) by (le))').scale
    1000.0
    >>> classify_query('sum(rate(requests{code!~"5.."}[1m])) / sum(rate(requests[1m])) * 100')
    Measures(metric='success_rate', scale=0.01, note='')
    >>> classify_query('100 - sum(rate(requests{code!~"5.."}[1m])) / sum(rate(requests[1m])) * 100')
    Measures(metric='error_rate', scale=0.01, note='')
    """
    q = " ".join(text.split())
    low = q.lower()
    quantile = _QUANTILE.search(q)
    if quantile or (web and re.search(r"p99|latency|duration", low)):
        value = float(next(g for g in quantile.groups() if g)) if quantile else 0.99
        metric = _QUANTILE_METRIC.get(round(value, 4))
        if metric is None:
            return None
        factors = [float(x) for x in _TIMES.findall(q)]
        if "milli" in low or re.search(r"_ms(?:_|\b)", low) or 1000.0 in factors:
            return Measures(metric, 1.0)
        if "second" in low:
            return Measures(metric, 1000.0)
        if web:
            return Measures(metric, 1.0, "unit not stated; read as milliseconds")
        return Measures(metric, 1000.0, "unit not stated; read as seconds (the Prometheus convention)")
    percent = 100.0 in [float(x) for x in _TIMES.findall(q)] or bool(re.match(r"^\(?\s*100\s*\*", q))
    scale = 0.01 if percent else 1.0
    # "100 - success%" is an error percentage, "1 - error ratio" a success ratio
    complement = re.match(r"^\(?\s*(100|1)(\.0*)?\s*-", q)
    if complement and complement.group(1) == "100":
        scale = 0.01
    if "/" in q or web:
        found = "success_rate" if _SUCCESS.search(q) else "error_rate" if _ERROR.search(q) else None
        if found and complement:
            found = "error_rate" if found == "success_rate" else "success_rate"
        if found:
            return Measures(found, scale)
    if (_RATE.search(q) and "/" not in q and "request" in low) or (
            web and re.search(r"rps|throughput|request_rate", low)):
        return Measures("request_rate", 1.0)
    return None


_NUMBER = r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_RESULT = r"(?:asFloat\s*)?result(?:\s*\[\s*\d+\s*\])?"
_CMP = re.compile(rf"^\s*{_RESULT}\s*(<=|>=|<|>|==)\s*{_NUMBER}\s*$")
_CMP_REVERSED = re.compile(rf"^\s*{_NUMBER}\s*(<=|>=|<|>|==)\s*{_RESULT}\s*$")
_GUARD = re.compile(r"isNaN|isInf|len\s*\(\s*result|result\s*==\s*nil|default\(", re.I)
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "=="}


def _comparison(term: str) -> tuple[str, float] | None:
    t = term.replace("(", " ").replace(")", " ").strip()
    m = _CMP.match(t)
    if m:
        return m.group(1), float(m.group(2))
    m = _CMP_REVERSED.match(t)
    if m:
        return _FLIP[m.group(2)], float(m.group(1))
    return None


def condition_bounds(condition: str, failure: bool = False) -> tuple[float | None, float | None] | None:
    """(min, max) of the results that pass, from an Argo success or failure condition.

    None when the condition is not a bound on ``result`` (guards against no data, such as
    ``isNaN(result)`` or ``len(result) == 0``, are left to the judge, which calls no data
    inconclusive).

    >>> condition_bounds("result[0] >= 0.95")
    (0.95, None)
    >>> condition_bounds("result < 0.01 && result >= 0")
    (0.0, 0.01)
    >>> condition_bounds("result[0] > 500", failure=True)
    (None, 500.0)
    >>> condition_bounds("isNaN(result) || result < 0.01")
    (None, 0.01)
    """
    text = re.sub(r"\bor\b", "||", re.sub(r"\band\b", "&&", condition.strip()))
    if not text:
        return None
    joins = set(re.findall(r"&&|\|\|", text))
    terms = [t for t in re.split(r"&&|\|\|", text) if t.strip()]
    comparisons = []
    for term in terms:
        if _GUARD.search(term):
            continue
        cmp = _comparison(term)
        if cmp is None:
            return None
        comparisons.append(cmp)
    if not comparisons:
        return None
    real_join = joins if len(comparisons) > 1 else set()
    lo: float | None = None
    hi: float | None = None
    if not failure:
        if "||" in real_join:
            return None
        for op, value in comparisons:
            if op in (">", ">="):
                lo = value if lo is None else max(lo, value)
            elif op in ("<", "<="):
                hi = value if hi is None else min(hi, value)
            else:
                return None
    else:
        if "&&" in real_join:
            return None
        for op, value in comparisons:
            if op in (">", ">="):
                hi = value if hi is None else min(hi, value)
            elif op in ("<", "<="):
                lo = value if lo is None else max(lo, value)
            else:
                return None
    return lo, hi


def bounds_to_check(measures: Measures, lo: float | None, hi: float | None) -> Check:
    """A Check on the simulated metric for results that pass within [lo, hi]."""
    scale = measures.scale
    if measures.metric == "success_rate":
        # a success rate >= s is an error rate <= 1 - s
        return Check("error_rate", max=None if lo is None else _clean(1 - lo * scale),
                     min=None if hi is None else _clean(1 - hi * scale))
    return Check(measures.metric, max=None if hi is None else _clean(hi * scale),
                 min=None if lo is None else _clean(lo * scale))


def _clean(x: float) -> float:
    return float(f"{x:.12g}")


def query_window(text: str) -> float | None:
    """The range a query looks back over (``rate(x[5m])`` -> 300 s), if it states one."""
    m = _RANGE.search(text)
    if m is None:
        return None
    value = m.group(1)
    return float(value[:-1]) * 86400.0 if value.endswith("d") else go_duration(value)


# --- the imported rollout --------------------------------------------------------------------


@dataclass
class ImportedRollout:
    """What the manifests say, before it meets a scenario.

    ``build(replicas, judge)`` makes the plan; ``strategy`` holds the scenario's strategy
    fields the manifest decides (for the record and for the world's blue-green preview).
    """

    kind: str  # canary, blue-green, rolling, recreate
    source: str  # "Rollout checkout", "Canary podinfo", ...
    replicas: int | None
    strategy: dict[str, Any]
    build: Any  # Callable[[int, str], Plan]
    warnings: list[str] = field(default_factory=list)


def read_rollout(manifests: ManifestPaths) -> ImportedRollout:
    """Find and check the one rollout among the manifests, with the templates it uses."""
    docs = read_documents(manifests)
    warnings: list[str] = []
    rollouts: list[Document] = []
    templates: dict[tuple[str, str], Document] = {}
    deployments: dict[str, Document] = {}
    for doc in docs:
        role = _check_kind(doc)
        if role == "template":
            if not doc.name:
                raise doc.error("metadata.name", f"a {doc.kind} needs a name, the one rollouts refer to")
            templates[(doc.kind, doc.name)] = doc
        elif role == "rollout":
            if doc.kind == "Deployment":
                deployments[doc.name] = doc
            else:
                rollouts.append(doc)
    if len(rollouts) > 1:
        first = rollouts[0]
        raise rollouts[1].error("kind", f"a second rollout ({rollouts[1].kind} {rollouts[1].name!r}) "
                                f"after {first.kind} {first.name!r} in {first.file}; rehearse one at a time")
    if rollouts:
        doc = rollouts[0]
        if doc.kind == "Rollout":
            return _argo_rollout(doc, templates, warnings)
        from deploysim.strategies.flagger import read_canary

        return read_canary(Reader(doc, warnings), templates, deployments)
    if len(deployments) > 1:
        docs_ = list(deployments.values())
        raise docs_[1].error("kind", f"a second Deployment ({docs_[1].name!r}) after {docs_[0].name!r}; "
                             "rehearse one at a time, or add the Flagger Canary that targets it")
    return deployment_rollout(Reader(next(iter(deployments.values())), warnings))


def scenario_from_manifests(
    manifests: ManifestPaths,
    scenario_path: str | Path | None = None,
    overrides: list[str] | None = None,
) -> Scenario:
    """The scenario (file or built-in default) with the manifest's strategy and replicas;
    ``--set`` overrides still win over both."""
    imported = read_rollout(manifests)
    data = read_yaml(scenario_path or default_scenario_path())
    strategy = dict(data.get("strategy") or {})
    strategy.update(imported.strategy)
    data["strategy"] = strategy
    if imported.replicas is not None:
        data["replicas"] = imported.replicas
    name = imported.source.split(" ", 1)[-1]
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63:
        data["service"] = name
    data = apply_overrides(data, overrides or [])
    return load_scenario(scenario_path, overrides=[], data=data)


def plan_from_manifests(manifests: ManifestPaths, scenario: Scenario) -> Plan:
    """The plan the manifests describe, for the scenario's replicas and judge."""
    imported = read_rollout(manifests)
    replicas = scenario.replicas
    warnings = list(imported.warnings)
    if imported.replicas is not None and imported.replicas != replicas:
        warnings.append(f"{imported.source}: spec.replicas is {imported.replicas} but the scenario "
                        f"has {replicas}; rehearsing {replicas}")
    plan: Plan = imported.build(replicas, scenario.analysis.judge)
    return replace(plan, warnings=tuple(warnings) + plan.warnings)


# --- Kubernetes Deployment ---------------------------------------------------------------------


def deployment_settings(r: Reader) -> dict[str, Any]:
    """replicas, strategy and timing of an apps/v1 Deployment, with Kubernetes' defaults."""
    spec = r.mapping(r.doc.data.get("spec"), "spec")
    replicas = r.integer(spec, "replicas", "spec", 1, lo=1, allowed=REPLICAS_HELP)
    min_ready = r.integer(spec, "minReadySeconds", "spec", 0, lo=0)
    deadline = r.integer(spec, "progressDeadlineSeconds", "spec", 600, lo=1)
    if deadline <= min_ready:  # type: ignore[operator]
        r.fail("spec.progressDeadlineSeconds", f"got {deadline}; must be greater than minReadySeconds ({min_ready})")
    strategy = r.mapping(spec.get("strategy"), "spec.strategy")
    kind = r.string(strategy, "type", "spec.strategy", "RollingUpdate")
    if kind not in ("RollingUpdate", "Recreate"):
        r.fail("spec.strategy.type", f"got {kind!r}; allowed: RollingUpdate, Recreate")
    rolling = r.mapping(strategy.get("rollingUpdate"), "spec.strategy.rollingUpdate")
    if kind == "Recreate" and rolling:
        r.fail("spec.strategy.rollingUpdate", "may only be set when type is RollingUpdate")
    surge = r.int_or_percent(rolling, "maxSurge", "spec.strategy.rollingUpdate", "25%")
    unavailable = r.int_or_percent(rolling, "maxUnavailable", "spec.strategy.rollingUpdate", "25%")
    if surge in (0, "0%") and unavailable in (0, "0%"):
        r.fail("spec.strategy.rollingUpdate", "maxSurge and maxUnavailable cannot both be 0")
    r.unused(rolling, "spec.strategy.rollingUpdate", ("maxSurge", "maxUnavailable"))
    r.unused(strategy, "spec.strategy", ("type", "rollingUpdate"))
    r.unused(spec, "spec", ("replicas", "minReadySeconds", "progressDeadlineSeconds", "strategy"),
             quiet=("selector", "template", "revisionHistoryLimit"))
    if spec.get("paused"):
        r.warn("spec.paused", "a paused Deployment does not roll out; the rehearsal rolls it out anyway")
    return {"replicas": replicas, "kind": "recreate" if kind == "Recreate" else "rolling",
            "max_surge": surge, "max_unavailable": unavailable,
            "min_ready_seconds": float(min_ready), "progress_deadline_seconds": float(deadline)}


def deployment_rollout(r: Reader) -> ImportedRollout:
    """A Deployment rolls out by its own rules and never rolls back on its own: when the
    progress deadline passes, Kubernetes marks it, and does nothing else."""
    d = deployment_settings(r)

    def build(replicas: int, judge: str) -> Plan:
        return Plan(
            strategy=d["kind"], replicas=replicas,
            steps=(Recreate(),) if d["kind"] == "recreate" else (RollingUpdate(),),
            routing="replica_ratio", max_surge=d["max_surge"], max_unavailable=d["max_unavailable"],
            min_ready_seconds=d["min_ready_seconds"], progress_deadline_seconds=d["progress_deadline_seconds"],
            progress_deadline_abort=False,
        )

    strategy = {"kind": d["kind"], "max_surge": d["max_surge"], "max_unavailable": d["max_unavailable"],
                "min_ready_seconds": d["min_ready_seconds"],
                "progress_deadline_seconds": d["progress_deadline_seconds"], "background_analysis": False}
    return ImportedRollout(d["kind"], f"Deployment {r.doc.name}", d["replicas"], strategy, build, r.warnings)


# --- Argo Rollouts -----------------------------------------------------------------------------

REPLICAS_HELP = "a rehearsal needs a whole number of replicas, 1 or more"
CANARY_STEP_TYPES = ("setWeight", "pause", "setCanaryScale", "analysis", "experiment",
                     "setHeaderRoute", "setMirrorRoute", "plugin")
PROVIDERS = ("prometheus", "web", "datadog", "newRelic", "wavefront", "kayenta", "job", "cloudWatch",
             "graphite", "influxdb", "skywalking", "plugin")


def _argo_rollout(doc: Document, templates: dict[tuple[str, str], Document], warnings: list[str]) -> ImportedRollout:
    r = Reader(doc, warnings)
    spec = r.mapping(doc.data.get("spec"), "spec")
    replicas = r.integer(spec, "replicas", "spec", 1, lo=1, allowed=REPLICAS_HELP)
    min_ready = r.integer(spec, "minReadySeconds", "spec", 0, lo=0)
    deadline = r.integer(spec, "progressDeadlineSeconds", "spec", 600, lo=1)
    if deadline <= min_ready:  # type: ignore[operator]
        r.fail("spec.progressDeadlineSeconds", f"got {deadline}; must be greater than minReadySeconds ({min_ready})")
    deadline_abort = r.boolean(spec, "progressDeadlineAbort", "spec", False)
    r.unused(spec, "spec", ("replicas", "minReadySeconds", "progressDeadlineSeconds", "progressDeadlineAbort",
                            "strategy"),
             quiet=("selector", "template", "workloadRef", "revisionHistoryLimit", "analysis"))
    strategy = r.mapping(spec.get("strategy"), "spec.strategy")
    chosen = [k for k in ("canary", "blueGreen") if k in strategy]
    if len(chosen) != 1:
        r.fail("spec.strategy", f"got {sorted(strategy) or 'nothing'}; needs exactly one of canary, blueGreen")
    r.unused(strategy, "spec.strategy", chosen)
    common = {"min_ready_seconds": float(min_ready), "progress_deadline_seconds": float(deadline),
              "progress_deadline_abort": deadline_abort}
    source = f"Rollout {doc.name}"
    if chosen[0] == "canary":
        return _argo_canary(r, strategy["canary"], templates, replicas, common, source)
    return _argo_blue_green(r, strategy["blueGreen"], templates, replicas, common, source)


def _argo_canary(r: Reader, value: Any, templates: dict[tuple[str, str], Document], replicas: int | None,
                 common: dict[str, Any], source: str) -> ImportedRollout:
    path = "spec.strategy.canary"
    canary = r.mapping(value, path)
    surge = r.int_or_percent(canary, "maxSurge", path, "25%")
    unavailable = r.int_or_percent(canary, "maxUnavailable", path, "25%")
    if surge in (0, "0%") and unavailable in (0, "0%"):
        r.fail(path, "maxSurge and maxUnavailable cannot both be 0")
    router = canary.get("trafficRouting") is not None
    r.unused(canary, path, ("steps", "maxSurge", "maxUnavailable", "trafficRouting", "analysis"),
             quiet=("canaryService", "stableService", "canaryMetadata", "stableMetadata", "pingPong"))
    planned: list[tuple[str, Any, str]] = []  # (what, value, path)
    for i, raw in enumerate(r.items(canary.get("steps"), f"{path}.steps")):
        spath = f"{path}.steps[{i}]"
        step = r.mapping(raw, spath)
        kinds = [k for k in step if k in CANARY_STEP_TYPES]
        unknown = [k for k in step if k not in CANARY_STEP_TYPES]
        if unknown:
            r.fail(spath, f"unknown step type {unknown[0]!r}; allowed: {', '.join(CANARY_STEP_TYPES)}")
        if len(kinds) != 1:
            r.fail(spath, f"got {kinds or 'an empty step'}; a step is exactly one of {', '.join(CANARY_STEP_TYPES)}")
        kind = kinds[0]
        body = step[kind]
        if kind == "setWeight":
            w = body
            if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 100:
                r.fail(f"{spath}.setWeight", f"got {w!r}; a weight is a whole number from 0 to 100")
            planned.append(("weight", w, spath))
        elif kind == "pause":
            if body is None or not isinstance(body, dict):
                r.fail(f"{spath}.pause", f"got {body!r}; pause: {{}} waits for promotion, "
                       "pause: {duration: 10m} waits ten minutes")
            r.unused(body, f"{spath}.pause", ("duration",))
            seconds = None
            if body.get("duration") is not None:
                seconds = r.duration(body["duration"], f"{spath}.pause.duration")
            planned.append(("pause", seconds, spath))
        elif kind == "setCanaryScale":
            scale = r.mapping(body, f"{spath}.setCanaryScale")
            given = [k for k in ("replicas", "weight", "matchTrafficWeight") if k in scale]
            r.unused(scale, f"{spath}.setCanaryScale", ("replicas", "weight", "matchTrafficWeight"))
            if len(given) != 1:
                r.fail(f"{spath}.setCanaryScale", "needs exactly one of replicas, weight, matchTrafficWeight")
            if given[0] == "matchTrafficWeight":
                if scale["matchTrafficWeight"] is not True:
                    r.fail(f"{spath}.setCanaryScale.matchTrafficWeight", "must be true when set")
                planned.append(("scale", None, spath))
            elif given[0] == "weight":
                w = r.integer(scale, "weight", f"{spath}.setCanaryScale", None, lo=0)
                planned.append(("scale", w, spath))
            else:
                n = r.integer(scale, "replicas", f"{spath}.setCanaryScale", None, lo=0)
                planned.append(("scale_replicas", n, spath))
            if not router:
                r.warn(f"{spath}.setCanaryScale", "needs trafficRouting; Argo Rollouts ignores it here, "
                       "and so does the rehearsal")
                planned.pop()
        elif kind == "analysis":
            refs = r.mapping(body, f"{spath}.analysis")
            spec = analysis_from_templates(r, refs, f"{spath}.analysis", templates, f"step-{i + 1}")
            if spec.count is None:
                r.warn(f"{spath}.analysis", "a metric runs indefinitely (interval without count); "
                       "the step waits until the analysis fails")
            planned.append(("analysis", spec, spath))
        elif kind == "experiment":
            exp = r.mapping(body, f"{spath}.experiment")
            seconds = r.duration(exp["duration"], f"{spath}.experiment.duration") if exp.get("duration") else None
            r.warn(f"{spath}.experiment", "experiments are not simulated"
                   + ("; the rehearsal holds for its duration" if seconds else "; the step is skipped"))
            if seconds:
                planned.append(("pause", seconds, spath))
        else:
            r.warn(f"{spath}.{kind}", "not simulated; the step is skipped")
    background = canary.get("analysis")
    bg_spec: AnalysisSpec | None = None
    bg_start = 0
    if background is not None:
        bpath = f"{path}.analysis"
        refs = r.mapping(background, bpath)
        bg_spec = analysis_from_templates(r, refs, bpath, templates, "background", extra=("startingStep",))
        bg_start = r.integer(refs, "startingStep", bpath, 0, lo=0) or 0
        if bg_start > len(planned):
            r.fail(f"{bpath}.startingStep", f"got {bg_start}; the canary has {len(planned)} steps")

    strategy = {"kind": "canary", "max_surge": surge, "max_unavailable": unavailable, "traffic_router": router,
                "min_ready_seconds": common["min_ready_seconds"],
                "progress_deadline_seconds": common["progress_deadline_seconds"]}
    no_steps = not planned

    def build(n: int, judge: str) -> Plan:
        bg = replace(bg_spec, judge=judge) if bg_spec is not None else None
        if no_steps:
            # Argo: a canary without steps replaces pods like a rolling update
            return Plan(strategy="rolling", replicas=n, steps=(RollingUpdate(),), routing="replica_ratio",
                        max_surge=surge, max_unavailable=unavailable, background=bg,
                        min_ready_seconds=common["min_ready_seconds"],
                        progress_deadline_seconds=common["progress_deadline_seconds"],
                        progress_deadline_abort=common["progress_deadline_abort"],
                        warnings=(f"{source}: {path}.steps: none; rehearsed as a rolling update",) if router else ())
        steps: list[Step] = []
        for what, value, _ in planned:
            if what == "weight":
                steps.append(SetWeight(value))
            elif what == "pause":
                steps.append(Pause(value))
            elif what == "scale":
                steps.append(SetCanaryScale(value))
            elif what == "scale_replicas":
                # a whole number of pods as a percentage that gives back exactly that many
                steps.append(SetCanaryScale(value * 100 // n if n <= 100 else -(-value * 100 // n)))
            else:
                steps.append(Analyze(replace(value, judge=judge)))
        if not any(isinstance(s, SetWeight) and s.weight == 100 for s in steps):
            steps.append(SetWeight(100))
        return Plan(strategy="canary", replicas=n, steps=tuple(steps), routing="router" if router else "replica_ratio",
                    max_surge=surge, max_unavailable=unavailable, background=bg, background_start=bg_start,
                    min_ready_seconds=common["min_ready_seconds"],
                    progress_deadline_seconds=common["progress_deadline_seconds"],
                    progress_deadline_abort=common["progress_deadline_abort"])

    kind = "rolling" if no_steps else "canary"
    strategy["kind"] = kind
    return ImportedRollout(kind, source, replicas, strategy, build, r.warnings)


def _argo_blue_green(r: Reader, value: Any, templates: dict[tuple[str, str], Document], replicas: int | None,
                     common: dict[str, Any], source: str) -> ImportedRollout:
    path = "spec.strategy.blueGreen"
    bg = r.mapping(value, path)
    if not r.string(bg, "activeService", path):
        r.fail(f"{path}.activeService", "missing; a blue-green rollout needs the service it switches")
    preview_service = r.string(bg, "previewService", path)
    auto = r.boolean(bg, "autoPromotionEnabled", path, True)
    auto_seconds = r.integer(bg, "autoPromotionSeconds", path, None, lo=0)
    delay = r.integer(bg, "scaleDownDelaySeconds", path, 30, lo=0)
    preview_count = r.integer(bg, "previewReplicaCount", path, None, lo=0)
    if preview_count == 0:
        r.fail(f"{path}.previewReplicaCount", "got 0; the preview needs at least one pod")
    pre = post = None
    if bg.get("prePromotionAnalysis") is not None:
        pre = analysis_from_templates(r, r.mapping(bg["prePromotionAnalysis"], f"{path}.prePromotionAnalysis"),
                                      f"{path}.prePromotionAnalysis", templates, "pre-promotion")
    if bg.get("postPromotionAnalysis") is not None:
        post = analysis_from_templates(r, r.mapping(bg["postPromotionAnalysis"], f"{path}.postPromotionAnalysis"),
                                       f"{path}.postPromotionAnalysis", templates, "post-promotion")
    if not auto and auto_seconds is not None:
        r.warn(f"{path}.autoPromotionSeconds", "ignored because autoPromotionEnabled is false (as Argo does)")
    r.unused(bg, path, ("activeService", "previewService", "autoPromotionEnabled", "autoPromotionSeconds",
                        "scaleDownDelaySeconds", "previewReplicaCount", "prePromotionAnalysis",
                        "postPromotionAnalysis"),
             quiet=("activeMetadata", "previewMetadata", "scaleDownDelayRevisionLimit"))

    def build(n: int, judge: str) -> Plan:
        preview = n if preview_count is None else min(preview_count, n)
        steps: list[Step] = [ScaleCandidate(preview)]
        if pre is not None:
            steps.append(Analyze(replace(pre, judge=judge)))
        if not auto:
            steps.append(Pause(None))
        elif auto_seconds:
            steps.append(Pause(float(auto_seconds)))
        if preview < n:
            steps.append(ScaleCandidate(n))
        steps.append(SwitchTraffic())
        if post is not None:
            steps.append(Analyze(replace(post, judge=judge)))
        steps.append(ScaleDownStable(float(delay)))
        return Plan(strategy="blue-green", replicas=n, steps=tuple(steps), routing="active",
                    min_ready_seconds=common["min_ready_seconds"],
                    progress_deadline_seconds=common["progress_deadline_seconds"],
                    progress_deadline_abort=common["progress_deadline_abort"], scale_down_delay=float(delay))

    strategy: dict[str, Any] = {
        "kind": "blue-green", "preview_replicas": preview_count,
        "auto_promotion_seconds": (float(auto_seconds or 0) if auto else None),
        "scale_down_delay_seconds": float(delay), "pre_promotion_analysis": pre is not None,
        "post_promotion_analysis": post is not None, "min_ready_seconds": common["min_ready_seconds"],
        "progress_deadline_seconds": common["progress_deadline_seconds"],
    }
    if not preview_service:
        strategy["preview_rps"] = 0.0  # no preview service, no smoke tests through it
    return ImportedRollout("blue-green", source, replicas, strategy, build, r.warnings)


# --- Argo analysis templates --------------------------------------------------------------------


@dataclass
class _Metric:
    name: str
    path: str
    interval: float | None
    count: int | None
    initial_delay: float
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    check: Check | None
    window: float | None
    dry_run: bool = False

    @property
    def span(self) -> float:
        if self.count is None and self.interval is not None:
            return float("inf")
        return self.initial_delay + (self.interval or self.window or 60.0) * (self.count or 1)


def _dry_run_patterns(r: Reader, value: Any, path: str) -> list[str]:
    patterns = []
    for i, item in enumerate(r.items(value, path)):
        entry = r.mapping(item, f"{path}[{i}]")
        name = r.string(entry, "metricName", f"{path}[{i}]")
        if not name:
            r.fail(f"{path}[{i}].metricName", "missing; name the metric (or a pattern like .*)")
        patterns.append(name)
    return patterns


def _matches(patterns: list[str], name: str) -> bool:
    for p in patterns:
        try:
            if re.fullmatch(p, name):
                return True
        except re.error:
            if p == name:
                return True
    return False


def analysis_from_templates(r: Reader, refs: dict[str, Any], path: str, templates: dict[tuple[str, str], Document],
                            name: str, extra: tuple[str, ...] = ()) -> AnalysisSpec:
    """One AnalysisSpec from the templates a rollout names (an analysis step, background
    analysis or blue-green pre/post-promotion analysis).

    Every metric's check joins one spec; the metrics' timing must agree to be exact, and the
    slowest metric sets it when they do not (named in a warning). The strictest limits win.
    """
    r.unused(refs, path, ("templates", "dryRun", *extra), quiet=("args", "measurementRetention", "analysisRunMetadata"))
    items = r.items(refs.get("templates"), f"{path}.templates")
    if not items:
        r.fail(f"{path}.templates", "missing; name at least one AnalysisTemplate (templateName)")
    dry = _dry_run_patterns(r, refs.get("dryRun"), f"{path}.dryRun")
    metrics: list[_Metric] = []
    notes: list[str] = []
    for i, item in enumerate(items):
        tpath = f"{path}.templates[{i}]"
        ref = r.mapping(item, tpath)
        tname = r.string(ref, "templateName", tpath)
        if not tname:
            r.fail(f"{tpath}.templateName", "missing; name the AnalysisTemplate to run")
        cluster = r.boolean(ref, "clusterScope", tpath, False)
        kind = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
        doc = templates.get((kind, tname))
        if doc is None:
            r.fail(f"{tpath}.templateName", f"{kind} {tname!r} is not among the manifests; "
                   "pass its file with another --manifest")
        tr = Reader(doc, r.warnings)
        metrics.extend(_template_metrics(tr, dry, notes))
    simulated = [m for m in metrics if not m.dry_run]
    judged = [m for m in simulated if m.check is not None]
    timing_from = max(judged or simulated or metrics, key=lambda m: m.span)
    differ = sorted({m.name for m in judged if (m.interval, m.count, m.initial_delay)
                     != (timing_from.interval, timing_from.count, timing_from.initial_delay)})
    if differ:
        r.warn(path, f"metrics {', '.join(differ)} have their own interval/count; the rehearsal measures "
               f"every metric on {timing_from.name}'s schedule")
    interval = timing_from.interval or timing_from.window or 60.0
    count = timing_from.count if timing_from.interval is not None else (timing_from.count or 1)
    checks = tuple(m.check for m in simulated if m.check is not None)
    pool = simulated or metrics
    return AnalysisSpec(
        name=name, interval=interval, count=count, initial_delay=timing_from.initial_delay,
        failure_limit=min((m.failure_limit for m in pool if m.failure_limit >= 0), default=-1),
        inconclusive_limit=min(m.inconclusive_limit for m in pool),
        consecutive_error_limit=min(m.consecutive_error_limit for m in pool),
        dry_run=bool(metrics) and not simulated, checks=checks, not_simulated=tuple(notes),
    )


def _template_metrics(r: Reader, dry: list[str], notes: list[str]) -> list[_Metric]:
    doc = r.doc
    spec = r.mapping(doc.data.get("spec"), "spec")
    r.unused(spec, "spec", ("metrics", "dryRun"), quiet=("args", "measurementRetention"))
    dry = dry + _dry_run_patterns(r, spec.get("dryRun"), "spec.dryRun")
    raw = r.items(spec.get("metrics"), "spec.metrics")
    if not raw:
        r.fail("spec.metrics", f"{doc.kind} {doc.name!r} has no metrics")
    out = []
    for i, item in enumerate(raw):
        path = f"spec.metrics[{i}]"
        m = r.mapping(item, path)
        name = r.string(m, "name", path)
        if not name:
            r.fail(f"{path}.name", "missing; every metric needs a name")
        interval = r.duration(m["interval"], f"{path}.interval") if m.get("interval") is not None else None
        initial = r.duration(m["initialDelay"], f"{path}.initialDelay") if m.get("initialDelay") is not None else 0.0
        count = r.integer(m, "count", path, None, lo=0)
        if count == 0:
            count = None  # Argo: 0 is unset
        if interval is None and count is not None and count > 1:
            r.fail(f"{path}.interval", f"missing; count {count} needs an interval between measurements")
        failure_limit = r.integer(m, "failureLimit", path, 0, lo=-1)
        inconclusive_limit = r.integer(m, "inconclusiveLimit", path, 0, lo=0)
        error_limit = r.integer(m, "consecutiveErrorLimit", path, 4, lo=0)
        success = r.string(m, "successCondition", path)
        failure = r.string(m, "failureCondition", path)
        provider = r.mapping(m.get("provider"), f"{path}.provider")
        kinds = [k for k in provider]
        if len(kinds) != 1:
            r.fail(f"{path}.provider", f"got {kinds or 'nothing'}; needs exactly one of {', '.join(PROVIDERS)}")
        if kinds[0] not in PROVIDERS:
            r.fail(f"{path}.provider", f"unknown provider {kinds[0]!r}; allowed: {', '.join(PROVIDERS)}")
        r.unused(m, path, ("name", "interval", "initialDelay", "count", "failureLimit", "inconclusiveLimit",
                           "consecutiveErrorLimit", "successCondition", "failureCondition", "provider"))
        check, window, why = _argo_metric_check(r, kinds[0], provider[kinds[0]], f"{path}.provider.{kinds[0]}",
                                                name, success, failure)
        label = f"{doc.kind} {doc.name}: metric {name}"
        if why:
            notes.append(f"{label}: {why}")
            r.warn(path, f"metric {name!r} is not simulated: {why}")
        is_dry = _matches(dry, name)
        if is_dry and check is not None:
            r.warn(path, f"metric {name!r} is a dry run: measured, never failing the rollout")
        out.append(_Metric(name, path, interval, count, initial, failure_limit, inconclusive_limit,
                           error_limit, None if is_dry else check, window, is_dry))
    return out


def _argo_metric_check(r: Reader, provider: str, body: Any, path: str, name: str,
                       success: str | None, failure: str | None) -> tuple[Check | None, float | None, str]:
    """(check, query window, reason not simulated)."""
    body = r.mapping(body, path)
    if provider == "prometheus":
        query = r.string(body, "query", path)
        if not query:
            r.fail(f"{path}.query", "missing; a prometheus metric needs a query")
        measures = classify_query(query)
        window = query_window(query)
    elif provider == "web":
        text = " ".join(str(body.get(k, "")) for k in ("url", "jsonPath")) + " " + name
        measures = classify_query(text, web=True)
        window = None
    else:
        return None, None, f"the {provider} provider is not simulated"
    if measures is None:
        return None, window, "its query measures nothing the simulator models (error rate, latency, request rate)"
    if not success and not failure:
        return None, window, "no successCondition or failureCondition: every measurement passes"
    bounds = condition_bounds(success, failure=False) if success else None
    if success and bounds is None:
        return None, window, f"successCondition {success!r} is not a bound on result"
    if failure:
        fb = condition_bounds(failure, failure=True)
        if fb is None:
            return None, window, f"failureCondition {failure!r} is not a bound on result"
        if bounds is None:
            bounds = fb
        elif fb != bounds:
            r.warn(path, f"metric {name!r}: results between successCondition and failureCondition are "
                   "Inconclusive in Argo; the rehearsal judges them by successCondition")
    lo, hi = bounds  # type: ignore[misc]
    if measures.metric in ("error_rate", "success_rate") and measures.scale == 1.0 and any(
            b is not None and b > 1 for b in (lo, hi)):
        measures = Measures(measures.metric, 0.01, measures.note)  # the bound is a percentage
    if measures.note:
        r.warn(path, f"metric {name!r}: {measures.note}")
    return bounds_to_check(measures, lo, hi), window, ""
