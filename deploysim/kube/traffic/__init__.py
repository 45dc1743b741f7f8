"""``deploysim traffic``: the scenario's users, sent (on paper) to a real cluster's pods.

A control-plane rehearsal runs real Deployments, Services and HTTPRoutes on a cluster whose
pods run nothing (KWOK). This exporter supplies what their users would have done: it
watches the pods of one service, reads the routing from the cluster the way
:mod:`deploysim.kube.naming` lays it out, applies the scenario's traffic and failure model to
whichever pods are ready and weighted, and serves the outcome as Prometheus metrics on
127.0.0.1, so the Prometheus provider and the analysis read them as they would a real app.

- :mod:`~deploysim.kube.traffic.routing`: pods, Services and the HTTPRoute into flows
  (requests per second per route and pod);
- :mod:`~deploysim.kube.traffic.sampling`: one tick's requests per status code and latency
  bucket, by the service model the simulator also uses (:mod:`deploysim.rules.service`);
  ``dependency_outage`` faults apply by wall time since the exporter started; seeded by
  ``scenario.seed``;
- :mod:`~deploysim.kube.traffic.metrics`: the totals, collected by prometheus_client;
- :mod:`~deploysim.kube.traffic.exporter`: the watch and tick loops and the HTTP server;
- :mod:`~deploysim.kube.traffic.cli`: the command.

Metrics (labels ``service``, ``namespace``, ``version`` = stable|candidate by the pod's first
container image, ``route`` = user|preview):

- ``deploysim_requests_total{...,code="200|500|503"}`` counter;
- ``deploysim_request_duration_seconds`` histogram (60 buckets from 5 ms to 17.8 s, 15% apart);
- ``deploysim_ready_pods{...}`` and ``deploysim_candidate_weight`` gauges;
- ``deploysim_traffic_seconds_total``: seconds of traffic drawn so far, so a rate from two
  scrapes is exact whatever their timing against the ticks;
- each pod's CPU and memory as cAdvisor's series (``container_cpu_usage_seconds_total``,
  ``container_memory_working_set_bytes``, the CFS and spec series) and
  ``deploysim_pod_info{pod, version}``, by the saturation model
  (:mod:`~deploysim.kube.traffic.resources`).

>>> ex = start_exporter("scenario.yaml", kubeconfig="kubeconfig", port=0)  # doctest: +SKIP
>>> ex.port, ex.url                                                       # doctest: +SKIP
(40123, 'http://127.0.0.1:40123/metrics')
>>> ex.stop()                                                              # doctest: +SKIP
"""

from __future__ import annotations

from deploysim.kube.traffic.cli import add_traffic_commands, cmd_traffic
from deploysim.kube.traffic.exporter import (
    HOST,
    Exporter,
    TrafficError,
    api_clients,
    start_exporter,
)
from deploysim.kube.traffic.metrics import Metrics
from deploysim.kube.traffic.routing import (
    ROUTES,
    VERSIONS,
    Backend,
    Flow,
    PodView,
    candidate_weight,
    plan_flows,
    preview_backend,
    selects,
    user_backends,
    version_of,
)
from deploysim.kube.traffic.sampling import (
    BUCKETS,
    CODES,
    TickCounts,
    outage_rate,
    sample_tick,
)

__all__ = [
    "BUCKETS",
    "CODES",
    "HOST",
    "ROUTES",
    "VERSIONS",
    "Backend",
    "Exporter",
    "Flow",
    "Metrics",
    "PodView",
    "TickCounts",
    "TrafficError",
    "add_traffic_commands",
    "api_clients",
    "candidate_weight",
    "cmd_traffic",
    "outage_rate",
    "plan_flows",
    "preview_backend",
    "sample_tick",
    "selects",
    "start_exporter",
    "user_backends",
    "version_of",
]
