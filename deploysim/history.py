"""Run history: ``deploysim runs list | show | diff`` over audit folders.

>>> # deploysim runs list runs/           time, runbook, target, outcome, duration
>>> # deploysim runs show 3f2a1c          the decisions of one run, and why
>>> # deploysim runs diff RUN_A RUN_B     parameters, outcome and metrics at each step
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploysim.errors import DeploysimError
from deploysim.record import SUMMARY_KEYS, measurement_rows
from deploysim.scenario import format_duration
from deploysim.trail import find_runs, is_run_folder, read_record

DEFAULT_DIR = "runs"
STEP_METRICS = ("requests", "failed_requests", "error_rate", "candidate_error_rate",
                "candidate_latency_p99_max_ms", "weight_end")


class RunNotFound(DeploysimError):
    """A run named on the command line is not an audit folder (or is ambiguous)."""


def resolve_run(name: str, directory: str | Path = DEFAULT_DIR) -> Path:
    """A run by folder path, by folder name in ``directory``, or by a unique part of it (the id)."""
    path = Path(name)
    if is_run_folder(path):
        return path
    runs = find_runs(directory)
    exact = [r for r in runs if r.name == name]
    if exact:
        return exact[0]
    matches = [r for r in runs if name in r.name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFound(f"run {name!r}: no audit folder by that path or name in {directory}/ "
                          f"({len(runs)} runs there; see deploysim runs list {directory})")
    raise RunNotFound(f"run {name!r}: ambiguous in {directory}/, matches {', '.join(r.name for r in matches)}")


def _duration(run: dict[str, Any], summary: dict[str, Any] | None) -> str:
    seconds = (summary or {}).get("rollout_seconds")
    return format_duration(seconds) if seconds is not None else "-"


def list_runs(directory: str | Path = DEFAULT_DIR) -> list[dict[str, Any]]:
    """One row per run: when it started, runbook, target, outcome, rollout duration."""
    rows = []
    for folder in find_runs(directory):
        data = read_record(folder)
        run = data["run"]
        rows.append({
            "time": run["started_at"].replace("T", " ")[:19] + "Z" if run.get("started_at") else "-",
            "run": folder.name,
            "runbook": run.get("runbook", "-"),
            "target": (run.get("target") or {}).get("name", "-"),
            "outcome": run.get("outcome", "-"),
            "duration": _duration(run, data.get("summary")),
            "user": (run.get("who") or {}).get("user", "-"),
        })
    return rows


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
    data = read_record(folder)
    run = data["run"]
    git = run.get("git") or {}
    who = run.get("who") or {}
    lines = [
        f"run       {folder.name}",
        f"runbook   {run.get('runbook')} on {(run.get('target') or {}).get('name')}",
        f"by        {who.get('user')}@{who.get('host')}, {run.get('started_at')} -> {run.get('finished_at') or '-'}",
        f"commit    {git.get('commit', '-')}{' (with local changes)' if git.get('dirty') else ''}",
        f"given     {_values((run.get('parameters') or {}).get('given') or {}) or 'none (defaults)'}",
        f"outcome   {run.get('outcome')}: {run.get('status')}",
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
    da, db = read_record(a), read_record(b)
    ra, rb = da["run"], db["run"]
    out: dict[str, list[tuple[str, Any, Any]]] = {}
    pa = _flat((ra.get("parameters") or {}).get("resolved") or {})
    pb = _flat((rb.get("parameters") or {}).get("resolved") or {})
    out["parameters"] = [(k, pa.get(k), pb.get(k)) for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
    out["outcome"] = [(k, ra.get(k), rb.get(k)) for k in ("runbook", "outcome", "status")]
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
