"""Validated rehearsal inputs: the scenario file, ``--set a.b=c`` overrides and durations.

A scenario says what the world looks like (traffic, pods, the two versions, faults) and how
the rollout is to be done (strategy, analysis). Everything is checked on load; a bad value
raises :class:`~deploysim.errors.ScenarioError` naming the key, the value and what is allowed.

>>> parse_duration("1h30m")
5400.0
>>> s = load_scenario(overrides=["replicas=4", "strategy.kind=rolling"])
>>> (s.replicas, s.strategy.kind)
(4, 'rolling')
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from deploysim import limits
from deploysim.durations import format_duration as format_duration
from deploysim.durations import parse_duration
from deploysim.errors import ScenarioError
from deploysim.overrides import apply_overrides as apply_overrides
from deploysim.overrides import read_yaml as read_yaml
from deploysim.probes import Probe as Probe
from deploysim.probes import Probes
from deploysim.resources import Quantity, Resources, refuse_undefined_checks
from deploysim.rules.deployment import (
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
    deadline_outlasts_min_ready,
)
from deploysim.rules.shutdown import DEFAULT_TERMINATION_GRACE_PERIOD

Duration = Annotated[float, BeforeValidator(parse_duration)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def _whole(value: Any) -> Any:
    """A count is a number, not a yes/no: ``replicas: true`` is refused, not read as 1."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true/false")
    return value


Whole = Annotated[int, BeforeValidator(_whole)]


