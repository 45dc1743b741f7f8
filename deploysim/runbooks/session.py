"""The audit session: one runbook run, from checked parameters to a complete audit folder.

``validate_parameters`` checks everything before anything happens; the run it returns
creates its folder (``start``), runs the plan in the target world (``execute``), writes the
plots and the record (``plot``, ``finish``) and copies the notebook (``close``), which
raises :class:`~deploysim.errors.RolloutNotPromoted` unless the run succeeded.

The world is chosen by ``target`` behind one function, :func:`execute`: ``sim`` calls
``deploysim.sim.rehearse(scenario, plan)``; ``kubernetes`` calls
``deploysim.kube.execute_plan(scenario, plan, target, run_id=..., approve_after=...,
on_decision=...)`` (``target`` a :class:`~deploysim.runbooks.build.KubeTarget`, ``run_id``
the audit folder's name, ``approve_after`` seconds at a manual gate or None for never,
``on_decision`` called with each decision as it is taken). Where that function is missing,
a kubernetes run stops at validation with "target kubernetes needs deploysim.kube (not
available)".
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploysim.durations import format_duration
from deploysim.errors import ParameterError, RolloutNotPromoted, TargetUnavailable, exit_code
from deploysim.lint import check_runbook
from deploysim.plan import Plan
from deploysim.record import Record
from deploysim.redact import Redactor
from deploysim.release import keep_after, release_check
from deploysim.runbooks.build import build_plan, build_scenario, kube_target, target_context
from deploysim.runbooks.notebook import ENV_RUN_DIR, injected_names, notebook_output_path, repo_root
from deploysim.runbooks.outcome import Outcome, judge_outcome
from deploysim.runbooks.parameters import RollbackParameters, RunbookParameters, read_parameters
from deploysim.scenario import Scenario
from deploysim.trail import (
    ERROR,
    RECORD_FILE,
    RECORD_MIMETYPE,
    RUNNING,
    TRAIL_KIND,
    TRAIL_VERSION,
    environment,
    export_notebook,
    git_info,
    iso,
    jsonable,
    make_run_folder,
    process_identity,
    run_name,
    step_details,
    utc_now,
    who,
    write_json,
    write_text,
)

Decision = dict[str, Any]
OnDecision = Callable[[Decision], None]
PLOTS = ("traffic", "pods")
#: the key of the output metadata that marks a notebook as one run's (its ``{"run": id}``)
RUN_MARK = "deploysim"


# --- validation: the first cell after the parameters -----------------------------------------


def prepare(params: RunbookParameters, given: dict[str, Any] | None = None,
            notebook_hint: str | None = None) -> RunbookRun:
    """The run the parameters describe: scenario and plan built, linted (an error stops the
    run here, :class:`~deploysim.lint.LintError`), target world present, and the release gate
    passed (:func:`deploysim.release.release_check`: a gated environment's run without a
    passing run of its digest before it stops here, exit 2, unless overridden)."""
    scenario, setters = build_scenario(params)
    plan = build_plan(params, scenario)
    found = check_runbook(params, scenario, plan)
    check_target(params.target)
    release = release_check(params, scenario)
    given = dict(given if given is not None else params.model_dump(exclude_unset=True))
    lint = [{"id": f.id, "severity": f.severity, "path": f.location.describe(), "message": f.message,
             "subject": f.subject} for f in found] + release.get("lint", [])  # the warnings the run went on with
    return RunbookRun(runbook=params.runbook, params=params, given=given, scenario=scenario, plan=plan,
                      redactor=Redactor.from_parameters(params.model_dump()), setters=setters,
                      notebook_hint=notebook_hint, release=release, lint=lint)


def validate_parameters(runbook: str, namespace: Mapping[str, Any]) -> RunbookRun:
    """Check every parameter before anything happens; the run, ready to start.

    ``namespace`` is the notebook's ``globals()`` (the names papermill injected are read
    from the kernel's history) or a plain mapping of parameters.

    >>> run = validate_parameters("rolling", {"duration": "20m", "candidate": {"error_rate": 0.001}})
    >>> run.scenario.strategy.kind, run.scenario.duration, run.scenario.candidate.error_rate
    ('rolling', 1200.0, 0.001)
    >>> validate_parameters("rolling", {"no_such_param": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deploysim.errors.ParameterError: unknown parameter 'no_such_param' for runbook rolling; ...
    """
    names = injected_names(namespace)
    if names is None:  # a plain mapping: every key is a given parameter
        names = set(namespace)
    params, given = read_parameters(runbook, namespace, names)
    hint = namespace.get("PAPERMILL_OUTPUT_PATH")
    return prepare(params, given, hint if isinstance(hint, str) else None)


# --- worlds: one function, dispatching on target ---------------------------------------------


def _run_sim(run: RunbookRun, on_decision: OnDecision) -> Record:
    from deploysim.sim import rehearse

    record = rehearse(run.scenario, run.plan)
    # the rehearsal takes milliseconds: its decisions are shown in simulated-time order after it
    for decision in record.decisions:
        on_decision(decision)
    return record


def _kube_backend() -> Callable[..., Record]:
    try:
        module = importlib.import_module("deploysim.kube")
        return module.execute_plan
    except (ImportError, AttributeError):
        raise TargetUnavailable("target kubernetes needs deploysim.kube (not available)") from None


def _run_kubernetes(run: RunbookRun, on_decision: OnDecision) -> Record:
    execute_plan = _kube_backend()
    return execute_plan(run.scenario, run.plan, kube_target(run.params, run.scenario),
                        run_id=run.folder.name if run.folder else None,
                        approve_after=run.scenario.approve_after(), on_decision=on_decision)


WORLDS: dict[str, Callable[[RunbookRun, OnDecision], Record]] = {"sim": _run_sim, "kubernetes": _run_kubernetes}


def check_target(target: str) -> None:
    """Fail before anything happens when the target's world is not installed."""
    if target == "kubernetes":
        _kube_backend()


def execute(run: RunbookRun | RunbookParameters, on_decision: OnDecision | None = None) -> Record:
    """Run the plan in the world the parameters' ``target`` names; the same record either way."""
    if isinstance(run, RunbookParameters):
        run = prepare(run)
    return WORLDS[run.params.target](run, on_decision or (lambda d: None))


# --- progress --------------------------------------------------------------------------------


def clock(seconds: float) -> str:
    """``t+07:26`` (or ``t+1:02:03``) from seconds since the world's start.

    >>> clock(446.25), clock(3723)
    ('t+07:26', 't+1:02:03')
    """
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"t+{h}:{m:02d}:{sec:02d}" if h else f"t+{m:02d}:{sec:02d}"


class ProgressPrinter:
    """One line per decision: when, which step of how many, what and why."""

    def __init__(self, plan: Plan, redactor: Redactor | None = None, stream: Any = None) -> None:
        self.total = len(plan.steps)
        self.redactor = redactor or Redactor()
        self.stream = stream

    def __call__(self, d: Decision) -> None:
        kind, reason = d["kind"], d["reason"]
        if kind == "step":
            label = f"step {d['step'] + 1}/{self.total}"
            reason = reason.split(": ", 1)[-1]
        else:
            label = kind
        print(f"{clock(d['at'])}  {label:<10} {self.redactor.text(reason)}", file=self.stream or sys.stdout,
              flush=True)


def _show_png(path: Path) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(Image(filename=str(path)))


def _show_trail(folder: Path) -> None:
    """Where the audit trail is; in a notebook the output is marked with the run's id, so the
    notebook copied into the trail is known to be this run's (:func:`notebook_not_this_run`)."""
    _display({}, f"audit trail: {folder}/", metadata={RUN_MARK: {"run": folder.name}})


def _display(bundle: dict[str, Any], text: str, metadata: dict[str, Any] | None = None) -> None:
    """``bundle`` with ``text`` as its plain form in a notebook; ``text`` printed elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(text)
        return
    if get_ipython() is None:
        print(text)
        return
    display({**bundle, "text/plain": text}, metadata=metadata or {}, raw=True)


def notebook_runs(nb: Any) -> set[str]:
    """The run ids the outputs of a notebook are marked with (see :func:`_show_trail`).

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
    ...     "display_data", data={"text/plain": "audit trail: runs/r1/"}, metadata={RUN_MARK: {"run": "r1"}})])])
    >>> notebook_runs(nb)
    {'r1'}
    """
    runs = set()
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            mark = (output.get("metadata") or {}).get(RUN_MARK) if isinstance(output, dict) else None
            if isinstance(mark, dict) and isinstance(mark.get("run"), str):
                runs.add(mark["run"])
    return runs


def notebook_not_this_run(nb: Any, run_id: str, source: Path) -> str | None:
    """Why the notebook at ``source`` (papermill's output) is not run ``run_id``'s; None if it is.

    >>> notebook_not_this_run({"cells": []}, "r1", Path("out.ipynb"))  # doctest: +ELLIPSIS
    "the notebook at out.ipynb does not show this run's id (r1) yet..."
    """
    runs = notebook_runs(nb)
    if run_id in runs:
        return None
    if runs:
        return (f"the notebook at {source} is another run's ({', '.join(sorted(runs))}), not {run_id}'s: "
                "two runs share papermill's output path; give each run an output path of its own")
    return (f"the notebook at {source} does not show this run's id ({run_id}) yet (papermill saves a cell's "
            "output when the cell ends, or another run writes there); papermill's own copy stays there")


def _show_record(data: dict[str, Any], text: str) -> None:
    """The structured result as a versioned mimetype, with the status as plain text."""
    _display({RECORD_MIMETYPE: data}, text)


# --- the runbook session ---------------------------------------------------------------------


@dataclass
class RunbookRun:
    """One runbook run: validated parameters, the scenario and plan, and its audit folder."""

    runbook: str
    params: RunbookParameters
    given: dict[str, Any]
    scenario: Scenario
    plan: Plan
    redactor: Redactor
    setters: dict[str, str] = field(default_factory=dict)
    notebook_hint: str | None = None
    release: dict[str, Any] | None = None  # environment, image, digest and the gate's decision
    lint: list[dict[str, Any]] = field(default_factory=list)
    folder: Path | None = None
    record: Record | None = None
    outcome: Outcome | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    error_exit_code: int | None = None
    _t0: float = 0.0
    _git: dict[str, Any] | None = None
    _process: dict[str, Any] | None = None
    _notebook: dict[str, Any] | None = None
    _files: dict[str, str] = field(default_factory=dict)

    # -- what will run
    def describe(self) -> None:
        """Print what will run: target, parameters given, the scenario and the plan."""
        p, sc = self.params, self.scenario
        given = self.redactor.data(jsonable(self.given))
        print(f"runbook {self.runbook} on target {p.target}"
              + (" (the rehearsal world)" if p.target == "sim" else f" (namespace {p.namespace})"))
        print("parameters given: " + (", ".join(f"{k}={v!r}" for k, v in given.items()) or "none (defaults)"))
        print(f"service {sc.service}: {sc.replicas} replicas, stable {sc.stable.image} "
              f"-> candidate {sc.candidate.image}")
        if self.release and self.release.get("environment"):
            gate = self.release["gate"]
            print(f"environment {self.release['environment']}, digest {self.release['digest']}: " + (
                gate.get("why") or ("gate passed" if gate["passed"] else "gate OVERRIDDEN")))
        if p.target == "sim":
            print(f"simulated {format_duration(sc.duration)}, rollout starts at {format_duration(sc.start_at)}, "
                  f"seed {sc.seed}, approve {sc.approve}")
        for line in self.plan.describe():
            print(self.redactor.text(line))

    # -- the audit folder
    def start(self) -> Path:
        """Create the audit folder and write record.json (outcome: running, with this process's
        pid, host and start time) before any step; the folder appears with its record in it."""
        if self.folder is not None:
            return self.folder
        now = utc_now()
        env_dir = os.environ.get(ENV_RUN_DIR)
        folder = Path(env_dir) if env_dir else Path(self.params.record_dir) / run_name(self.runbook, now)
        self.folder = folder
        self.started_at = iso(now)
        self._t0 = time.perf_counter()
        # the code that runs: deploysim's own repository, else the folder the run started in
        self._git = git_info(repo_root()) or git_info(Path.cwd())
        self._process = process_identity()
        try:
            make_run_folder(folder, lambda tmp: self._write_record(into=tmp))
        except BaseException:
            self.folder = None
            raise
        _show_trail(folder)
        return folder

    def _run_section(self) -> dict[str, Any]:
        assert self.folder is not None
        section: dict[str, Any] = {
            "id": self.folder.name,
            "runbook": self.runbook,
            "outcome": self.outcome.outcome if self.outcome else (ERROR if self.error else RUNNING),
            "ok": self.outcome.ok if self.outcome else False,
            "status": self.outcome.status if self.outcome else (self.error or "running"),
            # what `deploysim run` (and so a pipeline) exits with; None while running
            "exit_code": self.outcome.exit_code if self.outcome else self.error_exit_code,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "wall_seconds": round(time.perf_counter() - self._t0, 3) if self.finished_at else None,
            "who": who(),
            "git": self._git,
            "environment": environment(),
            "cwd": str(Path.cwd()),
            "target": target_context(self.params, self.scenario, self.record),
            "parameters": {"given": jsonable(self.given), "resolved": self.params.model_dump(mode="json")},
            "release": self.release,  # `environment` above is the machine's
            "lint": self.lint,
            "clock": "seconds from the start of the simulated world" if self.params.target == "sim"
            else "seconds from the start of the run",
            "files": dict(self._files),
            "error": self.error,
            "process": self._process,
        }
        if self.outcome and self.outcome.details:
            section.update(self.outcome.details)
        if isinstance(self.params, RollbackParameters):
            section["rollback"] = {"from_image": self.scenario.stable.image, "to_image": self.scenario.candidate.image,
                                   "method": self.params.method, "reason": self.params.reason}
        return section

    def _write_record(self, notebook: dict[str, Any] | None = None, into: Path | None = None) -> None:
        assert self.folder is not None
        path = (into or self.folder) / RECORD_FILE
        self._notebook = notebook or self._notebook
        data: dict[str, Any] = {"version": TRAIL_VERSION, "kind": TRAIL_KIND, "run": self._run_section()}
        data["run"]["notebook"] = self._notebook
        if self.record is not None:
            rec = self.record.to_dict()
            rec.pop("version", None)
            rec["steps"] = step_details(self.record)
            changes = getattr(self.record, "changes", None)
            if changes is not None:
                rec["changes"] = changes  # every API change a real-world run made
            data.update(rec)
        else:
            data.update({"summary": None, "decisions": [], "steps": [], "plan": self.plan.to_dict(),
                         "scenario": self.scenario.to_data()})
        write_json(path, self.redactor.data(jsonable(data)))

    # -- running
    def execute(self, on_decision: OnDecision | None = None) -> Record:
        """Run the plan in the target world, printing each step as it is taken."""
        self.start()
        printer = on_decision or ProgressPrinter(self.plan, self.redactor)
        try:
            self.record = execute(self, printer)
        except BaseException as exc:
            self._fail(exc)
            raise
        return self.record

    def _fail(self, exc: BaseException) -> None:
        self.error = self.redactor.text(f"{type(exc).__name__}: {exc}")
        self.error_exit_code = exit_code(exc)
        self.finished_at = iso(utc_now())
        self._write_record()
        self._copy_notebook()

    def _write_plots(self, show: bool) -> None:
        from deploysim.report import plot_pods, plot_traffic

        record = self._need_record()
        assert self.folder is not None
        for name, plot in zip(PLOTS, (plot_traffic, plot_pods), strict=True):
            plot(record, self.folder / f"{name}.png", runbook=self.runbook)
            self._files[name] = f"{name}.png"
            if show:
                _show_png(self.folder / f"{name}.png")

    def plot(self) -> None:
        """Write the plots into the audit folder and show them."""
        self._write_plots(show=True)

    def measurements(self) -> Any:
        """Every team metric measured (query as sent, raw answer, value, verdict), as a table;
        says so when the analyses judged only built-in checks."""
        import pandas as pd

        from deploysim.record import MEASUREMENT_COLUMNS, measurement_rows

        rows = measurement_rows(self._need_record().decisions)
        if not rows:
            print("no team metrics measured: the analyses judged built-in checks (or their stand-ins in rehearsal)")
        return pd.DataFrame(rows, columns=list(MEASUREMENT_COLUMNS))

    def finish(self) -> Outcome:
        """Write the record (record.json, timeline.csv, summary.json, plots) and show the verdict."""
        record = self._need_record()
        assert self.folder is not None
        if not all(name in self._files for name in PLOTS):
            self._write_plots(show=False)
        # by rename, as record.json: a kill while writing leaves the old file or the new one
        write_text(self.folder / "timeline.csv", record.timeline.to_csv(index=False))
        write_text(self.folder / "summary.json", json.dumps(jsonable(record.summary), indent=2, sort_keys=True) + "\n")
        self._files.update(timeline="timeline.csv", summary="summary.json", record=RECORD_FILE)
        self.outcome = judge_outcome(self.params, self.scenario, record)
        self.finished_at = iso(utc_now())
        keep_after(self.params, self.scenario, self.release, self.folder.name, self.finished_at, self.outcome,
                   bool(getattr(record, "changes", None)))
        self._write_record()
        _show_record(self.redactor.data(jsonable(
            {"version": TRAIL_VERSION, "run": self.folder.name, "runbook": self.runbook,
             "target": self.params.target, "outcome": self.outcome.outcome, "ok": self.outcome.ok,
             "status": self.outcome.status, "summary": record.summary})), self.outcome.status)
        return self.outcome

    def close(self) -> None:
        """Copy the executed notebook and its HTML into the folder; raise unless it succeeded."""
        if self.outcome is None:
            self.finish()
        assert self.outcome is not None
        self._copy_notebook()
        print(f"audit trail: {self.folder}/")
        if not self.outcome.ok:
            raise RolloutNotPromoted(f"{self.runbook}: {self.outcome.status} (audit trail: {self.folder}/)",
                                     self.outcome.outcome, str(self.folder))

    def _copy_notebook(self) -> None:
        if self.folder is None:
            return
        source = notebook_output_path(self.notebook_hint)
        if source is None or not source.is_file():
            note = {"copied": False, "why": "the executed notebook's path is unknown: run it with "
                    "`deploysim run` or the papermill command line"}
            self._write_record(notebook=note)
            return
        target = (self.folder / f"{self.runbook}.ipynb").resolve()
        if source.resolve() == target:
            files = {"ipynb": target.name}
        else:
            import nbformat

            try:  # read once: what is checked is what is copied
                nb = nbformat.read(str(source), as_version=4)
            except Exception as exc:  # noqa: BLE001 - half written, or not a notebook: not copied, and why
                why: str | None = f"the notebook at {source} cannot be read ({type(exc).__name__})"
            else:
                why = notebook_not_this_run(nb, self.folder.name, source)
            if why:  # the record keeps the warning; papermill's own notebook is where it was
                self._write_record(notebook={"copied": False, "why": why})
                return
            files = export_notebook(nb, self.folder, self.runbook, self.redactor)
        self._write_record(notebook={"copied": True, **files, "complete": False,
                                     "note": "copied while its last cell ran; that cell's output is not in it"})

    def _need_record(self) -> Record:
        if self.record is None:
            raise ParameterError("no record yet: call run.execute() first")
        return self.record
