"""The audit trail: one folder per run, with everything needed to trust and replay it.

A run folder ``RECORD_DIR/<UTC time>-<runbook>-<short id>/`` holds:

- ``record.json``: the parameters (given and resolved), who ran it (user, host), when, from
  which git commit, the target and its context, each step with its start, end, observed
  metric values and decisions with their reasons, and the outcome; written when the run
  starts (outcome ``running``) and again when it ends, so an interrupted run still shows;
- ``timeline.csv`` and ``summary.json``: the record's timeline and summary;
- ``traffic.png`` and ``pods.png``: the plots;
- ``<runbook>.ipynb`` and ``<runbook>.html``: the executed notebook and an HTML copy
  without code cells.

Everything is redacted (:mod:`deploysim.redact`) before it is written.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import subprocess
import uuid
from datetime import UTC, datetime
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pandas as pd

from deploysim.record import Record, jsonable  # noqa: F401 - the trail writes with it
from deploysim.redact import Redactor

TRAIL_VERSION = 1
TRAIL_KIND = "deploysim.run"
RECORD_MIMETYPE = "application/vnd.deploysim.record.v1+json"
RECORD_FILE = "record.json"
RUNNING = "running"
ERROR = "error"


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


def write_json(path: Path, data: Any) -> Path:
    """Write through a temporary file, so a reader never sees half a record."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(jsonable(data), indent=2) + "\n")
    tmp.replace(path)
    return path


def read_record(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / RECORD_FILE).read_text())


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


def export_notebook(source: str | Path, folder: str | Path, name: str, redactor: Redactor) -> dict[str, str]:
    """A redacted copy of the executed notebook and an HTML copy without code cells.

    Returns the file names written, relative to ``folder``.
    """
    import nbformat
    from nbconvert import HTMLExporter

    folder = Path(folder)
    nb = nbformat.read(str(source), as_version=4)
    clean = redactor.notebook(nb)
    ipynb = folder / f"{name}.ipynb"
    tmp = folder / f".{name}.ipynb.tmp"
    nbformat.write(clean, str(tmp))
    tmp.replace(ipynb)
    # the "basic" template without its 300 kB of JupyterLab CSS: a trail stays small, and a
    # page of text, tables and plots reads well with a few lines of style
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(clean)
    title = html_escape(f"{folder.name} — {name}")
    page = (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n"
            f"<style>{_HTML_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
    (folder / f"{name}.html").write_text(redactor.text_literals(page))
    return {"ipynb": ipynb.name, "html": f"{name}.html"}


_HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.85rem}"
    "img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem}"
    ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr'] pre{background:#fdecea}"
)


# --- finding runs ----------------------------------------------------------------------------


def is_run_folder(path: Path) -> bool:
    if not (path / RECORD_FILE).is_file():
        return False
    try:
        return read_record(path).get("kind") == TRAIL_KIND
    except (OSError, ValueError):
        return False


def find_runs(path: str | Path) -> list[Path]:
    """Run folders in ``path`` (or ``path`` itself when it is one), oldest first."""
    path = Path(path)
    if is_run_folder(path):
        return [path]
    if not path.is_dir():
        return []
    runs = [p for p in path.iterdir() if p.is_dir() and is_run_folder(p)]
    return sorted(runs, key=lambda p: (read_record(p)["run"].get("started_at") or "", p.name))
