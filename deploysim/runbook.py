"""Runbooks: papermill notebooks that validate parameters, run one plan, and leave a trail.

The notebooks in ``runbooks/`` stay thin; everything they do is here, where it is tested:

>>> run = validate_parameters("rolling", {"duration": "20m", "candidate": {"error_rate": 0.001}})
>>> run.scenario.strategy.kind, run.scenario.duration, run.scenario.candidate.error_rate
('rolling', 1200.0, 0.001)
>>> validate_parameters("rolling", {"no_such_param": 1})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
deploysim.errors.ParameterError: unknown parameter 'no_such_param' for runbook rolling; ...

A runbook's cells, after its ``parameters`` cell (and the one papermill injects):

1. ``run = runbook.validate_parameters("canary", globals())``: every parameter checked
   (unknown names, types, values, the scenario they build) before anything happens;
2. ``run.start()`` creates the audit folder; ``run.execute()`` runs the plan in the target
   world, printing each step as it is taken;
3. ``run.plot()``, ``run.finish()`` write the plots and the record;
4. ``run.close()`` copies the executed notebook and an HTML copy into the folder, then
   raises :class:`~deploysim.errors.RolloutNotPromoted` unless the run succeeded, so
   ``papermill`` exits non-zero.

The world is chosen by ``target`` behind one function, :func:`execute`. ``sim`` rehearses
in the simulator. ``kubernetes`` calls ``deploysim.kube.execute_plan(scenario, plan, target,
run_id=..., approve_after=..., on_decision=...) -> Record`` (``target`` a :class:`KubeTarget`,
``run_id`` the audit folder's name, ``approve_after`` seconds at a manual gate or None for
never, ``on_decision`` called with each decision dict as it is taken). Where that function
is missing, a kubernetes run stops at validation with "target kubernetes needs deploysim.kube
(not available)"; the runbooks' parameters are the same either way.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import importlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from deploysim.errors import (
    ManifestError,
    ParameterError,
    RolloutNotPromoted,
    ScenarioError,
    TargetUnavailable,
)
from deploysim.plan import Plan
from deploysim.record import Record
from deploysim.redact import REDACTED, Redactor, is_secret_name
from deploysim.scenario import (
    IntOrPercent,
    Scenario,
    apply_overrides,
    default_scenario_path,
    format_duration,
    load_scenario,
    parse_duration,
    read_yaml,
    scenario_error,
)
from deploysim.trail import (
    ERROR,
    RECORD_FILE,
    RECORD_MIMETYPE,
    RUNNING,
    TRAIL_KIND,
    TRAIL_VERSION,
    environment,
    export_notebook,
    git_info,
    iso,
    jsonable,
    read_record,
    run_name,
    step_details,
    utc_now,
    who,
    write_json,
)

RUNBOOKS = ("rolling", "canary", "blue_green", "rollback")
TARGETS = ("sim", "kubernetes")
# names papermill itself may inject (--inject-paths); allowed, never parameters of ours
PAPERMILL_NAMES = frozenset({"PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH"})
# environment set by `deploysim run` for the kernel: the run folder and the output notebook
ENV_RUN_DIR = "DEPLOYSIM_RUN_DIR"
ENV_NOTEBOOK = "DEPLOYSIM_NOTEBOOK"


# --- parameters ------------------------------------------------------------------------------

def _p(default: Any, help: str, shown: str, group: str) -> Any:
    """A parameter: its default, its help (the trailing comment papermill shows), the type
    papermill's --help-notebook shows, and its group in the parameters cell."""
    return Field(default, description=help, json_schema_extra={"shown": shown, "group": group})


def _duration_or_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 1h")
    parse_duration(value)
    return value


GROUPS = {
    "run": "What to run, where, and where the record goes",
    "strategy": "The strategy's own knobs (None = the scenario's value)",
    "scenario": "Scenario sections, merged into the scenario (pass mappings and lists with -y or -f)",
    "kubernetes": "target kubernetes: the cluster and the workloads (ignored by target sim)",
}


class RunbookParameters(BaseModel):
    """Parameters every runbook takes. Unknown names, wrong types and bad values are errors."""

    model_config = ConfigDict(extra="forbid")
    runbook: ClassVar[str] = ""
    strategy_kind: ClassVar[str] = ""

    target: Literal["sim", "kubernetes"] = _p(
        "sim", "sim (the rehearsal world) or kubernetes (a real cluster)", "str", "run")
    scenario: StrictStr | None = _p(
        None, "scenario YAML file; None: the built-in scenario", "Optional[str]", "run")
    manifest: StrictStr | list[StrictStr] | None = _p(
        None, "Argo Rollout / Flagger Canary / Deployment YAML (a path or a list); the strategy comes from it",
        "Optional[str]", "run")
    image: StrictStr | None = _p(
        None, "the candidate's image: a semver tag or a digest, never latest; None: the scenario's",
        "Optional[str]", "run")
    approve: StrictStr | StrictInt | float = _p(
        "auto", "manual gates: auto, never (stop there, exit non-zero), or a duration (approve after it)",
        "str", "run")
    seed: StrictInt | None = _p(None, "random seed of the sim world; None: the scenario's", "Optional[int]", "run")
    record_dir: StrictStr = _p(
        "runs", "audit trail: one folder RECORD_DIR/<UTC time>-<runbook>-<id>/ per run", "str", "run")
    reason: StrictStr = _p("", "why this run (a ticket, an incident); kept in the audit trail", "str", "run")

    service: StrictStr | None = _p(None, "service name; None: the scenario's", "Optional[str]", "scenario")
    replicas: StrictInt | None = _p(None, "replicas; None: the scenario's", "Optional[int]", "scenario")
    duration: StrictStr | StrictInt | float | None = _p(
        None, "simulated time (sim), e.g. 30m; None: the scenario's", "Optional[str]", "scenario")
    stable: dict[str, Any] = _p({}, "merged into scenario.stable, e.g. {error_rate: 0.001}", "dict", "scenario")
    candidate: dict[str, Any] = _p(
        {}, "merged into scenario.candidate, e.g. -y '{candidate: {error_rate: 0.05}}'", "dict", "scenario")
    traffic: dict[str, Any] = _p({}, "merged into scenario.traffic, e.g. {rps: 500}", "dict", "scenario")
    pod: dict[str, Any] = _p({}, "merged into scenario.pod, e.g. {startup: 30s}", "dict", "scenario")
    analysis: dict[str, Any] = _p(
        {}, "merged into scenario.analysis, e.g. {interval: 30s, count: 2}", "dict", "scenario")
    faults: list[Any] | None = _p(
        None, "replaces scenario.faults, e.g. [{kind: node_failure, at: 10m}]", "Optional[list]", "scenario")
    strategy: dict[str, Any] = _p({}, "merged into scenario.strategy (any strategy key)", "dict", "scenario")
    overrides: list[StrictStr] = _p(
        [], "more scenario keys, each as for deploysim rehearse --set (a dotted key, an equals sign, a value)",
        "list", "scenario")

    kubeconfig: StrictStr | None = _p(
        None, "kubeconfig file; None: $KUBECONFIG, ~/.kube/config or in-cluster", "Optional[str]", "kubernetes")
    context: StrictStr | None = _p(None, "kubeconfig context; None: the current one", "Optional[str]", "kubernetes")
    namespace: StrictStr = _p("default", "namespace of the workloads", "str", "kubernetes")
    workload: StrictStr | None = _p(
        None, "rolling/recreate: the Deployment; canary/blue-green: prefix of the colours <workload>-blue and -green; None: the service name", "Optional[str]", "kubernetes")
    candidate_workload: StrictStr | None = _p(
        None, "canary / blue-green: with it, the colours are <workload> and this Deployment; None: <workload>-blue and -green",
        "Optional[str]", "kubernetes")
    route: StrictStr | None = _p(
        None, "canary with a traffic router: the HTTPRoute to split; None: the service name",
        "Optional[str]", "kubernetes")
    prometheus_url: StrictStr | None = _p(
        None, "Prometheus for analysis; None: probe the service over HTTP", "Optional[str]", "kubernetes")
    prometheus_token: StrictStr | None = _p(
        None, "bearer token for Prometheus (redacted in the trail); None: $DEPLOYSIM_PROMETHEUS_TOKEN",
        "Optional[str]", "kubernetes")

    @field_validator("approve", mode="before")
    @classmethod
    def _approve(cls, value: Any) -> Any:
        if value in ("auto", "never"):
            return value
        if isinstance(value, bool):
            raise ValueError("must be auto, never, or a duration like 10m")
        try:
            parse_duration(value)
        except ValueError:
            raise ValueError("must be auto, never, or a duration like 10m") from None
        return str(value) if not isinstance(value, str) else value

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _duration_or_none(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) or len(value) > 63:
            raise ValueError("must be a DNS label: lower-case letters, digits and '-', at most 63")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None:
            immutable_image(value)
        return value

    # the strategy's knobs, as scenario.strategy keys (overridden by each runbook)
    def strategy_updates(self, strategy: dict[str, Any]) -> dict[str, str]:
        """Apply this runbook's knobs to the scenario's strategy data; returns key -> parameter."""
        return {}


