"""Compare strategies on one scenario: the records, a table, plots and a verdict in words.

What ``notebooks/rehearse.ipynb`` shows; ``deploysim compare`` writes the same as files.

>>> from deploysim.scenario import load_scenario
>>> records = compare_strategies(load_scenario(overrides=["duration=30m"]), ["canary", "rolling"])
>>> [r.summary["strategy"] for r in records]
['canary', 'rolling']
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from deploysim.errors import ScenarioError
from deploysim.record import CAUGHT, Record
from deploysim.scenario import STRATEGY_KINDS, Scenario, format_duration

COLUMNS = ["strategy", "outcome", "rollout_seconds", "time_to_detect_seconds", "time_to_recover_seconds",
           "failed_requests", "rollout_attributable_failures", "min_available", "max_pods",
           "extra_pod_seconds", "time_paused_seconds"]


def describe_scenario(scenario: Scenario) -> str:
    """The scenario in one paragraph: what is rolled out, into what traffic."""
    s = scenario
    faults = f", faults: {', '.join(f.kind for f in s.faults)}" if s.faults else ""
    return (f"{s.service}: {s.replicas} replicas, {s.traffic.rps:g} rps ({s.traffic.shape}); "
            f"stable {s.stable.image} fails {s.stable.error_rate:.2%}, candidate {s.candidate.image} fails "
            f"{s.candidate.error_rate:.2%}; rollout at {format_duration(s.start_at)} of "
            f"{format_duration(s.duration)} simulated; analysis {s.analysis.judge} every "
            f"{format_duration(s.analysis.interval)}, seed {s.seed}{faults}")


def compare_strategies(scenario: Scenario, strategies: Sequence[str] = STRATEGY_KINDS) -> list[Record]:
    """One rehearsal per strategy, everything else (seed included) the same."""
    from deploysim.sim import rehearse

    unknown = [k for k in strategies if k not in STRATEGY_KINDS]
    if unknown:
        raise ScenarioError("strategy.kind", unknown[0], f"one of {', '.join(STRATEGY_KINDS)}")
    return [rehearse(scenario.with_strategy(kind)) for kind in strategies]


def comparison_frame(records: Sequence[Record]) -> pd.DataFrame:
    """The summaries side by side (no wall-clock columns: the same inputs give the same table)."""
    return pd.DataFrame([{c: r.summary.get(c) for c in COLUMNS} for r in records]).set_index("strategy")


def decisions_frame(records: Sequence[Record]) -> pd.DataFrame:
    """The decisions that changed each rollout's course (measurements left out)."""
    rows = [{"strategy": r.summary["strategy"], "at_s": round(d["at"], 1), "step": d["step"] + 1,
             "kind": d["kind"], "reason": d["reason"]}
            for r in records for d in r.decisions if d["kind"] != "measure"]
    return pd.DataFrame(rows)


def show_comparison(records: Sequence[Record]) -> None:
    """Error rate, ready pods and the candidate's weight, one column per strategy, each on its own scales."""
    from IPython.display import Image, display

    from deploysim.report import plot_comparison

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_comparison(list(records), Path(tmp) / "comparison.png")
        display(Image(data=path.read_bytes()))


def outcomes(records: Sequence[Record]) -> str:
    """How each rollout ended, and that all rehearsed the same world (scenario and seed)."""
    same = all(r.summary["seed"] == records[0].summary["seed"] for r in records) and all(
        {**r.scenario, "strategy": None} == {**records[0].scenario, "strategy": None} for r in records)
    lines = [f"{len(records)} rehearsals of the same scenario and seed: {same}"]
    lines += [f"  {r.summary['strategy']}: {r.summary['outcome']}" for r in records]
    return "\n".join(lines)


def verdict(records: Sequence[Record]) -> str:
    """A few sentences: who caught the candidate, at what cost, and which strategy to prefer."""
    rows = [r.summary for r in records]
    caught = [s for s in rows if s["outcome"] in CAUGHT]
    lines = []
    if caught:
        lines.append("The candidate was rolled back by " + ", ".join(
            f"{s['strategy']} (detected in {format_duration(round(s['time_to_detect_seconds'] or 0))})" for s in caught) + ".")
    promoted = [s for s in rows if s["outcome"] == "promoted"]
    if promoted:
        lines.append("Promoted by " + ", ".join(s["strategy"] for s in promoted) + ".")
    other = [s for s in rows if s["outcome"] not in (*CAUGHT, "promoted")]
    for s in other:
        lines.append(f"{s['strategy']} ended {s['outcome']}.")
    # the cost users pay is failed requests caused by the rollout; ties go to fewer pod-seconds
    best = min(rows, key=lambda s: (s["rollout_attributable_failures"] or 0.0, s["extra_pod_seconds"] or 0.0))
    lines.append(
        f"Fewest rollout-attributable failures: {best['strategy']} "
        f"({best['rollout_attributable_failures']:.0f}, {best['extra_pod_seconds']:.0f} extra pod-seconds).")
    for s in sorted(rows, key=lambda s: s["rollout_attributable_failures"] or 0.0):
        if s is best:
            continue
        lines.append(f"  {s['strategy']}: {s['rollout_attributable_failures']:.0f} attributable failures, "
                     f"{s['extra_pod_seconds']:.0f} extra pod-seconds, min available {s['min_available']}.")
    lines.append(f"Verdict: roll this release out with {best['strategy']}.")
    return "\n".join(lines)
