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
    specs = plan.analyses()
    from deploysim.providers.evaluate import needs_window

    # an analysis of team metrics alone reads their sources, not the standard window
    analyses = [spec.name for spec in specs if needs_window(spec)]
    if config.kind == "none" and analyses:
        raise ParameterError(
            f"parameter 'prometheus_url': got None and no probe_urls; analysis {analyses[0]!r} of the "
            f"{plan.strategy} plan needs metrics: give prometheus_url (a Prometheus scraping "
            "deploysim_requests_total) or probe_urls ({stable: URL, candidate: URL}, HTTP probes)")
    return config


def _analysis_sources(metrics: ProviderConfig, target: Any, scenario: Scenario, plan: Plan, api: Any,
                      world: Any) -> tuple[Any, list[str]]:
    """The run's metrics source: the standard window, plus the team metrics of the plan's
    analyses with their args and Secrets resolved now, so a missing one stops the run before
    the cluster changes. Returns the provider and one line per team metric as it will be sent."""
    from deploysim.providers.evaluate import AnalysisSources, EvalContext, TeamMetrics

    window = provider_for(metrics)
    specs = plan.analyses()
    foreign = [f"{spec.name}: {m}" for spec in specs for m in spec.foreign_metrics]
    if foreign:
        window.close()
        raise ParameterError(
            f"analysis metric {foreign[0]}: deploysim runs prometheus and web metrics on a cluster; "
            "drop it, mark it dryRun, or run the analysis where its provider is")
    if not any(spec.metrics for spec in specs):
        return window, []
    # {{ ingress }} / {{ route }}: the object the world splits, i.e. the route parameter, else the
    # manifest's (Argo's stableIngress or httpRoute), else the service's name; the parameter alone
    # would leave them empty for a route named only in the manifest
    route = getattr(world, "route", None) or target.route or ""
    team = TeamMetrics(
        EvalContext(target.namespace, scenario.service, world.candidate_workload(), ingress=route, route=route),
        prometheus_url=target.prometheus_url, prometheus_token=target.prometheus_token,
        read_secret=secret_reader(api, target.namespace))
    try:
        lines = team.preflight(plan)
    except Exception:
        team.close()
        window.close()
        raise
    return AnalysisSources(window, team), lines


def secret_reader(api: Any, namespace: str) -> Callable[[str, str], str]:
    """Read one key of a Secret in ``namespace`` (an Argo ``secretKeyRef`` arg, a Flagger
    ``secretRef``); a missing key is a KeyError, a missing Secret a ClusterError."""
    import base64

    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)

    def read(name: str, key: str) -> str:
        try:
            secret = core.read_namespaced_secret(name, namespace, _request_timeout=10)
        except ApiException as exc:
            raise ClusterError(f"cannot read Secret {namespace}/{name}: HTTP {exc.status} {exc.reason}") from None
        data = secret.data or {}
        if key not in data:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()

    return read


def api_client(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """A client for the named context, after checking that the kubeconfig has it."""
    import yaml
    from kubernetes import config

    where = kubeconfig or "$KUBECONFIG / ~/.kube/config"
    # a damaged file (not YAML, no contexts, a context naming a missing user) is a ClusterError
    # naming the file, whichever of the two reads finds it
    unreadable = (config.ConfigException, yaml.YAMLError, OSError, TypeError, KeyError, AttributeError)
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except unreadable as exc:
        raise ClusterError(f"cannot read kubeconfig {where}: {type(exc).__name__}: {exc}") from None
    names = [c["name"] for c in contexts]
    if context is not None and context not in names:
        raise ClusterError(f"context {context!r} is not in the kubeconfig; it has: {', '.join(names)}")
    chosen = context or active["name"]
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=chosen)
    except unreadable as exc:
        raise ClusterError(f"cannot read kubeconfig {where} (context {chosen!r}): {type(exc).__name__}: {exc}") from None
    return with_timeout(api), chosen


#: (connect, read) seconds for an API request that names no timeout of its own. The client
#: passes ``None`` to urllib3 otherwise, which waits for ever on a server that accepted the
#: connection and stopped answering (a frozen kube-apiserver, a half-open connection).
REQUEST_TIMEOUT = (5.0, 60.0)


