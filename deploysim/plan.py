"""The step vocabulary every strategy compiles to, and both worlds execute.

A :class:`Plan` is plain, frozen data: strategies build it (``deploysim.strategies``), the
controller walks it (``deploysim.controller``), the simulated and the real world carry out
the actions it leads to. Nothing here knows about SimPy or Kubernetes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from deploysim.analysis.metrics import Arg, MetricDef
from deploysim.rules.checks import describe_bounds
from deploysim.rules.deployment import (
    DEFAULT_MAX_SURGE,
    DEFAULT_MAX_UNAVAILABLE,
    DEFAULT_MIN_READY_SECONDS,
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
)
from deploysim.scenario import format_duration

MetricName = Literal["error_rate", "latency_p50", "latency_p95", "latency_p99", "request_rate"]


@dataclass(frozen=True)
class Check:
    """A metric on the candidate must stay within [min, max] (None = unbounded).

    ``stands_for`` names the team metric (:class:`~deploysim.analysis.metrics.MetricDef`) this
    check stands in for in rehearsal; on a cluster that metric is measured and judged itself.
    """

    metric: str
    max: float | None = None
    min: float | None = None
    stands_for: str | None = None

    def describe(self) -> str:
        return f"{self.metric} {describe_bounds(self.min, self.max)}"


@dataclass(frozen=True)
class AnalysisSpec:
    """How one analysis runs: Argo Rollouts' AnalysisTemplate semantics.

    ``count`` measurements: the first as the run starts (after ``initial_delay``), then one
    every ``interval`` seconds; without an interval the metric is measured once, and an
    errored measurement is taken again ``error_retry`` seconds later (Argo's
    ``DefaultErrorRetryInterval``). Each measurement looks back ``window`` seconds (the
    query's range; the interval when unset). With ``measure_at_start`` False (Flagger) the
    first comes one interval after the start. The run fails when failed measurements exceed
    ``failure_limit`` (-1 never fails), errors when consecutive provider errors exceed
    ``consecutive_error_limit``, and is inconclusive when inconclusive measurements exceed
    ``inconclusive_limit``. A failed run aborts the rollout ``abort_delay`` seconds after its
    failing measurement (Flagger acts at its next tick).
    """

    name: str = "analysis"
    interval: float | None = 60.0
    count: int | None = 5
    initial_delay: float = 0.0
    window: float | None = None
    measure_at_start: bool = True
    error_retry: float = 10.0
    abort_delay: float = 0.0
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    min_requests: int = 0
    judge: str = "threshold"
    dry_run: bool = False
    checks: tuple[Check, ...] = ()
    not_simulated: tuple[str, ...] = ()
    # Flagger's rule: ``count`` counts passing measurements; a failed (or inconclusive, or
    # errored) one holds the step and is measured again, and counts as a failed check
    count_successes: bool = False
    # runs naming the same budget share their failed count over the whole rollout
    # (Flagger's status.failedChecks), so ``failure_limit`` bounds the rollout, not one run
    failure_budget: str | None = None
    # the team's own metrics (Argo AnalysisTemplate, Flagger MetricTemplate, a query in the
    # scenario): measured and judged as written on a cluster; ``checks`` holds what stands in
    # for them in rehearsal. ``args``: the Argo arguments their queries name, unresolved
    metrics: tuple[MetricDef, ...] = ()
    args: tuple[Arg, ...] = ()
    # metrics of sources deploysim does not run on a cluster (datadog, job, ...), "name (kind)"
    foreign_metrics: tuple[str, ...] = ()
    # the verdicts chosen for metrics nothing simulates (``--assume NAME=pass|fail``)
    assumed: tuple[tuple[str, str], ...] = ()

    @property
    def unsimulated(self) -> tuple[str, ...]:
        """Names of the metrics nothing stands in for in rehearsal: a team metric whose query
        the simulator cannot read, and every metric of a source it does not run.

        >>> AnalysisSpec(foreign_metrics=("conversion (datadog)",)).unsimulated
        ('conversion',)
        """
        names = [m.name for m in self.metrics if not m.dry_run and (m.stand_in or "").startswith("nothing")]
        names += [f.rsplit(" (", 1)[0] for f in self.foreign_metrics]
        return tuple(dict.fromkeys(names))

    @property
    def own_checks(self) -> tuple[Check, ...]:
        """The checks that are no stand-in: judged on the standard window in both worlds."""
        return tuple(c for c in self.checks if c.stands_for is None)

    @property
    def lookback(self) -> float:
        """Seconds each measurement covers: the query's range, else the interval, else a minute
        (a query without a range measured once)."""
        return self.window or self.interval or 60.0

    def describe(self) -> str:
        count = "indefinitely" if self.count is None else f"{self.count}x"
        if self.count_successes and self.count is not None:
            count = f"until {self.count} pass"
        checks = ", ".join(c.describe() for c in self.checks) or "no checks"
        dry = " (dry run)" if self.dry_run else ""
        limit = f"failure limit {self.failure_limit}"
        if self.failure_budget is not None:
            limit = f"rollback at {self.failure_limit + 1} failed checks over the rollout"
        every = f" every {format_duration(self.interval)}" if self.interval else ", once"
        assumed = dict(self.assumed)
        unsimulated = ", ".join(f"{n} assumed to {assumed[n]}" if n in assumed else n for n in self.unsimulated)
        beside = f" (not simulated: {unsimulated})" if unsimulated else ""
        return f"{self.judge} analysis '{self.name}' {count}{every} on {checks}{beside}, {limit}{dry}"

    @property
    def expected_seconds(self) -> float | None:
        """From the run's start to its last measurement when every one passes: the first is
        taken at the start (after the initial delay), or one interval in (Flagger).

        >>> AnalysisSpec(interval=60, count=3).expected_seconds, AnalysisSpec(interval=None, count=1).expected_seconds
        (120.0, 0.0)
        >>> AnalysisSpec(interval=60, count=1, measure_at_start=False).expected_seconds
        60.0
        """
        if self.count is None:
            return None
        spacing = self.interval or 0.0
        gaps = self.count - (1 if self.measure_at_start else 0)
        return float(self.initial_delay + spacing * max(gaps, 0))


# --- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetWeight:
    """Route ``weight`` % of requests to the candidate (and scale it to match)."""

    weight: int
    kind: str = field(default="set_weight", init=False)

    def describe(self) -> str:
        return f"set weight to {self.weight}%"


@dataclass(frozen=True)
class SetCanaryScale:
    """Scale the candidate to ``percent`` % of replicas without changing the weight.

    With a router the scale holds for later weights (Argo Rollouts), until a
    ``SetCanaryScale(None)``: match the traffic weight again.
    """

    percent: int | None
    kind: str = field(default="set_canary_scale", init=False)

    def describe(self) -> str:
        if self.percent is None:
            return "scale candidate to match the traffic weight"
        return f"scale candidate to {self.percent}% of replicas"


@dataclass(frozen=True)
class Pause:
    """Hold for ``seconds``; ``None`` is a manual gate that waits for approval.

    With ``tick``, the hold keeps a controller's timer, a tick every ``tick`` seconds from the
    rollout's start (Flagger's ``advanceCanary`` runs only at its ticks): it ends at the first
    tick at or after the step's start that is also ``seconds`` past the last tick at or before
    the step's start. ``Pause(60, tick=60)`` started 20 s after a tick ends at the next tick,
    40 s later; ``Pause(0, tick=60)`` waits only for a tick (a gate approved between ticks is
    acted on at the next one).
    """

    seconds: float | None
    tick: float | None = None
    kind: str = field(default="pause", init=False)

    def describe(self) -> str:
        if self.seconds is None:
            return "pause until approved (manual gate)"
        if self.tick is not None:
            every = format_duration(self.tick)
            if self.seconds == 0:
                return f"wait for a tick (one every {every})"
            if self.seconds == self.tick:
                return f"pause until the next tick (one every {every})"
            return f"pause {format_duration(self.seconds)} from the last tick (one every {every})"
        return f"pause {format_duration(self.seconds)}"

    def ends_at(self, start: float, clock: float) -> float:
        """When a timed hold begun at ``start`` ends, ticks counted from ``clock``.

        >>> Pause(60.0, tick=60.0).ends_at(20.0, 0.0), Pause(60.0, tick=60.0).ends_at(0.0, 0.0)
        (60.0, 60.0)
        >>> Pause(0.0, tick=60.0).ends_at(130.0, 10.0), Pause(0.0, tick=60.0).ends_at(131.0, 10.0)  # a gate
        (130.0, 190.0)
        >>> Pause(60.0, tick=60.0).ends_at(75.0, 0.0), Pause(30.0).ends_at(75.0, 0.0)
        (120.0, 105.0)
        """
        assert self.seconds is not None
        if self.tick is None:
            return start + self.seconds
        last = clock + math.floor((start - clock) / self.tick + 1e-9) * self.tick
        first = clock + math.ceil((start - clock) / self.tick - 1e-9) * self.tick
        return max(first, clock + math.ceil((last + self.seconds - clock) / self.tick - 1e-9) * self.tick)


@dataclass(frozen=True)
class Analyze:
    """Run an analysis to its end before going on; failure aborts the rollout."""

    analysis: AnalysisSpec
    kind: str = field(default="analyze", init=False)

    def describe(self) -> str:
        return self.analysis.describe()


@dataclass(frozen=True)
class RollingUpdate:
    """Change the Deployment's template; the Deployment controller replaces pods in turn."""

    kind: str = field(default="rolling_update", init=False)

    def describe(self) -> str:
        return "rolling update to the candidate"


