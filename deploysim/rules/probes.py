"""The kubelet's probes: when a container starts, becomes ready, is found failing, and restarts.

Every time is in seconds on one clock; a probe runs on its worker's grid ``origin + k·period``
(the worker starts with the pod, so the grid keeps its phase across container restarts),
and is skipped until the current container has run ``initial_delay`` seconds. This follows
kubernetes/kubernetes pkg/kubelet/prober:

- ``worker.run`` probes once when the worker starts and then at every tick of a
  ``time.Ticker`` of ``periodSeconds``; ``worker.doProbe`` returns early while the container
  has run less than ``initialDelaySeconds``, keeps readiness and liveness quiet until the
  startup probe has passed (``c.Started``), and changes the result only after
  ``failureThreshold`` failures or ``successThreshold`` successes in a row; a liveness or
  startup failure puts the worker on hold until a new container runs.
- the initial results (``newWorker``): readiness Failure, liveness Success, startup Unknown.
- ``manager.UpdatePodStatus`` (prober_manager.go): a container without a startup probe is
  started as soon as it runs; a started container without a readiness probe is ready at
  once ("no readinessProbe -> always ready"), which is why a pod without one takes traffic
  before its application serves; a started container whose readiness has not passed gets a
  readiness probe at once (``manualTriggerCh``), so with a startup probe readiness can pass
  the moment the container has started.
- restarts back off as pkg/kubelet/kuberuntime ``doBackOff`` over client-go's
  ``flowcontrol.Backoff`` (``IsInBackOffSince``, ``Next``) with the kubelet's
  ``backOffPeriod`` of 10 s and ``MaxContainerBackOff`` of 300 s (pkg/kubelet/kubelet.go):
  the first restart is at once, then 10 s, 20 s, 40 s, ... up to 5 minutes after each exit
  (CrashLoopBackOff), forgotten once a container ran 10 minutes past the last back-off.

Not followed: the random first wait of a kubelet that has just started, a probe's
``timeoutSeconds`` longer than its period (ticks are then dropped), and the whole seconds
in which the kubelet compares a container's age with ``initialDelaySeconds``.

>>> t = Timing(initial_delay=5, period=10)
>>> readiness_passes(app_up=21.0, probe=t, started=0.0, container=0.0, origin=0.0)
30.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

#: Probe defaults (k8s.io/api core/v1 ``Probe``; pkg/apis/core/v1/defaults.go ``SetDefaults_Probe``).
DEFAULT_PERIOD = 10.0
DEFAULT_TIMEOUT = 1.0
DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_SUCCESS_THRESHOLD = 1
#: The shortest ``periodSeconds`` and ``timeoutSeconds`` the API server accepts.
MIN_PERIOD = 1.0
#: The kubelet's restart back-off (pkg/kubelet/kubelet.go ``backOffPeriod``, ``MaxContainerBackOff``).
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0

_EPS = 1e-9


class ProbeTiming(Protocol):
    """What the rules read of a probe (the scenario's ``pod.probes.*`` satisfy it)."""

    initial_delay: float
    period: float
    failure_threshold: int
    success_threshold: int
    timeout: float


@dataclass(frozen=True)
class Timing:
    """A probe's timing with Kubernetes' defaults (for tests and worked examples)."""

    initial_delay: float = 0.0
    period: float = DEFAULT_PERIOD
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    success_threshold: int = DEFAULT_SUCCESS_THRESHOLD
    timeout: float = DEFAULT_TIMEOUT


def next_tick(t: float, period: float, origin: float = 0.0) -> float:
    """The first tick of the grid ``origin + k·period`` (k = 0, 1, ...) at or after ``t``.

    >>> next_tick(20.0, 10.0), next_tick(21.0, 10.0), next_tick(-5.0, 10.0), next_tick(7.0, 5.0, origin=1.0)
    (20.0, 30.0, 0.0, 11.0)
    """
    k = math.ceil((t - origin) / period - _EPS)
    return origin + max(k, 0) * period


def tick_after(t: float, period: float, origin: float = 0.0) -> float:
    """The first tick of the grid strictly after ``t``.

    >>> tick_after(20.0, 10.0), tick_after(21.0, 10.0), tick_after(-5.0, 10.0)
    (30.0, 30.0, 0.0)
    """
    k = math.floor((t - origin) / period + _EPS) + 1
    return origin + max(k, 0) * period


def first_probe(t: float, probe: ProbeTiming, container: float, origin: float) -> float:
    """The first probe at or after ``t`` that runs: on the grid, and at least ``initial_delay``
    after the container started (``doProbe`` returns early before).

    A container started at 0 with a 5 s initial delay on a 10 s grid is first probed at 10.

    >>> first_probe(0.0, Timing(initial_delay=5), container=0.0, origin=0.0)
    10.0
    """
    return next_tick(max(t, container + probe.initial_delay), probe.period, origin)


def startup_result(app_up: float, probe: ProbeTiming, container: float, origin: float) -> tuple[bool, float]:
    """(started, when): the startup probe passes at its first probe once the application
    answers, or fails at its ``failure_threshold``-th probe when the application is not up
    by then (the kubelet kills the container; ``doProbe`` puts the worker on hold).

    A 5 s grid and 3 failures allowed: probes at 0, 5 and 10. An application up at 8 s is
    started at 10; one up at 12 s is killed at 10.

    >>> t = Timing(period=5)
    >>> startup_result(8.0, t, 0.0, 0.0), startup_result(12.0, t, 0.0, 0.0)
    ((True, 10.0), (False, 10.0))
    """
    first = first_probe(container, probe, container, origin)
    last = first + (probe.failure_threshold - 1) * probe.period
    if app_up <= last + _EPS:
        return True, first_probe(app_up, probe, container, origin)
    return False, last


def readiness_passes(app_up: float, probe: ProbeTiming, started: float, container: float, origin: float) -> float:
    """When the readiness result turns Success: the first probe at or after the application
    is up (and the container started and past the initial delay), then ``success_threshold
    - 1`` more probes on the grid. ``started`` is itself a probe time: the kubelet probes a
    just-started container at once. Never (inf) for an application that never answers.

    A 5 s initial delay on a 10 s grid: an application up at 20 s is ready at 20, one up at
    21 s at 30, and at 40 with two successes needed. Started at 12 by a startup probe (past
    the initial delay, so probed at once): ready at 12.

    >>> t = Timing(initial_delay=5)
    >>> readiness_passes(20.0, t, 0.0, 0.0, 0.0), readiness_passes(21.0, t, 0.0, 0.0, 0.0)
    (20.0, 30.0)
    >>> readiness_passes(21.0, Timing(initial_delay=5, success_threshold=2), 0.0, 0.0, 0.0)
    40.0
    >>> readiness_passes(11.0, t, started=12.0, container=0.0, origin=0.0), readiness_passes(math.inf, t, 0.0, 0.0, 0.0)
    (12.0, inf)
    """
    if math.isinf(app_up):
        return math.inf
    earliest = max(app_up, started, container + probe.initial_delay)
    first = started if started >= earliest - _EPS else next_tick(earliest, probe.period, origin)
    if probe.success_threshold <= 1:
        return first
    return tick_after(first, probe.period, origin) + (probe.success_threshold - 2) * probe.period


def failure_detected(
    since: float,
    probe: ProbeTiming,
    container: float,
    origin: float,
    until: float = math.inf,
    timed_out: bool = True,
) -> float | None:
    """When the ``failure_threshold``-th failing probe in a row is known, for a check that
    fails from ``since`` until ``until``; None when fewer fail in between. A probe of an
    application that hangs fails after its ``timeout`` (``timed_out``); one of an
    application not yet listening fails at once.

    An application that hangs at 33 s, probed every 10 s with 3 failures allowed and a 1 s
    timeout: probes at 40, 50 and 60 fail, the last known at 61. While starting (failing
    until it answers at 25 s), probes at 0, 10 and 20 fail: killed at 20 before it is up.

    >>> failure_detected(33.0, Timing(), container=0.0, origin=0.0)
    61.0
    >>> failure_detected(0.0, Timing(), 0.0, 0.0, until=25.0, timed_out=False), failure_detected(0.0, Timing(), 0.0, 0.0, until=15.0)
    (20.0, None)
    """
    first = first_probe(since, probe, container, origin)
    last = first + (probe.failure_threshold - 1) * probe.period
    if last >= until - _EPS:
        return None
    return last + (probe.timeout if timed_out else 0.0)


@dataclass(frozen=True)
class BackOff:
    """The kubelet's back-off entry for one container: the current delay and when it was
    last moved (client-go ``backoffEntry``)."""

    seconds: float
    updated: float


def restart_after(finished: float, entry: BackOff | None) -> tuple[float, BackOff]:
    """(when the container starts again, the back-off after it) for a container that exited
    at ``finished``: at once when there is no entry (or it expired: more than twice the
    maximum since it last moved, ``hasExpired``), else ``seconds`` after the exit, the entry
    doubling up to 300 s (``doBackOff``: ``IsInBackOffSince`` then ``Next``).

    Exits at 0, 50 and 100 restart at 0, 60 and 120 (no wait, then 10 s, then 20 s); an exit
    at 1000, more than 10 minutes after the last move, restarts at once again.

    >>> at, e = restart_after(0.0, None); at, e
    (0.0, BackOff(seconds=10.0, updated=0.0))
    >>> at, e = restart_after(50.0, e); at, e
    (60.0, BackOff(seconds=20.0, updated=60.0))
    >>> restart_after(100.0, e)[0], restart_after(1000.0, e)
    (120.0, (1000.0, BackOff(seconds=10.0, updated=1000.0)))
    """
    if entry is None or finished - entry.updated > 2 * BACKOFF_MAX:
        return finished, BackOff(BACKOFF_INITIAL, finished)
    at = finished + entry.seconds
    return at, BackOff(min(2 * entry.seconds, BACKOFF_MAX), at)


def back_off_delays(exits: int) -> list[float]:
    """The waits before each restart of a container that exits at once every time it runs:
    CrashLoopBackOff's 0, 10, 20, 40, ... capped at 300.

    >>> back_off_delays(8)
    [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    """
    delays, entry, now = [], None, 0.0
    for _ in range(exits):
        at, entry = restart_after(now, entry)
        delays.append(at - now)
        now = at
    return delays


def with_silent_endpoints(p_fail: float, endpoints: int, silent: int) -> float:
    """Share of requests failing when ``silent`` of a version's ``endpoints`` do not answer
    (an application not yet up behind a pod without a readiness probe, one that hangs, a
    terminating pod that has stopped answering while still routed): requests spread evenly
    over the endpoints, so ``silent / endpoints`` of them fail unanswered and the rest fail
    as the answering pods do (each answering pod sees the same load as before).

    2 of 10 endpoints silent and 1% failing on the others: 0.2 + 0.8 × 0.01 = 20.8%.

    >>> round(with_silent_endpoints(0.01, 10, 2), 4), with_silent_endpoints(0.01, 10, 0), with_silent_endpoints(0.01, 0, 0)
    (0.208, 0.01, 0.01)
    """
    if silent <= 0:
        return p_fail
    if endpoints <= 0:
        return 1.0
    share = min(silent / endpoints, 1.0)
    return share + (1.0 - share) * p_fail
