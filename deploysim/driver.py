"""The one drive loop both worlds run: observe, reconcile, act, save the status, wait.

A world supplies only its clock (:meth:`World.now`), :meth:`World.observe`,
:meth:`World.apply` and :meth:`World.wait_until`. Approval gates, the hand-off of
measurements to the controller, a person's promote and abort, saving the status, the run's
time limit and the decision log live here, once. (Waiting for a router to report the weight
asked for is the controller's: a SetWeight step completes only on the observed weight.)

:func:`drive` is a generator that yields whatever the world's ``wait_until`` returns: the
simulator runs it as a SimPy process (its wait is an event), the cluster runner with
:func:`run_blocking` (its wait blocks and returns ``None``).

>>> from deploysim.plan import Pause, Plan
>>> class Clock:
...     t = 0.0
...     def now(self): return self.t
...     def observe(self): return Observation(now=self.t)
...     def apply(self, action): pass
...     def wait_until(self, t): self.t = t if t is not None else self.t + 1
...     def mark(self, decisions): pass
>>> run = Drive(Plan(strategy="canary", replicas=1, steps=(Pause(30.0),)), limit=100)
>>> run_blocking(drive(Clock(), run, provider=None))
>>> [d.kind for d in run.decisions], run.status["completed_at"]
(['start', 'step', 'promote'], 30.0)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from deploysim.analysis.measurement import Measurement
from deploysim.controller import (
    PAUSED,
    TERMINAL_PHASES,
    Action,
    Decision,
    Observation,
    initial_status,
    reconcile,
)
from deploysim.plan import AnalysisSpec, Plan
from deploysim.providers import MetricProvider


class World(Protocol):
    """What a world gives the loop: its clock, what it looks like, and its hands."""

    def now(self) -> float: ...

    def observe(self) -> Observation: ...

    def apply(self, action: Action) -> None: ...

    def wait_until(self, t: float | None) -> Any:
        """Something the loop yields: returns when the world changed or ``t`` came (``None``:
        only a change); a world may return earlier than both."""

    def mark(self, decisions: list[Decision]) -> None:
        """Decisions were taken now (the simulator starts a timeline bin here)."""


@dataclass(frozen=True)
class Requests:
    """What a person asked for since the last pass."""

    promote: bool = False
    abort: bool = False


class StatusStore(Protocol):
    """Where the status lives between passes (a ConfigMap on a cluster), and how a person
    asks for a promotion or an abort."""

    def requests(self, phase: str) -> Requests: ...

    def save(self, status: dict[str, Any]) -> None: ...


@dataclass
class Drive:
    """One run of a plan: its settings in, its status and decision log out."""

    plan: Plan
    status: dict[str, Any] = field(default_factory=initial_status)
    approve_after: float | None = None  # seconds a manual gate waits before it approves itself
    # seconds a pause on an inconclusive analysis waits before the rule passes it; None (the
    # default) leaves it to a person. The resume decision says the rule passed it.
    approve_inconclusive_after: float | None = None
    limit: float | None = None  # the world's clock at which the loop stops, done or not
    on_decision: Callable[[Decision], None] | None = None
    decisions: list[Decision] = field(default_factory=list)
    passes: int = 0
    seconds_acting: float = 0.0  # observe, reconcile, apply, save: the loop's own time
    seconds_measuring: float = 0.0
    timed_out: bool = False

    @property
    def done(self) -> bool:
        return self.status["phase"] in TERMINAL_PHASES


def _gate_waits(run: Drive) -> bool:
    """Paused at a manual gate, which ``approve_after`` may open; an inconclusive analysis
    waits for a person, never for the clock."""
    return run.status["phase"] == PAUSED and run.status.get("paused_reason") == "manual gate"


def _inconclusive_waits(run: Drive) -> bool:
    return run.status["phase"] == PAUSED and "inconclusive" in (run.status.get("paused_reason") or "")


def _rule_for(run: Drive) -> float | None:
    """Seconds after which the paused rollout approves itself, None for never."""
    if _gate_waits(run):
        return run.approve_after
    if _inconclusive_waits(run):
        return run.approve_inconclusive_after
    return None


def _approved(run: Drive, now: float, paused_since: float | None, asked: Requests) -> bool:
    if run.status["phase"] != PAUSED:
        return False
    if asked.promote:
        return True
    after = _rule_for(run)
    return after is not None and paused_since is not None and now - paused_since >= after - 1e-9


def _wake(run: Drive, requeue_at: float | None, paused_since: float | None) -> float | None:
    """The next time the loop must look even if nothing changes."""
    wake = requeue_at
    after = _rule_for(run)
    if after is not None and paused_since is not None:
        gate = paused_since + after
        wake = gate if wake is None else min(wake, gate)
    if run.limit is not None:
        wake = run.limit if wake is None else min(wake, run.limit)
    return wake


def drive(
    world: World,
    run: Drive,
    provider: MetricProvider | None,
    store: StatusStore | None = None,
) -> Generator[Any, Any, None]:
    """Walk ``run.plan`` in ``world`` until it is promoted or rolled back, or the clock
    reaches ``run.limit``. ``run`` is updated as the loop goes, so a caller sees the status
    and decisions even when the world raises."""
    plan = run.plan
    measurements: dict[str, Measurement] = {}
    paused_since: float | None = run.status.get("paused_at") if run.status["phase"] == PAUSED else None
    while True:
        t_pass = time.perf_counter()
        measuring = 0.0
        now = world.now()
        asked = store.requests(run.status["phase"]) if store is not None else Requests()
        approved = _approved(run, now, paused_since, asked)
        by_rule = approved and not asked.promote and _inconclusive_waits(run)
        obs = dataclasses.replace(
            world.observe(),
            measurements=measurements,
            promote_requested=approved,
            abort_requested=asked.abort,
        )
        result = reconcile(plan, run.status, obs)
        run.status = result.status
        if by_rule:
            result = dataclasses.replace(result, decisions=[
                dataclasses.replace(d, reason=f"{d.reason}; passed by approve_inconclusive, not by a person")
                if d.kind == "resume" else d for d in result.decisions])
        if run.status["phase"] == PAUSED:
            if paused_since is None:
                paused_since = now  # a gate's clock starts when the rollout pauses
                run.status = {**run.status, "paused_at": now}
        else:
            paused_since = None
        for d in result.decisions:
            run.decisions.append(d)
            if run.on_decision is not None:
                run.on_decision(d)
        if result.decisions:
            world.mark(result.decisions)
        measurements = {}
        for action in result.actions:
            if action.kind == "measure":
                a = action.args
                t_measure = time.perf_counter()
                measurements[a["analysis"]] = _measure(provider, a["start"], a["end"], plan.analysis(a["analysis"]))
                measuring += time.perf_counter() - t_measure
            else:
                world.apply(action)
        if store is not None:
            store.save(run.status)
        run.passes += 1
        run.seconds_measuring += measuring
        run.seconds_acting += time.perf_counter() - t_pass - measuring
        if run.done:
            return
        if run.limit is not None and now >= run.limit:
            run.timed_out = True
            return
        if measurements or result.actions:
            continue  # act on what was just measured or changed, at the same instant
        yield world.wait_until(_wake(run, result.requeue_at, paused_since))


def _measure(provider: MetricProvider | None, start: float, end: float,
             spec: AnalysisSpec | None) -> Measurement:
    if provider is None:
        return Measurement(start, end, error="no metrics source configured")
    return provider.measure(start, end, spec)


def run_blocking(loop: Iterator[Any]) -> None:
    """Run a drive loop whose world waits by blocking (a real cluster)."""
    for _ in loop:
        pass
