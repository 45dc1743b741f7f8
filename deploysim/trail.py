"""The audit trail: one folder per run, with everything needed to trust and replay it.

A run folder ``RECORD_DIR/<UTC time>-<runbook>-<short id>/`` holds:

- ``record.json``: the parameters (given and resolved), who ran it (user, host), when, from
  which git commit, the target and its context, each step with its start, end, observed
  metric values and decisions with their reasons, and the outcome; written when the run
  starts (outcome ``running``, with the pid, host and start time of the process running it)
  and again when it ends, so an interrupted run still shows;
- ``timeline.csv`` and ``summary.json``: the record's timeline and summary;
- ``traffic.png`` and ``pods.png``: the plots;
- ``<runbook>.ipynb`` and ``<runbook>.html``: the executed notebook and an HTML copy
  without code cells.

Everything is redacted (:mod:`deploysim.redact`) before it is written.

The trail survives damage: a folder appears whole (made under a hidden temporary name, its
first record written, then renamed into place, so two runs never share one); a record is
replaced by rename, never rewritten in place; a reader names each damaged folder with the
reason (:func:`load_record`, :func:`scan_runs`) and reads a ``running`` record whose process
is gone as ``interrupted`` (:func:`deploysim.history.process_gone`), without rewriting it. A run
killed before its folder was renamed into place leaves the hidden folder; the next run into the
same trail, and the next reading of it, remove it once its process is gone
(:func:`deploysim.leftovers.remove_leftovers`).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import platform
import re
import shutil
import socket
import stat
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pandas as pd

from deploysim.errors import DeploysimError
from deploysim.leftovers import remove_leftovers, temp_run_name
from deploysim.record import Record, jsonable  # noqa: F401 - the trail writes with it
from deploysim.redact import Redactor, excerpt_text
from deploysim.redaction.text import EXCERPT_SCAN

TRAIL_VERSION = 1
TRAIL_KIND = "deploysim.run"
RECORD_MIMETYPE = "application/vnd.deploysim.record.v1+json"
RECORD_FILE = "record.json"
RUNNING = "running"
ERROR = "error"
#: how a reader shows a ``running`` record whose process is gone (the file is not rewritten)
INTERRUPTED = "interrupted"
#: a record larger than this is not read (the largest rehearsals write a few MB)
MAX_RECORD_BYTES = 64 * 2**20
#: the folder names :func:`run_name` makes
RUN_NAME = re.compile(r"^\d{8}T\d{6}Z-.+-[0-9a-f]{6}$")
TRAIL_FILES = ("timeline.csv", "summary.json", "traffic.png", "pods.png")


class RunFolderExists(DeploysimError):
    """A run folder's name is taken: two runs never share a folder."""


class DamagedRun(DeploysimError):
    """A run folder whose record cannot be read; the message names the folder and why."""

    def __init__(self, folder: str | Path, why: str) -> None:
        self.folder = Path(folder)
        self.why = why
        super().__init__(f"run folder {printable(folder)}: {why}")


def printable(text: str | Path) -> str:
    r"""A name on one line: control characters escaped.

    >>> printable("runs/a\nb")
    'runs/a\\nb'
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_name(runbook: str, now: datetime | None = None, short_id: str | None = None) -> str:
    """``20250301T101500Z-canary-3f2a1c``: sorts by time, says what ran, unique.

    >>> run_name("canary", datetime(2025, 3, 1, 10, 15, tzinfo=UTC), "3f2a1c")
    '20250301T101500Z-canary-3f2a1c'
    """
    now = now or utc_now()
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{runbook}-{short_id or uuid.uuid4().hex[:6]}"


def git_info(cwd: str | Path | None = None) -> dict[str, Any] | None:
    """The commit checked out where the run started, and whether tracked files changed."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status), "root": git("rev-parse", "--show-toplevel")}


