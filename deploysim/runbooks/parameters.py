"""A runbook's parameters: one pydantic model per runbook, and its ``parameters`` cell.

Every name, type and value is checked before anything happens; the models are also where
the parameters cell of each notebook comes from, so papermill's ``--help-notebook`` and the
checks never disagree.

>>> params, given = read_parameters("rolling", {"duration": "20m"}, {"duration"})
>>> params.duration, given
('20m', {'duration': '20m'})
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from deploysim.durations import parse_duration
from deploysim.errors import ParameterError
from deploysim.notify.settings import HttpUrl, WebhookList
from deploysim.redact import REDACTED, is_secret_name
from deploysim.release.parameters import GROUP_TITLE, ReleaseParameters
from deploysim.scenario import IntOrPercent, scenario_error

RUNBOOKS = ("rolling", "canary", "blue_green", "rollback")
TARGETS = ("sim", "kubernetes")
# the versions an HTTP probe URL can be given for
VERSIONS = ("stable", "candidate")
# names papermill itself may inject (--inject-paths); allowed, never parameters of ours
PAPERMILL_NAMES = frozenset({"PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH"})

GROUPS = {
    "run": "What to run, where, and where the record goes",
    "release": GROUP_TITLE,
    "strategy": "The strategy's own knobs (None = the scenario's value)",
    "scenario": "Scenario sections, merged into the scenario (pass mappings and lists with -y or -f)",
    "kubernetes": "target kubernetes: the cluster and the workloads (ignored by target sim)",
    "notify": "target kubernetes: the run's decisions as Kubernetes Events, Grafana annotations, webhooks (sim: none)",
}


def _p(default: Any, help: str, shown: str, group: str) -> Any:
    """A parameter: its default, its help (the trailing comment papermill shows), the type
    papermill's --help-notebook shows, and its group in the parameters cell."""
    return Field(default, description=help, json_schema_extra={"shown": shown, "group": group})


def _duration_or_none(value: Any) -> Any:
    if value is None:
        return None
    parse_duration(value)  # rejects true/false too, saying what a duration looks like
    return value


# a duration as given (kept as given for the record), checked by the one duration parser
Duration = Annotated[StrictStr | StrictInt | float, BeforeValidator(_duration_or_none)]


