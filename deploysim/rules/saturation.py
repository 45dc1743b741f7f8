"""Saturation: a pod's CPU and memory from the load it serves, against its requests and limits.

One model for every world that makes up load: the simulator accounts each version's ready pods
with it (:mod:`deploysim.sim.saturation`), and the traffic exporter serves the same numbers as
cAdvisor-shaped series on a cluster (:mod:`deploysim.kube.traffic.resources`).

Per ready pod, a version's requests spread evenly over its ready pods (``rps`` each):

- **CPU demand** (cores) = ``cpu_base + rps × cpu_per_request`` (``cpu_per_request`` in
  cores·s: 0.002 is 2 ms of one core per request);
- **CPU used** = ``min(demand, limit)``: CFS bandwidth control gives a group at most ``quota``
  µs of CPU per ``period`` µs and throttles it for the rest of the period (the kernel's
  Documentation/scheduler/sched-bwc.rst); the kubelet sets the quota to ``limit × period``
  (pkg/kubelet/cm/helpers_linux.go ``MilliCPUToQuota``, period 100 ms);
- **throttling**: the CPU a second of requests needs takes ``demand / limit`` seconds to get,
  so above the limit every request is that much slower (latency × ``demand / limit``);
- **memory** working set (bytes) = ``memory_base + rps × memory_per_rps``;
- **OOM kill**: a working set above the memory limit is killed by the kernel; the kubelet
  restarts the container after its crash-loop back-off (:func:`restart_backoff`), and until
  it is ready again the pod serves nothing;
- **saturation** = CPU used / the CPU limit, or / the request when there is no limit, so a
  pod at its limit reads 1.0 (and is throttled past it: demand beyond the limit shows as
  latency, as cAdvisor's usage counter shows it on a cluster).

Worked through: 20 rps on a pod at 0.01 cores·s per request over a base of 50m demand
0.05 + 0.2 = 0.25 cores; with a 500m limit that is saturation 0.5, unthrottled. Double the cost
per request (0.02) and it is 0.45 cores, saturation 0.9; at 0.04 the demand is 0.85 cores,
used 0.5, saturation 1.0, and latency × 1.7.

>>> u = pod_usage(20.0, Costs(cpu_per_request=0.04, cpu_base=0.05), parse_resources(limits={"cpu": "500m"}))
>>> round(u.demand, 3), u.used, u.saturation, round(u.throttle, 2)
(0.85, 0.5, 1.0, 1.7)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_UP, Context, Decimal, InvalidOperation
from typing import Any

#: The kubelet's CFS period, µs (pkg/kubelet/cm/helpers_linux.go ``QuotaPeriod``).
CFS_PERIOD_US = 100_000
#: cpu.shares per core (``SharesPerCPU``) and the least the kubelet sets (``MinShares``).
SHARES_PER_CPU, MIN_SHARES = 1024, 2
#: The kubelet's container restart back-off: first and longest wait, seconds
#: (pkg/kubelet/kubelet.go ``backOffPeriod``, ``MaxContainerBackOff``).
BACKOFF_INITIAL, BACKOFF_MAX = 10.0, 300.0
#: The metrics a saturation model measures, by name in checks.
RESOURCE_METRICS = ("saturation", "cpu", "memory")

# --- Kubernetes quantities --------------------------------------------------------------------

_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SI = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_NUMBER = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)(.*)")
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")
#: the largest quantity there is: Kubernetes keeps a quantity in an int64
MAX_QUANTITY = 2**63 - 1
QUANTITY_FORM = "a Kubernetes quantity like 500m, 0.5, 256Mi or 1e3 (suffixes n u m k M G T P E, Ki Mi Gi Ti Pi Ei)"


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity as a number, as k8s.io/apimachinery pkg/api/resource/quantity.go
    ``ParseQuantity`` reads it: a number, then a decimal SI suffix (``m`` is a thousandth,
    ``k`` a thousand, ``M`` a million), a binary one (``Ki`` 1024, ``Mi`` 1024², ``Gi``
    1024³) or an exponent (``e3``, ``E-2``), with the suffix table of suffix.go
    ``newSuffixer``. A fraction of a nano rounds up to 1n (``ParseQuantity`` rounds up to
    scale -9). YAML numbers are quantities too. Resources are never negative, nor above
    2^63 - 1 (where quantity.go caps them).

    >>> [parse_quantity(q) for q in ("500m", "0.5", "2", "1k", "1e3", ".5", "100u")]
    [0.5, 0.5, 2.0, 1000.0, 1000.0, 0.5, 0.0001]
    >>> parse_quantity("256Mi"), parse_quantity("1Gi"), parse_quantity("1.5Ki"), parse_quantity(1)
    (268435456.0, 1073741824.0, 1536.0, 1.0)
    >>> parse_quantity("0.1n")
    1e-09
    >>> parse_quantity("256MB")
    Traceback (most recent call last):
    ...
    ValueError: not a Kubernetes quantity like 500m, 0.5, 256Mi or 1e3 (suffixes n u m k M G T P E, Ki Mi Gi Ti Pi Ei)
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not {QUANTITY_FORM}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"not {QUANTITY_FORM}")
        value = repr(value)
    match = _NUMBER.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"not {QUANTITY_FORM}")
    sign, digits, suffix = match.groups()
    try:
        number = Decimal(digits)
    except InvalidOperation:
        raise ValueError(f"not {QUANTITY_FORM}") from None
    if suffix in _DECIMAL_SI:
        amount = number.scaleb(_DECIMAL_SI[suffix])
    elif suffix in _BINARY_SI:
        amount = number * (2 ** _BINARY_SI[suffix])
    elif (exp := _EXPONENT.fullmatch(suffix)) is not None:
        amount = number.scaleb(int(exp.group(1)))
    else:
        raise ValueError(f"not {QUANTITY_FORM}")
    if sign == "-" and amount != 0:
        raise ValueError("must be 0 or more: a resource is never negative")
    if amount > MAX_QUANTITY:
        raise ValueError(f"must be at most {MAX_QUANTITY} (2^63 - 1), the largest Kubernetes quantity")
    return float(amount.quantize(Decimal("1e-9"), rounding=ROUND_UP, context=Context(prec=40))) if amount else 0.0


@dataclass(frozen=True)
class PodResources:
    """A container's CPU (cores) and memory (bytes) requests and limits; None: not set."""

    cpu_request: float | None = None
    cpu_limit: float | None = None
    memory_request: float | None = None
    memory_limit: float | None = None

    @property
    def cpu_capacity(self) -> float | None:
        """What saturation divides by: the CPU limit, else the request, else None."""
        return self.cpu_limit if self.cpu_limit is not None else self.cpu_request


