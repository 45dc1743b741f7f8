"""Post-incident analysis of audit trails: what happened, how fast, and what else would have cost.

What ``notebooks/post_incident.ipynb`` shows:

- :func:`load_trails`: run folders (or folders of runs) -> :class:`Trail`;
- :func:`timeline_frame`: every decision with its step, reason and the metric values behind it;
- :func:`incident_times`: time to detect and to recover, computed from the timeline and the
  decisions (and the record's own figures beside them, as a cross-check);
- :func:`replay`: the same scenario and seed rolled out by each strategy in the simulator.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deploysim.errors import DeploysimError
from deploysim.record import SUMMARY_KEYS, Record, detect_and_recover
from deploysim.scenario import STRATEGY_KINDS, Scenario, format_duration
from deploysim.trail import find_runs, read_record

COMPARED = ("outcome", "failed_requests", "rollout_seconds", "time_to_detect_seconds")


class TrailNotFound(DeploysimError):
    """A path given as a trail holds no audit folder."""


@dataclass
class Trail:
    """One run's audit folder: its run section and its record."""

    folder: Path
    run: dict[str, Any]
    record: Record

    @property
    def name(self) -> str:
        return self.folder.name


def _resolve(path: str | Path) -> Path:
    """A path as given, else relative to the repository (notebooks run from notebooks/)."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    root = Path(__file__).resolve().parents[1]
    return root / p if (root / p).exists() else p


def load_trails(paths: Sequence[str | Path] | str | Path) -> list[Trail]:
    """Every run under ``paths`` (run folders, or folders holding run folders), oldest first."""
    if isinstance(paths, str | Path):
        paths = [paths]
    trails = []
    for given in paths:
        runs = find_runs(_resolve(given))
        if not runs:
            raise TrailNotFound(f"trail {str(given)!r}: no audit folder (a folder with a deploysim record.json) there")
        for folder in runs:
            trails.append(Trail(folder, read_record(folder)["run"], Record.load(folder)))
    return trails


def trails_frame(trails: Sequence[Trail]) -> pd.DataFrame:
    """Who ran what, when, from which commit, and how it ended."""
    rows = []
    for t in trails:
        git = t.run.get("git") or {}
        rows.append({
            "run": t.name, "runbook": t.run.get("runbook"), "target": (t.run.get("target") or {}).get("name"),
            "strategy": t.record.summary.get("strategy"), "outcome": t.run.get("outcome"),
            "started_at": t.run.get("started_at"), "by": (t.run.get("who") or {}).get("user"),
            "commit": (git.get("commit") or "-")[:10], "reason": t.run.get("parameters", {}).get(
                "resolved", {}).get("reason") or "",
        })
    return pd.DataFrame(rows).set_index("run")


def _at(timeline: pd.DataFrame, at: float) -> pd.Series | None:
    """The timeline bin holding time ``at``."""
    if timeline.empty:
        return None
    rows = timeline[(timeline["start"] <= at + 1e-9) & (timeline["time"] >= at - 1e-9)]
    return rows.iloc[-1] if not rows.empty else None


def timeline_frame(trails: Sequence[Trail]) -> pd.DataFrame:
    """Each decision, with the step it was on and the metric values it was taken on.

    ``measured_*`` are what the analysis measured (measure decisions); ``weight`` and
    ``failed_per_s`` come from the timeline bin the decision fell in.
    """
    rows = []
    for t in trails:
        steps = {s["index"]: s["describe"] for s in t.record.steps}
        for d in t.record.decisions:
            b = _at(t.record.timeline, d["at"])
            values = d.get("values") or {}
            failed = None
            if b is not None and b["seconds"]:
                failed = round(float(b["failed_stable"] + b["failed_candidate"]) / float(b["seconds"]), 2)
            rows.append({
                "run": t.name if len(trails) > 1 else None,
                "at_s": round(d["at"], 1),
                "step": f"{d['step'] + 1}: {steps.get(d['step'], '')}" if d["step"] >= 0 else "-",
                "kind": d["kind"],
                "reason": d["reason"],
                "measured_error_rate": values.get("error_rate"),
                "measured_p99_ms": values.get("latency_p99"),
                "measured_requests": values.get("requests"),
                "weight": None if b is None else round(float(b["weight"]), 1),
                "failed_per_s": failed,
            })
    df = pd.DataFrame(rows)
    if len(trails) <= 1:
        df = df.drop(columns="run")
    return df


def incident_times(trail: Trail) -> dict[str, Any]:
    """Time to detect and to recover, from the timeline (bin resolution) and the decisions.

    Detect: the first bin in which the candidate served a request (users' or a blue-green
    preview's) -> the abort decision. Recover: the abort decision -> the start of the first
    bin from which the candidate serves nothing until the end. Each is within one bin of the
    record's exact figures, which are kept beside them.
    """
    t = trail.record.timeline
    s = trail.record.summary
    abort = next((d for d in trail.record.decisions if d["kind"] == "abort"), None)
    start = next((d for d in trail.record.decisions if d["kind"] == "start"), None)
    served = t[(t["requests_candidate"] + t.get("requests_preview", 0)) > 0]
    first = float(served["start"].iloc[0]) if not served.empty else None
    detect = recover = recovered = None
    if abort is not None:
        after = t[t["time"] > abort["at"]]
        serving = after[after["requests_candidate"] > 0]
        if serving.empty:
            recovered = abort["at"]
        elif serving.index[-1] != t.index[-1]:
            recovered = max(float(t.loc[serving.index[-1] + 1, "start"]), abort["at"])
        # the glossary's rule, the one the record's summary uses, over the timeline's bins
        status = {"abort": {"at": abort["at"]}, "started_at": start["at"] if start else None}
        detect, recover = detect_and_recover(status, first, recovered)
    return {
        "run": trail.name,
        "strategy": s.get("strategy"),
        "outcome": s.get("outcome"),
        "first_candidate_request_s": None if first is None else round(first, 1),
        "abort_s": None if abort is None else round(abort["at"], 1),
        "recovered_s": None if recovered is None else round(recovered, 1),
        "time_to_detect_s": None if detect is None else round(detect, 1),
        "time_to_recover_s": None if recover is None else round(recover, 1),
        "record_time_to_detect_s": s.get("time_to_detect_seconds"),
        "record_time_to_recover_s": s.get("time_to_recover_seconds"),
        "failed_requests": s.get("failed_requests"),
        "rollout_attributable_failures": s.get("rollout_attributable_failures"),
        "abort_reason": None if abort is None else abort["reason"],
    }


def summary_frame(trails: Sequence[Trail]) -> pd.DataFrame:
    """Each trail's summary, one row per run, with the same fields whichever world ran it; a
    field that world could not know says why in ``unknown``."""
    rows = []
    for t in trails:
        s = t.record.summary
        row = {"run": t.name, **{k: s.get(k) for k in SUMMARY_KEYS if k not in ("unknown", "wall_seconds")}}
        row["unknown"] = "; ".join(f"{k}: {v}" for k, v in (s.get("unknown") or {}).items())
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def times_frame(trails: Sequence[Trail]) -> pd.DataFrame:
    return pd.DataFrame([incident_times(t) for t in trails]).set_index("run")


def replay_records(trail: Trail, strategies: Sequence[str] = STRATEGY_KINDS) -> list[Record]:
    """The trail's scenario (and seed) rehearsed under each strategy."""
    from deploysim.sim import rehearse

    scenario = Scenario.model_validate(trail.record.scenario)
    return [rehearse(scenario.with_strategy(kind)) for kind in strategies]


def replay(trails: Sequence[Trail], strategies: Sequence[str] = STRATEGY_KINDS) -> pd.DataFrame:
    """What each strategy would have cost, per trail; ``same_as_record`` checks the replay of
    the strategy that ran against the record (True for a rehearsal: same inputs, same seed)."""
    rows = []
    for trail in trails:
        ran = trail.record.summary.get("strategy")
        for rec in replay_records(trail, strategies):
            s = rec.summary
            same = None
            if s["strategy"] == ran:
                same = all(s.get(k) == trail.record.summary.get(k) for k in COMPARED)
            rows.append({
                "run": trail.name, "strategy": s["strategy"], "ran": s["strategy"] == ran,
                "outcome": s["outcome"], "time_to_detect_s": s["time_to_detect_seconds"],
                "time_to_recover_s": s["time_to_recover_seconds"], "failed_requests": s["failed_requests"],
                "rollout_attributable_failures": s["rollout_attributable_failures"],
                "extra_pod_seconds": s["extra_pod_seconds"], "min_available": s["min_available"],
                "rollout_s": s["rollout_seconds"], "error_budget_consumed": s["error_budget_consumed"],
                "same_as_record": same,
            })
    return pd.DataFrame(rows)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def plot_timeline(trail: Trail) -> bytes:
    """Candidate and overall error rate, the candidate's weight, decisions and the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deploysim.plots import palette

    t = trail.record.timeline
    minutes = t["time"] / 60
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    total = (t["failed_stable"] + t["failed_candidate"]) / (t["requests_stable"] + t["requests_candidate"]).clip(lower=1)
    cand = t["failed_candidate"] / t["requests_candidate"].where(t["requests_candidate"] > 0)
    ax1.plot(minutes, cand, color=palette.CANDIDATE, label="candidate error rate")
    ax1.plot(minutes, total, color=palette.INK, label="all requests error rate")
    for check in (trail.record.scenario.get("analysis") or {}).get("checks", []):
        if check.get("metric") == "error_rate" and check.get("max") is not None:
            ax1.axhline(check["max"], color=palette.THRESHOLD, linestyle=":", label=f"threshold {check['max']:g}")
    ax2.plot(minutes, t["weight"], color=palette.CANDIDATE, label="candidate weight %")
    colors = {"abort": palette.FAIL, "promote": palette.PASS, "pause": palette.PAUSE, "start": palette.INK,
              "complete": palette.NO_VALUE}
    for d in trail.record.decisions:
        if d["kind"] in colors:
            for ax in (ax1, ax2):
                ax.axvline(d["at"] / 60, color=colors[d["kind"]], linestyle="--", linewidth=1)
    ax1.set_ylabel("error rate")
    ax2.set_ylabel("weight %")
    ax2.set_xlabel("minutes")
    ax1.set_title(f"{trail.name}: {trail.record.summary.get('strategy')} {trail.run.get('outcome')}")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def show_timelines(trails: Sequence[Trail]) -> None:
    from IPython.display import Image, display

    for trail in trails:
        display(Image(data=plot_timeline(trail)))


def show_replays(trails: Sequence[Trail], strategies: Sequence[str] = STRATEGY_KINDS) -> None:
    import tempfile

    from IPython.display import Image, display

    from deploysim.report import plot_comparison

    for trail in trails:
        with tempfile.TemporaryDirectory() as tmp:
            path = plot_comparison(replay_records(trail, strategies), Path(tmp) / "replay.png")
            display(Image(data=path.read_bytes()))


ENDED = ("promoted", "rolled_back", "failed")


def what_happened(trails: Sequence[Trail]) -> str:
    """The incident in a few sentences per trail, from the trail alone."""
    lines = []
    for trail in trails:
        times = incident_times(trail)
        lines.append(f"{trail.name} ({trail.run.get('runbook')} runbook, {times['strategy']}): "
                     f"{trail.run.get('status')}")
        if times["abort_s"] is not None:
            unknown = trail.record.summary.get("unknown") or {}
            if times["failed_requests"] is None or times["rollout_attributable_failures"] is None:
                cost = f"failed requests unknown ({unknown.get('failed_requests') or unknown.get('rollout_attributable_failures') or 'not recorded'})."
            else:
                cost = (f"{times['failed_requests']} failed requests, "
                        f"{max(times['rollout_attributable_failures'], 0):.0f} of them attributable to the rollout.")
            lines.append(
                f"  detected {format_duration(times['time_to_detect_s'])} after the candidate's first request, "
                f"recovered {format_duration(times['time_to_recover_s'])} after the abort; {cost}")
        resolution = float(trail.record.scenario.get("resolution") or 10.0)
        agree = all(
            (a is None) == (b is None) and (a is None or abs(a - b) <= resolution + 0.1)
            for a, b in ((times["time_to_detect_s"], times["record_time_to_detect_s"]),
                         (times["time_to_recover_s"], times["record_time_to_recover_s"])))
        lines.append(f"  computed times agree with the record's summary within one timeline bin "
                     f"({format_duration(resolution)}): {agree}")
    return "\n".join(lines)


def replay_check(trails: Sequence[Trail], replays: pd.DataFrame, strategies: Sequence[str]) -> str:
    """What must hold of the replays whatever the simulator's version."""
    lines = []
    for trail in trails:
        rows = replays[replays["run"] == trail.name]
        ran = trail.record.summary.get("strategy")
        lines.append(f"{trail.name}: replayed {', '.join(rows['strategy'])}; "
                     f"the strategy that ran ({ran}) among them: {ran in set(rows['strategy'])}; "
                     f"every replay ended (promoted, rolled back or failed): {bool(rows['outcome'].isin(ENDED).all())}")
    return "\n".join(lines)


def alternatives(trails: Sequence[Trail], replays: pd.DataFrame) -> str:
    """What the other strategies would have cost, per trail."""
    lines = []
    for trail in trails:
        rows = replays[replays["run"] == trail.name]
        if rows.empty:
            continue
        best = rows.sort_values(["rollout_attributable_failures", "extra_pod_seconds"]).iloc[0]
        worst = rows.sort_values("rollout_attributable_failures").iloc[-1]
        ran = rows[rows["ran"]]
        lines.append(f"{trail.name}:")
        if not ran.empty:
            r = ran.iloc[0]
            saved = r["rollout_attributable_failures"] - best["rollout_attributable_failures"]
            if best["strategy"] == r["strategy"] or saved <= 0:
                lines.append(f"  no other strategy would have cost fewer failed requests than {r['strategy']}.")
            else:
                lines.append(f"  {best['strategy']} would have cost {best['rollout_attributable_failures']:.0f} "
                             f"attributable failures instead of {r['rollout_attributable_failures']:.0f} "
                             f"({saved:.0f} fewer), for {best['extra_pod_seconds']:.0f} extra pod-seconds.")
            if r["same_as_record"] is False:
                lines.append("  the replay of the strategy that ran does not match the record: the run was not "
                             "a rehearsal of this scenario by this simulator version (a real cluster, a plan "
                             "from a manifest, or a newer simulator).")
        lines.append(f"  the costliest would have been {worst['strategy']} "
                     f"({worst['rollout_attributable_failures']:.0f} attributable failures).")
    return "\n".join(lines)