class RunbookParameters(ReleaseParameters):
    """Parameters every runbook takes (the release's, :mod:`deploysim.release.parameters`, too).
    Unknown names, wrong types and bad values are errors."""

    model_config = ConfigDict(extra="forbid")
    runbook: ClassVar[str] = ""
    strategy_kind: ClassVar[str] = ""

    def kinds(self) -> tuple[str, ...]:
        """The strategy kind these parameters roll out."""
        return (self.strategy_kind,)

    @classmethod
    def accepts(cls, kind: str) -> bool:
        """Whether a manifest of this strategy kind can run in this runbook."""
        return kind == cls.strategy_kind

    target: Literal["sim", "kubernetes"] = _p(
        "sim", "sim (the rehearsal world) or kubernetes (a real cluster)", "str", "run")
    scenario: StrictStr | None = _p(
        None, "scenario YAML file; None: the built-in scenario", "Optional[str]", "run")
    manifest: StrictStr | list[StrictStr] | None = _p(
        None, "Argo Rollout / Flagger Canary / Deployment YAML (a path or a list); the strategy comes from it",
        "Optional[str]", "run")
    manifest_name: StrictStr | None = _p(
        None, "which Rollout / Canary / Deployment of the manifest files (metadata.name); None: the one there is",
        "Optional[str]", "run")
    image: StrictStr | None = _p(
        None, "the candidate's image: a semver tag or a digest, never latest; None: the scenario's",
        "Optional[str]", "run")
    approve: StrictStr | StrictInt | float = _p(
        "auto", "manual gates: auto, never (stop there, exit non-zero), or a duration (approve after it)",
        "str", "run")
    approve_inconclusive: StrictStr | StrictInt | float = _p(
        "never", "a pause on an inconclusive analysis: never (a person decides), auto, or a duration; "
        "the record says when it was used", "str", "run")
    seed: StrictInt | None = _p(None, "random seed of the sim world; None: the scenario's", "Optional[int]", "run")
    record_dir: StrictStr = _p(
        "runs", "audit trail: one folder RECORD_DIR/<UTC time>-<runbook>-<id>/ per run", "str", "run")
    reason: StrictStr = _p("", "why this run (a ticket, an incident); kept in the audit trail", "str", "run")

    service: StrictStr | None = _p(None, "service name; None: the scenario's", "Optional[str]", "scenario")
    replicas: StrictInt | None = _p(None, "replicas; None: the scenario's", "Optional[int]", "scenario")
    duration: Duration | None = _p(
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
    metrics: Literal["auto", "prometheus", "http", "none"] = _p(
        "auto", "where analysis reads metrics: auto (prometheus_url if given, else probe_urls), prometheus, http or none",
        "str", "kubernetes")
    prometheus_url: StrictStr | None = _p(
        None, "Prometheus for analysis; None: the HTTP probes of probe_urls", "Optional[str]", "kubernetes")
    prometheus_token: StrictStr | None = _p(
        None, "bearer token for Prometheus (redacted in the trail); None: $DEPLOYSIM_PROMETHEUS_TOKEN",
        "Optional[str]", "kubernetes")
    probe_urls: dict[str, StrictStr] = _p(
        {}, "HTTP probes without Prometheus, e.g. -y '{probe_urls: {stable: URL, candidate: URL}}'",
        "dict", "kubernetes")
    resume: StrictBool = _p(
        False, "continue the run stored on the cluster (ConfigMap deploysim-<service>) where it stopped; "
        "finished steps are not repeated", "bool", "kubernetes")
    lease_seconds: StrictInt = _p(
        60, "how long a run's Lease holds the service after its last renewal (a killed run's, until a "
        "resume may take over)", "int", "kubernetes")
    api_outage_seconds: Duration = _p(
        "2m", "how long the Kubernetes API may be out of reach before the run rolls back (as soon as it "
        "answers)", "str", "kubernetes")
    events: StrictBool = _p(True, "Kubernetes Events (RolloutStarted, RolloutAborted, ...) on the objects it changes", "bool", "notify")
    grafana_url: HttpUrl | None = _p(None, "Grafana: a region over the rollout, a point at an abort; None: no annotations", "Optional[str]", "notify")
    grafana_token: StrictStr | None = _p(None, "Grafana token, sent as Bearer, redacted; None: $DEPLOYSIM_GRAFANA_TOKEN", "Optional[str]", "notify")
    grafana_dashboard_uid: StrictStr | None = _p(None, "the annotations' dashboard; None: organization-wide", "Optional[str]", "notify")
    webhooks: WebhookList = _p([], "each notice POSTed to each: [{url: URL, kind: generic or slack, headers: {}}]", "list", "notify")

    @field_validator("lease_seconds")
    @classmethod
    def _lease_seconds(cls, value: int) -> int:
        if not 5 <= value <= 3600:
            raise ValueError("must be whole seconds from 5 to 3600")
        return value

    @field_validator("api_outage_seconds")
    @classmethod
    def _api_outage(cls, value: Any) -> Any:
        if not 1 <= parse_duration(value) <= 86400:
            raise ValueError("must be a duration from 1s to 24h, e.g. 2m")
        return value

    @field_validator("approve", "approve_inconclusive", mode="before")
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

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) or len(value) > 63:
            raise ValueError("must be a DNS label: lower-case letters, digits and '-', at most 63")
        return value

    @field_validator("probe_urls")
    @classmethod
    def _probe_urls(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(VERSIONS))
        if unknown:
            raise ValueError(f"keys must be {' and/or '.join(VERSIONS)}, each with a URL; not {', '.join(unknown)}")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None:
            immutable_image(value)
        return value

    # the strategy's knobs: scenario.strategy key -> the parameter that sets it unless None
    knobs: ClassVar[dict[str, str]] = {}

    def strategy_updates(self, strategy: dict[str, Any]) -> dict[str, str]:
        """Apply this runbook's knobs to the scenario's strategy data; returns key -> parameter."""
        used: dict[str, str] = {}
        for key, param in self.knobs.items():
            _set(strategy, used, key, param, getattr(self, param))
        return used


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
    knobs: ClassVar[dict[str, str]] = {
        "max_surge": "max_surge", "max_unavailable": "max_unavailable", "min_ready_seconds": "min_ready_seconds",
        "progress_deadline_seconds": "progress_deadline", "background_analysis": "background_analysis"}

    max_surge: IntOrPercent | None = _p(
        None, "pods above replicas during the update: a number or a percentage like 25%",
        "Optional[Union[int, str]]", "strategy")
    max_unavailable: IntOrPercent | None = _p(
        None, "pods that may be unavailable: a number or a percentage", "Optional[Union[int, str]]", "strategy")
    min_ready_seconds: Duration | None = _p(
        None, "a pod counts as available this long after it is ready, e.g. 10s", "Optional[str]", "strategy")
    progress_deadline: Duration | None = _p(
        None, "no progress for this long fails the rollout, e.g. 10m", "Optional[str]", "strategy")
    background_analysis: bool | None = _p(
        None, "analyse the candidate while rolling; a failure rolls back", "Optional[bool]", "strategy")
    deployment_strategy: Literal["RollingUpdate", "Recreate"] = _p(
        "RollingUpdate", "the Deployment's spec.strategy.type: RollingUpdate, or Recreate (every old pod "
        "goes before a new one starts)", "str", "strategy")

    def kinds(self) -> tuple[str, ...]:
        return ("recreate",) if self.deployment_strategy == "Recreate" else ("rolling",)

    @classmethod
    def accepts(cls, kind: str) -> bool:
        return kind in ("rolling", "recreate")


