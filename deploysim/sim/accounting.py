"""Traffic accounting of the simulated world: expected requests per timeline bin, drawn
when the run ends or a measurement asks, and the samples every world emits.

Between events the world serves its traffic in the state of the last snapshot; ``flush``
adds that stretch's expected requests, failures and latency to the open bin through the
service model (:mod:`deploysim.rules.service`), and ``draw`` turns expected counts into
drawn ones (:mod:`deploysim.sim.sampling`), so a run costs the same at any rps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.record import Samples, StateSample, TrafficBin
from deploysim.rules.probes import with_silent_endpoints
from deploysim.rules.service import failure_probability, serve
from deploysim.sim.sampling import (
    PERCENTILES,
    mixture_percentiles,
    sample_counts,
    sample_percentiles,
)
from deploysim.sim.shutdown import unanswered_share

if TYPE_CHECKING:
    from deploysim.sim.world import SimWorld

VERSIONS = ("stable", "candidate")


@dataclass
class Bin:
    """Expected traffic and state over one stretch of the timeline."""

    start: float
    end: float = 0.0
    # per channel: stable users, candidate users, preview (test traffic to the idle colour)
    lam: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # expected requests
    mu: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # expected failed
    loglat: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # lam-weighted log median
    baseline_mu: float = 0.0  # failures expected had the stable version served alone
    # of mu, per users' channel: requests routed to a deleted pod no longer answering (sim/shutdown.py)
    mu_shutdown: list[float] = field(default_factory=lambda: [0.0, 0.0])
    weight_time: float = 0.0  # integral of candidate share x 100 over time
    pods: tuple[int, int] = (0, 0)
    ready: tuple[int, int] = (0, 0)
    pods_total: int = 0
    # per version: CPU core-seconds used, memory byte-seconds, CPU capacity core-seconds and
    # ready pod-seconds (sim/saturation.py)
    usage: list[list[float]] = field(default_factory=lambda: [[0.0] * 4, [0.0] * 4])
    # drawn later
    requests: tuple[int, ...] | None = None
    failed: tuple[int, ...] = (0, 0, 0)
    failed_in_shutdown: int = 0
    latency: tuple[tuple[float, ...], ...] = ((), (), ())



class Accounting:
    """The accounting half of :class:`deploysim.sim.world.SimWorld` (a mixin: it reads the
    world's pods, routing and scenario)."""


    def _snapshot(self: SimWorld) -> None:
        """Remember the state the next stretch of traffic is served in."""
        ready = self._ready_counts()
        pods = (len(self.rs["stable"].pods), len(self.rs["candidate"].pods))
        self._state_ready = ready
        self._state_routes = self._routes()  # endpoints, and those not answering (sim/probes.py, sim/shutdown.py)
        self._state_pods = pods
        self._state_share = self.share()
        if self.pod_trace is not None:
            self._trace()
        self.usage.changed()
        rs_s, rs_c = self.rs["stable"], self.rs["candidate"]
        sample = StateSample(
            t=self.env.now, pods=pods, ready=ready,
            available=(self._available(rs_s), self._available(rs_c)),
            terminating=self.terminating, weight=self._state_share[1] * 100, restarts=self._restart_count())
        self.emitted.add_state(sample)

    def _trace(self: SimWorld) -> None:
        """Keep pod counts after every controller step (each sync pass), for fidelity checks."""
        rs_s, rs_c = self.rs["stable"], self.rs["candidate"]
        self.pod_trace.append((  # type: ignore[union-attr]
            self.env.now, len(rs_s.pods), len(rs_c.pods), rs_s.ready, rs_c.ready,
            self._available(rs_s), self._available(rs_c),
        ))

    def flush(self: SimWorld) -> None:
        """Account the traffic served since the last flush, in the state it was served in."""
        now = self.env.now
        a = self.last_flush
        if now <= a:
            return
        self.last_flush = now
        sc = self.sc
        total = self.shape.requests(a, now)
        rps = total / (now - a)
        share = self._state_share
        ready = self._state_ready
        b = self.cur
        preview = 0.0
        if self.plan.routing == "active" and share[1] == 0.0 and ready[1] > 0:
            preview = sc.strategy.preview_rps * (now - a)  # smoke tests through the preview service
        self.usage.account(b, (rps * share[0], rps * share[1] + preview / (now - a)), ready, now - a)
        for i, version in enumerate(VERSIONS):
            lam = total * share[i]
            if lam <= 0 and not (i == 1 and preview > 0):
                continue
            spec = self.versions[version]
            offered = rps * share[i] + (preview / (now - a) if i == 1 else 0.0)
            endpoints, silent = self._state_routes[0][i], self._state_routes[1][i]
            served = serve(offered, endpoints, sc.pod.capacity_rps, spec.error_rate, self.outage_rate,
                           spec.latency_ms or sc.pod.latency_ms)
            p_fail = with_silent_endpoints(served.p_fail, endpoints, silent)
            loglat = math.log(served.median_ms * self.usage.throttle(i, offered, ready[i]))
            b.lam[i] += lam
            b.mu[i] += lam * p_fail
            b.mu_shutdown[i] += lam * unanswered_share(endpoints, self._state_routes[2][i])
            b.loglat[i] += lam * loglat
            if i == 1 and preview > 0:
                b.lam[2] += preview
                b.mu[2] += preview * p_fail
                b.loglat[2] += preview * loglat
        # failures had the stable version alone served it with all its replicas
        p0 = failure_probability(rps, sc.replicas, sc.pod.capacity_rps, sc.stable.error_rate, self.outage_rate)
        b.baseline_mu += total * p0
        b.weight_time += share[1] * 100 * (now - a)

    def close_bin(self: SimWorld) -> None:
        """End the current bin now (at a resolution tick or a measurement)."""
        self.flush()
        now = self.env.now
        if now <= self.cur.start:
            return
        b = self.cur
        b.end = now
        b.pods = self._state_pods
        b.ready = self._state_ready
        b.pods_total = b.pods[0] + b.pods[1] + self.terminating
        self.bins.append(b)
        self.cur = Bin(start=now)

    def _bins(self: SimWorld):  # noqa: ANN202 - a SimPy process
        res = self.sc.resolution
        while True:
            nxt = (math.floor(self.env.now / res + 1e-9) + 1) * res
            yield self.env.timeout(nxt - self.env.now)
            self.close_bin()

    def draw(self: SimWorld) -> None:
        """Draw requests, failures and latency percentiles for bins not drawn yet."""
        todo = self.bins[self.drawn:]
        if not todo:
            return
        lam = np.array([b.lam for b in todo])
        mu = np.array([b.mu for b in todo])
        with np.errstate(invalid="ignore", divide="ignore"):
            logmed = np.where(lam > 0, np.array([b.loglat for b in todo]) / np.where(lam > 0, lam, 1), 0.0)
        n, failed = sample_counts(self.rng, lam, mu)
        in_shutdown = self._failed_in_shutdown(failed, mu, [b.mu_shutdown for b in todo])
        sig = np.broadcast_to(np.array(self.sigma), lam.shape)
        pct = [sample_percentiles(self.rng, n, logmed, sig, q) for q in PERCENTILES]
        for j, b in enumerate(todo):
            b.requests = tuple(int(x) for x in n[j])
            b.failed = tuple(int(x) for x in failed[j])
            b.failed_in_shutdown = int(in_shutdown[j])
            b.latency = tuple(tuple(float(p[j, i]) for p in pct) for i in range(3))  # type: ignore[assignment]
        self.drawn = len(self.bins)

    # --- the simulated metrics provider ------------------------------------------------------

    def measure(self: SimWorld, start: float, end: float) -> Measurement:
        """Both versions over [start, end], as a metrics backend would report them."""
        self.close_bin()
        if self.metrics_down:
            return Measurement(start, end, error="metrics provider unavailable (injected outage)")
        self.draw()
        chosen = []  # the window's bins, read back from the newest (a window ends near now)
        for b in reversed(self.bins):
            if b.start < start - 1e-9:
                break
            if b.end <= end + 1e-9:
                chosen.append(b)
        chosen.reverse()
        versions = {}
        for i, version in enumerate(VERSIONS):
            # the candidate's metrics include test traffic through the preview service
            chans = (i, 2) if i == 1 else (i,)
            reqs = tuple(sum(b.requests[c] for c in chans) for b in chosen)  # type: ignore[index]
            errs = tuple(sum(b.failed[c] for c in chans) for b in chosen)
            p99s = tuple(_p99(b, chans) for b in chosen)
            n = sum(reqs)
            lam = np.array([b.lam[c] for b in chosen for c in chans])
            logmed = np.array([b.loglat[c] / b.lam[c] if b.lam[c] > 0 else 0.0 for b in chosen for c in chans])
            sig = np.full(len(lam), self.sigma[i])
            pct = mixture_percentiles(self.rng, lam, logmed, sig, n) if chosen else [math.nan] * 3
            versions[version] = VersionWindow(
                requests=n, errors=sum(errs), latency_p50=pct[0], latency_p95=pct[1], latency_p99=pct[2],
                seconds=end - start, series_requests=reqs, series_errors=errs, series_latency_p99=p99s,
                **self.usage.window(chosen, i),
            )
        return Measurement(start, end, versions)

    def samples(self: SimWorld) -> Samples:
        """The run's samples, in the shape every world emits (bins drawn first)."""
        self.draw()
        bins = []
        for b in self.bins:
            users = (b.requests or (0, 0, 0))[:2]
            expected = b.lam[0] + b.lam[1]
            baseline = b.baseline_mu * (sum(users) / expected if expected else 0.0)
            lat = b.latency
            bins.append(TrafficBin(
                start=b.start, end=b.end, requests=b.requests or (0, 0, 0),  # type: ignore[arg-type]
                failed=b.failed,  # type: ignore[arg-type]
                latency_p50=(lat[0][0] if lat[0] else math.nan, lat[1][0] if lat[1] else math.nan),
                latency_p99=(lat[0][2] if lat[0] else math.nan, lat[1][2] if lat[1] else math.nan),
                expected_stable_only_failed=baseline, failed_in_shutdown=b.failed_in_shutdown,
            ))
        self._last_restarts()  # a restart since the last change of state
        self.emitted.bins = bins
        return self.emitted

def _p99(b: Bin, chans: tuple[int, ...]) -> float:
    """The bin's p99 over channels: the busiest channel's (preview and users rarely overlap)."""
    best = max(chans, key=lambda c: (b.requests or (0, 0, 0))[c])
    return b.latency[best][2] if b.latency[best] else math.nan
