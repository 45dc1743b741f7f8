"""The simulated world of the last rehearsal, for what its record does not keep (each pod,
its restarts): the ``world`` fixture swaps the engine's world class for one that remembers
itself."""

from __future__ import annotations

from typing import Any

import pytest

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
