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

from deploysim.errors import ClusterError
from deploysim.plan import Plan
from deploysim.record import Record
from deploysim.scenario import Scenario


class _NoMetrics:
    """Analysis without a metrics source: every measurement is a provider error."""

    def measure(self, start: float, end: float):  # noqa: ANN201
        from deploysim.analysis.measurement import Measurement

        return Measurement(start, end, error="no metrics source: give prometheus_url")


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
    from deploysim.kube.driver import execute
    from deploysim.kube.world import KubeWorld

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
    if target.prometheus_url:
        from deploysim.analysis.providers import PrometheusProvider

        provider: Any = PrometheusProvider(target.prometheus_url, scenario.service, namespace=target.namespace,
                                           token=target.prometheus_token, step=scenario.resolution)
    else:
        provider = _NoMetrics()
    run = execute(plan, scenario, api, target.namespace, provider, run_id, approve_after=approve_after,
                  timeout=timeout, resume=resume,
                  on_decision=(lambda d: on_decision(d.to_dict())) if on_decision else None)
    record = run.record
    record.changes = run.changes
    record.status = {**record.status, "context": context, "run_id": run.run_id, "resumed": run.resumed}
    return record
