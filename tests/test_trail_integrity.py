"""The trail survives damage: damaged folders are skipped and named, a killed run reads as
interrupted, records are replaced by rename, folders appear whole, one notebook per run."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import psutil
import pytest
from trails import BAD, GOOD, make_run

from deploysim import trail
from deploysim.cli import main
from deploysim.history import diff_runs, list_runs, resolve_run, run_outcome
from deploysim.runbooks import ENV_NOTEBOOK, ENV_RUN_DIR, session
from deploysim.trail import DamagedRun, RunFolderExists, make_run_folder, read_record, write_json

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def good_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two finished runs: a promoted rolling update and a rolled-back canary (it has measurements)."""
    record_dir = tmp_path_factory.mktemp("good") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session, "notebook_output_path", lambda hint=None: None)
        return [make_run("rolling", GOOD, record_dir), make_run("canary", BAD, record_dir)]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- damage, made on disk --------------------------------------------------------------------

Damage = Callable[[Path], None]


def _edit(change: Callable[[dict], object]) -> Damage:
    """Rewrite record.json after ``change`` edits its data in place."""
    def damage(folder: Path) -> None:
        path = folder / "record.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return damage


def _swap(make: Callable[[Path], object]) -> Damage:
    """record.json replaced by what ``make`` puts at its path (nothing, a link, a folder...)."""
    def damage(folder: Path) -> None:
        (folder / "record.json").unlink()
        make(folder / "record.json")
    return damage


def _text(text: str | bytes) -> Damage:
    return _swap(lambda path: path.write_bytes(text if isinstance(text, bytes) else text.encode()))


def _truncated(folder: Path) -> None:
    path = folder / "record.json"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _too_large(folder: Path) -> None:
    with open(folder / "record.json", "r+b") as f:
        f.truncate(100 * 2**20)  # sparse: nothing like 100 MB written


