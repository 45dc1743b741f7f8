"""From a runbook's parameters to what runs: the scenario, the plan, and the target world.

Each scenario key remembers which parameter set it, so an error in the built scenario names
the parameter a person typed, not the key deep inside it.
"""

from __future__ import annotations

import copy
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from deploysim.durations import parse_duration
from deploysim.errors import ManifestError, ParameterError, ScenarioError
from deploysim.plan import Plan
from deploysim.redact import REDACTED, is_secret_name
from deploysim.runbooks.parameters import RollbackParameters, RunbookParameters, immutable_image
from deploysim.scenario import (
    Scenario,
    apply_overrides,
    default_scenario_path,
    load_scenario,
    read_yaml,
)

if TYPE_CHECKING:
    from deploysim.record import Record

# scenario sections a parameter of the same name is merged into
SECTIONS = ("stable", "candidate", "traffic", "pod", "analysis")


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
    metrics: str = "auto"  # auto, prometheus, http or none (deploysim.providers' kinds)
    probe_urls: dict[str, str] = field(default_factory=dict)
    resume: bool = False  # continue the run stored on the cluster
    lease_seconds: int = 60  # how long a killed run's lease holds the service
    api_outage_seconds: float = 120.0  # API out of reach this long: roll back once it answers
    events: bool = True  # Kubernetes Events on the objects the run changes
    grafana_url: str | None = None
    grafana_token: str | None = field(default=None, repr=False)
    grafana_dashboard_uid: str | None = None
    webhooks: tuple[dict[str, Any], ...] = ()  # {url, kind, headers} each


def build_scenario(params: RunbookParameters) -> tuple[Scenario, dict[str, str]]:
    """The scenario the parameters describe, and which parameter set which scenario key."""
    setters: dict[str, str] = {}
    if params.manifest_name is not None and params.manifest is None:
        raise ParameterError("parameter 'manifest_name': picks a rollout among the manifest files; "
                             "give manifest too")
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
    for section in SECTIONS:
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
        strategy["kind"] = params.kinds()[0]
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
    data["approve_inconclusive"] = params.approve_inconclusive
    setters["approve_inconclusive"] = "approve_inconclusive"
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
        return importlib.import_module("deploysim.manifests")
    except ModuleNotFoundError:
        raise ParameterError(
            "parameter 'manifest': reading manifests needs deploysim.manifests (not available)"
        ) from None


def _scenario_from_manifests(params: RunbookParameters) -> dict[str, Any]:
    paths = _manifest_paths(params)
    try:
        scenario = _manifests_module().scenario_from_manifests(paths, scenario_path=params.scenario, overrides=[],
                                                               name=params.manifest_name)
    except (ManifestError, ScenarioError) as exc:
        raise ParameterError(f"parameter 'manifest': {exc}") from None
    if not params.accepts(scenario.strategy.kind):
        raise ParameterError(
            f"parameter 'manifest': describes a {scenario.strategy.kind} rollout; this is the "
            f"{params.runbook} runbook")
    return scenario.to_data()


def build_plan(params: RunbookParameters, scenario: Scenario) -> Plan:
    """The plan the runbook runs: compiled from the scenario, or read from the manifest."""
    from deploysim.strategies import compile_plan

    if params.manifest is not None:
        try:
            return _manifests_module().plan_from_manifests(_manifest_paths(params), scenario,
                                                           name=params.manifest_name)
        except ManifestError as exc:
            raise ParameterError(f"parameter 'manifest': {exc}") from None
    return compile_plan(scenario)


def kube_target(params: RunbookParameters, scenario: Scenario) -> KubeTarget:
    return KubeTarget(
        kubeconfig=params.kubeconfig, context=params.context, namespace=params.namespace,
        workload=params.workload or scenario.service, candidate_workload=params.candidate_workload,
        route=params.route, prometheus_url=params.prometheus_url,
        prometheus_token=params.prometheus_token or os.environ.get("DEPLOYSIM_PROMETHEUS_TOKEN"),
        image=scenario.candidate.image, metrics=params.metrics, probe_urls=dict(params.probe_urls),
        resume=params.resume, lease_seconds=params.lease_seconds,
        api_outage_seconds=parse_duration(params.api_outage_seconds),
        events=params.events, grafana_url=params.grafana_url,
        grafana_token=params.grafana_token or os.environ.get("DEPLOYSIM_GRAFANA_TOKEN"),
        grafana_dashboard_uid=params.grafana_dashboard_uid, webhooks=tuple(params.webhooks),
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
               "metrics": t.metrics, "prometheus_url": t.prometheus_url, "probe_urls": t.probe_urls,
               "image": t.image}
    status = record.status if record is not None else {}
    if status.get("context"):
        context["context_used"] = status["context"]  # the kubeconfig's current one when none was given
    if "resumed" in status:
        context["resumed"] = status["resumed"]
    if status.get("driver"):
        context["driver"] = status["driver"]  # the runbook's own time, apart from waiting on the cluster
    if status.get("outages"):
        context["outages"] = status["outages"]  # when the API was out of reach, and whether it rolled back
    if status.get("left"):
        context["left"] = status["left"]  # how a run cut off from the API left the cluster
    if not t.events:
        context["events"] = False
    if t.grafana_url:  # the Grafana token not at all
        context["grafana"] = {"url": t.grafana_url, "dashboard_uid": t.grafana_dashboard_uid}
    if t.webhooks:  # by host: a webhook's URL is often its own secret
        context["webhooks"] = [{"kind": w["kind"], "host": urlsplit(w["url"]).hostname} for w in t.webhooks]
    if status.get("notifications"):
        context["notifications"] = status["notifications"]  # what each sink sent, what failed and why
    return context
