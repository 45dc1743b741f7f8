"""Graceful shutdown in the simulated world: a deleted pod is still routed to for
``pod.endpoint_lag`` seconds, answers while its preStop hook and drain last, and is gone
when its container exits (:mod:`deploysim.rules.shutdown`).

Requests routed to it after it stopped answering fail, in the version's channel, so they
count in failed requests and in rollout-attributable failures like any other; the record
also counts them apart (``failed_in_shutdown``). With the defaults (no lag, no hook) a
deleted pod leaves the endpoints at once and is gone after ``pod.termination``, as it
always was.

Not simulated: requests in flight at SIGKILL (requests take no time here), and the lag of a
new pod joining the endpoints (it takes traffic as soon as it is ready).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deploysim.rules.shutdown import answers_for, exits_after

if TYPE_CHECKING:
    from deploysim.sim.world import Pod, SimWorld


class Shutdown:
    """The shutdown half of :class:`deploysim.sim.world.SimWorld` (a mixin)."""

    def _init_shutdown(self: SimWorld) -> None:
        # per version: deleted pods still in the endpoints, and those of them no longer answering
        self.lagging = {v: 0 for v in self.rs}
        self.lagging_silent = {v: 0 for v in self.rs}
        # splits the drawn failures without touching the world's own random stream
        self.shutdown_rng = self.rng.spawn(1)[0]

    def _endpoint_counts(self: SimWorld) -> tuple[int, int]:
        """Endpoints per version: ready pods and deleted ones still routed to."""
        return (self.rs["stable"].ready + self.lagging["stable"],
                self.rs["candidate"].ready + self.lagging["candidate"])

    def _routes(self: SimWorld) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(endpoints, endpoints that do not answer, of those the deleted ones) per version,
        for the accounting."""
        deleted = (self.lagging_silent["stable"], self.lagging_silent["candidate"])
        silent = tuple(self.rs[v].mute + deleted[i] for i, v in enumerate(("stable", "candidate")))
        return self._endpoint_counts(), silent, deleted  # type: ignore[return-value]

    def _failed_in_shutdown(self: SimWorld, failed: np.ndarray, mu: np.ndarray,
                            mu_shutdown: list[list[float]]) -> np.ndarray:
        """Per bin, the users' drawn failures that were routed to a deleted pod no longer
        answering: each of a channel's ``failed`` is one with the chance ``mu_shutdown / mu``
        (a thinned Poisson count is Poisson too, so the split is exact)."""
        part = np.array(mu_shutdown, dtype=float).reshape(len(failed), 2)
        if not part.any():
            return np.zeros(len(failed), dtype=int)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.clip(np.where(mu[:, :2] > 0, part / mu[:, :2], 0.0), 0.0, 1.0)
        return self.shutdown_rng.binomial(failed[:, :2], p).sum(axis=1)

    def _terminate(self: SimWorld, pod: Pod, routed: bool) -> None:
        """The pod was deleted now (``routed``: it was in the endpoints): it is gone when its
        container exits, and still routed to for the endpoint lag."""
        p = self.sc.pod
        grace = p.termination_grace_period
        self.env.timeout(exits_after(p.pre_stop, p.termination, grace)).callbacks.append(lambda _ev: self._gone(pod))
        lag = p.endpoint_lag
        if not routed or lag <= 0:
            return
        version = pod.version
        drain = p.termination if p.drain is None else p.drain
        answering = answers_for(p.pre_stop, drain, p.termination, grace) if pod.serving else 0.0
        self.lagging[version] += 1
        silent = [False]

        def silence(_ev: object = None) -> None:
            self.flush()
            silent[0] = True
            self.lagging_silent[version] += 1
            self._snapshot()

        def drop(_ev: object) -> None:
            self.flush()
            self.lagging[version] -= 1
            if silent[0]:
                self.lagging_silent[version] -= 1
            self._snapshot()
            self._notify()

        if answering < lag:
            if answering <= 0:
                silent[0] = True
                self.lagging_silent[version] += 1
            else:
                self.env.timeout(answering).callbacks.append(silence)
        self.env.timeout(lag).callbacks.append(drop)


def unanswered_share(endpoints: int, deleted_silent: int) -> float:
    """The share of a version's requests routed to its deleted pods that no longer answer:
    requests spread evenly over the endpoints (as :func:`deploysim.rules.probes.with_silent_endpoints`).

    >>> unanswered_share(11, 1), unanswered_share(10, 0), unanswered_share(0, 0)
    (0.09090909090909091, 0.0, 0.0)
    """
    if deleted_silent <= 0 or endpoints <= 0:
        return 0.0
    return min(deleted_silent / endpoints, 1.0)