class CanaryParameters(RunbookParameters):
    runbook: ClassVar[str] = "canary"
    strategy_kind: ClassVar[str] = "canary"
    knobs: ClassVar[dict[str, str]] = {"traffic_router": "traffic_router", "router": "router"}

    steps: list[Any] | None = _p(
        None, "all steps, Argo style: [{set_weight: 10}, {pause: 1m}, {analysis: true}]; None: the scenario's",
        "Optional[list]", "strategy")
    weights: list[StrictInt] | None = _p(
        None, "shorthand for steps: each weight, then step_pause, then analysis, e.g. [10, 50]",
        "Optional[list]", "strategy")
    step_pause: Duration | None = _p(
        None, "how long each timed pause holds, e.g. 1m (weights: default 2m)", "Optional[str]", "strategy")
    step_analysis: bool = _p(True, "analyse after each pause; False drops the analysis steps", "bool", "strategy")
    manual_gate: bool = _p(
        False, "wait for approval (see approve) before the final 100% step", "bool", "strategy")
    router: Literal["gateway-httproute", "nginx-ingress"] | None = _p(
        None, "with a traffic router on a cluster: gateway-httproute (an HTTPRoute) or nginx-ingress "
        "(a canary Ingress beside the stable one, named by route)", "Optional[str]", "strategy")
    traffic_router: bool | None = _p(
        None, "exact weights through a router; False: weight by replica share", "Optional[bool]", "strategy")

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
        return {**used, **super().strategy_updates(strategy)}


def _timed_pause(step: Any) -> bool:
    return isinstance(step, dict) and "pause" in step and step["pause"] is not None


class BlueGreenParameters(RunbookParameters):
    runbook: ClassVar[str] = "blue_green"
    strategy_kind: ClassVar[str] = "blue-green"
    knobs: ClassVar[dict[str, str]] = {
        "preview_replicas": "preview_replicas", "auto_promotion_seconds": "auto_promotion",
        "scale_down_delay_seconds": "scale_down_delay", "preview_rps": "preview_rps",
        "pre_promotion_analysis": "pre_promotion_analysis", "post_promotion_analysis": "post_promotion_analysis"}

    preview_replicas: StrictInt | None = _p(
        None, "pods of the new colour before the switch; None: all replicas", "Optional[int]", "strategy")
    auto_promotion: Duration | None = _p(
        None, "hold the preview this long before switching, e.g. 2m", "Optional[str]", "strategy")
    manual_gate: bool = _p(False, "wait for approval (see approve) before switching", "bool", "strategy")
    scale_down_delay: Duration | None = _p(
        None, "keep the old colour this long after the switch (instant rollback)", "Optional[str]", "strategy")
    preview_rps: float | None = _p(
        None, "test traffic sent to the preview, requests per second", "Optional[float]", "strategy")
    pre_promotion_analysis: bool | None = _p(
        None, "analyse the preview before switching", "Optional[bool]", "strategy")
    post_promotion_analysis: bool | None = _p(
        None, "analyse after switching; a failure switches back", "Optional[bool]", "strategy")

    def strategy_updates(self, strategy: dict[str, Any]) -> dict[str, str]:
        if self.manual_gate and self.auto_promotion is not None:
            raise ParameterError("parameters 'manual_gate' and 'auto_promotion': give one of them, not both")
        used = super().strategy_updates(strategy)
        if self.manual_gate:
            strategy["auto_promotion_seconds"] = None
            used["auto_promotion_seconds"] = "manual_gate"
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
    verify: Duration = _p(
        "5m", "after the rollback the metrics must meet the analysis checks this long", "str", "strategy")

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


def read_parameters(runbook: str, values: Mapping[str, Any],
                    names: set[str]) -> tuple[RunbookParameters, dict[str, Any]]:
    """The runbook's parameters from ``values``, and the ones given (not left at default).

    ``names`` are the names the caller set (papermill's injected ones, or a mapping's keys):
    one the runbook does not take is an error naming the closest it does.
    """
    model = parameter_model(runbook)
    allowed = list(model.model_fields)
    unknown = sorted(names - set(allowed) - PAPERMILL_NAMES)
    if unknown:
        raise _unknown_error(model.runbook, unknown, allowed)
    known = {k: values[k] for k in allowed if k in values}
    try:
        params = model.model_validate(known)
    except ValidationError as exc:
        raise _parameter_error(exc) from None
    # given: what papermill injected, and (run by hand) what differs from the defaults
    defaults = {k: f.default for k, f in model.model_fields.items()}
    given = {k: v for k, v in known.items() if k in names or v != defaults[k]}
    return params, given


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