def _int_or_percent(value: Any) -> int | str:
    """maxSurge / maxUnavailable: a whole number of pods or a percentage string like ``25%``."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number of pods or a percentage like 25%")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be 0 or more")
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+", text):
            return int(text)
        if re.fullmatch(r"\d+%", text):
            if int(text[:-1]) > 100:
                raise ValueError("a percentage must be between 0% and 100%")
            return text
    raise ValueError("must be a whole number of pods or a percentage like 25%")


IntOrPercent = Annotated[int | str, BeforeValidator(_int_or_percent)]


class _Model(BaseModel):
    # NaN and infinities are refused everywhere: a NaN bound or rate would pass every check
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)


# --- the world -------------------------------------------------------------------------------


class Traffic(_Model):
    rps: float = Field(200.0, gt=0, description="mean requests per second")
    shape: Literal["constant", "diurnal", "step", "trace"] = "constant"
    peak_factor: float = Field(2.0, ge=1.0, description="diurnal: peak rps / mean rps")
    period: Duration = Field(86400.0, gt=0, description="diurnal: length of one cycle")
    peak_at: Duration = Field(3600.0, description="diurnal: time of the peak after start")
    step_at: Duration = Field(1800.0, description="step: when the rate changes")
    step_factor: float = Field(2.0, gt=0, description="step: rate after step_at / rps")
    trace: str | None = Field(None, description="trace: CSV file of timestamp,rps")

    @model_validator(mode="after")
    def _trace_needs_file(self) -> Traffic:
        if self.shape == "trace" and not self.trace:
            raise ValueError("traffic.shape 'trace' needs traffic.trace, a CSV of timestamp,rps")
        return self


class Pod(_Model):
    startup: Duration = Field(10.0, description="time from scheduled until the application serves")
    startup_jitter: Duration = Field(2.0, description="uniform jitter added to startup")
    termination: Duration = Field(5.0, description="time from SIGTERM until the application exits")
    capacity_rps: float = Field(50.0, gt=0, description="requests per second one pod serves")
    latency_ms: float = Field(40.0, gt=0, description="median latency at low load")
    probes: Probes | None = Field(
        None, description="the pods' probes; unset: ready exactly when the application serves, no liveness")
    pre_stop: Duration = Field(0.0, ge=0, description="preStop sleep before SIGTERM")
    drain: Duration | None = Field(None, ge=0, description="how long after SIGTERM the application still answers; "
                                   "pod.termination if unset")
    termination_grace_period: Duration = Field(DEFAULT_TERMINATION_GRACE_PERIOD, ge=0,
                                               description="terminationGracePeriodSeconds")
    endpoint_lag: Duration = Field(0.0, ge=0, description="how long a deleted pod is still routed to (0: dropped at once)")
    resources: Resources = Field(default_factory=Resources, description="the container's requests and limits")


class Version(_Model):
    image: str = "app:v1"
    error_rate: Fraction = 0.001
    latency_ms: float | None = Field(None, gt=0, description="median latency; pod.latency_ms if unset")
    latency_sigma: float = Field(0.5, gt=0, description="log-normal spread of latency")
    crash_rate_per_hour: float = Field(0.0, ge=0)
    never_ready: bool = False
    fail_after: Duration | None = Field(
        None, gt=0, description="a ready pod fails this long after it became ready and is replaced: a crash loop")
    hang_rate_per_hour: float = Field(0.0, ge=0, description="a serving pod stops answering (hangs) at this rate")
    probes: Probes | None = Field(None, description="this version's probes; pod.probes if unset")
    cpu_per_request: float = Field(0.0, ge=0, le=1e6, description="CPU time one request costs, cores·s (0.002: 2 ms of a core)")
    cpu_base: Quantity = Field(0.0, ge=0, description="cores a ready pod uses idle (0.05 or 50m)")
    memory_base: Quantity = Field(0.0, ge=0, description="a ready pod's working set idle, bytes (or 128Mi)")
    memory_per_rps: Quantity = Field(0.0, ge=0, description="working set each request per second adds, bytes (or 1Mi)")

class Fault(_Model):
    kind: Literal["node_failure", "dependency_outage", "metrics_outage"]
    at: Duration
    duration: Duration = Field(300.0, description="outage windows: how long it lasts")
    node: Whole = Field(0, ge=0, description="node_failure: which node (0-based)")
    error_rate: Fraction = Field(1.0, description="dependency_outage: share of requests failing")


class Nodes(_Model):
    count: Whole | None = Field(None, ge=1, description="nodes; enough for two colours if unset")
    pods_per_node: Whole = Field(30, ge=1)


# --- how to roll out -------------------------------------------------------------------------

MetricName = Literal["error_rate", "latency_p50", "latency_p95", "latency_p99", "request_rate", "saturation", "cpu",
                     "memory"]


class Check(_Model):
    """One metric check on the candidate: the measurement fails when it is outside [min, max].

    A built-in check names a simulated ``metric``. A team metric has a ``name`` and its own
    source: a PromQL ``query`` (with ``address``, ``headers``) or a web ``url`` (with
    ``json_path``, ``method``, ``headers``, ``body``), judged by ``max`` / ``min`` as Flagger's
    thresholdRange or by Argo's ``success_condition`` / ``failure_condition``. A cluster run
    measures it as written; rehearsal judges the simulated metric its query measures, or
    ``metric`` when given.
    """

    metric: MetricName | None = None
    max: float | None = None
    min: float | None = None
    name: str | None = None
    query: str | None = None
    url: str | None = None
    address: str | None = None
    json_path: str | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    timeout: Duration | None = None
    success_condition: str | None = None
    failure_condition: str | None = None

    @property
    def own(self) -> bool:
        """A team metric with a source of its own (a query or a URL)."""
        return bool(self.query or self.url)

    @model_validator(mode="after")
    def _bounded(self) -> Check:
        if self.own:
            if not self.name:
                raise ValueError("a check with a query or url needs a name")
            if self.max is None and self.min is None and not (self.success_condition or self.failure_condition):
                raise ValueError(f"check {self.name} needs max or min, or success_condition / failure_condition")
            return self
        if self.metric is None:
            raise ValueError("a check needs a metric (error_rate, latency_p50, latency_p95, latency_p99, "
                             "request_rate, saturation, cpu, memory) or a query / url of its own")
        if self.max is None and self.min is None:
            raise ValueError(f"check on {self.metric} needs max or min")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"check on {self.metric}: min {self.min:g} is above max {self.max:g}; "
                             "no measurement could pass")
        return self


JudgeName = Literal["threshold", "mann_whitney", "sequential"]


class Analysis(_Model):
    interval: Duration = Field(60.0, ge=limits.MIN_INTERVAL, description="at least 1 s: no metrics source scrapes faster")
    count: Whole = Field(5, ge=1)
    initial_delay: Duration = Field(0.0, ge=0)
    failure_limit: Whole = Field(0, ge=-1)
    inconclusive_limit: Whole = Field(0, ge=0)
    consecutive_error_limit: Whole = Field(4, ge=0)
    min_requests: Whole = Field(0, ge=0, description="fewer candidate requests is inconclusive")
    judge: JudgeName = "threshold"
    dry_run: bool = False
    # metrics the rehearsal cannot simulate (datadog, job, a query it cannot read), by name:
    # judged as assumed; without a choice an analysis resting on them alone is inconclusive
    assume: dict[str, Literal["pass", "fail"]] = Field(default_factory=dict)
    checks: list[Check] = Field(
        default_factory=lambda: [
            Check(metric="error_rate", max=0.01),
            Check(metric="latency_p99", max=500.0),
        ],
        description="at least one: an analysis without checks would pass anything",
    )

    @field_validator("checks")
    @classmethod
    def _some_checks(cls, value: list[Check]) -> list[Check]:
        if not value:
            raise ValueError("needs at least one check: an analysis without checks would pass anything")
        return value


class CanaryStep(_Model):
    """One canary step: exactly one of set_weight, pause, analysis or set_canary_scale.

    ``pause: 5m`` holds for five minutes; ``pause:`` with no value (or ``null``) is a manual
    gate that waits for approval.
    """

    set_weight: Whole | None = Field(None, ge=0, le=100)
    pause: Duration | None = Field(None, description="a duration, or none for a manual gate")
    analysis: bool = False
    set_canary_scale: Whole | None = Field(None, ge=0, le=100, description="canary pods as % of replicas")

    @property
    def is_pause(self) -> bool:
        return "pause" in self.model_fields_set

    @model_validator(mode="after")
    def _one_thing(self) -> CanaryStep:
        chosen = [
            self.set_weight is not None,
            self.is_pause,
            self.analysis,
            self.set_canary_scale is not None,
        ]
        if sum(chosen) != 1:
            raise ValueError("each step is exactly one of set_weight, pause, analysis, set_canary_scale")
        return self


def _default_steps() -> list[CanaryStep]:
    steps: list[CanaryStep] = []
    for weight in (5, 25, 50):
        steps.append(CanaryStep(set_weight=weight))
        steps.append(CanaryStep(pause=300.0))
        steps.append(CanaryStep(analysis=True))
    steps.append(CanaryStep(set_weight=100))
    return steps


StrategyKind = Literal["rolling", "canary", "blue-green", "recreate"]
STRATEGY_KINDS: tuple[str, ...] = ("rolling", "canary", "blue-green", "recreate")


class Strategy(_Model):
    """The strategy and its own fields; fields of other strategies are ignored by this one."""

    kind: StrategyKind = "canary"
    # rolling (also the canary's surge rules)
    max_surge: IntOrPercent = 1
    max_unavailable: IntOrPercent = 1
    min_ready_seconds: Duration = 0.0
    progress_deadline_seconds: Duration = Field(DEFAULT_PROGRESS_DEADLINE_SECONDS, gt=0)
    background_analysis: bool = Field(True, description="rolling/recreate: analyse while rolling")
    # canary
    steps: list[CanaryStep] = Field(default_factory=_default_steps)
    traffic_router: bool = Field(True, description="canary: exact weights through a router")
    router: Literal["gateway-httproute", "nginx-ingress"] = Field(
        "gateway-httproute", description="canary on a cluster: which router sets the weights")
    # blue-green
    preview_replicas: Whole | None = Field(None, ge=0)
    auto_promotion_seconds: Duration | None = Field(0.0, description="none: wait for approval")
    # blue-green, and a canary with a router: the old version kept after promotion, the
    # aborted candidate kept after an abort (Argo's scaleDownDelaySeconds and
    # abortScaleDownDelaySeconds, 30 s by default)
    scale_down_delay_seconds: Duration = 30.0
    abort_scale_down_delay_seconds: Duration = 30.0
    preview_rps: float = Field(20.0, ge=0, description="blue-green: test traffic to the preview")
    pre_promotion_analysis: bool = True
    post_promotion_analysis: bool = True

    @model_validator(mode="after")
    def _deadline_after_min_ready(self) -> Strategy:
        if not deadline_outlasts_min_ready(self.progress_deadline_seconds, self.min_ready_seconds):
            raise ValueError("progress_deadline_seconds must be greater than min_ready_seconds")
        return self


class SLO(_Model):
    target: float = Field(0.999, gt=0, lt=1)
    window: Duration = Field(30 * 86400.0, gt=0)


class Scenario(_Model):
    service: str = Field("checkout", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    replicas: Whole = Field(10, ge=1)
    seed: Whole = Field(1, ge=0)
    duration: Duration = Field(7200.0, gt=0, description="simulated time")
    start_at: Duration = Field(60.0, ge=0, description="when the rollout starts")
    resolution: Duration = Field(10.0, gt=0, description="timeline bin length")
    controller_interval: Duration = Field(5.0, gt=0, description="how often the controller looks")
    traffic: Traffic = Field(default_factory=Traffic)
    pod: Pod = Field(default_factory=Pod)
    nodes: Nodes = Field(default_factory=Nodes)
    stable: Version = Field(default_factory=lambda: Version(image="app:v1"))
    candidate: Version = Field(default_factory=lambda: Version(image="app:v2"))
    faults: list[Fault] = Field(default_factory=list)
    strategy: Strategy = Field(default_factory=Strategy)
    analysis: Analysis = Field(default_factory=Analysis)
    slo: SLO = Field(default_factory=SLO)
    approve: str = Field("auto", description="manual gates: auto, never, or a duration")
    approve_inconclusive: str = Field(
        "never", description="a pause on an inconclusive analysis: never (a person decides), auto, or a duration")

    @field_validator("approve", "approve_inconclusive", mode="before")
    @classmethod
    def _approve(cls, value: Any) -> str:
        if value in ("auto", "never"):
            return value
        text = str(value)  # kept as written; a number is read as seconds
        try:
            parse_duration(text)
        except ValueError:
            raise ValueError("must be auto, never, or a duration like 10m") from None
        return text

    @model_validator(mode="after")
    def _bounded(self) -> Scenario:
        if self.start_at >= self.duration:
            raise ScenarioError("start_at", format_duration(self.start_at),
                                f"must be before the end of the simulated time (duration {format_duration(self.duration)})")
        limits.check({
            "replicas": self.replicas, "duration": self.duration, "resolution": self.resolution,
            "controller_interval": self.controller_interval, "traffic": {"rps": self.traffic.rps},
            "nodes": {"count": self.nodes.count, "pods_per_node": self.nodes.pods_per_node},
            "analysis": {"interval": self.analysis.interval, "checks": self.analysis.checks},
            "faults": self.faults, "strategy": {"steps": self.strategy.steps},
            "pod": {"startup": self.pod.startup},
            **{v: {"fail_after": getattr(self, v).fail_after, "crash_rate_per_hour": getattr(self, v).crash_rate_per_hour}
               for v in ("stable", "candidate")},
        })
        refuse_undefined_checks(self.analysis.checks, self.pod.resources, (self.stable, self.candidate))
        return self

    @property
    def nodes_count(self) -> int:
        """Nodes in the simulated cluster: room for two full colours unless set."""
        if self.nodes.count is not None:
            return self.nodes.count
        return max(1, -(-2 * self.replicas // self.nodes.pods_per_node) + 1)

    def approve_after(self, key: str = "approve") -> float | None:
        """Seconds after which a manual gate (``approve``), or a pause on an inconclusive
        analysis (``approve_inconclusive``), is approved; None never approves."""
        value = getattr(self, key)
        if value == "never":
            return None
        if value == "auto":
            return 0.0
        return parse_duration(value)

    def with_strategy(self, kind: str) -> Scenario:
        """A copy with another strategy kind, keeping every other field."""
        return self.model_copy(update={"strategy": self.strategy.model_copy(update={"kind": kind})})

    def with_healthy_candidate(self) -> Scenario:
        """A copy whose candidate behaves exactly like the stable version (for false rollbacks)."""
        healthy = self.stable.model_copy(update={"image": self.candidate.image})
        return self.model_copy(update={"candidate": healthy})

    def to_data(self) -> dict[str, Any]:
        """Plain data that validates back to the same scenario (JSON types only)."""
        data = self.model_dump(mode="json")
        data["strategy"]["steps"] = [st.model_dump(mode="json", exclude_unset=True) for st in self.strategy.steps]
        return data

    def with_seed(self, seed: int) -> Scenario:
        return self.model_copy(update={"seed": seed})


# --- loading ---------------------------------------------------------------------------------

def _allowed_for(error: dict[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key; see the scenario reference in README.md for the keys allowed"
    if kind == "literal_error":
        return f"allowed: {ctx.get('expected', '')}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }
        bound = next(iter(ctx.values())) if ctx else ""
        return f"must be {words[kind]} {bound}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "finite_number":
        return "must be a finite number (not nan or inf)"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} item(s)"
    if kind.endswith("_parsing") or kind.endswith("_type"):
        return f"expected {error['msg'].lower().replace('input should be ', '')}"
    return error["msg"]


_BRANCH_TAGS = {"int", "str", "float", "bool", "none", "list", "dict"}


def _is_branch_tag(part: str) -> bool:
    return part in _BRANCH_TAGS or "[" in part or part.startswith(("function-", "constrained-"))


def scenario_error(exc: ValidationError, source: str | None = None) -> ScenarioError:
    """The first validation error, as one line naming key, value and what is allowed."""
    error = exc.errors(include_url=False)[0]
    # pydantic puts union/annotated branch tags in loc; keep only field names and indexes
    loc = [str(p) for p in error["loc"] if not _is_branch_tag(str(p))]
    key = ".".join(loc) or "scenario"
    value = error.get("input")
    if error["type"] == "missing":
        value = None
    return ScenarioError(key, value, _allowed_for(error), source)


def default_scenario_path() -> Path:
    """The built-in default scenario shipped with the package."""
    return Path(__file__).parent / "data" / "default.yaml"


def load_scenario(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> Scenario:
    """Load and validate a scenario: the file (or the built-in default), then overrides."""
    source = str(path) if path else "default scenario"
    if data is None:
        data = read_yaml(path or default_scenario_path())
    data = apply_overrides(data, overrides or [])
    trace = (data.get("traffic") or {}).get("trace")
    if trace and path and not Path(trace).is_absolute():
        candidate = Path(path).parent / trace
        if candidate.exists():
            data["traffic"]["trace"] = str(candidate)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise scenario_error(exc, source) from None
    except ScenarioError as exc:
        if exc.source is not None:
            raise
        raise ScenarioError(exc.key, exc.value, exc.allowed, source) from None
