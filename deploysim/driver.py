"""The one drive loop both worlds run: observe, reconcile, act, save the status, wait.

A world supplies only its clock (:meth:`World.now`), :meth:`World.observe`,
:meth:`World.apply` and :meth:`World.wait_until`. Approval gates, the hand-off of
measurements to the controller, a person's promote and abort, saving the status, the run's
time limit and the decision log live here, once. (Waiting for a router to report the weight
asked for is the controller's: a SetWeight step completes only on the observed weight.)

:func:`drive` is a generator that yields whatever the world's ``wait_until`` returns: the
simulator runs it as a SimPy process (its wait is an event), the cluster runner with
:func:`run_blocking` (its wait blocks and returns ``None``).

A world that can be out of reach (a cluster whose API stopped answering) names the errors
that mean so (``Drive.transient``). A pass cut short by one commits nothing: its status,
decisions and a person's marks are kept back, the loop looks again every
:data:`OUTAGE_RETRY_SECONDS`, and the first pass that gets through observes afresh before it
acts, so nothing is done on what was seen before the outage. Past ``Drive.outage_limit``
seconds out of reach the run rolls back as soon as the world answers again. Each outage is
in the decision log (``outage``, ``recovered``) and in ``Drive.outages``.

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

#: How often the loop looks again while its world is out of reach.
OUTAGE_RETRY_SECONDS = 2.0


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
    # errors that mean the world is out of reach for now (wait, look again), not a failure
    transient: Callable[[BaseException], bool] | None = None
    outage_limit: float | None = None  # seconds out of reach after which the run rolls back
    reach: str = "the world"  # what was out of reach, as the decisions name it
    outages: list[dict[str, Any]] = field(default_factory=list)  # start, end, seconds, step, reason
    attempted: dict[str, Any] | None = None  # the status of a pass the world failed, not committed

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
    held = Requests()  # a person's marks taken in a pass that did not get through
    while True:
        t_pass = time.perf_counter()
        measuring = 0.0
        now = world.now()
        try:
            asked = store.requests(run.status["phase"]) if store is not None else Requests()
            asked = held = Requests(promote=asked.promote or held.promote, abort=asked.abort or held.abort)
            approved = _approved(run, now, paused_since, asked)
            by_rule = approved and not asked.promote and _inconclusive_waits(run)
            obs = dataclasses.replace(
                world.observe(),
                measurements=measurements,
                promote_requested=approved,
                abort_requested=asked.abort or _outage_abort(run),
            )
            if _outage_abort(run) and not asked.abort:
                o = run.outages[-1]
                obs = dataclasses.replace(obs, abort_reason=(
                    f"{run.reach} did not answer for {now - o['start']:.0f}s from t={o['start']:.0f}s (outage limit "
                    f"{run.outage_limit:g}s): rolled back rather than going on from what was seen before"))
            result = reconcile(plan, run.status, obs)
            run.attempted = result.status
            decisions = _explained(result.decisions, by_rule)
            if decisions:
                world.mark(decisions)
            measured: dict[str, Measurement] = {}
            for action in result.actions:
                if action.kind == "measure":
                    a = action.args
                    t_measure = time.perf_counter()
                    measured[a["analysis"]] = _measure(provider, a["start"], a["end"], plan.analysis(a["analysis"]))
                    measuring += time.perf_counter() - t_measure
                else:
                    world.apply(action)
        except Exception as exc:
            if run.transient is None or not run.transient(exc):
                raise
            _out_of_reach(run, now, exc, "pass")
            if run.limit is not None and now >= run.limit:
                run.timed_out = True
                return
            yield world.wait_until(now + OUTAGE_RETRY_SECONDS)
            continue
        # the pass got through: it is what happened
        held, run.attempted = Requests(), None
        _back_in_reach(run, now, "pass")
        run.status = result.status
        if run.status["phase"] == PAUSED:
            if paused_since is None:
                paused_since = now  # a gate's clock starts when the rollout pauses
                run.status = {**run.status, "paused_at": now}
        else:
            paused_since = None
        for d in decisions:
            _log(run, d)
        measurements = measured
        if store is not None:
            try:
                store.save(run.status)
            except Exception as exc:  # done, but not written down: the next pass saves it
                if run.transient is None or not run.transient(exc):
                    raise
                _out_of_reach(run, now, exc, "save")
            else:
                _back_in_reach(run, now, "save")
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


def _log(run: Drive, d: Decision) -> None:
    run.decisions.append(d)
    if run.on_decision is not None:
        run.on_decision(d)


def _explained(decisions: list[Decision], by_rule: bool) -> list[Decision]:
    """The pass's decisions, saying so where a rule, not a person, resumed the rollout."""
    return [dataclasses.replace(d, reason=f"{d.reason}; passed by approve_inconclusive, not by a person")
            if d.kind == "resume" and by_rule else d for d in decisions]


def _outage_abort(run: Drive) -> bool:
    """The last outage outlasted ``outage_limit``: the run rolls back (once it can act)."""
    return bool(run.outages) and run.outages[-1].get("over_limit", False)


def _out_of_reach(run: Drive, now: float, exc: BaseException, where: str) -> None:
    """Note a pass (or the status's save) the world did not answer: the outage's start, and
    its passing the limit."""
    o = run.outages[-1] if run.outages and run.outages[-1]["end"] is None else None
    step = run.status.get("step")
    if o is None:
        o = {"start": now, "end": None, "seconds": 0.0, "step": step, "reason": _short(exc), "over_limit": False,
             "in": where}
        run.outages.append(o)
        limit = f"rolling back if it lasts {run.outage_limit:g}s" if run.outage_limit is not None else "waiting"
        _log(run, Decision(now, step, "outage", f"{run.reach} is out of reach ({o['reason']}): acting on "
                                                 f"nothing until it answers; {limit}"))
    o["seconds"] = now - o["start"]
    if run.outage_limit is not None and not o["over_limit"] and o["seconds"] >= run.outage_limit - 1e-9:
        o["over_limit"] = True
        if run.status["phase"] not in TERMINAL_PHASES:
            _log(run, Decision(now, step, "outage", f"{run.reach} still out of reach after {o['seconds']:.0f}s (limit "
                                                     f"{run.outage_limit:g}s): rolling back once it answers"))


def _back_in_reach(run: Drive, now: float, where: str) -> None:
    """Close the open outage once what it cut short (a pass, or only the save) got through."""
    o = run.outages[-1] if run.outages and run.outages[-1]["end"] is None else None
    if o is None or (o["in"] == "save" and where != "save"):
        return
    o["end"], o["seconds"] = now, now - o["start"]
    _log(run, Decision(now, run.status.get("step"), "recovered",
                       f"{run.reach} answering again after {o['seconds']:.0f}s; observed afresh before acting"))


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _measure(provider: MetricProvider | None, start: float, end: float,
             spec: AnalysisSpec | None) -> Measurement:
    if provider is None:
        return Measurement(start, end, error="no metrics source configured")
    return provider.measure(start, end, spec)


def run_blocking(loop: Iterator[Any]) -> None:
    """Run a drive loop whose world waits by blocking (a real cluster)."""
    for _ in loop:
        pass