def parse_resources(requests: Mapping[str, Any] | None = None,
                    limits: Mapping[str, Any] | None = None) -> PodResources:
    """A pod spec's ``resources`` as numbers. A limit without a request makes the request
    equal to it, as the API server defaults it (pkg/apis/core/v1/defaults.go
    ``SetDefaults_Pod``); a limit of 0 is no limit (the kubelet sets no CFS quota for it:
    ``MilliCPUToQuota`` of 0 is 0).

    >>> parse_resources({"cpu": "250m"}, {"cpu": "1", "memory": "256Mi"})
    PodResources(cpu_request=0.25, cpu_limit=1.0, memory_request=268435456.0, memory_limit=268435456.0)
    >>> parse_resources(limits={"cpu": "0"})
    PodResources(cpu_request=0.0, cpu_limit=None, memory_request=None, memory_limit=None)
    """
    requests, limits = dict(requests or {}), dict(limits or {})

    def get(table: Mapping[str, Any], key: str) -> float | None:
        return None if table.get(key) is None else parse_quantity(table[key])

    cpu_limit, memory_limit = get(limits, "cpu"), get(limits, "memory")
    cpu_request, memory_request = get(requests, "cpu"), get(requests, "memory")
    return PodResources(cpu_limit if cpu_request is None else cpu_request, cpu_limit or None,
                        memory_limit if memory_request is None else memory_request, memory_limit or None)