def _folder_symlink_loop(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.symlink_to(folder.name)


def _measurement_without_verdict(data: dict) -> None:
    step = next(s for s in data["steps"] if s["measurements"])
    del step["measurements"][0]["verdict"]


DEEP = "[" * 100_000 + "]" * 100_000

#: name -> (damage, the reason listed for it)
DAMAGE: dict[str, tuple[Damage, str]] = {
    "truncated": (_truncated, "record.json is not valid JSON ("),
    "empty": (_text(""), "record.json is empty"),
    "whitespace": (_text("  \n\n"), "record.json is empty"),
    "a_directory": (_swap(lambda path: (path.mkdir(), (path / "x").write_text("{}"))),
                    "record.json is a directory, not a file"),
    "binary_junk": (_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
                    "record.json is not UTF-8 text (byte 0x89 at offset 0)"),
    "utf8_bom": (_text(b'\xef\xbb\xbf{"kind": "deploysim.run"}'),
                 "record.json is not valid JSON (Unexpected UTF-8 BOM"),
    "json_list": (_text('[{"kind": "deploysim.run"}]'), "record.json holds an array, not an object"),
    "json_string": (_text('"deploysim.run"'), "record.json holds a string, not an object"),
    "json_null": (_text("null"), "record.json holds null, not an object"),
    "nan": (_edit(lambda d: d["run"].update(wall_seconds=float("nan"))),
            "record.json is not valid JSON (NaN is not JSON)"),
    "deep_nesting": (_text('{"kind": "deploysim.run", "x": ' + DEEP + "}"), "record.json is nested too deeply to read"),
    "huge_integer": (_text('{"kind": "deploysim.run", "version": ' + "9" * 5000 + "}"),
                     "record.json is not valid JSON (Exceeds the limit (4300 digits)"),
    "no_kind": (_edit(lambda d: d.pop("kind")),
                "record.json is not a deploysim run record (no kind; expected 'deploysim.run')"),
    "other_kind": (_edit(lambda d: d.update(kind="other.tool")),
                   "record.json is not a deploysim run record (kind \"other.tool\"; expected 'deploysim.run')"),
    "newer_version": (_edit(lambda d: d.update(version=99)),
                      "record.json is version 99, newer than this deploysim reads (1)"),
    "version_text": (_edit(lambda d: d.update(version="1")), 'record.json: version: got "1"; expected an integer'),
    "no_run": (_edit(lambda d: d.pop("run")), "record.json: run: missing"),
    "run_a_list": (_edit(lambda d: d.update(run=[1, 2])), "record.json: run: got [1, 2]; expected an object"),
    "no_outcome": (_edit(lambda d: d["run"].pop("outcome")), "record.json: run.outcome: missing"),
    "started_at_number": (_edit(lambda d: d["run"].update(started_at=12)),
                          "record.json: run.started_at: got 12; expected a string"),
    "who_a_string": (_edit(lambda d: d["run"].update(who="root")),
                     'record.json: run.who: got "root"; expected an object'),
    "given_a_list": (_edit(lambda d: d["run"]["parameters"].update(given=["a"])),
                     'record.json: run.parameters.given: got ["a"]; expected an object'),
    "pid_negative": (_edit(lambda d: d["run"]["process"].update(pid=-5)),
                     "record.json: run.process.pid: got -5; input should be greater than or equal to 1"),
    "decisions_an_object": (_edit(lambda d: d.update(decisions={"a": 1})),
                            'record.json: decisions: got {"a": 1}; expected an array'),
    "decision_at_text": (_edit(lambda d: d["decisions"][0].update(at="5")), 'record.json: decisions[0].at: got "5"; expected a number'),
    "decision_step_bool": (_edit(lambda d: d["decisions"][0].update(step=True)),
                           "record.json: decisions[0].step: got true; expected an integer"),
    "decision_no_reason": (_edit(lambda d: d["decisions"][0].pop("reason")),
                           "record.json: decisions[0].reason: missing"),
    "metrics_an_object": (_edit(lambda d: d["decisions"][0].update(values={"metrics": {"a": 1}})),
                          'record.json: decisions[0].values.metrics: got {"a": 1}; expected an array'),
    "summary_a_list": (_edit(lambda d: d.update(summary=[])), "record.json: summary: got []; expected an object"),
    "rollout_seconds_text": (_edit(lambda d: d["summary"].update(rollout_seconds="2m")),
                             'record.json: summary.rollout_seconds: got "2m"; expected a number'),
    "measurement_no_verdict": (_edit(_measurement_without_verdict),
                               "record.json: steps[2].measurements[0].verdict: missing"),
    "symlink_loop": (_swap(lambda path: path.symlink_to("record.json")),
                     "record.json cannot be read (Too many levels of symbolic links)"),
    "broken_symlink": (_swap(lambda path: path.symlink_to(path.parent / "gone.json")),
                       "record.json is a broken symbolic link"),
    "a_fifo": (_swap(os.mkfifo), "record.json is not a regular file (a device, pipe or socket)"),
    "a_device": (_swap(lambda path: path.symlink_to("/dev/zero")),
                 "record.json is not a regular file (a device, pipe or socket)"),
    "too_large": (_too_large, "record.json is 100 MB, more than the 64 MB a record may be"),
    "no_record": (_swap(lambda path: None), "no record.json"),
    "folder_symlink_loop": (_folder_symlink_loop,
                            "a symbolic link that cannot be followed (Too many levels of symbolic"),
}


def _copy(runs: Path, good: Path, i: int, case: str) -> Path:
    # named as run_name names folders (so that one without record.json is still a run's)
    folder = runs / f"20240101T0000{i:02d}Z-{case.replace('_', '-')}-{0xa00000 + i:06x}"
    shutil.copytree(good, folder)
    return folder


def _plant(runs: Path, good: Path, i: int, case: str) -> Path:
    folder = _copy(runs, good, i, case)
    DAMAGE[case][0](folder)
    return folder


@pytest.fixture(scope="module")
def damaged_trail(good_runs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """Both good runs and one folder per damage kind, side by side, with what is not a run."""
    runs = tmp_path_factory.mktemp("damaged") / "runs"
    runs.mkdir()
    for good in good_runs:
        shutil.copytree(good, runs / good.name)
    damaged = {case: _plant(runs, good_runs[1], i, case) for i, case in enumerate(DAMAGE)}
    (runs / "notes").mkdir()  # a folder that is no run's: not listed, not named
    (runs / "README.txt").write_text("runs of the checkout service\n")
    (runs / ".20240101T000000Z-rolling-abcdef.1234abcd.tmp").mkdir()  # a folder being created
    return runs, damaged


def _assert_each_named_once(err: str, damaged: dict[str, Path]) -> None:
    """One stderr line per damaged folder, naming it and the reason the table gives."""
    assert len(DAMAGE) >= 20
    lines = err.splitlines()
    assert len(lines) == len(DAMAGE), err
    for case, folder in damaged.items():
        (line,) = [x for x in lines if x.startswith(f"deploysim: skipped {folder}: ")] or [f"{case}: not named"]
        assert DAMAGE[case][1] in line, (case, line)
    assert "Traceback" not in err and "notes" not in err and ".tmp" not in err


def test_list_skips_each_damaged_folder_with_a_one_line_reason_and_lists_the_good_runs(
        damaged_trail, good_runs, capsys) -> None:  # noqa: ANN001
    runs, damaged = damaged_trail
    code, out, err = cli(capsys, "runs", "list", str(runs))
    assert code == 0
    assert [line.split()[2] for line in out.splitlines()[1:]] == [g.name for g in good_runs]
    _assert_each_named_once(err, damaged)


def test_the_console_script_lists_the_damaged_trail_without_a_traceback(
        damaged_trail, good_runs) -> None:  # noqa: ANN001
    runs, damaged = damaged_trail
    proc = subprocess.run([str(BIN / "deploysim"), "runs", "list", str(runs)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert all(g.name in proc.stdout for g in good_runs)
    _assert_each_named_once(proc.stderr, damaged)


@pytest.mark.parametrize("case", list(DAMAGE))
def test_show_and_diff_of_a_damaged_folder_exit_2_naming_it(
        case, damaged_trail, good_runs, capsys) -> None:  # noqa: ANN001
    runs, damaged = damaged_trail
    folder = damaged[case]
    expected = f"deploysim: error: run folder {folder}: "
    for argv in (["runs", "show", str(folder)],
                 ["runs", "show", folder.name.rsplit("-", 1)[1], "--dir", str(runs)],  # by its short id
                 ["runs", "diff", str(good_runs[0]), str(folder)],
                 ["runs", "diff", folder.name, good_runs[0].name, "--dir", str(runs)]):
        code, out, err = cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert out == ""
        assert err.count("\n") == 1 and err.startswith(expected) and DAMAGE[case][1] in err, (argv, err)


def test_a_good_run_still_shows_and_diffs_beside_the_damage(damaged_trail, good_runs, capsys) -> None:  # noqa: ANN001
    runs, _ = damaged_trail
    code, out, err = cli(capsys, "runs", "show", good_runs[1].name.rsplit("-", 1)[1], "--dir", str(runs))
    assert code == 0 and "outcome   rolled_back: " in out and err == ""
    code, out, err = cli(capsys, "runs", "diff", good_runs[0].name, good_runs[1].name, "--dir", str(runs))
    assert code == 0 and "*  outcome  promoted" in out and err == ""


def test_unreadable_folders_are_named_too(good_runs: list[Path], tmp_path: Path) -> None:
    """chmod 000 on a record and on a folder. Root reads through permissions, so as root the
    command runs without the capabilities that let it (util-linux ``setpriv``)."""
    runs = tmp_path / "runs"
    shutil.copytree(good_runs[0], runs / good_runs[0].name)
    record = _copy(runs, good_runs[0], 1, "unreadable_record") / "record.json"
    folder = _copy(runs, good_runs[0], 2, "unreadable_folder")
    record.chmod(0)
    folder.chmod(0)
    caps = "-dac_override,-dac_read_search"
    unprivileged = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", "--"] if os.geteuid() == 0 else []

    def deploysim(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([*unprivileged, sys.executable, "-m", "deploysim.cli", *argv], capture_output=True,
                              text=True, timeout=120)

    try:
        listed = deploysim("runs", "list", str(runs))
        shown = deploysim("runs", "show", str(record.parent))
    finally:
        folder.chmod(0o755)
        record.chmod(0o644)
    assert listed.returncode == 0, listed.stderr
    assert good_runs[0].name in listed.stdout
    assert sorted(listed.stderr.splitlines()) == [
        f"deploysim: skipped {record.parent}: record.json cannot be read (Permission denied)",
        f"deploysim: skipped {folder}: the folder cannot be read (Permission denied)"]
    assert shown.returncode == 2
    assert shown.stderr == f"deploysim: error: run folder {record.parent}: record.json cannot be read " \
                           "(Permission denied)\n"


def test_library_readers_skip_damage_too(damaged_trail, good_runs) -> None:  # noqa: ANN001
    """trail.find_runs leaves out what is not a run record at all; history also what it cannot show."""
    runs, damaged = damaged_trail
    fields_only = {damaged[c] for c, (_, why) in DAMAGE.items()
                   if why.startswith("record.json: ") and not why.startswith("record.json: run: ")}
    assert len(fields_only) >= 10
    assert set(trail.find_runs(runs)) == {runs / g.name for g in good_runs} | fields_only
    assert [r["run"] for r in list_runs(runs)] == [g.name for g in good_runs]
    with pytest.raises(DamagedRun, match="record.json is empty"):
        resolve_run(str(damaged["empty"]))


# --- a run whose process is gone -------------------------------------------------------------

STARTS_A_RUN = """
import sys, time
from deploysim.runbooks import session
run = session.validate_parameters("rolling", {"duration": "20m", "record_dir": sys.argv[1]})
run.start()
print("started", flush=True)
time.sleep(3600)
"""


def test_a_killed_run_is_listed_as_interrupted_and_its_record_left_as_written(tmp_path, capsys) -> None:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if k not in (ENV_RUN_DIR, ENV_NOTEBOOK)}
    proc = subprocess.Popen([sys.executable, "-c", STARTS_A_RUN, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[1] == "started\n", lines
        (folder,) = trail.find_runs(tmp_path)
        process = read_record(folder)["run"]["process"]
        assert (process["pid"], process["host"]) == (proc.pid, socket.gethostname())
        assert process["started"] == psutil.Process(proc.pid).create_time()
        assert list_runs(tmp_path)[0]["outcome"] == "running"  # alive: still running
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    before = (folder / "record.json").read_bytes()
    code, out, _ = cli(capsys, "runs", "list", str(tmp_path))
    assert code == 0 and out.splitlines()[1].split()[5] == "interrupted"
    code, out, _ = cli(capsys, "runs", "show", str(folder))
    assert code == 0
    assert f"outcome   interrupted: the process that ran it (pid {proc.pid}, started " in out
    assert "is gone; record.json still says running (read as interrupted, not rewritten)" in out
    code, out, _ = cli(capsys, "runs", "diff", str(folder), str(folder))
    assert code == 0 and ("outcome", "interrupted", "interrupted") in diff_runs(folder, folder)["outcome"]
    assert (folder / "record.json").read_bytes() == before
    assert read_record(folder)["run"]["outcome"] == "running"


def test_a_reused_pid_is_not_taken_for_the_run() -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        started = psutil.Process(other.pid).create_time()
        here = socket.gethostname()

        def outcome(**process: object) -> tuple[str, str]:
            return run_outcome({"outcome": "running", "status": "running",
                                "process": {"pid": other.pid, "host": here, "started": started, **process}})

        assert outcome() == ("running", "running")  # the very process: running
        word, why = outcome(started=started - 1000)  # the run's process started long before this one
        assert word == "interrupted"
        assert f"pid {other.pid} is now another process (started " in why
        assert outcome(started=started - 1000, host="elsewhere.example") == ("running", "running")  # not checkable
    finally:
        other.kill()
        other.wait()
    assert run_outcome({"outcome": "running", "process": {"pid": other.pid, "host": here, "started": started}})[0] \
        == "interrupted"


# --- writing: by rename, folders whole -------------------------------------------------------


def test_the_record_is_written_by_rename_and_survives_a_failed_write(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    run = session.validate_parameters("rolling", {"duration": "20m", "record_dir": str(tmp_path)})
    with redirect_stdout(io.StringIO()):
        folder = run.start()
    before = (folder / "record.json").read_bytes()
    events: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append("replace")
        assert Path(src).parent == folder and Path(src).read_bytes() != before  # the new record, complete
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(session, "notebook_output_path", lambda hint=None: None)
    with redirect_stdout(io.StringIO()), pytest.raises(OSError, match="No space left"):
        run.execute()
        run.finish()
    assert events[:2] == ["fsync", "replace"]
    assert (folder / "record.json").read_bytes() == before  # the previous record, intact
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temporary left
    monkeypatch.undo()
    write_json(folder / "record.json", {"kind": "x"})
    assert read_record(folder) == {"kind": "x"}


def test_a_run_folder_appears_whole_and_is_never_shared(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    final = tmp_path / "runs" / "20250301T101500Z-rolling-3f2a1c"
    seen: list[bool] = []

    def fill(tmp: Path) -> None:
        seen.append(final.exists())
        write_json(tmp / "record.json", {"n": 1})

    make_run_folder(final, fill)
    assert seen == [False] and read_record(final) == {"n": 1}
    with pytest.raises(RunFolderExists, match="already exists: a run folder belongs to one run"):
        make_run_folder(final, fill)

    def racing(tmp: Path) -> None:  # another run takes the name while this one fills its folder
        write_json(tmp / "record.json", {"n": 2})
        final2.mkdir()
        write_json(final2 / "record.json", {"n": 3})

    final2 = tmp_path / "runs" / "20250301T101500Z-rolling-4e5d6c"
    with pytest.raises(RunFolderExists):
        make_run_folder(final2, racing)
    assert read_record(final2) == {"n": 3}

    def failing(tmp: Path) -> None:
        write_json(tmp / "record.json", {"n": 4})
        raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError):
        make_run_folder(tmp_path / "runs" / "20250301T101500Z-rolling-5f6e7d", failing)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [final.name, final2.name]

    # two runs given the same folder (deploysim run's $DEPLOYSIM_RUN_DIR): the second is refused
    monkeypatch.setenv(ENV_RUN_DIR, str(tmp_path / "shared"))
    first = session.validate_parameters("rolling", {"duration": "20m"})
    second = session.validate_parameters("rolling", {"duration": "20m"})
    with redirect_stdout(io.StringIO()):
        first.start()
    with pytest.raises(RunFolderExists, match="shared already exists"):
        second.start()
    assert second.folder is None and read_record(tmp_path / "shared")["run"]["id"] == "shared"


# --- one output notebook per run -------------------------------------------------------------


def _papermill(out: Path, record_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_RUN_DIR, ENV_NOTEBOOK)}
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return subprocess.run([str(BIN / "papermill"), str(ROOT / "runbooks/rolling.ipynb"), str(out), "-p", "duration",
                           "20m", "-y", "{candidate: {error_rate: 0.001}}", "-p", "record_dir", str(record_dir),
                           "--no-progress-bar"], cwd=out.parent, env=env, capture_output=True, text=True, timeout=600)


def test_two_papermill_runs_sharing_an_output_path_each_keep_their_own_notebook(tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    folders = []
    for name in ("a", "b"):
        proc = _papermill(out, tmp_path / name)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (folder,) = trail.find_runs(tmp_path / name)
        folders.append(folder)
    for folder in folders:
        assert read_record(folder)["run"]["notebook"]["copied"] is True
        copied = nbformat.read(str(folder / "rolling.ipynb"), as_version=4)
        assert session.notebook_runs(copied) == {folder.name}
    assert folders[0].name != folders[1].name
    assert session.notebook_runs(nbformat.read(str(out), as_version=4)) == {folders[1].name}


def _notebook_marked(path: Path, *runs: str) -> Path:
    outputs = [nbformat.v4.new_output("display_data", data={"text/plain": f"audit trail: {r}/"},
                                      metadata={session.RUN_MARK: {"run": r}}) for r in runs]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("run.start()", outputs=outputs)]),
                   str(path))
    return path


@pytest.mark.parametrize(("marks", "copied", "why"), [
    (["this"], True, None),
    (["20250301T101500Z-rolling-0a0b0c"], False, "is another run's (20250301T101500Z-rolling-0a0b0c), not "),
    ([], False, "does not show this run's id ("),
])
def test_the_notebook_copied_is_this_runs_or_none(tmp_path, marks, copied, why) -> None:  # noqa: ANN001
    shared = tmp_path / "out.ipynb"
    run = session.validate_parameters("rolling", {"duration": "20m", "record_dir": str(tmp_path / "runs"), **GOOD})
    run.notebook_hint = str(shared)  # where papermill --inject-output-path says it writes
    with redirect_stdout(io.StringIO()):
        folder = run.start()
        _notebook_marked(shared, *[folder.name if m == "this" else m for m in marks])
        run.execute()
        run.finish()
        run.close()
    note = read_record(folder)["run"]["notebook"]
    assert note["copied"] is copied
    assert (folder / "rolling.ipynb").is_file() is copied
    if why:
        assert why in note["why"] and str(shared) in note["why"]
