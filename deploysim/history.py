"""Run history: ``deploysim runs list | show | diff`` over audit folders.

>>> # deploysim runs list runs/           time, runbook, target, outcome, duration
>>> # deploysim runs show 3f2a1c          the decisions of one run, and why
>>> # deploysim runs diff RUN_A RUN_B     parameters, outcome and metrics at each step

A damaged folder is skipped and named with the reason (:func:`scan_history`); showing or
comparing one raises :class:`~deploysim.trail.DamagedRun`. A ``running`` record whose
process is gone reads as ``interrupted`` (:func:`run_outcome`); the file is left as written.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deploysim.errors import DeploysimError
from deploysim.record import SUMMARY_KEYS, measurement_rows
from deploysim.scenario import format_duration
from deploysim.trail import (
    INTERRUPTED,
    RECORD_FILE,
    RUNNING,
    Damaged,
    DamagedRun,
    excerpt,
    iso,
    load_record,
    read_entry,
    scan_runs,
)

DEFAULT_DIR = "runs"
STEP_METRICS = ("requests", "failed_requests", "error_rate", "candidate_error_rate",
                "candidate_latency_p99_max_ms", "weight_end")


#: two readings of one process's start time agree within this (psutil adds the boot time,
#: which the kernel derives from the wall clock); a reused pid starts later than that
START_TOLERANCE_SECONDS = 1.0


class RunNotFound(DeploysimError):
    """A run named on the command line is not an audit folder (or is ambiguous)."""


# --- what list/show/diff read from a record, and of which JSON type --------------------------


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class _Who(_Shape):
    user: str | None = None
    host: str | None = None


class _Git(_Shape):
    commit: str | None = None
    dirty: bool | None = None


class _Target(_Shape):
    name: str | None = None


class _Parameters(_Shape):
    given: dict[str, Any] | None = None
    resolved: dict[str, Any] | None = None


class _Process(_Shape):
    pid: int = Field(ge=1, le=2**22)  # Linux's largest pid_max
    host: str
    started: float | None = Field(default=None, ge=0, le=32503680000)  # seconds since 1970, before 3000


class _Run(_Shape):
    outcome: str
    runbook: str | None = None
    status: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    clock: str | None = None
    who: _Who | None = None
    git: _Git | None = None
    target: _Target | None = None
    parameters: _Parameters | None = None
    process: _Process | None = None


class _Values(_Shape):
    metrics: list[dict[str, Any]] | None = None


class _Decision(_Shape):
    at: float
    step: int
    kind: str
    reason: str
    values: _Values | None = None


class _Measurement(_Shape):
    verdict: str


class _Step(_Shape):
    describe: str | None = None
    result: str | None = None
    seconds: float | None = None
    observed: dict[str, Any] | None = None
    measurements: list[_Measurement] | None = None


class _Summary(_Shape):
    rollout_seconds: float | None = None


class _RecordShape(_Shape):
    """What ``runs list/show/diff`` read from a record: each field's JSON type."""

    version: int
    run: _Run
    summary: _Summary | None = None
    decisions: list[_Decision] = []
    steps: list[_Step] = []


_EXPECTED = {"float_type": "expected a number", "int_type": "expected an integer", "string_type": "expected a string",
             "bool_type": "expected true or false", "dict_type": "expected an object", "model_type": "expected an object",
             "list_type": "expected an array"}


