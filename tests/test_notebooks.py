"""The analysis notebooks: nbval against their stored outputs, post_incident on trails.

nbval runs in a subprocess (``pytest --nbval notebooks/``) so that the default ``pytest``
run covers it without options in pyproject.toml; it runs beside papermill's run of
post_incident.ipynb on a trail this suite produces.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from trails import BAD, make_run

from deploysim import incident
from deploysim.runbooks import session
from deploysim.trail import find_runs, read_record

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOTEBOOKS = ("rehearse", "tune_analysis", "post_incident")
SAMPLE = ROOT / "data" / "sample_trail"


def _code_cells(path: Path) -> list:
    return [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]


def _nbval() -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(ROOT), *(str(ROOT / "notebooks" / f"{n}.ipynb") for n in NOTEBOOKS)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)


def _suite_trail(record_dir: Path) -> Path:
    """A rolling update of a bad candidate, run in-process: a trail with a non-zero recovery."""
    return make_run("rolling", BAD, record_dir)


def _post_incident(trail_dir: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "papermill"), str(ROOT / "notebooks/post_incident.ipynb"), str(out),
         "-y", f"{{trails: [{trail_dir}], strategies: [rolling, canary]}}", "--no-progress-bar"],
        cwd=out.parent, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("notebooks")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session, "notebook_output_path", lambda hint=None: None)
        trail = _suite_trail(base / "runs")
    pool = ThreadPoolExecutor(max_workers=2)
    out = base / "post_incident.ipynb"
    futures: dict[str, object] = {
        "nbval": pool.submit(_nbval),
        "post_incident": pool.submit(_post_incident, base / "runs", out),
        "trail": trail,
        "out": out,
    }
    yield futures
    pool.shutdown(wait=True)


def test_every_notebook_reproduces_its_stored_outputs_under_nbval(jobs) -> None:  # noqa: ANN001
    proc = jobs["nbval"].result()
    assert proc.returncode == 0, proc.stdout[-5000:]
    cells = sum(len(_code_cells(ROOT / "notebooks" / f"{n}.ipynb")) for n in NOTEBOOKS)
    assert re.search(rf"\b{cells} passed\b", proc.stdout), proc.stdout[-2000:]


def test_post_incident_runs_on_a_trail_this_suite_produced(jobs) -> None:  # noqa: ANN001
    proc = jobs["post_incident"].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    trail: Path = jobs["trail"]
    nb = nbformat.read(str(jobs["out"]), as_version=4)
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert trail.name in text
    assert "(rolling runbook, rolling): rolled back: analysis background Failed" in text
    assert "computed times agree with the record's summary within one timeline bin (10s): True" in text
    assert "replayed rolling, canary; the strategy that ran (rolling) among them: True" in text
    assert "would have cost" in text or "no other strategy would have cost fewer" in text


def test_sample_trail_is_a_complete_trail_of_a_failed_rollout() -> None:
    runs = find_runs(SAMPLE)
    assert len(runs) == 1
    folder = runs[0]
    assert {p.name for p in folder.iterdir()} == {
        "record.json", "timeline.csv", "summary.json", "traffic.png", "pods.png", "canary.ipynb", "canary.html"}
    data = read_record(folder)
    assert data["run"]["outcome"] == "rolled_back" and data["summary"]["outcome"] == "rolled_back"
    assert data["run"]["notebook"]["complete"] is True  # produced by `deploysim run`
    assert sum(p.stat().st_size for p in folder.iterdir()) < 700_000  # kept small
    aborted = next(s for s in data["steps"] if s["result"] == "aborted")
    assert aborted["measurements"] and aborted["observed"]["candidate_error_rate"] > 0.01


def test_incident_analysis_of_the_sample_trail() -> None:
    trails = incident.load_trails(["data/sample_trail"])  # relative: resolved against the repository
    assert [t.folder.resolve() for t in trails] == find_runs(SAMPLE)
    times = incident.incident_times(trails[0])
    assert times["abort_s"] is not None and times["time_to_detect_s"] > 0
    assert abs(times["time_to_detect_s"] - times["record_time_to_detect_s"]) <= 10.1
    assert abs(times["time_to_recover_s"] - times["record_time_to_recover_s"]) <= 10.1
    frame = incident.timeline_frame(trails)
    abort = frame[frame["kind"] == "abort"].iloc[0]
    assert abort["reason"].startswith("analysis step-3 Failed")
    measured = frame[frame["kind"] == "measure"].iloc[0]
    assert measured["measured_error_rate"] > 0.01 and measured["measured_requests"] > 0
    replays = incident.replay(trails, ["canary", "recreate"])
    assert list(replays["strategy"]) == ["canary", "recreate"]
    assert list(replays["ran"]) == [True, False]
    with pytest.raises(incident.TrailNotFound, match="no audit folder"):
        incident.load_trails(["data/scenarios"])


def test_committed_notebooks_are_generated_and_carry_their_outputs() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_notebooks
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for name, cells in build_notebooks.NOTEBOOKS.items():
        committed = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
        assert [c.source for c in committed.cells] == [c["source"] for c in cells], name
        for cell in committed.cells:
            if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
                continue
            assert cell.outputs, f"{name}: a code cell without stored outputs: {cell.source[:60]!r}"
            assert not any(o.output_type == "error" for o in cell.outputs)
        ignored = [c for c in committed.cells if "NBVAL_IGNORE_OUTPUT" in c.source]
        compared = [c for c in committed.cells if c.cell_type == "code" and c not in ignored]
        assert len(compared) > len(ignored), name  # most of what each notebook shows is compared