def request_above_limit(resources: PodResources) -> str | None:
    """Which request is above its limit, as the API server refuses it
    (pkg/apis/core/validation ``ValidateResourceRequirements``); None when both are within.

    >>> request_above_limit(parse_resources({"cpu": "2"}, {"cpu": "1"}))
    'cpu'
    >>> request_above_limit(parse_resources({"cpu": "500m"}, {"cpu": "1"})) is None
    True
    """
    for name in ("cpu", "memory"):
        request, limit = getattr(resources, f"{name}_request"), getattr(resources, f"{name}_limit")
        if request is not None and limit is not None and request > limit:
            return name
    return None


# --- the load model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """What a version's pod costs: cores·s per request, idle cores, idle bytes, bytes per rps."""

    cpu_per_request: float = 0.0
    cpu_base: float = 0.0
    memory_base: float = 0.0
    memory_per_rps: float = 0.0

    @property
    def cpu_modelled(self) -> bool:
        return self.cpu_per_request > 0 or self.cpu_base > 0

    @property
    def memory_modelled(self) -> bool:
        return self.memory_per_rps > 0 or self.memory_base > 0


def cpu_demand(rps: float, costs: Costs) -> float:
    """Cores a pod needs at ``rps``: ``cpu_base + rps × cpu_per_request``; 20 rps at 2 ms of a
    core each over a 50m base is 0.09 cores.

    >>> round(cpu_demand(20.0, Costs(cpu_per_request=0.002, cpu_base=0.05)), 3)
    0.09
    """
    return costs.cpu_base + rps * costs.cpu_per_request


def cpu_used(demand: float, limit: float | None) -> float:
    """Cores a pod gets: its demand, at most the limit (CFS quota per period).

    >>> cpu_used(0.85, 0.5), cpu_used(0.3, 0.5), cpu_used(3.0, None)
    (0.5, 0.3, 3.0)
    """
    return demand if limit is None else min(demand, limit)


def throttle_factor(demand: float, limit: float | None) -> float:
    """How much slower a throttled pod answers: ``demand / limit`` above the limit, else 1.

    >>> throttle_factor(0.85, 0.5), throttle_factor(0.4, 0.5), throttle_factor(2.0, None)
    (1.7, 1.0, 1.0)
    """
    if limit is None or limit <= 0 or demand <= limit:
        return 1.0
    return demand / limit


def working_set(rps: float, costs: Costs) -> float:
    """Bytes a pod holds at ``rps``: ``memory_base + rps × memory_per_rps``; 100 MiB plus
    2 MiB per rps at 20 rps is 140 MiB.

    >>> working_set(20.0, Costs(memory_base=100 * 2**20, memory_per_rps=2 * 2**20)) / 2**20
    140.0
    """
    return costs.memory_base + rps * costs.memory_per_rps


def oom_killed(memory: float, limit: float | None) -> bool:
    """The kernel kills a container whose working set is above its memory limit.

    >>> oom_killed(300e6, 256 * 2**20), oom_killed(200e6, 256 * 2**20), oom_killed(9e9, None)
    (True, False, False)
    """
    return limit is not None and memory > limit


def cpu_saturation(used: float, resources: PodResources) -> float:
    """CPU used over the limit (the request when there is no limit); NaN with neither.

    >>> cpu_saturation(0.45, PodResources(cpu_limit=0.5)), cpu_saturation(0.3, PodResources(cpu_request=0.25))
    (0.9, 1.2)
    >>> cpu_saturation(0.3, PodResources())
    nan
    """
    capacity = resources.cpu_capacity
    if not capacity:
        return math.nan
    return used / capacity