def _where(loc: tuple[Any, ...]) -> str:
    """``decisions[3].at`` from pydantic's ``('decisions', 3, 'at')``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _shape_problem(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "missing":
        what = "missing"
    else:
        msg = first["msg"]
        what = f"got {excerpt(first['input'])}; {_EXPECTED.get(first['type'], msg[:1].lower() + msg[1:])}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"record.json: {_where(first['loc'])}: {what}{more}"


def check_shape(data: dict[str, Any]) -> str | None:
    """What is wrong with a record's fields for list/show/diff, on one line; None if nothing.

    >>> check_shape({"version": 1, "run": {"outcome": "promoted"}, "decisions": [{"at": "5"}]})
    'record.json: decisions[0].at: got "5"; expected a number (and 3 more)'
    """
    try:
        _RecordShape.model_validate(data)
    except ValidationError as exc:
        return _shape_problem(exc)
    except RecursionError:
        return "record.json is nested too deeply to read"
    return None


# --- a run whose process is gone ------------------------------------------------------------


def process_gone(process: Mapping[str, Any] | None, host: str | None = None) -> str | None:
    """Why the process a ``running`` record names is gone; None while it may still run (also
    when the record names no process, or another host, where it cannot be checked).

    >>> from deploysim.trail import process_identity
    >>> process_gone(process_identity()) is None
    True
    >>> process_gone({**process_identity(), "started": 0.0})  # doctest: +ELLIPSIS
    'the process that ran it (pid ..., started 1970-01-01T00:00:00.000Z) is gone: pid ... is now another process ...'
    """
    import psutil

    if not process:
        return None
    here = host or socket.gethostname()
    if process.get("host") != here:
        return None
    pid, started = process.get("pid"), process.get("started")
    if not isinstance(pid, int):
        return None
    since = f", started {iso(datetime.fromtimestamp(started, UTC))}" if started is not None else ""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return f"the process that ran it (pid {pid}{since}) has exited"
        now_started = proc.create_time()
    except psutil.NoSuchProcess:  # a zombie too
        return f"the process that ran it (pid {pid}{since}) is gone"
    except (psutil.AccessDenied, OSError):
        return None
    if started is not None and abs(now_started - started) > START_TOLERANCE_SECONDS:
        return (f"the process that ran it (pid {pid}{since}) is gone: pid {pid} is now another process "
                f"(started {iso(datetime.fromtimestamp(now_started, UTC))})")
    return None


def run_outcome(run: Mapping[str, Any]) -> tuple[str, str]:
    """(outcome, status) as the trail reads them now: a ``running`` record whose process is
    gone is ``interrupted``, and the status says why; the record itself is not rewritten.

    >>> run_outcome({"outcome": "promoted", "status": "promoted: all good"})
    ('promoted', 'promoted: all good')
    >>> from deploysim.trail import process_identity
    >>> run_outcome({"outcome": "running", "process": {**process_identity(), "started": 0.0}})[0]
    'interrupted'
    """
    outcome, status = str(run.get("outcome", "-")), str(run.get("status") or "")
    if outcome != RUNNING:
        return outcome, status
    gone = process_gone(run.get("process"))
    if gone is None:
        return outcome, status
    return INTERRUPTED, f"{gone}; {RECORD_FILE} still says running (read as interrupted, not rewritten)"


# --- finding, listing, showing, comparing ----------------------------------------------------


def scan_history(directory: str | Path = DEFAULT_DIR) -> tuple[list[tuple[Path, dict[str, Any]]], list[Damaged]]:
    """The readable runs in ``directory`` with their records, and the damaged folders, each with why."""
    return scan_runs(directory, check_shape)


def _load(folder: Path) -> dict[str, Any]:
    return load_record(folder, check_shape)


def resolve_run(name: str, directory: str | Path = DEFAULT_DIR) -> Path:
    """A run by folder path, by folder name in ``directory``, or by a unique part of it (the id).

    A damaged folder raises :class:`~deploysim.trail.DamagedRun` naming it and what is wrong.
    """
    path = Path(name)
    if os.path.lexists(path):
        kind, value = read_entry(path, check_shape)
        if kind == "run":
            return path
        if kind == "damaged":
            raise DamagedRun(path, value)
    good, damaged = scan_history(directory)
    runs = [folder for folder, _ in good] + [d.folder for d in damaged]
    why = {d.folder: d.why for d in damaged}
    exact = [r for r in runs if r.name == name]
    matches = exact[:1] or [r for r in runs if name in r.name]
    if len(matches) == 1:
        if matches[0] in why:
            raise DamagedRun(matches[0], why[matches[0]])
        return matches[0]
    if not matches:
        raise RunNotFound(f"run {name!r}: no audit folder by that path or name in {directory}/ "
                          f"({len(runs)} runs there; see deploysim runs list {directory})")
    raise RunNotFound(f"run {name!r}: ambiguous in {directory}/, matches {', '.join(r.name for r in matches)}")


def _duration(run: dict[str, Any], summary: dict[str, Any] | None) -> str:
    seconds = (summary or {}).get("rollout_seconds")
    return format_duration(seconds) if seconds is not None else "-"


def list_runs(directory: str | Path = DEFAULT_DIR) -> list[dict[str, Any]]:
    """One row per run: when it started, runbook, target, outcome, rollout duration (damaged
    folders left out: :func:`list_runs_and_skipped` names them)."""
    return list_runs_and_skipped(directory)[0]


def list_runs_and_skipped(directory: str | Path = DEFAULT_DIR) -> tuple[list[dict[str, Any]], list[Damaged]]:
    """The rows of :func:`list_runs`, and the damaged folders skipped, each with why."""
    good, damaged = scan_history(directory)
    rows = []
    for folder, data in good:
        run = data["run"]
        rows.append({
            "time": run["started_at"].replace("T", " ")[:19] + "Z" if run.get("started_at") else "-",
            "run": folder.name,
            "runbook": run.get("runbook", "-"),
            "target": (run.get("target") or {}).get("name", "-"),
            "outcome": run_outcome(run)[0],
            "duration": _duration(run, data.get("summary")),
            "user": (run.get("who") or {}).get("user", "-"),
        })
    return rows, damaged


def format_rows(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    for r in rows:
        lines.append("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip())
    return "\n".join(lines)


def _values(values: dict[str, Any]) -> str:
    shown = []
    for key, value in values.items():
        if key == "metrics":
            continue  # listed under measurements
        if isinstance(value, float):
            value = f"{value:.4g}"
        shown.append(f"{key}={value}")
    return " ".join(shown)


def show_run(folder: Path) -> str:
    """The run's header (who, when, commit, parameters, outcome) and its decisions."""
    data = _load(folder)
    run = data["run"]
    outcome, status = run_outcome(run)
    git = run.get("git") or {}
    who = run.get("who") or {}
    lines = [
        f"run       {folder.name}",
        f"runbook   {run.get('runbook')} on {(run.get('target') or {}).get('name')}",
        f"by        {who.get('user')}@{who.get('host')}, {run.get('started_at')} -> {run.get('finished_at') or '-'}",
        f"commit    {git.get('commit', '-')}{' (with local changes)' if git.get('dirty') else ''}",
        f"given     {_values((run.get('parameters') or {}).get('given') or {}) or 'none (defaults)'}",
        f"outcome   {outcome}: {status}",
        "",
        f"decisions ({run.get('clock', 'seconds')}):",
    ]
    rows = []
    for d in data.get("decisions", []):
        rows.append({"at": f"{d['at']:.1f}", "step": d["step"] + 1 if d["step"] >= 0 else "-",
                     "kind": d["kind"], "reason": d["reason"], "values": _values(d.get("values") or {})})
    lines.append(format_rows(rows, ["at", "step", "kind", "reason", "values"]) if rows else "  (none)")
    measured = measurement_rows(data.get("decisions", []))
    if measured:
        lines += ["", "measurements (each team metric: the query as sent, the raw answer, the value):"]
        for m in measured:
            lines.append(f"  {m['at']:.1f}  {m['analysis']}  {m['metric']}: {m['phase']} value={m['value'] or '-'}"
                         f"  ({m['message']})")
            lines.append(f"        query: {m['query']}")
            lines.append(f"        raw:   {m['raw'] or '-'}")
    return "\n".join(lines)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out or {prefix.rstrip("."): "{}"}
    return {prefix.rstrip("."): json.dumps(value) if isinstance(value, list) else value}