def with_timeout(api: Any, timeout: tuple[float, float] = REQUEST_TIMEOUT) -> Any:
    """``api`` whose every request without a ``_request_timeout`` gets ``timeout``."""
    rest = api.rest_client
    request = rest.request

    def timed(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = timeout
        return request(*args, **kwargs)

    rest.request = timed
    return api


def changed_objects(world: Any) -> list[tuple[str, str]]:
    """The objects a run has changed so far, as (kind, name): the candidate's Deployment first
    (it changes at the first step), then each object of ``world.changes`` in the order changed."""
    from deploysim.kube import naming as n

    first = (world.slot_deployment(n.other_slot(world.stable_slot_cached())) if world.two_slots
             else str(world.workload))
    objects = [("Deployment", first)]
    for change in world.changes:
        kind, _, name = change.object.partition("/")
        if name and (kind, name) not in objects:
            objects.append((kind, name))
    return objects


def run_notifier(target: Any, scenario: Scenario, plan: Plan, run_id: str, api: Any = None,
                 objects: Callable[[], list[tuple[str, str]]] | None = None) -> Any:
    """The run's :class:`~deploysim.notify.Notifier`: Events through ``api`` (unless the
    target's ``events`` is off), Grafana and the webhooks the target names."""
    from deploysim.notify import Notifier, NotifyConfig, RunContext, Webhook, sinks_for

    config = NotifyConfig(
        events=bool(getattr(target, "events", True)), grafana_url=getattr(target, "grafana_url", None),
        grafana_token=getattr(target, "grafana_token", None),
        grafana_dashboard_uid=getattr(target, "grafana_dashboard_uid", None),
        webhooks=tuple(Webhook(w["url"], w.get("kind", "generic"), dict(w.get("headers") or {}))
                       for w in getattr(target, "webhooks", ())))
    return Notifier(sinks_for(config, api, target.namespace), RunContext.of(scenario, plan, target.namespace, run_id),
                    objects=objects)


def execute_plan(
    scenario: Scenario,
    plan: Plan,
    target: Any,
    run_id: str | None = None,
    approve_after: float | None = 0.0,
    on_decision: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
    resume: bool | None = None,
) -> Record:
    """Run ``plan`` on the cluster ``target`` names (a runbook's KubeTarget) and return its record."""
    from deploysim.kube.execute import OUTAGE_LIMIT, execute
    from deploysim.kube.store import LEASE_SECONDS
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
    provider, metric_lines = _analysis_sources(metrics, target, scenario, plan, api, world)
    for line in metric_lines:
        print(f"  {line}")
    # Events, Grafana and webhooks hear each decision from queues of their own: never waited for
    notifier = run_notifier(target, scenario, plan, run_id, api, objects=lambda: changed_objects(world))

    def decided(decision: Any) -> None:
        notifier.rename(world.run_id)  # a resumed run takes the earlier run's id
        notifier.decision(decision.to_dict())
        if on_decision is not None:
            on_decision(decision.to_dict())

    try:
        # the world that passed the preflight is the world the run changes
        record = execute(world, provider, approve_after=approve_after, timeout=timeout,
                         resume=bool(getattr(target, "resume", False)) if resume is None else resume,
                         on_decision=decided,
                         outage_limit=getattr(target, "api_outage_seconds", OUTAGE_LIMIT),
                         lease_seconds=getattr(target, "lease_seconds", LEASE_SECONDS))
    except BaseException as exc:
        from deploysim.redact import redact_text

        _notifications(notifier, None, error=redact_text(f"{type(exc).__name__}: {exc}")[:300])
        raise
    finally:
        provider.close()
    record.status = {**record.status, "context": context,
                     "notifications": _notifications(notifier, record.summary.get("outcome"))}
    return record


def _notifications(notifier: Any, outcome: str | None, error: str | None = None) -> dict[str, Any]:
    """Close the run's notifier (a bounded wait) and say what did not get through."""
    from deploysim.notify import summary_line

    report = notifier.close(outcome=outcome, error=error)
    line = summary_line(report)
    if line:
        print(line)
    return report
