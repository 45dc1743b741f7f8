"""A run killed between filling its hidden folder and renaming it into place leaves the hidden
folder; the next run into the same trail and the next reading of it remove it once its process
is gone, and never touch one whose process lives.

The owners are real processes: this one, a child kept waiting on its stdin (alive), and a child
that has exited (gone). Ages are set with ``os.utime``, never waited for.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import psutil
import pytest

from deploysim.cli import main
from deploysim.leftovers import (
    LEFTOVER_AGE_SECONDS,
    leftover_owner,
    remove_leftovers,
    temp_run_name,
)
from deploysim.trail import make_run_folder, process_identity, scan_runs, write_json

RUN = "20250301T101500Z-canary-3f2a1c"


def _identity(proc: subprocess.Popen) -> dict:
    return {"pid": proc.pid, "host": process_identity()["host"], "started": psutil.Process(proc.pid).create_time()}


@pytest.fixture
def alive() -> Iterator[dict]:
    """A process that runs until the test ends."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        yield _identity(proc)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


@pytest.fixture
def gone() -> dict:
    """A process that has exited (and been reaped): its pid names no process of its start time."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    identity = _identity(proc)
    proc.stdin.close()
    proc.wait(timeout=60)
    return identity


def _leftover(parent: Path, owner: dict, age: float = 3600.0, name: str = RUN) -> Path:
    """A hidden run folder as ``owner`` left it: its first record written, last changed ``age`` ago."""
    folder = parent / temp_run_name(name, owner)
    folder.mkdir(parents=True)
    write_json(folder / "record.json", {"version": 1, "kind": "deploysim.run", "run": {"outcome": "running"}})
    then = time.time() - age
    os.utime(folder, (then, then))
    return folder


def _fill(tmp: Path) -> None:
    write_json(tmp / "record.json", {"version": 1, "kind": "deploysim.run", "run": {"outcome": "running"}})


def test_the_temporary_name_says_which_process_fills_it(tmp_path: Path) -> None:
    names: list[str] = []
    make_run_folder(tmp_path / "runs" / RUN, lambda tmp: (names.append(tmp.name), _fill(tmp)))
    (name,) = names
    owner = leftover_owner(name)
    me = process_identity()
    assert owner is not None and owner["pid"] == os.getpid() == me["pid"] and owner["host"] == me["host"]
    assert abs(owner["started"] - me["started"]) < 0.001
    assert name.startswith(f".{RUN}.{os.getpid()}-") and name.endswith(".tmp")


def test_the_next_run_into_the_trail_removes_what_a_killed_run_left(tmp_path: Path, gone: dict, alive: dict) -> None:
    runs = tmp_path / "runs"
    dead = _leftover(runs, gone)
    live = _leftover(runs, alive, name="20250301T101400Z-canary-aaaaaa")
    mine = _leftover(runs, process_identity(), name="20250301T101300Z-canary-bbbbbb")
    make_run_folder(runs / "20250301T102000Z-canary-4e5d6c", _fill)
    assert not dead.exists()
    assert live.exists() and mine.exists()  # a live process's hidden folder is never touched
    assert (live / "record.json").exists()
    assert sorted(p.name for p in runs.iterdir()) == sorted([live.name, mine.name, "20250301T102000Z-canary-4e5d6c"])


def test_reading_the_trail_removes_them_and_never_lists_them(tmp_path: Path, gone: dict, alive: dict) -> None:
    runs = tmp_path / "runs"
    make_run_folder(runs / "20250301T102000Z-canary-4e5d6c", _fill)
    dead = _leftover(runs, gone)
    live = _leftover(runs, alive, name="20250301T101400Z-canary-aaaaaa")
    good, damaged = scan_runs(runs)
    assert [folder.name for folder, _ in good] == ["20250301T102000Z-canary-4e5d6c"] and damaged == []
    assert not dead.exists() and live.exists()
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["runs", "list", str(runs)]) == 0
    shown = out.getvalue() + err.getvalue()
    assert "20250301T102000Z-canary-4e5d6c" in shown
    assert ".tmp" not in shown and "aaaaaa" not in shown  # the live one's hidden folder is not a run


@pytest.mark.parametrize(("age", "kept"), [(LEFTOVER_AGE_SECONDS / 2, True), (LEFTOVER_AGE_SECONDS * 2, False)])
def test_a_leftover_changed_lately_is_left_alone(tmp_path: Path, gone: dict, age: float, kept: bool) -> None:
    folder = _leftover(tmp_path, gone, age=age)
    assert remove_leftovers(tmp_path) == ([] if kept else [folder])
    assert folder.exists() is kept


def test_a_pid_now_another_processs_is_gone(tmp_path: Path) -> None:
    """This process's pid with another start time: the pid was given to this process since."""
    reused = _leftover(tmp_path, {**process_identity(), "started": 1000.0})
    assert remove_leftovers(tmp_path) == [reused]


def test_what_cannot_be_told_is_left_as_it_is(tmp_path: Path, gone: dict) -> None:
    """Another host's folder, an older name without a pid, a file and a symbolic link by the name."""
    other_host = _leftover(tmp_path, {**gone, "host": "another-host"})
    older = tmp_path / f".{RUN}.1234abcd.tmp"
    older.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / temp_run_name("20250301T101400Z-canary-aaaaaa", gone)
    link.symlink_to(target)
    file = tmp_path / temp_run_name("20250301T101300Z-canary-bbbbbb", gone)
    file.write_text("x")
    record_tmp = tmp_path / f".record.json.{os.getpid()}.tmp"
    record_tmp.write_text("{}")
    then = time.time() - 3600
    for path in (older, target, file, record_tmp):
        os.utime(path, (then, then))
    os.utime(link, (then, then), follow_symlinks=False)
    assert remove_leftovers(tmp_path) == []
    assert all(os.path.lexists(p) for p in (other_host, older, link, file, record_tmp, target))


def test_a_trail_that_cannot_be_listed_is_no_error(tmp_path: Path) -> None:
    assert remove_leftovers(tmp_path / "no-such-folder") == []
    (tmp_path / "a-file").write_text("x")
    assert remove_leftovers(tmp_path / "a-file") == []


_KILLED_BETWEEN = """
import os, signal, sys
from pathlib import Path
from deploysim.trail import make_run_folder, write_json

def fill(tmp):
    write_json(tmp / "record.json", {"version": 1, "kind": "deploysim.run", "run": {"outcome": "running"}})
    os.kill(os.getpid(), signal.SIGKILL)  # killed after the first record, before the rename

make_run_folder(Path(sys.argv[1]), fill)
"""


def test_a_run_killed_before_the_rename_is_cleaned_by_the_next_start(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-c", _KILLED_BETWEEN, str(runs / RUN)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (left,) = runs.iterdir()
    assert left.name.startswith(f".{RUN}.") and json.loads((left / "record.json").read_text())["run"]
    then = time.time() - 3600
    os.utime(left, (then, then))
    make_run_folder(runs / "20250301T102000Z-canary-4e5d6c", _fill)
    assert [p.name for p in runs.iterdir()] == ["20250301T102000Z-canary-4e5d6c"]
