"""Bounds on what one rehearsal is asked to do: about a minute and well under 2 GB.

Each bound is on a figure the engine's cost grows with, measured on a 2-core machine: the
timeline bins (``duration / resolution``, about 0.3 ms and 3 KB each; 30 days at 10 s is
allowed), the pods (a rolling update of 10,000 replicas takes about 16 s of engine time), the
controller's passes, the measurements, and the lengths of the lists a scenario may give.
A value past a bound is refused before anything runs, naming the key, the value, the limit
and the way past it: ``DEPLOYSIM_NO_LIMITS=1`` in the environment lifts them all, for a
machine and a patience that can afford it.

>>> check({"replicas": 20_000})
Traceback (most recent call last):
...
deploysim.errors.ScenarioError: replicas: got 20000; at most 10000 (a rehearsal past it takes more than a minute or 2 GB; DEPLOYSIM_NO_LIMITS=1 lifts the limits)
>>> check({"duration": 365 * 86400.0, "resolution": 10.0})
Traceback (most recent call last):
...
deploysim.errors.ScenarioError: resolution: got '10s'; at least 2m2s for a duration of 8760h: duration / resolution is at most 260000 timeline bins (a rehearsal past it takes more than a minute or 2 GB; DEPLOYSIM_NO_LIMITS=1 lifts the limits)
>>> check({"replicas": 20_000}, env={"DEPLOYSIM_NO_LIMITS": "1"})
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from deploysim.durations import format_duration
from deploysim.errors import ScenarioError

ENV = "DEPLOYSIM_NO_LIMITS"
PAST = f"(a rehearsal past it takes more than a minute or 2 GB; {ENV}=1 lifts the limits)"

MAX_REPLICAS = 10_000
MAX_BINS = 260_000  # duration / resolution: 30 days at 10 s
MAX_CONTROLLER_PASSES = 1_000_000  # duration / controller_interval
MAX_MEASUREMENTS = 100_000  # duration / analysis.interval
MAX_NODES = 10_000
MAX_PODS_PER_NODE = 1_000
MAX_LIST = 1_000  # faults, canary steps, checks
MAX_RPS = 1e9
MIN_INTERVAL = 1.0  # an analysis interval: no metrics source scrapes faster
MAX_POD_STARTS = 500_000  # a crash loop's pods started over the run (about 20,000 a second)


def lifted(env: Mapping[str, str] | None = None) -> bool:
    """True when ``DEPLOYSIM_NO_LIMITS`` is set to something other than 0 / false / empty."""
    value = (os.environ if env is None else env).get(ENV, "")
    return value.strip().lower() not in ("", "0", "false", "no")


def _get(data: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _over(key: str, value: Any, limit: Any, what: str = "") -> ScenarioError:
    return ScenarioError(key, value, f"at most {limit}{what} {PAST}")


def check(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Refuse a validated scenario's data (seconds as numbers) past any bound, unless lifted.

    Takes the data of :meth:`Scenario.to_data` (or a part of it: missing keys are not checked).
    """
    if lifted(env):
        return
    replicas = _get(data, "replicas")
    if replicas is not None and replicas > MAX_REPLICAS:
        raise _over("replicas", replicas, MAX_REPLICAS)
    duration = _get(data, "duration")
    for key, per, limit, unit in (
        ("resolution", "resolution", MAX_BINS, "timeline bins"),
        ("controller_interval", "controller_interval", MAX_CONTROLLER_PASSES, "controller passes"),
        ("analysis.interval", "analysis.interval", MAX_MEASUREMENTS, "measurements"),
    ):
        step = _get(data, per)
        if duration is None or step is None or step <= 0:
            continue
        if duration / step > limit:
            least = format_duration(math.ceil(duration / limit))
            raise ScenarioError(key, format_duration(step),
                                f"at least {least} for a duration of {format_duration(duration)}: "
                                f"duration / {key.split('.')[-1]} is at most {limit} {unit} {PAST}")
    for key, limit in (("nodes.count", MAX_NODES), ("nodes.pods_per_node", MAX_PODS_PER_NODE),
                       ("traffic.rps", MAX_RPS)):
        value = _get(data, key)
        if value is not None and value > limit:
            raise _over(key, value, f"{limit:g}")
    _check_crash_loops(data, replicas, duration)
    for key in ("faults", "strategy.steps", "analysis.checks"):
        items = _get(data, key)
        if items is not None and len(items) > MAX_LIST:
            raise _over(key, f"a list of {len(items)}", MAX_LIST, " items")


def _check_crash_loops(data: Mapping[str, Any], replicas: Any, duration: Any) -> None:
    """A version whose pods fail after ``fail_after`` (or crash at ``crash_rate_per_hour``)
    starts a pod per replica every ``fail_after + pod.startup``: bounded in pod starts.

    >>> _check_crash_loops({"candidate": {"fail_after": 0.01}, "pod": {"startup": 0}}, 10, 7200.0)
    Traceback (most recent call last):
    ...
    deploysim.errors.ScenarioError: candidate.fail_after: got '0.01s'; at least 0.144s for 10 replicas over 2h: ...
    """
    if replicas is None or duration is None:
        return
    startup = _get(data, "pod.startup", 0.0) or 0.0
    for version in ("stable", "candidate"):
        fail_after = _get(data, f"{version}.fail_after")
        if fail_after is not None and fail_after > 0:
            starts = replicas * duration / (fail_after + startup)
            if starts > MAX_POD_STARTS:
                least = max(replicas * duration / MAX_POD_STARTS - startup, 0.001)
                raise ScenarioError(f"{version}.fail_after", format_duration(fail_after),
                                    f"at least {format_duration(math.ceil(least * 1000) / 1000)} for {replicas} "
                                    f"replicas over {format_duration(duration)}: replicas x duration / (fail_after "
                                    f"+ pod.startup) is at most {MAX_POD_STARTS} pod starts {PAST}")
        rate = _get(data, f"{version}.crash_rate_per_hour")
        if rate and replicas * duration / 3600 * rate > MAX_POD_STARTS:
            raise _over(f"{version}.crash_rate_per_hour", f"{rate:g}",
                        f"{MAX_POD_STARTS * 3600 / (replicas * duration):.4g}", f" for {replicas} replicas over "
                        f"{format_duration(duration)} ({MAX_POD_STARTS} pod starts)")
