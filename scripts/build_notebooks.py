"""Write the runbooks (runbooks/*.ipynb) and the analysis notebooks (notebooks/*.ipynb).

Every notebook is generated here with nbformat so they stay consistent: the runbooks'
parameters cells come from the parameter models in deploysim.runbooks, and all logic lives in
the package. The generated files are committed.

    .venv/bin/python scripts/build_notebooks.py                 # write runbooks/ and notebooks/
    .venv/bin/python scripts/build_notebooks.py --execute       # ... and store notebooks' outputs
    .venv/bin/python scripts/build_notebooks.py --sample-trail  # regenerate data/sample_trail/

Run ``--sample-trail`` before ``--execute`` when both change: post_incident.ipynb reads it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploysim import runbooks  # noqa: E402

KERNEL = {
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
}


def _nb(cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells, metadata=KERNEL)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives the same file
    return nb


def _parameters(source: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": ["parameters"]})


# --- runbooks --------------------------------------------------------------------------------

RUNBOOK_INTRO = {
    "rolling": (
        "Rolling update",
        "Replace the stable version's pods with the candidate's, a few at a time, as the Deployment "
        "controller does (maxSurge, maxUnavailable), with background analysis that rolls back on failure.",
        '-p duration 20m -y "{candidate: {error_rate: 0.001}}"',
    ),
    "canary": (
        "Canary",
        "Shift traffic to the candidate step by step (5% → 25% → 50% → 100% by default), holding and "
        "analysing between steps; a failed analysis rolls back. `manual_gate` adds an approval before 100%.",
        '-p duration 30m -p step_pause 1m -y "{candidate: {error_rate: 0.05}}"',
    ),
    "blue_green": (
        "Blue-green",
        "Bring up the idle colour, check it through the preview, switch all traffic at once, keep the old "
        "colour for instant rollback, then scale it down. `manual_gate` waits for approval before switching.",
        '-p duration 20m -p manual_gate True -p approve never',
    ),
    "rollback": (
        "Rollback",
        "Roll a bad release back: detect, decide (that is why you run this), execute, verify that the "
        "metrics return to normal, and leave a record for the investigation. The scenario's candidate is the "
        "release serving now; its stable version is the one restored.",
        '-p reason "INC-1234: checkout errors" -p verify 5m',
    ),
}


def runbook_notebook(name: str) -> nbformat.NotebookNode:
    title, what, example = RUNBOOK_INTRO[name]
    intro = f"""# {title} runbook

{what}

Parameters are in the next cell (list them with `papermill --help-notebook runbooks/{name}.ipynb`). Every
run leaves an audit folder `RECORD_DIR/<UTC time>-{name}-<id>/`: `record.json`, `timeline.csv`, the plots,
this notebook executed and an HTML copy without code, all with secrets redacted.

```
papermill runbooks/{name}.ipynb out.ipynb {example}
deploysim run {name} {example}
```