def who() -> dict[str, Any]:
    """Who ran it and where; in CI also the actor and run the CI system names."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "unknown")
    info: dict[str, Any] = {"user": user, "host": socket.gethostname()}
    ci = {key.lower(): os.environ[key] for key in (
        "GITHUB_ACTOR", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_WORKFLOW", "CI_JOB_ID",
    ) if os.environ.get(key)}
    if ci:
        info["ci"] = ci
    return info


def environment() -> dict[str, Any]:
    from deploysim import __version__

    return {"deploysim": __version__, "python": platform.python_version(), "platform": platform.platform()}


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: Path, data: Any) -> Path:
    """``data`` as JSON in ``path``, replaced by rename (:func:`write_text`)."""
    return write_text(path, json.dumps(jsonable(data), indent=2) + "\n")


def write_text(path: Path, text: str) -> Path:
    """Replace ``path`` by rename: written to a temporary file in the same folder, flushed to
    disk, then ``os.replace``-d over it, so a reader (or a crash) sees the old file or the
    new one, never half of one. On failure the temporary file is removed and ``path`` is as
    it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # O_EXCL: a name of its own; mode 0o666 less the umask, like the file it replaces
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def make_run_folder(folder: Path, fill: Callable[[Path], None]) -> Path:
    """Create ``folder`` whole: ``fill`` writes its first files into a hidden temporary folder
    beside it, which is then renamed into place. Raises :class:`RunFolderExists` when the
    name is taken (renaming onto another run's folder, never empty, fails too).

    The temporary name says which process fills it (:func:`deploysim.leftovers.temp_run_name`),
    so that the hidden folder of a run killed before the rename can be told from one being
    filled now; such leftovers in the same parent go first (:mod:`deploysim.leftovers`)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    taken = RunFolderExists(f"run folder {printable(folder)} already exists: a run folder belongs to one run")
    if os.path.lexists(folder):
        raise taken
    remove_leftovers(folder.parent)
    tmp = folder.with_name(temp_run_name(folder.name, process_identity()))
    tmp.mkdir()
    try:
        fill(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if os.path.lexists(folder):
                raise taken from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(folder.parent)
    return folder


def read_record(folder: str | Path) -> dict[str, Any]:
    """The record as written, unchecked (see :func:`load_record` for a checked read)."""
    return json.loads((Path(folder) / RECORD_FILE).read_text())


# --- the process that runs it ----------------------------------------------------------------


def process_identity() -> dict[str, Any]:
    """This process, as a running record names it: pid, host, and start time (so that a pid
    the system gave to another process since is not taken for the run)."""
    import psutil

    return {"pid": os.getpid(), "host": socket.gethostname(), "started": psutil.Process().create_time()}


# --- steps with what was observed ------------------------------------------------------------


def _rate(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def observed(timeline: pd.DataFrame, start: float, end: float | None) -> dict[str, Any]:
    """Metric values over [start, end] from the timeline's bins (bins overlapping the window).

    Requests and failed requests are users' requests, summed over both versions; the
    candidate's error rate and worst p99 latency are given apart; weight is the
    candidate's share at the end of the window.
    """
    if timeline.empty or end is None:
        return {}
    t = timeline
    rows = t[(t["time"] > start) & (t["start"] < max(end, start + 1e-9))]
    if rows.empty:
        return {}
    requests = float(rows["requests_stable"].sum() + rows["requests_candidate"].sum())
    failed = float(rows["failed_stable"].sum() + rows["failed_candidate"].sum())
    cand_req = float(rows["requests_candidate"].sum())
    p99 = rows["latency_p99_candidate"].dropna()
    return jsonable({
        "requests": int(requests),
        "failed_requests": int(failed),
        "error_rate": _rate(failed, requests),
        "candidate_requests": int(cand_req),
        "candidate_error_rate": _rate(float(rows["failed_candidate"].sum()), cand_req),
        "candidate_latency_p99_max_ms": round(float(p99.max()), 1) if not p99.empty else None,
        "weight_end": round(float(rows["weight"].iloc[-1]), 1),
        "ready_min": int((rows["ready_stable"] + rows["ready_candidate"]).min()),
    })


def step_details(record: Record) -> list[dict[str, Any]]:
    """Each step with its decisions (and their reasons), measurements and observed metrics."""
    end_of_run = record.summary.get("simulated_seconds")
    details = []
    for step in record.steps:
        index = step["index"]
        decisions = [d for d in record.decisions if d["step"] == index and d["kind"] != "measure"]
        measurements = [{"at": d["at"], "verdict": d["reason"], **d.get("values", {})}
                        for d in record.decisions if d["step"] == index and d["kind"] == "measure"]
        end = step["end"] if step["end"] is not None else end_of_run
        details.append({
            **step,
            "seconds": None if step["end"] is None else round(step["end"] - step["start"], 3),
            "decisions": [{"at": d["at"], "kind": d["kind"], "reason": d["reason"]} for d in decisions],
            "measurements": measurements,
            "observed": observed(record.timeline, step["start"], end),
        })
    return details


# --- the executed notebook -------------------------------------------------------------------


def export_notebook(source: str | Path | Any, folder: str | Path, name: str, redactor: Redactor) -> dict[str, str]:
    """A redacted copy of the executed notebook (a path, or the notebook already read) and an
    HTML copy without code cells.

    Returns the file names written, relative to ``folder``.
    """
    import nbformat
    from nbconvert import HTMLExporter

    folder = Path(folder)
    nb = nbformat.read(str(source), as_version=4) if isinstance(source, str | Path) else source
    clean = redactor.notebook(nb)
    text = nbformat.writes(clean)
    write_text(folder / f"{name}.ipynb", text if text.endswith("\n") else text + "\n")  # as nbformat.write
    # the "basic" template without its 300 kB of JupyterLab CSS: a trail stays small, and a
    # page of text, tables and plots reads well with a few lines of style
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(clean)
    title = html_escape(f"{folder.name} — {name}")
    page = (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n"
            f"<style>{_HTML_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
    (folder / f"{name}.html").write_text(redactor.text_literals(page))
    return {"ipynb": f"{name}.ipynb", "html": f"{name}.html"}


_HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.85rem}"
    "img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem}"
    ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr'] pre{background:#fdecea}"
)


# --- reading the trail back: every damage named, none raised as a traceback ------------------


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
               type(None): "null"}


def excerpt(value: Any, limit: int = 40) -> str:
    """A short, redacted excerpt of a value read from a damaged record."""
    return excerpt_text(json.dumps(value, default=str)[:EXCERPT_SCAN], limit)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _record_text(path: Path) -> str:
    """record.json's text, or :class:`DamagedRun` saying why it cannot be had."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        why = "record.json is a broken symbolic link" if os.path.islink(path) else "no record.json"
        raise DamagedRun(path.parent, why) from None
    except OSError as exc:
        raise DamagedRun(path.parent, f"record.json cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise DamagedRun(path.parent, "record.json is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise DamagedRun(path.parent, "record.json is not a regular file (a device, pipe or socket)")
    if st.st_size > MAX_RECORD_BYTES:
        raise DamagedRun(path.parent, f"record.json is {st.st_size / 2**20:.0f} MB, more than the "
                                      f"{MAX_RECORD_BYTES // 2**20} MB a record may be")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise DamagedRun(path.parent, f"record.json cannot be read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise DamagedRun(path.parent, "record.json is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DamagedRun(path.parent, f"record.json is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                                      f"{exc.start})") from None


Check = Callable[[dict[str, Any]], str | None]


def load_record(folder: str | Path, check: Check | None = None) -> dict[str, Any]:
    """The record of a run folder, checked: raises :class:`DamagedRun` naming the folder and
    what is wrong (missing, unreadable, not JSON, not a run record, or what ``check``, given
    the data, says is wrong with it).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / RECORD_FILE).write_text('[{"version": 1, "kind": "deploysim.run"}]')
    >>> load_record(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deploysim.trail.DamagedRun: run folder ...: record.json holds an array, not an object
    """
    folder = Path(folder)
    text = _record_text(folder / RECORD_FILE)
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise DamagedRun(folder, f"record.json is not valid JSON ({exc.msg} at line {exc.lineno} column "
                                 f"{exc.colno})") from None
    except ValueError as exc:  # NaN, or an integer of thousands of digits
        raise DamagedRun(folder, f"record.json is not valid JSON ({str(exc)[:80]})") from None
    except RecursionError:
        raise DamagedRun(folder, "record.json is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise DamagedRun(folder, f"record.json holds {_JSON_TYPES.get(type(data), 'a value')}, not an object")
    if data.get("kind") != TRAIL_KIND:
        kind = f"kind {excerpt(data['kind'])}" if "kind" in data else "no kind"
        raise DamagedRun(folder, f"record.json is not a deploysim run record ({kind}; expected {TRAIL_KIND!r})")
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > TRAIL_VERSION:
        raise DamagedRun(folder, f"record.json is version {version}, newer than this deploysim reads "
                                 f"({TRAIL_VERSION}): upgrade deploysim")
    if not isinstance(data.get("run"), dict):
        raise DamagedRun(folder, "record.json: run: " + ("missing" if "run" not in data else
                                                           f"got {excerpt(data['run'])}; expected an object"))
    problem = check(data) if check else None
    if problem:
        raise DamagedRun(folder, problem)
    return data


@dataclass(frozen=True)
class Damaged:
    """A folder in the trail that is skipped, and why."""

    folder: Path
    why: str

    def line(self) -> str:
        return f"{printable(self.folder)}: {self.why}"


def looks_like_run(folder: Path) -> bool:
    """A folder named as :func:`run_name` names them, or holding a run's other files."""
    return bool(RUN_NAME.match(folder.name)) or any(os.path.lexists(folder / f) for f in TRAIL_FILES)


def read_entry(folder: Path, check: Check | None) -> tuple[str, Any]:
    """(``"run"``, record) | (``"damaged"``, why) | (``"other"``, None) for one folder entry."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        if os.path.islink(folder):
            return "damaged", "a broken symbolic link"
        return "other", None  # gone since the folder was listed
    except OSError as exc:
        what = "a symbolic link that cannot be followed" if os.path.islink(folder) else "cannot be read"
        return "damaged", f"{what} ({exc.strerror or exc})"
    if not stat.S_ISDIR(st.st_mode):
        return "other", None
    try:
        os.lstat(folder / RECORD_FILE)
    except FileNotFoundError:
        return ("damaged", "no record.json") if looks_like_run(folder) else ("other", None)
    except OSError as exc:
        return "damaged", f"the folder cannot be read ({exc.strerror or exc})"
    try:
        return "run", load_record(folder, check)
    except DamagedRun as exc:
        return "damaged", exc.why


def scan_runs(path: str | Path, check: Check | None = None) -> tuple[list[tuple[Path, dict[str, Any]]],
                                                                     list[Damaged]]:
    """The run folders in ``path`` (or ``path`` itself when it is one), oldest first, each with
    its record; and the damaged ones (see :func:`load_record`), each with the reason it is
    skipped. Hidden entries (a folder being created, a record being replaced) and files
    beside the runs are not runs; hidden folders that killed runs left are removed
    (:func:`deploysim.leftovers.remove_leftovers`): reading a trail is enough to keep it clean.
    """
    path = Path(path)
    if os.path.lexists(path / RECORD_FILE) or looks_like_run(path):
        kind, value = read_entry(path, check)
        if kind != "other":
            return ([(path, value)], []) if kind == "run" else ([], [Damaged(path, value)])
    try:
        names = sorted(os.listdir(path))
    except (NotADirectoryError, FileNotFoundError):
        return [], []
    remove_leftovers(path)
    runs: list[tuple[Path, dict[str, Any]]] = []
    damaged: list[Damaged] = []
    for name in names:
        if name.startswith("."):
            continue
        kind, value = read_entry(path / name, check)
        if kind == "run":
            runs.append((path / name, value))
        elif kind == "damaged":
            damaged.append(Damaged(path / name, value))
    runs.sort(key=lambda r: (str(r[1]["run"].get("started_at") or ""), r[0].name))
    return runs, damaged


def is_run_folder(path: Path) -> bool:
    """A folder whose record reads cleanly."""
    try:
        load_record(path)
    except DamagedRun:
        return False
    return True


def find_runs(path: str | Path) -> list[Path]:
    """Run folders in ``path`` (or ``path`` itself when it is one), oldest first; damaged
    folders are left out (:func:`scan_runs` names them)."""
    return [folder for folder, _ in scan_runs(path)[0]]
