"""Graceful shutdown: how long a deleted pod answers, how long it lingers, and what the
endpoint lag costs.

When a pod is deleted two things start at once (Kubernetes docs, "Termination of Pods"):

- the endpoints drop it: the EndpointSlice controller marks it terminating and every
  node's kube-proxy rewrites its rules, so for ``endpoint_lag`` seconds requests are still
  routed to it (kube-proxy applies changes at most once per ``minSyncPeriod``, 1 s by
  default: kubernetes/kubernetes pkg/proxy/apis/config/v1alpha1/defaults.go
  ``SetDefaults_KubeProxyConfiguration``; ingress controllers and cloud load balancers add
  their own delay);
- the kubelet stops the container (pkg/kubelet/kuberuntime/kuberuntime_container.go
  ``killContainer``): it runs the ``preStop`` hook for at most the grace period, then sends
  SIGTERM with what is left of ``terminationGracePeriodSeconds``, never less than
  ``minimumGracePeriodInSeconds`` (2 s), and SIGKILL when that runs out.

The application answers during the hook and, after SIGTERM, for its own ``drain`` time; it
exits ``termination`` seconds after SIGTERM. Requests routed to the pod after it stopped
answering and before the endpoints dropped it fail: ``max(endpoint_lag - answers_for, 0)``
seconds of its share of traffic. A preStop sleep that covers the lag closes that window.

>>> answers_for(pre_stop=0, drain=0, termination=5, grace=30), unanswered_seconds(3.0, 0.0)
(0.0, 3.0)
>>> answers_for(pre_stop=5, drain=0, termination=5, grace=30), unanswered_seconds(3.0, 5.0)
(5.0, 0.0)
"""

from __future__ import annotations

#: Kubernetes' default ``terminationGracePeriodSeconds`` (k8s.io/api core/v1 ``PodSpec``).
DEFAULT_TERMINATION_GRACE_PERIOD = 30.0
#: The least time after SIGTERM the kubelet grants (kuberuntime ``minimumGracePeriodInSeconds``).
MINIMUM_GRACE_PERIOD = 2.0
#: kube-proxy's default ``minSyncPeriod``: the least endpoint lag on a cluster with kube-proxy.
KUBE_PROXY_MIN_SYNC_PERIOD = 1.0


def hook_seconds(pre_stop: float, grace: float) -> float:
    """How long the preStop hook runs: its sleep, cut at the grace period (``executePreStopHook``
    waits at most that long); none with no grace period.

    >>> hook_seconds(5, 30), hook_seconds(40, 30), hook_seconds(5, 0)
    (5.0, 30.0, 0.0)
    """
    return float(min(pre_stop, grace)) if grace > 0 else 0.0


def stop_window(pre_stop: float, grace: float) -> float:
    """Seconds from SIGTERM to SIGKILL: the grace period left after the hook, at least 2.

    >>> stop_window(5, 30), stop_window(40, 30), stop_window(0, 0)
    (25.0, 2.0, 2.0)
    """
    return max(grace - hook_seconds(pre_stop, grace), MINIMUM_GRACE_PERIOD)


def exits_after(pre_stop: float, termination: float, grace: float) -> float:
    """Seconds from deletion until the container is gone: the hook, then the application's
    ``termination`` time or SIGKILL, whichever comes first.

    No hook and a 5 s exit within 30 s of grace: 5. A 10 s hook: 15. An application that
    would take 60 s: killed at 30.

    >>> exits_after(0, 5, 30), exits_after(10, 5, 30), exits_after(0, 60, 30), exits_after(40, 5, 30)
    (5.0, 15.0, 30.0, 32.0)
    """
    return hook_seconds(pre_stop, grace) + min(termination, stop_window(pre_stop, grace))


def answers_for(pre_stop: float, drain: float, termination: float, grace: float) -> float:
    """Seconds from deletion during which the pod still answers new requests: through the
    hook (the application knows nothing yet), then ``drain`` seconds after SIGTERM, no
    longer than until it exits.

    An application that stops accepting at SIGTERM (drain 0) answers only through a 5 s
    hook; one that drains 10 s but exits after 5 answers 5 s; one that drains 20 s behind a
    15 s hook within 30 s of grace is killed at 30.

    >>> answers_for(5, 0, 5, 30), answers_for(0, 10, 5, 30), answers_for(15, 20, 20, 30)
    (5.0, 5.0, 30.0)
    """
    return hook_seconds(pre_stop, grace) + min(drain, termination, stop_window(pre_stop, grace))


def unanswered_seconds(endpoint_lag: float, answering: float) -> float:
    """Seconds a deleted pod is still routed to but no longer answers.

    >>> unanswered_seconds(3.0, 0.0), unanswered_seconds(3.0, 5.0), unanswered_seconds(0.0, 0.0)
    (3.0, 0.0, 0.0)
    """
    return max(endpoint_lag - answering, 0.0)