@dataclass(frozen=True)
class Recreate:
    """Stop every stable pod, then start the candidate's."""

    kind: str = field(default="recreate", init=False)

    def describe(self) -> str:
        return "scale stable to 0, then start the candidate"


@dataclass(frozen=True)
class ScaleCandidate:
    """Blue-green: bring the idle colour (the candidate) to ``replicas`` pods."""

    replicas: int
    kind: str = field(default="scale_candidate", init=False)

    def describe(self) -> str:
        return f"scale the candidate (preview colour) to {self.replicas} pods"


@dataclass(frozen=True)
class SwitchTraffic:
    """Blue-green: switch all traffic to the candidate at once."""

    kind: str = field(default="switch_traffic", init=False)

    def describe(self) -> str:
        return "switch the active service to the candidate"


@dataclass(frozen=True)
class ScaleDownStable:
    """Scale the stable version to 0 after ``delay`` seconds (blue-green's scale-down delay)."""

    delay: float = 0.0
    kind: str = field(default="scale_down_stable", init=False)

    def describe(self) -> str:
        if self.delay:
            return f"keep the old colour {format_duration(self.delay)}, then scale it down"
        return "scale the stable version down"


@dataclass(frozen=True)
class PromotePrimary:
    """Flagger's promotion: the primary (the stable version's Deployment) takes the canary's
    template and rolls within its maxSurge/maxUnavailable while the canary keeps its weight;
    the step ends at the first tick (one every ``tick`` seconds from its start) at which the
    primary is ready (``IsPrimaryReady``). In versions: the candidate gains the primary's new
    pods beside the canary's, the stable version loses the primary's old ones, and the
    candidate's share of the primary's traffic is its share of the primary's ready pods."""

    tick: float
    kind: str = field(default="promote_primary", init=False)

    def describe(self) -> str:
        return f"promote: the primary rolls to the candidate's template, checked every {format_duration(self.tick)}"