def immutable_image(image: str) -> str:
    """An image must name an immutable version: a tag that is not ``latest``, or a digest.

    >>> immutable_image("checkout:1.42.0")
    'checkout:1.42.0'
    >>> immutable_image("checkout")
    Traceback (most recent call last):
    ...
    ValueError: 'checkout' has no tag; use an immutable version (a semver tag or a digest), never latest
    """
    if "@" in image:
        return image
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        raise ValueError(f"{image!r} has no tag; use an immutable version (a semver tag or a digest), never latest")
    if tag == "latest":
        raise ValueError(f"{image!r} is mutable; use an immutable version (a semver tag or a digest)")
    return image


def _set(strategy: dict[str, Any], used: dict[str, str], key: str, param: str, value: Any) -> None:
    if value is not None:
        strategy[key] = value
        used[key] = param


class RollingParameters(RunbookParameters):
    runbook: ClassVar[str] = "rolling"
    strategy_kind: ClassVar[str] = "rolling"

    max_surge: IntOrPercent | None = _p(
        None, "pods above replicas during the update: a number or a percentage like 25%",
        "Optional[Union[int, str]]", "strategy")
    max_unavailable: IntOrPercent | None = _p(
        None, "pods that may be unavailable: a number or a percentage", "Optional[Union[int, str]]", "strategy")
    min_ready_seconds: StrictStr | StrictInt | float | None = _p(
        None, "a pod counts as available this long after it is ready, e.g. 10s", "Optional[str]", "strategy")
    progress_deadline: StrictStr | StrictInt | float | None = _p(
        None, "no progress for this long fails the rollout, e.g. 10m", "Optional[str]", "strategy")
    background_analysis: bool | None = _p(
        None, "analyse the candidate while rolling; a failure rolls back", "Optional[bool]", "strategy")

    @field_validator("min_ready_seconds", "progress_deadline", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _duration_or_none(value)

    def strategy_updates(self, strategy: dict[str, Any]) -> dict[str, str]:
        used: dict[str, str] = {}
        _set(strategy, used, "max_surge", "max_surge", self.max_surge)
        _set(strategy, used, "max_unavailable", "max_unavailable", self.max_unavailable)
        _set(strategy, used, "min_ready_seconds", "min_ready_seconds", self.min_ready_seconds)
        _set(strategy, used, "progress_deadline_seconds", "progress_deadline", self.progress_deadline)
        _set(strategy, used, "background_analysis", "background_analysis", self.background_analysis)
        return used


class CanaryParameters(RunbookParameters):
    runbook: ClassVar[str] = "canary"
    strategy_kind: ClassVar[str] = "canary"

    steps: list[Any] | None = _p(
        None, "all steps, Argo style: [{set_weight: 10}, {pause: 1m}, {analysis: true}]; None: the scenario's",
        "Optional[list]", "strategy")
    weights: list[StrictInt] | None = _p(
        None, "shorthand for steps: each weight, then step_pause, then analysis, e.g. [10, 50]",
        "Optional[list]", "strategy")
    step_pause: StrictStr | StrictInt | float | None = _p(
        None, "how long each timed pause holds, e.g. 1m (weights: default 2m)", "Optional[str]", "strategy")
    step_analysis: bool = _p(True, "analyse after each pause; False drops the analysis steps", "bool", "strategy")
    manual_gate: bool = _p(
        False, "wait for approval (see approve) before the final 100% step", "bool", "strategy")
    traffic_router: bool | None = _p(
        None, "exact weights through a router; False: weight by replica share", "Optional[bool]", "strategy")

    @field_validator("step_pause", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _duration_or_none(value)

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value or any(not 0 < w <= 100 for w in value) or value != sorted(value):
                raise ValueError("must be increasing weights between 1 and 100, e.g. [10, 50]")
        return value

    def strategy_updates(self, strategy: dict[str, Any]) -> dict[str, str]:
        used: dict[str, str] = {}
        if self.steps is not None and self.weights is not None:
            raise ParameterError("parameters 'steps' and 'weights': give one of them, not both")
        if self.steps is not None:
            _set(strategy, used, "steps", "steps", copy.deepcopy(self.steps))
        if self.weights is not None:
            steps: list[dict[str, Any]] = []
            for weight in self.weights:
                steps.append({"set_weight": weight})
                if weight < 100:
                    steps.append({"pause": self.step_pause if self.step_pause is not None else "2m"})
                    steps.append({"analysis": True})
            _set(strategy, used, "steps", "weights", steps)
        steps = list(strategy.get("steps") or [])
        if self.step_pause is not None and self.weights is None:
            steps = [{"pause": self.step_pause} if _timed_pause(s) else s for s in steps]
            _set(strategy, used, "steps", "step_pause", steps)
        if not self.step_analysis:
            steps = [s for s in steps if not (isinstance(s, dict) and s.get("analysis"))]
            _set(strategy, used, "steps", "step_analysis", steps)
        if self.manual_gate:
            last = next((i for i in range(len(steps) - 1, -1, -1)
                         if isinstance(steps[i], dict) and steps[i].get("set_weight") == 100), len(steps))
            steps = [*steps[:last], {"pause": None}, *steps[last:]]
            _set(strategy, used, "steps", "manual_gate", steps)
        _set(strategy, used, "traffic_router", "traffic_router", self.traffic_router)
        return used


def _timed_pause(step: Any) -> bool:
    return isinstance(step, dict) and "pause" in step and step["pause"] is not None


class BlueGreenParameters(RunbookParameters):
    runbook: ClassVar[str] = "blue_green"
    strategy_kind: ClassVar[str] = "blue-green"

    preview_replicas: StrictInt | None = _p(
        None, "pods of the new colour before the switch; None: all replicas", "Optional[int]", "strategy")
    auto_promotion: StrictStr | StrictInt | float | None = _p(
        None, "hold the preview this long before switching, e.g. 2m", "Optional[str]", "strategy")
    manual_gate: bool = _p(False, "wait for approval (see approve) before switching", "bool", "strategy")
    scale_down_delay: StrictStr | StrictInt | float | None = _p(
        None, "keep the old colour this long after the switch (instant rollback)", "Optional[str]", "strategy")
    preview_rps: float | None = _p(
        None, "test traffic sent to the preview, requests per second", "Optional[float]", "strategy")
    pre_promotion_analysis: bool | None = _p(
        None, "analyse the preview before switching", "Optional[bool]", "strategy")
    post_promotion_analysis: bool | None = _p(
        None, "analyse after switching; a failure switches back", "Optional[bool]", "strategy")

    @field_validator("auto_promotion", "scale_down_delay", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _duration_or_none(value)

    def strategy_updates(self, strategy: dict[str, Any]) -> dict[str, str]:
        used: dict[str, str] = {}
        if self.manual_gate and self.auto_promotion is not None:
            raise ParameterError("parameters 'manual_gate' and 'auto_promotion': give one of them, not both")
        _set(strategy, used, "preview_replicas", "preview_replicas", self.preview_replicas)
        _set(strategy, used, "auto_promotion_seconds", "auto_promotion", self.auto_promotion)
        if self.manual_gate:
            strategy["auto_promotion_seconds"] = None
            used["auto_promotion_seconds"] = "manual_gate"
        _set(strategy, used, "scale_down_delay_seconds", "scale_down_delay", self.scale_down_delay)
        _set(strategy, used, "preview_rps", "preview_rps", self.preview_rps)
        _set(strategy, used, "pre_promotion_analysis", "pre_promotion_analysis", self.pre_promotion_analysis)
        _set(strategy, used, "post_promotion_analysis", "post_promotion_analysis", self.post_promotion_analysis)
        return used


class RollbackParameters(RunbookParameters):
    """Roll a bad release back: the scenario's candidate serves now, its stable is restored."""

    runbook: ClassVar[str] = "rollback"
    strategy_kind: ClassVar[str] = "rolling"

    image: StrictStr | None = _p(
        None, "the release being rolled back (serving now); None: the scenario's candidate image",
        "Optional[str]", "run")
    to_image: StrictStr | None = _p(
        None, "the version to go back to; None: the scenario's stable image", "Optional[str]", "strategy")
    method: Literal["rolling", "blue-green"] = _p(
        "rolling", "rolling (like kubectl rollout undo) or blue-green (switch back to the old colour)",
        "str", "strategy")
    max_surge: IntOrPercent = _p("100%", "rolling: pods above replicas while rolling back", "Union[int, str]",
                                 "strategy")
    max_unavailable: IntOrPercent = _p(0, "rolling: pods that may be unavailable", "Union[int, str]", "strategy")
    verify: StrictStr | StrictInt | float = _p(
        "5m", "after the rollback the metrics must meet the analysis checks this long", "str", "strategy")

    @field_validator("verify", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _duration_or_none(value)

    @field_validator("to_image")
    @classmethod
    def _to_image(cls, value: str | None) -> str | None:
        if value is not None:
            immutable_image(value)
        return value

    def strategy_updates(self, strategy: dict[str, Any]) -> dict[str, str]:
        used = {"kind": "method"}
        strategy["kind"] = self.method
        if self.method == "rolling":
            strategy.update(max_surge=self.max_surge, max_unavailable=self.max_unavailable,
                            background_analysis=False)
            used.update(max_surge="max_surge", max_unavailable="max_unavailable")
        else:
            strategy.update(preview_replicas=None, auto_promotion_seconds=0, scale_down_delay_seconds=0,
                            pre_promotion_analysis=False, post_promotion_analysis=False, preview_rps=0)
        return used


PARAMETER_MODELS: dict[str, type[RunbookParameters]] = {
    "rolling": RollingParameters,
    "canary": CanaryParameters,
    "blue_green": BlueGreenParameters,
    "rollback": RollbackParameters,
}


def parameter_model(runbook: str) -> type[RunbookParameters]:
    name = runbook.replace("-", "_")
    if name not in PARAMETER_MODELS:
        raise ParameterError(f"runbook {runbook!r}: unknown; allowed: {', '.join(RUNBOOKS)}")
    return PARAMETER_MODELS[name]


def parameter_cell(runbook: str) -> str:
    """The source of a runbook's ``parameters`` cell, from its model (names, types, help).

    papermill's ``--help-notebook`` reads ``name: type = default  # help`` lines.
    """
    model = parameter_model(runbook)
    lines = ["# Runbook parameters: papermill -p NAME VALUE (-r for text), -y/-f YAML for mappings and lists.",
             "# Unknown names, wrong types and bad values stop the run in the next cell."]
    by_group: dict[str, list[str]] = {g: [] for g in GROUPS}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra or {}
        shown = extra["shown"]  # type: ignore[index]
        annotation = shown if shown.isidentifier() else repr(shown).replace("'", '"')
        by_group[extra["group"]].append(  # type: ignore[index]
            f"{name}: {annotation} = {info.default!r}  # {info.description}")
    for group, entries in by_group.items():
        if entries:
            lines += ["", f"# {GROUPS[group]}", *entries]
    return "\n".join(lines) + "\n"


def _assigned_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    names.add(sub.id)
    return names


def injected_names(namespace: Mapping[str, Any]) -> set[str] | None:
    """Names papermill injected into this kernel, read from its own cell history.

    papermill puts the parameters it was given in a cell that starts ``# Parameters``
    (tagged ``injected-parameters``); papermill only warns about names the notebook does
    not declare, so the runbook reads them back here. None outside IPython.
    """
    history = namespace.get("In")
    if not isinstance(history, list):
        return None
    names: set[str] = set()
    for source in history:
        if isinstance(source, str) and source.lstrip().startswith("# Parameters"):
            names |= _assigned_names(source)
    return names


def _unknown_error(runbook: str, unknown: list[str], allowed: list[str]) -> ParameterError:
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, allowed, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "parameter" if len(unknown) == 1 else "parameters"
    return ParameterError(
        f"unknown {noun} {', '.join(hints)} for runbook {runbook}; allowed: {', '.join(allowed)} "
        f"(see papermill --help-notebook runbooks/{runbook}.ipynb)")


def _parameter_error(exc: ValidationError) -> ParameterError:
    err = scenario_error(exc)
    name = err.key.split(".")[0]
    value = REDACTED if is_secret_name(name) else err.value
    allowed = err.allowed
    if allowed.startswith("expected a valid string"):
        allowed = "expected text (papermill -p turns digits into numbers; pass text with -r NAME VALUE)"
    if err.key == name:
        return ParameterError(f"parameter {name!r}: got {value!r}; {allowed}")
    return ParameterError(f"parameter {name!r} ({err.key}): got {value!r}; {allowed}")


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KubeTarget:
    """Where a kubernetes run acts: what ``deploysim.kube.execute_plan`` receives."""

    kubeconfig: str | None
    context: str | None
    namespace: str
    workload: str
    candidate_workload: str | None
    route: str | None
    prometheus_url: str | None
    prometheus_token: str | None
    image: str


@dataclass
class Outcome:
    """How a run ended, in the record's words, and whether that is the runbook's success."""

    outcome: str  # promoted, rolled_back, failed, paused, incomplete, error
    ok: bool
    status: str  # one line a person reads
    details: dict[str, Any] = field(default_factory=dict)


def build_scenario(params: RunbookParameters) -> tuple[Scenario, dict[str, str]]:
    """The scenario the parameters describe, and which parameter set which scenario key."""
    setters: dict[str, str] = {}
    if params.manifest is not None:
        data = _scenario_from_manifests(params)
        setters[""] = "manifest"
    else:
        try:
            data = read_yaml(params.scenario or default_scenario_path())
        except ScenarioError as exc:
            raise ParameterError(f"parameter 'scenario': {exc.value!r}: {exc.allowed}") from None
        setters[""] = "scenario"
    data = copy.deepcopy(data)
    for section in ("stable", "candidate", "traffic", "pod", "analysis"):
        given = getattr(params, section)
        if given:
            base = data.get(section) or {}
            if not isinstance(base, dict):
                base = {}
            data[section] = _merge(base, given)
            setters[section] = section
    if params.faults is not None:
        data["faults"] = params.faults
        setters["faults"] = "faults"
    strategy = dict(data.get("strategy") or {})
    if params.strategy:
        strategy = _merge(strategy, params.strategy)
        setters["strategy"] = "strategy"
    if params.manifest is not None and any(
            getattr(params, n) not in (None, info.default) for n, info in type(params).model_fields.items()
            if (info.json_schema_extra or {}).get("group") == "strategy"):  # type: ignore[union-attr]
        raise ParameterError("parameter 'manifest': the strategy comes from the manifest; "
                             "drop the strategy knobs or the manifest")
    if params.manifest is None:
        strategy["kind"] = params.strategy_kind
    for key, name in params.strategy_updates(strategy).items():
        setters[f"strategy.{key}"] = name
    data["strategy"] = strategy
    for name in ("service", "replicas", "duration", "seed"):
        value = getattr(params, name)
        if value is not None:
            data[name] = value
            setters[name] = name
    data["approve"] = params.approve
    setters["approve"] = "approve"
    if params.image is not None:
        data.setdefault("candidate", {})
        data["candidate"] = {**(data["candidate"] or {}), "image": params.image}
        setters["candidate.image"] = "image"
    try:
        data = apply_overrides(data, list(params.overrides))
    except ScenarioError as exc:
        raise ParameterError(f"parameter 'overrides': {exc}") from None
    for item in params.overrides:
        setters[item.partition("=")[0].strip()] = "overrides"
    scenario = _validated(data, params, setters)
    if isinstance(params, RollbackParameters):
        scenario = _rollback_scenario(scenario, params, setters)
    try:
        immutable_image(scenario.candidate.image)
    except ValueError as exc:
        name = setters.get("candidate.image", "candidate")
        raise ParameterError(f"parameter {name!r} (candidate.image): {exc}") from None
    return scenario, setters


def _validated(data: dict[str, Any], params: RunbookParameters, setters: dict[str, str]) -> Scenario:
    try:
        return load_scenario(params.scenario, data=data)
    except ScenarioError as exc:
        parts = exc.key.split(".")
        name = setters[""]
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in setters:
                name = setters[".".join(parts[:i])]
                break
        value = REDACTED if is_secret_name(exc.key) else exc.value
        raise ParameterError(f"parameter {name!r} ({exc.key}): got {value!r}; {exc.allowed}") from None


def _rollback_scenario(scenario: Scenario, params: RollbackParameters, setters: dict[str, str]) -> Scenario:
    """The world of a rollback: what serves now is the scenario's candidate (the release
    being rolled back); the version being rolled out is the scenario's stable one."""
    now_serving = scenario.candidate.model_copy(update={"image": params.image or scenario.candidate.image})
    back_to = scenario.stable.model_copy(update={"image": params.to_image or scenario.stable.image})
    setters["candidate.image"] = "to_image"
    return scenario.model_copy(update={"stable": now_serving, "candidate": back_to})


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _manifest_paths(params: RunbookParameters) -> list[str]:
    paths = [params.manifest] if isinstance(params.manifest, str) else list(params.manifest or [])
    for path in paths:
        if not Path(path).is_file():
            raise ParameterError(f"parameter 'manifest': no such file {path!r}")
    return paths


def _manifests_module() -> Any:
    try:
        return importlib.import_module("deploysim.strategies.manifests")
    except ModuleNotFoundError:
        raise ParameterError(
            "parameter 'manifest': reading manifests needs deploysim.strategies.manifests (not available)"
        ) from None


def _scenario_from_manifests(params: RunbookParameters) -> dict[str, Any]:
    paths = _manifest_paths(params)
    try:
        scenario = _manifests_module().scenario_from_manifests(paths, scenario_path=params.scenario, overrides=[])
    except (ManifestError, ScenarioError) as exc:
        raise ParameterError(f"parameter 'manifest': {exc}") from None
    if scenario.strategy.kind != params.strategy_kind:
        raise ParameterError(
            f"parameter 'manifest': describes a {scenario.strategy.kind} rollout; this is the "
            f"{params.runbook} runbook")
    return scenario.to_data()


def build_plan(params: RunbookParameters, scenario: Scenario) -> Plan:
    from deploysim.strategies import compile_plan

    if params.manifest is not None:
        try:
            return _manifests_module().plan_from_manifests(_manifest_paths(params), scenario)
        except ManifestError as exc:
            raise ParameterError(f"parameter 'manifest': {exc}") from None
    return compile_plan(scenario)


def kube_target(params: RunbookParameters, scenario: Scenario) -> KubeTarget:
    return KubeTarget(
        kubeconfig=params.kubeconfig, context=params.context, namespace=params.namespace,
        workload=params.workload or scenario.service, candidate_workload=params.candidate_workload,
        route=params.route, prometheus_url=params.prometheus_url,
        prometheus_token=params.prometheus_token or os.environ.get("DEPLOYSIM_PROMETHEUS_TOKEN"),
        image=scenario.candidate.image,
    )


def target_context(params: RunbookParameters, scenario: Scenario, record: Record | None = None) -> dict[str, Any]:
    """What the record says about the world the run acted on (never credentials: the
    kubeconfig by path, the Prometheus token not at all)."""
    if params.target == "sim":
        return {"name": "sim", "world": "SimPy rehearsal", "scenario": params.scenario or "built-in",
                "seed": scenario.seed, "simulated_seconds": scenario.duration}
    t = kube_target(params, scenario)
    context = {"name": "kubernetes", "kubeconfig": t.kubeconfig, "context": t.context, "namespace": t.namespace,
               "workload": t.workload, "candidate_workload": t.candidate_workload, "route": t.route,
               "prometheus_url": t.prometheus_url, "image": t.image}
    status = record.status if record is not None else {}
    if status.get("context"):
        context["context_used"] = status["context"]  # the kubeconfig's current one when none was given
    if "resumed" in status:
        context["resumed"] = status["resumed"]
    if status.get("driver"):
        context["driver"] = status["driver"]  # the runbook's own time, apart from waiting on the cluster
    return context


# --- worlds: one function, dispatching on target ---------------------------------------------

Decision = dict[str, Any]
OnDecision = Callable[[Decision], None]


def _run_sim(run: RunbookRun, on_decision: OnDecision) -> Record:
    from deploysim.sim import rehearse

    record = rehearse(run.scenario, run.plan)
    # the rehearsal takes milliseconds: its decisions are shown in simulated-time order after it
    for decision in record.decisions:
        on_decision(decision)
    return record


def _kube_backend() -> Callable[..., Record]:
    try:
        module = importlib.import_module("deploysim.kube")
        return module.execute_plan
    except (ImportError, AttributeError):
        raise TargetUnavailable("target kubernetes needs deploysim.kube (not available)") from None


def _run_kubernetes(run: RunbookRun, on_decision: OnDecision) -> Record:
    execute_plan = _kube_backend()
    return execute_plan(run.scenario, run.plan, kube_target(run.params, run.scenario),
                        run_id=run.folder.name if run.folder else None,
                        approve_after=run.scenario.approve_after(), on_decision=on_decision)


WORLDS: dict[str, Callable[[RunbookRun, OnDecision], Record]] = {"sim": _run_sim, "kubernetes": _run_kubernetes}


def check_target(target: str) -> None:
    """Fail before anything happens when the target's world is not installed."""
    if target == "kubernetes":
        _kube_backend()


def execute(run: RunbookRun | RunbookParameters, on_decision: OnDecision | None = None) -> Record:
    """Run the plan in the world the parameters' ``target`` names; the same record either way."""
    if isinstance(run, RunbookParameters):
        run = prepare(run)
    return WORLDS[run.params.target](run, on_decision or (lambda d: None))


# --- progress --------------------------------------------------------------------------------

def clock(seconds: float) -> str:
    """``t+07:26`` (or ``t+1:02:03``) from seconds since the world's start.

    >>> clock(446.25), clock(3723)
    ('t+07:26', 't+1:02:03')
    """
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"t+{h}:{m:02d}:{sec:02d}" if h else f"t+{m:02d}:{sec:02d}"


class ProgressPrinter:
    """One line per decision: when, which step of how many, what and why."""

    def __init__(self, plan: Plan, redactor: Redactor | None = None, stream: Any = None) -> None:
        self.total = len(plan.steps)
        self.redactor = redactor or Redactor()
        self.stream = stream

    def __call__(self, d: Decision) -> None:
        kind, reason = d["kind"], d["reason"]
        if kind == "step":
            label = f"step {d['step'] + 1}/{self.total}"
            reason = reason.split(": ", 1)[-1]
        else:
            label = kind
        print(f"{clock(d['at'])}  {label:<10} {self.redactor.text(reason)}", file=self.stream or sys.stdout,
              flush=True)


# --- outcome ---------------------------------------------------------------------------------

def _last(record: Record, kind: str) -> Decision | None:
    return next((d for d in reversed(record.decisions) if d["kind"] == kind), None)


def _step_text(record: Record, index: int) -> str:
    step = next((s for s in record.steps if s["index"] == index), None)
    return f"step {index + 1}: {step['describe']}" if step else f"step {index + 1}"


def judge_outcome(run: RunbookRun, record: Record) -> Outcome:
    """The runbook's verdict on a record: promoted is success, except for the rollback
    runbook, whose success is the previous version serving again with normal metrics."""
    s = record.summary
    outcome = s["outcome"]
    if outcome in ("rolled_back", "failed"):
        abort = _last(record, "abort")
        why = abort["reason"] if abort else "aborted"
        if isinstance(run.params, RollbackParameters):
            return Outcome("failed", False, f"rollback failed: {why}")
        word = "rolled back" if outcome == "rolled_back" else "failed"
        return Outcome(outcome, False, f"{word}: {why}",
                       {"time_to_detect_seconds": s.get("time_to_detect_seconds")})
    if outcome == "paused":
        pause = _last(record, "pause")
        if pause and pause["reason"].startswith("manual gate"):
            status = f"paused at manual gate ({_step_text(record, pause['step'])}); approve is {run.params.approve!r}"
        else:
            status = f"paused: {pause['reason'] if pause else 'waiting for a person'}"
        return Outcome("paused", False, status)
    if outcome != "promoted":
        return Outcome(outcome, False, f"{outcome}: the rollout had not finished when the "
                                       f"{'simulation' if run.params.target == 'sim' else 'run'} ended at "
                                       f"{format_duration(s.get('simulated_seconds'))}")
    took = format_duration(round(s["rollout_seconds"])) if s.get("rollout_seconds") is not None else "?"
    if isinstance(run.params, RollbackParameters):
        return _verify_rollback(run, record, took)
    return Outcome("promoted", True, f"promoted: {run.scenario.candidate.image} serves all traffic "
                                     f"({record.summary['strategy']} rollout, {took})")


def _verify_rollback(run: RunbookRun, record: Record, took: str) -> Outcome:
    """After the rollback, do the metrics meet the analysis checks for ``verify``?"""
    params: RollbackParameters = run.params  # type: ignore[assignment]
    verify = parse_duration(params.verify)
    done = _last(record, "promote")
    at = done["at"] if done else None
    t = record.timeline
    rows = t[(t["time"] > at) & (t["start"] < at + verify)] if at is not None else t[:0]
    covered = min(float(rows["time"].max()), at + verify) - at if not rows.empty and at is not None else 0.0
    back, bad = run.scenario.candidate.image, run.scenario.stable.image
    if covered + 1e-6 < verify:
        return Outcome("incomplete", False, f"rolled back to {back} in {took}, but only "
                                            f"{format_duration(covered)} of the {format_duration(verify)} "
                                            "verification window was observed")
    requests = float(rows["requests_stable"].sum() + rows["requests_candidate"].sum())
    failed = float(rows["failed_stable"].sum() + rows["failed_candidate"].sum())
    values = {"error_rate": failed / requests if requests else float("nan"),
              "latency_p99": float(rows["latency_p99_candidate"].max())}
    broken = []
    for check in run.scenario.analysis.checks:
        value = values.get(check.metric)
        if value is None:
            continue
        if check.max is not None and value > check.max:
            broken.append(f"{check.metric} {value:.4g} > {check.max:g}")
        if check.min is not None and value < check.min:
            broken.append(f"{check.metric} {value:.4g} < {check.min:g}")
    details = {"verification": {"window_seconds": verify, "from": at, "values": jsonable(values),
                                "broken": broken, "passed": not broken}}
    if broken:
        return Outcome("failed", False, f"rolled back to {back} in {took}, but the metrics are not normal "
                                        f"after it: {'; '.join(broken)}", details)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
    return Outcome("rolled_back", True, f"rolled back: {back} serves all traffic again, {bad} none "
                                        f"({took}); metrics normal for {format_duration(verify)} ({shown})",
                   details)


# --- the runbook session ---------------------------------------------------------------------


@dataclass
class RunbookRun:
    """One runbook run: validated parameters, the scenario and plan, and its audit folder."""

    runbook: str
    params: RunbookParameters
    given: dict[str, Any]
    scenario: Scenario
    plan: Plan
    redactor: Redactor
    setters: dict[str, str] = field(default_factory=dict)
    notebook_hint: str | None = None
    folder: Path | None = None
    record: Record | None = None
    outcome: Outcome | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    _t0: float = 0.0
    _git: dict[str, Any] | None = None
    _files: dict[str, str] = field(default_factory=dict)

    # -- what will run
    def describe(self) -> None:
        """Print what will run: target, parameters given, the scenario and the plan."""
        p, sc = self.params, self.scenario
        given = self.redactor.data(jsonable(self.given))
        print(f"runbook {self.runbook} on target {p.target}"
              + (" (the rehearsal world)" if p.target == "sim" else f" (namespace {p.namespace})"))
        print("parameters given: " + (", ".join(f"{k}={v!r}" for k, v in given.items()) or "none (defaults)"))
        print(f"service {sc.service}: {sc.replicas} replicas, stable {sc.stable.image} "
              f"-> candidate {sc.candidate.image}")
        if p.target == "sim":
            print(f"simulated {format_duration(sc.duration)}, rollout starts at {format_duration(sc.start_at)}, "
                  f"seed {sc.seed}, approve {sc.approve}")
        for line in self.plan.describe():
            print(self.redactor.text(line))

    # -- the audit folder
    def start(self) -> Path:
        """Create the audit folder and write record.json (outcome: running) before any step."""
        if self.folder is not None:
            return self.folder
        now = utc_now()
        env_dir = os.environ.get(ENV_RUN_DIR)
        folder = Path(env_dir) if env_dir else Path(self.params.record_dir) / run_name(self.runbook, now)
        folder.mkdir(parents=True, exist_ok=False)
        self.folder = folder
        self.started_at = iso(now)
        self._t0 = time.perf_counter()
        # the code that runs: deploysim's own repository, else the folder the run started in
        self._git = git_info(repo_root()) or git_info(Path.cwd())
        self._write_record()
        print(f"audit trail: {folder}/")
        return folder

    def _run_section(self) -> dict[str, Any]:
        assert self.folder is not None
        section: dict[str, Any] = {
            "id": self.folder.name,
            "runbook": self.runbook,
            "outcome": self.outcome.outcome if self.outcome else (ERROR if self.error else RUNNING),
            "ok": self.outcome.ok if self.outcome else False,
            "status": self.outcome.status if self.outcome else (self.error or "running"),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "wall_seconds": round(time.perf_counter() - self._t0, 3) if self.finished_at else None,
            "who": who(),
            "git": self._git,
            "environment": environment(),
            "cwd": str(Path.cwd()),
            "target": target_context(self.params, self.scenario, self.record),
            "parameters": {"given": jsonable(self.given), "resolved": self.params.model_dump(mode="json")},
            "clock": "seconds from the start of the simulated world" if self.params.target == "sim"
            else "seconds from the start of the run",
            "files": dict(self._files),
            "error": self.error,
        }
        if self.outcome and self.outcome.details:
            section.update(self.outcome.details)
        if isinstance(self.params, RollbackParameters):
            section["rollback"] = {"from_image": self.scenario.stable.image, "to_image": self.scenario.candidate.image,
                                   "method": self.params.method, "reason": self.params.reason}
        return section

    def _write_record(self, notebook: dict[str, Any] | None = None) -> None:
        assert self.folder is not None
        path = self.folder / RECORD_FILE
        previous = read_record(self.folder) if path.exists() else {}
        data: dict[str, Any] = {"version": TRAIL_VERSION, "kind": TRAIL_KIND, "run": self._run_section()}
        data["run"]["notebook"] = notebook or previous.get("run", {}).get("notebook")
        if self.record is not None:
            rec = self.record.to_dict()
            rec.pop("version", None)
            rec["steps"] = step_details(self.record)
            changes = getattr(self.record, "changes", None)
            if changes is not None:
                rec["changes"] = changes  # every API change a real-world run made
            data.update(rec)
        else:
            data.update({"summary": None, "decisions": [], "steps": [], "plan": self.plan.to_dict(),
                         "scenario": self.scenario.to_data()})
        write_json(path, self.redactor.data(jsonable(data)))

    # -- running
    def execute(self, on_decision: OnDecision | None = None) -> Record:
        """Run the plan in the target world, printing each step as it is taken."""
        self.start()
        printer = on_decision or ProgressPrinter(self.plan, self.redactor)
        try:
            self.record = execute(self, printer)
        except BaseException as exc:
            self._fail(exc)
            raise
        return self.record

    def _fail(self, exc: BaseException) -> None:
        self.error = self.redactor.text(f"{type(exc).__name__}: {exc}")
        self.finished_at = iso(utc_now())
        self._write_record()
        self._copy_notebook()

    def plot(self) -> None:
        """Write the plots into the audit folder and show them."""
        from deploysim.report import plot_pods, plot_traffic

        record = self._need_record()
        assert self.folder is not None
        for name, plot in (("traffic.png", plot_traffic), ("pods.png", plot_pods)):
            plot(record, self.folder / name)
            self._files[name.split(".")[0]] = name
            _show_png(self.folder / name)

    def finish(self) -> Outcome:
        """Write the record (record.json, timeline.csv, summary.json, plots) and show the verdict."""
        import json

        record = self._need_record()
        assert self.folder is not None
        if "traffic" not in self._files:
            from deploysim.report import plot_pods, plot_traffic

            plot_traffic(record, self.folder / "traffic.png")
            plot_pods(record, self.folder / "pods.png")
            self._files.update(traffic="traffic.png", pods="pods.png")
        record.timeline.to_csv(self.folder / "timeline.csv", index=False)
        (self.folder / "summary.json").write_text(json.dumps(jsonable(record.summary), indent=2, sort_keys=True) + "\n")
        self._files.update(timeline="timeline.csv", summary="summary.json", record=RECORD_FILE)
        self.outcome = judge_outcome(self, record)
        self.finished_at = iso(utc_now())
        self._write_record()
        _show_record(self.redactor.data(jsonable(
            {"version": TRAIL_VERSION, "run": self.folder.name, "runbook": self.runbook,
             "target": self.params.target, "outcome": self.outcome.outcome, "ok": self.outcome.ok,
             "status": self.outcome.status, "summary": record.summary})), self.outcome.status)
        return self.outcome

    def close(self) -> None:
        """Copy the executed notebook and its HTML into the folder; raise unless it succeeded."""
        if self.outcome is None:
            self.finish()
        assert self.outcome is not None
        self._copy_notebook()
        print(f"audit trail: {self.folder}/")
        if not self.outcome.ok:
            raise RolloutNotPromoted(f"{self.runbook}: {self.outcome.status} (audit trail: {self.folder}/)",
                                     self.outcome.outcome, str(self.folder))

    def _copy_notebook(self) -> None:
        if self.folder is None:
            return
        source = notebook_output_path(self.notebook_hint)
        if source is None or not source.is_file():
            note = {"copied": False, "why": "the executed notebook's path is unknown: run it with "
                    "`deploysim run` or the papermill command line"}
            self._write_record(notebook=note)
            return
        target = (self.folder / f"{self.runbook}.ipynb").resolve()
        if source.resolve() == target:
            files = {"ipynb": target.name}
        else:
            files = export_notebook(source, self.folder, self.runbook, self.redactor)
        self._write_record(notebook={"copied": True, **files, "complete": False,
                                     "note": "copied while its last cell ran; that cell's output is not in it"})

    def _need_record(self) -> Record:
        if self.record is None:
            raise ParameterError("no record yet: call run.execute() first")
        return self.record


def _show_png(path: Path) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(Image(filename=str(path)))


def _show_record(data: dict[str, Any], text: str) -> None:
    """The structured result as a versioned mimetype, with the status as plain text."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(text)
        return
    if get_ipython() is None:
        print(text)
        return
    display({RECORD_MIMETYPE: data, "text/plain": text}, raw=True)


def notebook_output_path(hint: str | None = None) -> Path | None:
    """Where papermill is writing the executed notebook, seen from inside its kernel.

    In order: ``PAPERMILL_OUTPUT_PATH`` (papermill --inject-output-path), the path
    ``deploysim run`` gives in ``$DEPLOYSIM_NOTEBOOK``, then the command line of the papermill
    process that started this kernel (plain ``papermill in.ipynb out.ipynb``).
    """
    if hint:
        return Path(hint)
    if os.environ.get(ENV_NOTEBOOK):
        return Path(os.environ[ENV_NOTEBOOK])
    return _papermill_cli_output()


def _papermill_cli_output() -> Path | None:
    try:
        import psutil

        parent = psutil.Process(os.getppid())
        argv, cwd = parent.cmdline(), parent.cwd()
    except Exception:  # noqa: BLE001 - no parent info: no copy, the record says so
        return None
    rest: list[str] | None = None
    for i, arg in enumerate(argv):
        if Path(arg).name == "papermill" and i > 0:
            rest = argv[i + 1:]
            break
        if arg == "-m" and argv[i + 1:i + 2] == ["papermill"]:
            rest = argv[i + 2:]
            break
    if rest is None:
        return None
    try:
        from papermill.cli import papermill as command

        ctx = command.make_context("papermill", list(rest), resilient_parsing=True)
    except Exception:  # noqa: BLE001
        return None
    out = ctx.params.get("output_path")
    if not out or out == "-" or "://" in str(out):
        return None
    path = Path(out)
    return path if path.is_absolute() else Path(cwd) / path


# --- validation: the first cell after the parameters -----------------------------------------


def prepare(params: RunbookParameters, given: dict[str, Any] | None = None,
            notebook_hint: str | None = None) -> RunbookRun:
    scenario, setters = build_scenario(params)
    plan = build_plan(params, scenario)
    check_target(params.target)
    given = dict(given if given is not None else params.model_dump(exclude_unset=True))
    return RunbookRun(runbook=params.runbook, params=params, given=given, scenario=scenario, plan=plan,
                      redactor=Redactor.from_parameters(params.model_dump()), setters=setters,
                      notebook_hint=notebook_hint)


def validate_parameters(runbook: str, namespace: Mapping[str, Any]) -> RunbookRun:
    """Check every parameter before anything happens; the run, ready to start.

    ``namespace`` is the notebook's ``globals()`` (the names papermill injected are read
    from the kernel's history) or a plain mapping of parameters.
    """
    model = parameter_model(runbook)
    allowed = list(model.model_fields)
    names = injected_names(namespace)
    if names is None:  # a plain mapping: every key is a given parameter
        names = set(namespace)
    unknown = sorted(names - set(allowed) - PAPERMILL_NAMES)
    if unknown:
        raise _unknown_error(model.runbook, unknown, allowed)
    values = {k: namespace[k] for k in allowed if k in namespace}
    try:
        params = model.model_validate(values)
    except ValidationError as exc:
        raise _parameter_error(exc) from None
    # given: what papermill injected, and (run by hand) what differs from the defaults
    defaults = {k: f.default for k, f in model.model_fields.items()}
    given = {k: values[k] for k in allowed if k in values and (k in names or values[k] != defaults[k])}
    hint = namespace.get("PAPERMILL_OUTPUT_PATH")
    return prepare(params, given, hint if isinstance(hint, str) else None)


# --- deploysim run: papermill's Python API with the same parameters --------------------------


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def find_runbook(name: str) -> Path:
    """A runbook by name (``canary``, ``blue-green``) or path (``runbooks/canary.ipynb``)."""
    path = Path(name)
    if path.suffix == ".ipynb":
        if path.is_file():
            return path
        raise ParameterError(f"runbook {name!r}: no such file")
    stem = name.replace("-", "_")
    for base in (Path.cwd() / "runbooks", repo_root() / "runbooks"):
        if (base / f"{stem}.ipynb").is_file():
            return base / f"{stem}.ipynb"
    raise ParameterError(f"runbook {name!r}: not found; allowed: {', '.join(RUNBOOKS)} or a path to a .ipynb")


def resolve_value(value: str) -> Any:
    """papermill's reading of ``-p NAME VALUE``: True, False, None, int, float, else text."""
    if value in ("True", "False"):
        return value == "True"
    if value == "None":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


@dataclass
class RunResult:
    """What ``deploysim run`` reports: the folder, the outcome, the notebook's error if any."""

    folder: Path | None
    outcome: str | None
    ok: bool
    status: str
    error_name: str | None = None


def run_notebook(runbook: str, parameters: dict[str, Any], log_output: bool = False) -> RunResult:
    """Execute a runbook with papermill; the audit folder gets the final notebook and HTML.

    papermill writes the executed notebook into a private temporary folder (it holds the
    parameters as given, secrets included); a redacted copy goes into the run folder.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = find_runbook(runbook)
    name = path.stem
    model = PARAMETER_MODELS.get(name)
    default_dir = model.model_fields["record_dir"].default if model else "runs"
    record_dir = parameters.get("record_dir", default_dir)
    folder = (Path(str(record_dir)) / run_name(name)).resolve()
    redactor = Redactor.from_parameters(parameters)
    error: PapermillExecutionError | None = None
    with tempfile.TemporaryDirectory(prefix="deploysim-run-") as tmp:
        out = Path(tmp) / f"{name}.ipynb"
        saved = {k: os.environ.get(k) for k in (ENV_RUN_DIR, ENV_NOTEBOOK)}
        os.environ[ENV_RUN_DIR] = str(folder)
        os.environ[ENV_NOTEBOOK] = str(out)
        try:
            papermill.execute_notebook(str(path), str(out), parameters=parameters, progress_bar=False,
                                       log_output=log_output)
        except PapermillExecutionError as exc:
            error = exc
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        if folder.is_dir() and out.is_file():
            files = export_notebook(out, folder, name, redactor)
            data = read_record(folder)
            data["run"]["notebook"] = {"copied": True, **files, "complete": True}
            write_json(folder / RECORD_FILE, redactor.data(data))
    if not folder.is_dir():
        message = redactor.text(error.evalue) if error else "the runbook did not start a run"
        return RunResult(None, None, False, message, error.ename if error else None)
    run = read_record(folder)["run"]
    if error is not None and error.ename != "RolloutNotPromoted" and run.get("outcome") in (RUNNING, None):
        run["status"] = f"{error.ename}: {redactor.text(error.evalue)}"
    return RunResult(folder, run.get("outcome"), bool(run.get("ok")) and error is None, run.get("status", ""),
                     error.ename if error else None)


def _collect_parameters(args: argparse.Namespace) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for file in args.parameters_file or []:
        try:
            parameters.update(yaml.safe_load(Path(file).read_text()) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise ParameterError(f"-f {file}: cannot read YAML parameters ({exc})") from None
    for text in args.parameters_yaml or []:
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ParameterError(f"-y {text!r}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise ParameterError(f"-y {text!r}: expected a mapping like '{{candidate: {{error_rate: 0.05}}}}'")
        parameters.update(loaded)
    for name, value in args.parameters or []:
        parameters[name] = resolve_value(value)
    for name, value in args.parameters_raw or []:
        parameters[name] = value
    return parameters


def cmd_run(args: argparse.Namespace) -> int:
    if args.help_notebook:
        import papermill

        path = find_runbook(args.runbook)
        for name, p in papermill.inspect_notebook(str(path)).items():
            print(f"  {name}: {p['inferred_type_name']} (default {p['default']})  {p['help']}")
        return 0
    parameters = _collect_parameters(args)
    if args.record_dir:
        parameters["record_dir"] = args.record_dir
    result = run_notebook(args.runbook, parameters, log_output=args.log_output)
    if result.folder is None:
        print(f"deploysim: error: {result.status}", file=sys.stderr)
        return 2 if result.error_name in ("ParameterError", "TargetUnavailable", "ScenarioError") else 1
    print(result.status)
    print(f"audit trail: {result.folder}/")
    return 0 if result.ok else 1


def add_run_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute a runbook with papermill; leaves an audit folder",
                       description="Execute a runbook (rolling, canary, blue_green, rollback or a path) "
                       "through papermill with the same parameters as the papermill command line. Exit "
                       "0 when it succeeded, 1 when the rollout was rolled back, failed or paused, 2 for "
                       "a parameter error.")
    p.add_argument("runbook", help="rolling, canary, blue_green, rollback, or a path to a .ipynb")
    p.add_argument("-p", "--parameters", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a parameter (read like papermill: numbers, True/False/None)")
    p.add_argument("-r", "--parameters_raw", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a parameter as text")
    p.add_argument("-y", "--parameters_yaml", action="append", metavar="YAML",
                   help="parameters as a YAML mapping, e.g. \"{candidate: {error_rate: 0.05}}\"")
    p.add_argument("-f", "--parameters_file", action="append", metavar="FILE", help="parameters from a YAML file")
    p.add_argument("--record-dir", help="where the audit folder goes (the record_dir parameter)")
    p.add_argument("--log-output", action="store_true", help="echo the notebook's output as it runs")
    p.add_argument("--help-notebook", action="store_true", help="list the runbook's parameters")
    p.set_defaults(func=cmd_run)
