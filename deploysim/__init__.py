"""deploysim: rehearse a Kubernetes rollout, execute the same plan, keep the record.

The public surface is what this module exports (``__all__``); everything else may change.
What a user needs to build a plan or an observation and run the controller on it:

>>> import deploysim
>>> scenario = deploysim.load_scenario(overrides=["duration=30m"])
>>> plan = deploysim.compile_plan(scenario)
>>> plan.strategy, isinstance(plan.steps[0], deploysim.SetWeight)
('canary', True)

``import deploysim`` stays light: the error classes load with it, everything else (the
simulator, pandas behind the record) on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deploysim.errors import (
    EXIT_BAD_INPUT,
    EXIT_ENVIRONMENT,
    EXIT_NOT_PROMOTED,
    EXIT_OK,
    ClusterError,
    DeploysimError,
    ManifestError,
    MetricsError,
    ParameterError,
    PrometheusError,
    RolloutNotPromoted,
    ScenarioError,
    TargetUnavailable,
    exit_code,
)

if TYPE_CHECKING:
    from deploysim.controller import (
        Action,
        Decision,
        Observation,
        Reconciled,
        VersionState,
        initial_status,
        reconcile,
    )
    from deploysim.plan import (
        AnalysisSpec,
        Analyze,
        Check,
        Pause,
        Plan,
        Recreate,
        RollingUpdate,
        ScaleCandidate,
        ScaleDownStable,
        SetCanaryScale,
        SetWeight,
        Step,
        SwitchTraffic,
    )
    from deploysim.record import Record
    from deploysim.scenario import Scenario, load_scenario
    from deploysim.sim import rehearse
    from deploysim.strategies import compile_plan

__version__ = "0.1.0"

# public name -> the module that defines it, imported on first use
_LAZY = {
    **dict.fromkeys(
        ("Plan", "Step", "Check", "AnalysisSpec", "SetWeight", "SetCanaryScale", "Pause", "Analyze",
         "RollingUpdate", "Recreate", "ScaleCandidate", "SwitchTraffic", "ScaleDownStable"),
        "deploysim.plan"),
    **dict.fromkeys(
        ("Observation", "VersionState", "Action", "Decision", "Reconciled", "reconcile", "initial_status"),
        "deploysim.controller"),
    "Scenario": "deploysim.scenario",
    "load_scenario": "deploysim.scenario",
    "compile_plan": "deploysim.strategies",
    "rehearse": "deploysim.sim",
    "Record": "deploysim.record",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'deploysim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_ENVIRONMENT",
    "EXIT_NOT_PROMOTED",
    "EXIT_OK",
    "Action",
    "AnalysisSpec",
    "Analyze",
    "Check",
    "ClusterError",
    "Decision",
    "DeploysimError",
    "ManifestError",
    "MetricsError",
    "Observation",
    "ParameterError",
    "Pause",
    "Plan",
    "PrometheusError",
    "Reconciled",
    "Record",
    "Recreate",
    "RollingUpdate",
    "RolloutNotPromoted",
    "ScaleCandidate",
    "ScaleDownStable",
    "Scenario",
    "ScenarioError",
    "SetCanaryScale",
    "SetWeight",
    "Step",
    "SwitchTraffic",
    "TargetUnavailable",
    "VersionState",
    "compile_plan",
    "exit_code",
    "initial_status",
    "load_scenario",
    "reconcile",
    "rehearse",
]
