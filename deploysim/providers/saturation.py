"""Saturation on a cluster: ``cpu``, ``memory`` and ``saturation`` per version, in PromQL over
the cAdvisor series (google/cadvisor metrics/prometheus.go) the kubelet serves for every
container, and the traffic exporter serves for KWOK's pods
(:mod:`deploysim.kube.traffic.resources`).

cAdvisor's series name a pod, not a version. A version's pods are selected as the standard
window selects its requests: by the ``version`` the exporter gives each ready pod, joined from
``deploysim_pod_info{service, namespace, pod, version}`` on ``(namespace, pod)``. Each
container's series are summed per pod first (a sidecar counts towards its pod), so, per
version over the last ``w`` seconds:

- ``cpu``: the mean over its pods of ``rate(container_cpu_usage_seconds_total[w])``, cores;
- ``memory``: the mean over its pods of ``avg_over_time(container_memory_working_set_bytes[w])``;
- ``saturation``: its pods' CPU used over their CPU limit (``container_spec_cpu_quota /
  container_spec_cpu_period``), or over their request (``container_spec_cpu_shares / 1024``)
  for a pod without a limit, summed over the version's pods, as the simulator divides it.

These queries run only for an analysis with a check on one of the three; an empty answer is
no value (the check is inconclusive), never 0.

>>> print(promql_resources('{service="web",namespace="shop"}', "shop", "[60s]")["cpu"])
avg by (version) (sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{namespace="shop",container!="",container!="POD"}[60s])) * on (namespace, pod) group_left (version) max by (namespace, pod, version) (deploysim_pod_info{service="web",namespace="shop"}))
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from deploysim.analysis.measurement import VersionWindow
from deploysim.rules.saturation import RESOURCE_METRICS, SHARES_PER_CPU

CPU_USAGE = "container_cpu_usage_seconds_total"
WORKING_SET = "container_memory_working_set_bytes"
CPU_QUOTA, CPU_PERIOD, CPU_SHARES = "container_spec_cpu_quota", "container_spec_cpu_period", "container_spec_cpu_shares"
POD_INFO = "deploysim_pod_info"


def wants_resources(spec: Any) -> bool:
    """Does the analysis ``spec`` check saturation, cpu or memory?

    >>> from types import SimpleNamespace as NS
    >>> wants_resources(NS(checks=[NS(metric="error_rate"), NS(metric="saturation")])), wants_resources(None)
    (True, False)
    """
    return any(getattr(c, "metric", None) in RESOURCE_METRICS for c in getattr(spec, "checks", None) or ())


def containers(namespace: str | None) -> str:
    """The selector of the namespace's application containers (cAdvisor also serves a
    pod-level series with ``container=""`` and the pause container ``POD``).

    >>> containers("shop"), containers(None)
    ('{namespace="shop",container!="",container!="POD"}', '{container!="",container!="POD"}')
    """
    parts = [f"namespace={json.dumps(namespace)}"] if namespace else []
    return "{" + ",".join([*parts, 'container!=""', 'container!="POD"']) + "}"


def promql_resources(pod_info: str, namespace: str | None, window: str) -> dict[str, str]:
    """The PromQL of each resource metric, per version; ``pod_info`` is the matcher list of
    the service's ``deploysim_pod_info`` series and ``window`` a range such as ``[60s]``."""
    sel = containers(namespace)

    def by_pod(expr: str) -> str:
        return f"sum by (namespace, pod) ({expr})"

    def versioned(expr: str) -> str:
        return (f"{expr} * on (namespace, pod) group_left (version) "
                f"max by (namespace, pod, version) ({POD_INFO}{pod_info})")

    used = by_pod(f"rate({CPU_USAGE}{sel}{window})")
    limit = (f"({by_pod(f'max_over_time({CPU_QUOTA}{sel}{window})')} / "
             f"{by_pod(f'max_over_time({CPU_PERIOD}{sel}{window})')})")
    request = f"({by_pod(f'max_over_time({CPU_SHARES}{sel}{window})')} / {SHARES_PER_CPU})"
    return {
        "cpu": f"avg by (version) ({versioned(used)})",
        "memory": f"avg by (version) ({versioned(by_pod(f'avg_over_time({WORKING_SET}{sel}{window})'))})",
        "saturation": (f"sum by (version) ({versioned(used)}) / "
                       f"sum by (version) ({versioned(f'({limit} or {request})')})"),
    }


def with_resources(versions: Mapping[str, VersionWindow],
                   answers: Mapping[str, Mapping[str, float]]) -> dict[str, VersionWindow]:
    """The windows with each resource metric's answer (metric -> version -> value); a version
    the answer leaves out, or a value that is not finite, stays NaN.

    >>> w = with_resources({"candidate": VersionWindow(requests=10)}, {"saturation": {"candidate": 0.9}})
    >>> w["candidate"].saturation, w["candidate"].cpu
    (0.9, nan)
    """
    out = {}
    for version, window in versions.items():
        values = {}
        for metric, by_version in answers.items():
            value = by_version.get(version, math.nan)
            values[metric] = value if math.isfinite(value) else math.nan
        out[version] = replace(window, **values)
    return out