Step = (
    SetWeight
    | SetCanaryScale
    | Pause
    | Analyze
    | RollingUpdate
    | Recreate
    | ScaleCandidate
    | SwitchTraffic
    | ScaleDownStable
    | PromotePrimary
)

RoutingMode = Literal["replica_ratio", "router", "active"]


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps, and what holds through all of them.

    ``routing``: how the world splits traffic between versions: by ready replicas
    (``replica_ratio``, no traffic router), by exact weights (``router``) or all to one
    colour (``active``, blue-green). ``background`` analysis runs from step
    ``background_start``; the rollout completes only once it has its ``count`` of measurements
    (at least one when it runs indefinitely), as Argo's background AnalysisRun goes on after
    the last step.
    """

    strategy: str
    replicas: int
    steps: tuple[Step, ...]
    routing: RoutingMode = "replica_ratio"
    max_surge: int | str = DEFAULT_MAX_SURGE
    max_unavailable: int | str = DEFAULT_MAX_UNAVAILABLE
    min_ready_seconds: float = DEFAULT_MIN_READY_SECONDS
    progress_deadline_seconds: float = DEFAULT_PROGRESS_DEADLINE_SECONDS
    progress_deadline_abort: bool = True
    background: AnalysisSpec | None = None
    background_start: int = 0
    scale_down_delay: float = 0.0
    # a canary with a router keeps the old stable ``scale_down_delay`` seconds after promotion
    # and the aborted candidate ``abort_scale_down_delay`` seconds after an abort (Argo's
    # scaleDownDelaySeconds / abortScaleDownDelaySeconds)
    abort_scale_down_delay: float = 0.0
    warnings: tuple[str, ...] = ()
    # on a cluster, the router that sets exact weights (``routing: router``) and the object it
    # routes through, as a manifest names them; None: the Gateway API HTTPRoute named after
    # the service (or the runbook's ``route``)
    router: str | None = None
    route: str | None = None

    def describe(self) -> list[str]:
        """The plan in plain words, one line per step."""
        lines = [
            f"{self.strategy} rollout of {self.replicas} replicas, routing by {self.routing.replace('_', ' ')}"
        ]
        if self.strategy in ("rolling", "canary"):
            lines.append(
                f"  surge {self.max_surge}, unavailable {self.max_unavailable}, "
                f"min ready {format_duration(self.min_ready_seconds)}, "
                f"progress deadline {format_duration(self.progress_deadline_seconds)}"
            )
        for i, step in enumerate(self.steps):
            lines.append(f"  {i + 1}. {step.describe()}")
        if self.background is not None:
            lines.append(
                f"  in the background from step {self.background_start + 1}: {self.background.describe()}"
            )
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        return lines

    def analyses(self) -> list[AnalysisSpec]:
        """Every analysis of the plan: the steps' in order, then the background one."""
        specs = [s.analysis for s in self.steps if isinstance(s, Analyze)]
        return specs + ([self.background] if self.background is not None else [])

    def analysis(self, name: str) -> AnalysisSpec | None:
        """The analysis of that name: a step's or the background one."""
        return next((spec for spec in self.analyses() if spec.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