def diff_runs(a: Path, b: Path) -> dict[str, list[tuple[str, Any, Any]]]:
    """What differs between two runs: parameters, outcome, summary metrics, each step."""
    da, db = _load(a), _load(b)
    ra, rb = da["run"], db["run"]
    out: dict[str, list[tuple[str, Any, Any]]] = {}
    pa = _flat((ra.get("parameters") or {}).get("resolved") or {})
    pb = _flat((rb.get("parameters") or {}).get("resolved") or {})
    out["parameters"] = [(k, pa.get(k), pb.get(k)) for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
    now_a, now_b = run_outcome(ra), run_outcome(rb)
    out["outcome"] = [("runbook", ra.get("runbook"), rb.get("runbook")), ("outcome", now_a[0], now_b[0]),
                      ("status", now_a[1], now_b[1])]
    sa, sb = da.get("summary") or {}, db.get("summary") or {}
    out["metrics"] = [(k, sa.get(k), sb.get(k)) for k in SUMMARY_KEYS if k != "wall_seconds"]
    steps: list[tuple[str, Any, Any]] = []
    sta, stb = da.get("steps") or [], db.get("steps") or []
    for i in range(max(len(sta), len(stb))):
        x = sta[i] if i < len(sta) else {}
        y = stb[i] if i < len(stb) else {}
        name = f"step {i + 1}"
        steps.append((f"{name} step", x.get("describe", "-"), y.get("describe", "-")))
        steps.append((f"{name} result", x.get("result", "-"), y.get("result", "-")))
        steps.append((f"{name} seconds", x.get("seconds"), y.get("seconds")))
        ox, oy = x.get("observed") or {}, y.get("observed") or {}
        for metric in STEP_METRICS:
            steps.append((f"{name} {metric}", ox.get(metric), oy.get(metric)))
        mx, my = x.get("measurements") or [], y.get("measurements") or []
        if mx or my:
            steps.append((f"{name} measured", "; ".join(m["verdict"] for m in mx) or "-",
                          "; ".join(m["verdict"] for m in my) or "-"))
    out["steps"] = steps
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_diff(a: Path, b: Path, diff: dict[str, list[tuple[str, Any, Any]]]) -> str:
    lines = [f"A: {a.name}", f"B: {b.name}"]
    titles = {"parameters": "parameters (only those that differ)", "outcome": "outcome",
              "metrics": "metrics", "steps": "metrics at each step"}
    for section, rows in diff.items():
        lines += ["", titles[section] + ":"]
        if not rows:
            lines.append("  (the same)")
            continue
        table = [{"": "*" if _cell(x) != _cell(y) else "", "name": k, "A": _cell(x), "B": _cell(y)}
                 for k, x, y in rows]
        lines.append(format_rows(table, ["", "name", "A", "B"]))
    return "\n".join(lines)
