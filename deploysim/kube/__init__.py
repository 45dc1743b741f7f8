"""The real world: a Kubernetes cluster reached through the official client.

:func:`execute_plan` is what a runbook with ``target: kubernetes`` calls: it checks the
context and the objects before touching anything, says what it will change, drives the
plan with the same controller as the simulator, and returns the same record (plus every
API change it made).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from deploysim.errors import ClusterError, MetricsConfigError, ParameterError
from deploysim.plan import Plan
from deploysim.providers import ProviderConfig, provider_for
from deploysim.record import Record
from deploysim.scenario import Scenario

#: ProviderConfig settings -> the runbook parameter a person sets for each
METRICS_PARAMETERS = {"metrics.kind": "metrics", "metrics.url": "prometheus_url",
                      "metrics.probe_urls": "probe_urls"}


def metrics_config(target: Any, scenario: Scenario, plan: Plan) -> ProviderConfig:
    """The metrics source a runbook's target names: its ``metrics`` kind, or with ``auto``
    Prometheus when ``prometheus_url`` is given, else HTTP probes when ``probe_urls`` are.

    A plan whose analysis needs metrics with no source configured is a
    :class:`~deploysim.errors.ParameterError` naming the parameters to set, raised before
    any cluster is touched.
    """
    from deploysim.plan import Analyze

    kind = target.metrics
    probe_urls = dict(target.probe_urls or {})
    if kind == "auto":
        kind = "prometheus" if target.prometheus_url else "http" if probe_urls else "none"
    try:
        config = ProviderConfig(
            kind, url=target.prometheus_url, token=target.prometheus_token, service=scenario.service,
            namespace=target.namespace, step=scenario.resolution, probe_urls=probe_urls,
            reason="no metrics source: give prometheus_url or probe_urls")
    except MetricsConfigError as exc:
        key, _, rest = str(exc).partition(":")
        raise ParameterError(f"parameter {METRICS_PARAMETERS.get(key, key)!r}:{rest}") from None
    analyses = [s.analysis.name for s in plan.steps if isinstance(s, Analyze)]
    analyses += [plan.background.name] if plan.background is not None else []
    if config.kind == "none" and analyses:
        raise ParameterError(
            f"parameter 'prometheus_url': got None and no probe_urls; analysis {analyses[0]!r} of the "
            f"{plan.strategy} plan needs metrics: give prometheus_url (a Prometheus scraping "
            "deploysim_requests_total) or probe_urls ({stable: URL, candidate: URL}, HTTP probes)")
    return config


def api_client(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """A client for the named context, after checking that the kubeconfig has it."""
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except config.ConfigException as exc:
        raise ClusterError(f"cannot read kubeconfig {kubeconfig or '$KUBECONFIG / ~/.kube/config'}: {exc}") from None
    names = [c["name"] for c in contexts]
    if context is not None and context not in names:
        raise ClusterError(f"context {context!r} is not in the kubeconfig; it has: {', '.join(names)}")
    chosen = context or active["name"]
    return config.new_client_from_config(config_file=kubeconfig, context=chosen), chosen


def execute_plan(
    scenario: Scenario,
    plan: Plan,
    target: Any,
    run_id: str | None = None,
    approve_after: float | None = 0.0,
    on_decision: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
    resume: bool = False,
) -> Record:
    """Run ``plan`` on the cluster ``target`` names (a runbook's KubeTarget) and return its record."""
    from deploysim.kube.execute import execute
    from deploysim.kube.world import KubeWorld

    metrics = metrics_config(target, scenario, plan)  # a missing source fails before the cluster is touched
    api, context = api_client(target.kubeconfig, target.context)
    run_id = run_id or uuid.uuid4().hex[:12]
    world = KubeWorld(api, target.namespace, scenario, plan, run_id, workload=target.workload,
                      second_workload=target.candidate_workload, route=target.route)
    try:
        lines = world.preflight()
    except Exception as exc:
        if isinstance(exc, ClusterError):
            raise
        raise ClusterError(f"cannot reach the cluster of context {context!r}: {exc}") from None
    print(f"context {context}: will change")
    for line in lines:
        print(f"  {line}")
    provider = provider_for(metrics)
    try:
        # the world that passed the preflight is the world the run changes
        record = execute(world, provider, approve_after=approve_after, timeout=timeout, resume=resume,
                         on_decision=(lambda d: on_decision(d.to_dict())) if on_decision else None)
    finally:
        provider.close()
    record.status = {**record.status, "context": context}
    return record
