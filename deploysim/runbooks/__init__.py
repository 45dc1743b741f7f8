"""Runbooks: papermill notebooks that validate parameters, run one plan, and leave a trail.

The notebooks in ``runbooks/`` stay thin; everything they do is here, where it is tested.
A runbook's cells, after its ``parameters`` cell (and the one papermill injects):

1. ``run = validate_parameters("canary", globals())``: every parameter checked (unknown
   names, types, values, the scenario they build) before anything happens;
2. ``run.start()`` creates the audit folder; ``run.execute()`` runs the plan in the target
   world, printing each step as it is taken;
3. ``run.plot()``, ``run.finish()`` write the plots and the record;
4. ``run.close()`` copies the executed notebook and an HTML copy into the folder, then
   raises :class:`~deploysim.errors.RolloutNotPromoted` unless the run succeeded, so
   ``papermill`` exits non-zero.

The rooms: :mod:`~deploysim.runbooks.parameters` (the models and the parameters cell),
:mod:`~deploysim.runbooks.build` (scenario, plan, target), :mod:`~deploysim.runbooks.outcome`
(the verdict, rollback verification), :mod:`~deploysim.runbooks.session` (the run and its
audit folder) and :mod:`~deploysim.runbooks.notebook` (papermill glue).

>>> run = validate_parameters("canary", {"duration": "20m", "weights": [10, 50]})
>>> [step.describe() for step in run.plan.steps][:2]
['set weight to 10%', 'pause 2m']
"""

from deploysim.runbooks.build import (
    KubeTarget,
    build_plan,
    build_scenario,
    kube_target,
    target_context,
)
from deploysim.runbooks.notebook import (
    ENV_NOTEBOOK,
    ENV_RUN_DIR,
    RunResult,
    collect_parameters,
    find_runbook,
    injected_names,
    notebook_output_path,
    notebook_parameters,
    parameter_names,
    run_notebook,
)
from deploysim.runbooks.outcome import Outcome, judge_outcome, verify_rollback
from deploysim.runbooks.parameters import (
    GROUPS,
    PARAMETER_MODELS,
    RUNBOOKS,
    TARGETS,
    BlueGreenParameters,
    CanaryParameters,
    RollbackParameters,
    RollingParameters,
    RunbookParameters,
    immutable_image,
    parameter_cell,
    parameter_model,
    read_parameters,
)
from deploysim.runbooks.session import (
    WORLDS,
    ProgressPrinter,
    RunbookRun,
    check_target,
    clock,
    execute,
    prepare,
    validate_parameters,
)

__all__ = [
    "ENV_NOTEBOOK",
    "ENV_RUN_DIR",
    "GROUPS",
    "PARAMETER_MODELS",
    "RUNBOOKS",
    "TARGETS",
    "WORLDS",
    "BlueGreenParameters",
    "CanaryParameters",
    "KubeTarget",
    "Outcome",
    "ProgressPrinter",
    "RollbackParameters",
    "RollingParameters",
    "RunResult",
    "RunbookParameters",
    "RunbookRun",
    "build_plan",
    "build_scenario",
    "check_target",
    "clock",
    "collect_parameters",
    "execute",
    "find_runbook",
    "immutable_image",
    "injected_names",
    "judge_outcome",
    "kube_target",
    "notebook_output_path",
    "notebook_parameters",
    "parameter_cell",
    "parameter_model",
    "parameter_names",
    "prepare",
    "read_parameters",
    "run_notebook",
    "target_context",
    "validate_parameters",
    "verify_rollback",
]
