"""deploysim: rehearse a Kubernetes rollout, execute the same plan, keep the record.

The public surface is what this module exports; everything else may change.
"""

from deploysim.controller import Observation, reconcile
from deploysim.errors import DeploysimError, ManifestError, ParameterError, ScenarioError
from deploysim.plan import Plan
from deploysim.record import Record
from deploysim.scenario import Scenario, load_scenario
from deploysim.sim import rehearse
from deploysim.strategies import compile_plan

__version__ = "0.1.0"

__all__ = [
    "DeploysimError",
    "ManifestError",
    "Observation",
    "ParameterError",
    "Plan",
    "Record",
    "Scenario",
    "ScenarioError",
    "compile_plan",
    "load_scenario",
    "reconcile",
    "rehearse",
]
