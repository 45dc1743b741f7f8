"""Shared helpers for the suite."""

from __future__ import annotations

import pytest

from deploysim.scenario import Scenario, load_scenario


@pytest.fixture
def scenario_of():
    """Build a scenario from the built-in default plus overrides."""

    def make(*overrides: str, **data) -> Scenario:  # noqa: ANN003
        if data:
            return load_scenario(data=data, overrides=list(overrides))
        return load_scenario(overrides=list(overrides))

    return make