@dataclass(frozen=True)
class Usage:
    """One ready pod at one load: CPU demand and use (cores), the throttling factor on its
    latency, its working set (bytes), saturation, and whether it is OOM-killed."""

    demand: float
    used: float
    throttle: float
    memory: float
    saturation: float
    oom: bool


def pod_usage(rps: float, costs: Costs, resources: PodResources) -> Usage:
    """A pod's usage at ``rps`` (see the module docstring).

    >>> u = pod_usage(20.0, Costs(cpu_per_request=0.02, cpu_base=0.05), PodResources(cpu_limit=0.5))
    >>> round(u.demand, 3), round(u.saturation, 3), u.throttle, u.oom
    (0.45, 0.9, 1.0, False)
    """
    demand = cpu_demand(rps, costs)
    used = cpu_used(demand, resources.cpu_limit)
    memory = working_set(rps, costs)
    return Usage(demand, used, throttle_factor(demand, resources.cpu_limit), memory,
                 cpu_saturation(used, resources), oom_killed(memory, resources.memory_limit))


def restart_backoff(entry: tuple[float, float] | None, exited_at: float) -> tuple[float, tuple[float, float]]:
    """How long the kubelet waits to restart a container that exited at ``exited_at``, and
    its back-off entry ``(backoff, last_update)`` afterwards.

    The kubelet's ``doBackOff`` (pkg/kubelet/kuberuntime/kuberuntime_manager.go) waits while
    ``IsInBackOffSince`` holds, then restarts and calls ``Next``
    (k8s.io/client-go/util/flowcontrol/backoff.go): a container with no entry, or whose entry
    was last updated more than twice the maximum (10 min) before, restarts at once and gets
    10 s; otherwise it waits its entry's back-off from the exit, which then doubles, to at
    most 5 min. A pod that is killed as soon as it is up again restarts after 0, 10, 20, 40 s:

    >>> entry, waits, t = None, [], 0.0
    >>> for _ in range(4):
    ...     wait, entry = restart_backoff(entry, t)
    ...     waits.append(wait)
    ...     t += wait + 10.0  # restarted, up for 10 s, killed again
    >>> waits, entry
    ([0.0, 10.0, 20.0, 40.0], (80.0, 100.0))
    >>> restart_backoff((300.0, 0.0), 700.0)  # up more than 10 min: the back-off starts over
    (0.0, (10.0, 700.0))
    """
    if entry is None or exited_at - entry[1] > 2 * BACKOFF_MAX:
        return 0.0, (BACKOFF_INITIAL, exited_at)
    backoff, last = entry
    restart = exited_at + backoff
    if restart - last > 2 * BACKOFF_MAX:
        return backoff, (BACKOFF_INITIAL, restart)
    return backoff, (min(backoff * 2, BACKOFF_MAX), restart)


# --- what can be judged --------------------------------------------------------------------


def undefined_metric(metric: str, resources: PodResources, costs: Iterable[Costs]) -> str | None:
    """Why a check on ``metric`` could never be judged, or None when it can: saturation needs a
    CPU limit or request; cpu and memory need a version that costs some (a check on a
    metric that is always 0 would pass anything).

    >>> undefined_metric("saturation", PodResources(), [Costs(cpu_per_request=0.01)])
    'saturation is CPU used over pod.resources.limits.cpu (or requests.cpu): set one of them above 0'
    >>> undefined_metric("saturation", PodResources(cpu_limit=0.5), [Costs()]) is None
    True
    """
    costs = list(costs)
    if metric == "saturation" and not resources.cpu_capacity:
        return "saturation is CPU used over pod.resources.limits.cpu (or requests.cpu): set one of them above 0"
    if metric == "cpu" and not any(c.cpu_modelled for c in costs):
        return "cpu is the cores a pod uses: set candidate.cpu_per_request or candidate.cpu_base"
    if metric == "memory" and not any(c.memory_modelled for c in costs):
        return "memory is a pod's working set: set candidate.memory_per_rps or candidate.memory_base"
    return None
