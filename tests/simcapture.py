"""What the rehearsal tests of probes, shutdown and the record's counts share: their rolling
update (:func:`rolling_scenario`), and the simulated world of the last rehearsal, for what
its record does not keep (each pod, its restarts): the ``world`` fixture swaps the engine's
world class for one that remembers itself."""

from __future__ import annotations

from typing import Any

import pytest

from deploysim.scenario import Scenario, load_scenario
from deploysim.sim import engine
from deploysim.sim.world import SimWorld


class Capture(SimWorld):
    """A :class:`SimWorld` that keeps the last one made."""

    last: SimWorld | None = None

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        Capture.last = self


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch):
    """A function giving the world of the last rehearsal run in the test."""
    monkeypatch.setattr(engine, "SimWorld", Capture)
    return lambda: Capture.last


REPLICAS, RPS = 10, 300.0


def rolling_scenario(*overrides: str, seed: int = 5, **pod: Any) -> Scenario:
    """A rolling update of a healthy candidate under constant traffic; pods start in 20 s;
    ``pod`` keys are merged into the scenario's pod section."""
    return load_scenario(data={
        "service": "web", "replicas": REPLICAS, "duration": "15m", "start_at": "1m", "seed": seed,
        "traffic": {"rps": RPS, "shape": "constant"},
        "pod": {"startup": "20s", "startup_jitter": 0, "termination": "5s", "capacity_rps": 100, **pod},
        "stable": {"image": "web:1.0.0", "error_rate": 0.001},
        "candidate": {"image": "web:1.1.0", "error_rate": 0.001},
        "strategy": {"kind": "rolling", "max_surge": 1, "max_unavailable": 1, "background_analysis": False},
    }, overrides=list(overrides))
