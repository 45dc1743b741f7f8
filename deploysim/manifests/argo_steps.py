"""Argo Rollouts canary ``steps``: which combinations Argo accepts, what each step entry
compiles to, and where each manifest step begins in the compiled plan.

Argo's validation (``pkg/apis/rollouts/validation/validation.go``,
``ValidateRolloutStrategyCanary`` and ``hasMultipleStepsType``) forbids only more than one of
``setWeight``, ``pause``, ``experiment`` and ``analysis`` in one step entry; ``setCanaryScale``,
``setHeaderRoute``, ``setMirrorRoute`` and ``plugin`` may join any of them. It refuses
``setCanaryScale`` without ``trafficRouting`` ("SetCanaryScale requires TrafficRouting to be
set") and a ``setWeight`` outside 0 to ``maxTrafficWeight``.

A step entry with several parts ends as Argo's ``completedCurrentCanaryStep``
(``rollout/canary.go``) decides, by the first part present in this order: ``pause`` (its
time), ``setCanaryScale`` (the canary at its scale), ``setWeight`` (the counts of the weight),
``experiment``, ``analysis``; a step of header or mirror routes alone ends at once. So with
``setCanaryScale`` an ``analysis`` or ``experiment`` never holds the step: the step ends when
the canary reaches its scale and ``reconcileStepBasedAnalysisRun`` (``rollout/analysis.go``)
cancels the AnalysisRun of a step it has left. The plan runs the parts it can, in the order
``setCanaryScale`` then the rest, and names what it leaves out.

``background analysis startingStep`` counts the Rollout's steps (``BeforeStartingStep`` in
``utils/replicaset/canary.go`` compares it with ``status.currentStepIndex``); a step entry may
compile to none, one or two plan steps, so :class:`CanarySteps` keeps where each one begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deploysim.manifests.argo_analysis import analysis_from_templates
from deploysim.manifests.documents import WEIGHT_HELP, Catalog, Reader

CANARY_STEP_TYPES = ("setWeight", "pause", "setCanaryScale", "analysis", "experiment",
                     "setHeaderRoute", "setMirrorRoute", "plugin")
# at most one of these in a step entry (hasMultipleStepsType)
EXCLUSIVE_STEP_TYPES = ("setWeight", "pause", "experiment", "analysis")
# parts the rehearsal does not model: warned, and the rest of the step runs
NOT_SIMULATED_STEP_TYPES = ("setHeaderRoute", "setMirrorRoute", "plugin")
# Argo's message for an empty step and for a step with two of EXCLUSIVE_STEP_TYPES
ARGO_INVALID_STEP = "Step must have one of the following set: experiment, setWeight, setCanaryScale or pause"
ARGO_SCALE_NEEDS_ROUTER = "SetCanaryScale requires TrafficRouting to be set"

Planned = tuple[str, Any, str]  # (what, value, the manifest path it comes from)


def combination_error(keys: Sequence[str]) -> str | None:
    """Why Argo Rollouts refuses a step entry with these step types, or None when it accepts it.

    >>> combination_error(["setCanaryScale", "setHeaderRoute"]) is None
    True
    >>> combination_error(["setCanaryScale", "pause"]) is None
    True
    >>> print(combination_error(["setWeight", "pause"]))
    got setWeight and pause in one step; Argo Rollouts allows one of setWeight, pause, experiment, analysis per step ("Step must have one of the following set: experiment, setWeight, setCanaryScale or pause"); give each its own step
    >>> print(combination_error([]))
    got an empty step; "Step must have one of the following set: experiment, setWeight, setCanaryScale or pause"
    """
    if not keys:
        return f'got an empty step; "{ARGO_INVALID_STEP}"'
    exclusive = [k for k in EXCLUSIVE_STEP_TYPES if k in keys]
    if len(exclusive) > 1:
        return (f"got {' and '.join(exclusive)} in one step; Argo Rollouts allows one of "
                f'{", ".join(EXCLUSIVE_STEP_TYPES)} per step ("{ARGO_INVALID_STEP}"); give each its own step')
    return None


def traffic_percent(weight: int, max_weight: int = 100) -> tuple[int, bool]:
    """(percent of requests, exact) for a ``setWeight`` out of ``maxTrafficWeight``.

    Argo routes ``weight / maxTrafficWeight`` of the requests to the canary: the routers get
    the weight with the total (``canary-weight-total`` for NGINX, ``maxTrafficWeight - weight``
    to the stable for the Gateway API plugin), and at the end of the steps the weight is
    ``MaxTrafficWeight`` (``utils/weightutil``, ``rollout/trafficrouting.go``). The plan's
    weights are whole percents: half rounds up, and a weight strictly between 0 and the total
    stays strictly between 0% and 100% (a canary with some traffic keeps some; one short of
    all is not all).

    >>> traffic_percent(10), traffic_percent(250, 1000), traffic_percent(1000, 1000)
    ((10, True), (25, True), (100, True))
    >>> traffic_percent(15, 1000), traffic_percent(2, 1000), traffic_percent(999, 1000)
    ((2, False), (1, False), (99, False))
    >>> traffic_percent(1, 3), traffic_percent(0, 1000)
    ((33, False), (0, True))
    """
    quotient, rest = divmod(weight * 100, max_weight)
    percent = quotient + (1 if 2 * rest >= max_weight else 0)
    if 0 < weight < max_weight:
        percent = min(max(percent, 1), 99)
    return percent, rest == 0


@dataclass
class CanarySteps:
    """The plan's steps from a Rollout's ``steps``, and where each manifest step begins.

    ``starts[i]`` is the index in ``planned`` of the first plan step of ``steps[i]``;
    ``starts[len(steps)]`` is ``len(planned)`` (the final promotion the plan adds).
    """

    planned: list[Planned] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # each manifest step's types, for messages

    def plan_index(self, manifest_index: int) -> int:
        """The plan step that a Rollout step index (``startingStep``) lands on: a step that
        compiles to nothing lands on the next one that compiles to something."""
        return self.starts[manifest_index]


def starting_step_note(read: CanarySteps, manifest_index: int, path: str) -> str:
    """What a ``startingStep`` lands on in the plan, when the plan's steps do not line up with
    the Rollout's (a step left out before it, or a step that is two plan steps).

    >>> read = CanarySteps(planned=[("weight", 10, "s[0]"), ("weight", 50, "s[2]")], starts=[0, 1, 1, 2],
    ...                    kinds=["setWeight", "setHeaderRoute", "setWeight"])
    >>> print(starting_step_note(read, 2, "s"))
    startingStep 2 counts the Rollout's steps (s[2], setWeight); the plan has no step for s[1] (setHeaderRoute), so the background analysis starts at the plan's step 2, from s[2]
    """
    before = range(manifest_index)
    reasons = []
    dropped = [i for i in before if read.starts[i + 1] == read.starts[i]]
    split = [i for i in before if read.starts[i + 1] - read.starts[i] > 1]
    if dropped:
        reasons.append("the plan has no step for " + ", ".join(f"{path}[{i}] ({read.kinds[i]})" for i in dropped))
    if split:
        reasons.append(", ".join(f"{path}[{i}] ({read.kinds[i]})" for i in split) + " runs as two plan steps")
    at = read.plan_index(manifest_index)
    owner = next((j for j in range(len(read.kinds)) if read.starts[j] <= at < read.starts[j + 1]), None)
    what = f"from {path}[{owner}]" if owner is not None else "at the final promotion to 100%"
    step = (f"{path}[{manifest_index}], {read.kinds[manifest_index]}" if manifest_index < len(read.kinds)
            else "after the last step")
    return (f"startingStep {manifest_index} counts the Rollout's steps ({step}); {'; '.join(reasons)}, "
            f"so the background analysis starts at the plan's step {at + 1}, {what}")


def read_canary_steps(r: Reader, value: Any, path: str, catalog: Catalog, router: bool,
                      max_weight: int = 100) -> CanarySteps:
    """Every step entry of ``spec.strategy.canary.steps``, checked as Argo checks it."""
    out = CanarySteps()
    for i, raw in enumerate(r.items(value, path)):
        spath = f"{path}[{i}]"
        step = r.mapping(raw, spath)
        unknown = [k for k in step if k not in CANARY_STEP_TYPES]
        if unknown:
            r.fail(spath, f"unknown step type {unknown[0]!r}; allowed: {', '.join(CANARY_STEP_TYPES)}")
        keys = [k for k in CANARY_STEP_TYPES if k in step]
        why = combination_error(keys)
        if why:
            r.fail(spath, why)
        out.starts.append(len(out.planned))
        out.kinds.append(" + ".join(keys))
        scaled = "setCanaryScale" in step
        if scaled:
            if not router:
                r.fail(f"{spath}.setCanaryScale", f"{ARGO_SCALE_NEEDS_ROUTER} (Argo Rollouts refuses the Rollout "
                       f"at {path.rsplit('.', 1)[0]}.trafficRouting); add a trafficRouting or drop the setCanaryScale")
            out.planned.append(_scale(r, step["setCanaryScale"], f"{spath}.setCanaryScale"))
        if "setWeight" in step:
            out.planned.append(_weight(r, step["setWeight"], f"{spath}.setWeight", max_weight))
        elif "pause" in step:
            out.planned.append(_pause(r, step["pause"], f"{spath}.pause"))
            if scaled:
                r.warn(f"{spath}.pause", "the rehearsal starts the pause once the canary reaches its setCanaryScale; "
                       "Argo Rollouts starts it with the step, while the canary scales")
        elif "analysis" in step:
            refs = r.mapping(step["analysis"], f"{spath}.analysis")
            spec = analysis_from_templates(r, refs, f"{spath}.analysis", catalog, f"step-{i + 1}")
            if scaled:
                r.warn(f"{spath}.analysis", "not run: Argo Rollouts ends a step with setCanaryScale once the canary "
                       "reaches its scale and cancels the step's AnalysisRun (completedCurrentCanaryStep); "
                       "give the analysis its own step to have it hold the rollout")
            else:
                if spec.count is None:
                    r.warn(f"{spath}.analysis", "a metric runs indefinitely (interval without count); "
                           "the step waits until the analysis fails")
                out.planned.append(("analysis", spec, spath))
        elif "experiment" in step:
            out.planned.extend(_experiment(r, step["experiment"], f"{spath}.experiment", scaled))
        for kind in NOT_SIMULATED_STEP_TYPES:
            if kind in step:
                rehearsed = len(out.planned) > out.starts[-1]
                rest = "the rest of the step is rehearsed" if rehearsed else "the step is skipped"
                r.warn(f"{spath}.{kind}", f"not simulated; {rest}")
    out.starts.append(len(out.planned))
    return out


def _weight(r: Reader, w: Any, path: str, max_weight: int) -> Planned:
    if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= max_weight:
        allowed = WEIGHT_HELP if max_weight == 100 else (
            f"a weight is a whole number from 0 to {max_weight}, the trafficRouting.maxTrafficWeight "
            f'("SetWeight needs to be between 0 and {max_weight}")')
        r.fail(path, f"got {w!r}; {allowed}")
    percent, exact = traffic_percent(w, max_weight)
    if not exact:
        r.warn(path, f"{w} of maxTrafficWeight {max_weight} is {w * 100 / max_weight:g}% of requests; "
               f"the rehearsal's weights are whole percents, so {percent}%")
    return ("weight", percent, path)


def _pause(r: Reader, body: Any, path: str) -> Planned:
    if body is None or not isinstance(body, dict):
        r.fail(path, f"got {body!r}; pause: {{}} waits for promotion, pause: {{duration: 10m}} waits ten minutes")
    r.unused(body, path, ("duration",))
    seconds = r.duration(body["duration"], f"{path}.duration") if body.get("duration") is not None else None
    return ("pause", seconds, path)


def _scale(r: Reader, body: Any, path: str) -> Planned:
    scale = r.mapping(body, path)
    given = [k for k in ("replicas", "weight", "matchTrafficWeight") if k in scale]
    r.unused(scale, path, ("replicas", "weight", "matchTrafficWeight"))
    if len(given) != 1:
        r.fail(path, "needs exactly one of replicas, weight, matchTrafficWeight")
    if given[0] == "matchTrafficWeight":
        if scale["matchTrafficWeight"] is not True:
            r.fail(f"{path}.matchTrafficWeight", "must be true when set")
        return ("scale", None, path)
    if given[0] == "weight":
        return ("scale", r.integer(scale, "weight", path, None, lo=0), path)
    return ("scale_replicas", r.integer(scale, "replicas", path, None, lo=0), path)


def _experiment(r: Reader, body: Any, path: str, scaled: bool) -> list[Planned]:
    exp = r.mapping(body, path)
    seconds = r.duration(exp["duration"], f"{path}.duration") if exp.get("duration") else None
    if scaled:
        r.warn(path, "experiments are not simulated, and Argo Rollouts ends a step with setCanaryScale once the "
               "canary reaches its scale (completedCurrentCanaryStep); the rehearsal does not hold for it")
        return []
    r.warn(path, "experiments are not simulated"
           + ("; the rehearsal holds for its duration" if seconds else "; the step is skipped"))
    return [("pause", seconds, path)] if seconds else []