Exit code: 0 when it succeeded ({'the previous version serves again with normal metrics' if name == 'rollback'
else 'promoted'}); non-zero when it was {'not completed or not verified' if name == 'rollback'
else 'rolled back, failed or paused'} — the last cell raises after the record is written. The target
`kubernetes` takes the same parameters (plus the cluster's) and acts on a real cluster."""
    return _nb([
        new_markdown_cell(intro),
        _parameters(runbooks.parameter_cell(name)),
        new_code_cell(
            "# Check every parameter before anything happens: unknown names, types, values, the scenario.\n"
            "from deploysim.runbooks import validate_parameters\n\n"
            f'run = validate_parameters("{name}", globals())\n'
            "run.describe()"
        ),
        new_markdown_cell("## Run\n\nThe audit folder is created first; then one line per step as it is taken."),
        new_code_cell("folder = run.start()\nrecord = run.execute()"),
        new_markdown_cell("## Plots"),
        new_code_cell("run.plot()"),
        new_markdown_cell("## Measurements\n\nEach team metric as measured: the query as sent (secrets redacted), "
                          "the raw answer, the value and the verdict."),
        new_code_cell("run.measurements()"),
        new_markdown_cell("## Record\n\n`record.json`, `timeline.csv`, `summary.json` in the audit folder; "
                          "the structured result below is `application/vnd.deploysim.record.v1+json`."),
        new_code_cell("outcome = run.finish()"),
        new_markdown_cell("## Verdict\n\nCopies this notebook and its HTML into the audit folder, then fails "
                          "the run (non-zero exit) unless it succeeded."),
        new_code_cell("run.close()"),
    ])


# --- analysis notebooks ----------------------------------------------------------------------

# nbval compares the stored outputs with a fresh run. Numbers that follow the simulator's
# version (comparisons, sweeps, replays) are marked NBVAL_IGNORE_OUTPUT; each such cell is
# followed by a compared cell stating what must hold whatever the version.
IGNORE_SIM = ("# NBVAL_IGNORE_OUTPUT\n"
              "# (the numbers follow the simulator's version; the next compared cell checks what must hold)\n")

REHEARSE = [
    new_markdown_cell(
        "# Rehearse: compare the four strategies on one scenario\n\n"
        "The same scenario (the built-in one unless `scenario` says otherwise) rolled out by rolling update, "
        "canary, blue-green and recreate in the simulator: who catches a bad candidate, how many requests "
        "fail first, what it costs in pods and time. Parameters go in the next cell "
        "(`papermill notebooks/rehearse.ipynb out.ipynb -p scenario my.yaml`)."),
    _parameters(
        'scenario: "Optional[str]" = None  # scenario YAML; None: the built-in scenario\n'
        'overrides: list = []  # scenario keys, each as for deploysim rehearse --set\n'
        'strategies: list = ["rolling", "canary", "blue-green", "recreate"]  # strategies to compare\n'),
    new_code_cell(
        "from deploysim import compare\n"
        "from deploysim.scenario import load_scenario\n\n"
        "base = load_scenario(scenario, overrides)\n"
        "print(compare.describe_scenario(base))"),
    new_markdown_cell("## The four rollouts\n\nOne row per strategy (times in seconds, failures in requests)."),
    new_code_cell(IGNORE_SIM + "records = compare.compare_strategies(base, strategies)\n"
                  "compare.comparison_frame(records)"),
    new_code_cell("print(compare.outcomes(records))"),
    new_markdown_cell("## Failed requests and the candidate's weight over time"),
    new_code_cell("compare.show_comparison(records)"),
    new_markdown_cell("## Each rollout's decisions"),
    new_code_cell(IGNORE_SIM + "compare.decisions_frame(records)"),
    new_markdown_cell("## Verdict"),
    new_code_cell(IGNORE_SIM + "print(compare.verdict(records))"),
]

TUNE = [
    new_markdown_cell(
        "# Tune the analysis: detection against false rollbacks\n\n"
        "Sweep the error-rate threshold of the analysis and the judge over many seeds, with the "
        "scenario's bad candidate and with a healthy one (a copy of the stable version). A setting "
        "is good when it catches the bad candidate (detection rate) without rolling back the "
        "healthy one (false-rollback rate), and quickly. Runs are kept small so the notebook "
        "takes seconds; raise `runs` for a real decision."),
    _parameters(
        'scenario: "Optional[str]" = None  # scenario YAML; None: the built-in scenario\n'
        'overrides: list = ["duration=25m"]  # scenario keys, each as for deploysim rehearse --set\n'
        'thresholds: list = [0.002, 0.005, 0.02]  # error_rate max values to try\n'
        'judges: list = ["threshold", "mann_whitney", "sequential"]  # judges to try (unavailable ones are skipped)\n'
        'runs: int = 6  # seeds per threshold, judge and candidate\n'
        'workers: int = 1  # processes for the sweep\n'
        'max_false_rollback: float = 0.05  # the highest false-rollback rate acceptable\n'),
    new_code_cell(
        "from deploysim import tuning\n"
        "from deploysim.scenario import load_scenario\n\n"
        "base = load_scenario(scenario, overrides)\n"
        "usable = tuning.available_judges(judges)\n"
        "print(f\"candidate error rate {base.candidate.error_rate}, stable {base.stable.error_rate}; \"\n"
        "      f\"judges {', '.join(usable)}; {runs} seeds each\")"),
    new_markdown_cell("## The sweep\n\nOne row per threshold and judge."),
    new_code_cell(IGNORE_SIM + "table = tuning.threshold_sweep(base, thresholds, usable, runs=runs, workers=workers)\n"
                  "table"),
    new_code_cell("print(tuning.sanity(table, base))"),
    new_markdown_cell("## Detection against false rollbacks\n\nEach point is a threshold; up and to the left is better."),
    new_code_cell("tuning.show_tradeoff(table)"),
    new_markdown_cell("## The setting to use"),
    new_code_cell(IGNORE_SIM + "choice = tuning.pick_setting(table, max_false_rollback)\n"
                  "print(tuning.describe_choice(choice, max_false_rollback))"),
]

POST_INCIDENT = [
    new_markdown_cell(
        "# Post-incident analysis\n\n"
        "Load one or more audit trails (run folders, or a folder of them), lay out what happened step by "
        "step with the decisions and the metric values behind them, compute time to detect and time to "
        "recover, then replay the same rollout in the simulator under the other strategies to see what "
        "each would have cost. By default it reads the sample trail shipped in `data/sample_trail/`:\n\n"
        "```\npapermill notebooks/post_incident.ipynb out.ipynb -y \"{trails: [runs/]}\"\n```"),
    _parameters(
        'trails: list = ["data/sample_trail"]  # run folders or folders of runs (relative: here, then the repository)\n'
        'strategies: list = ["rolling", "canary", "blue-green", "recreate"]  # strategies to replay\n'),
    new_code_cell(
        "from deploysim import incident\n\n"
        "loaded = incident.load_trails(trails)\n"
        "incident.trails_frame(loaded)"),
    new_markdown_cell("## What happened\n\nEvery decision of each run, with the step it was on, its reason and the "
                      "metric values it was taken on (times are seconds from the start of the run's clock)."),
    new_code_cell("incident.timeline_frame(loaded)"),
    new_markdown_cell("## Errors, weight and decisions over time"),
    new_code_cell("incident.show_timelines(loaded)"),
    new_markdown_cell("## Time to detect and time to recover\n\nComputed from the timeline and the decisions; "
                      "`record_*` columns are what the record's summary says, for a cross-check."),
    new_code_cell("incident.times_frame(loaded)"),
    new_code_cell("print(incident.what_happened(loaded))"),
    new_markdown_cell("## The summary, whatever world ran it\n\nThe same fields for a rehearsal and for a run on "
                      "a cluster, computed by one `summarize`; a field a world cannot know is blank and "
                      "`unknown` says why."),
    new_code_cell("incident.summary_frame(loaded)"),
    new_markdown_cell("## Replay under the other strategies\n\nThe same scenario and seed, rolled out by each "
                      "strategy in the simulator. `same_as_record` says whether the replay of the strategy "
                      "that ran reproduces the record (it does while the simulator's version is the one that "
                      "recorded the trail)."),
    new_code_cell(IGNORE_SIM + "replays = incident.replay(loaded, strategies)\nreplays"),
    new_code_cell("print(incident.replay_check(loaded, replays, strategies))"),
    new_code_cell("incident.show_replays(loaded, strategies)"),
    new_markdown_cell("## What the other strategies would have cost"),
    new_code_cell(IGNORE_SIM + "print(incident.alternatives(loaded, replays))"),
]

NOTEBOOKS = {"rehearse": REHEARSE, "tune_analysis": TUNE, "post_incident": POST_INCIDENT}


# --- writing, executing, the sample trail ----------------------------------------------------

def write_all() -> list[Path]:
    written = []
    for name in runbooks.RUNBOOKS:
        path = ROOT / "runbooks" / f"{name}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(runbook_notebook(name), str(path))
        written.append(path)
    for name, cells in NOTEBOOKS.items():
        path = ROOT / "notebooks" / f"{name}.ipynb"
        path.parent.mkdir(exist_ok=True)
        fresh = _nb([nbformat.from_dict(c) for c in cells])
        if path.exists():
            old = nbformat.read(str(path), as_version=4)
            if [c.source for c in old.cells] == [c.source for c in fresh.cells]:
                continue  # unchanged: keep its stored outputs
            print(f"{path.relative_to(ROOT)} changed: run with --execute to store its outputs")
        nbformat.write(fresh, str(path))
        written.append(path)
    return written


def execute_notebooks(names: list[str]) -> None:
    """Run each notebook in place (from its own folder, as nbval does) to store its outputs."""
    from nbclient import NotebookClient

    for name in names:
        path = ROOT / "notebooks" / f"{name}.ipynb"
        nb = nbformat.read(str(path), as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        nbformat.write(nb, str(path))
        print(f"executed {path.relative_to(ROOT)}")


SAMPLE_PARAMETERS = {
    "duration": "30m",
    "step_pause": "1m",
    "candidate": {"error_rate": 0.03},
    "seed": 11,
    "reason": "sample trail: checkout 1.42.0 canary, a regression in the payment path",
}


def sample_trail() -> Path:
    """A canary of a bad candidate, run through its runbook; the folder goes in data/sample_trail/."""
    target = ROOT / "data" / "sample_trail"
    with tempfile.TemporaryDirectory() as tmp:
        result = runbooks.run_notebook("canary", {**SAMPLE_PARAMETERS, "record_dir": tmp})
        if result.folder is None or result.outcome != "rolled_back":
            raise SystemExit(f"expected a rolled-back run, got {result}")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        shutil.copytree(result.folder, target / result.folder.name)
        print(f"sample trail: {target / result.folder.name} ({result.status})")
        return target / result.folder.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", nargs="*", metavar="NAME",
                        help="execute notebooks/ (all, or the ones named) to store their outputs")
    parser.add_argument("--sample-trail", action="store_true", help="regenerate data/sample_trail/")
    args = parser.parse_args()
    for path in write_all():
        print(f"wrote {path.relative_to(ROOT)}")
    if args.sample_trail:
        sample_trail()
    if args.execute is not None:
        execute_notebooks(args.execute or list(NOTEBOOKS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
