"""The words on a picture: what ran, how it ended and why, in the record's own terms.

A runbook's record names its strategy only (the rollback runbook runs a rolling update back
to the previous version, so its record reads "rolling, promoted"); the caller that knows the
runbook passes it, and the title says what the person ran.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from deploysim.durations import format_duration

if TYPE_CHECKING:
    from deploysim.record import Record

OUTCOME_WORDS = {
    "promoted": "PROMOTED", "rolled_back": "ROLLED BACK", "failed": "FAILED", "rolling_back": "ROLLING BACK",
    "paused": "PAUSED", "inconclusive": "INCONCLUSIVE", "incomplete": "INCOMPLETE",
}
WIDTH = 130  # characters of a title line before it wraps


def _last(record: Record, kind: str) -> dict[str, Any] | None:
    return next((d for d in reversed(record.decisions) if d["kind"] == kind), None)


def image(record: Record, version: str) -> str | None:
    return ((record.scenario or {}).get(version) or {}).get("image")


def version_label(record: Record, version: str) -> str:
    """``candidate checkout:1.42.0``: the version's role and its image when the record has it."""
    img = image(record, version if version != "preview" else "candidate")
    return f"{version} {img}" if img else version


def what_ran(record: Record, runbook: str | None = None) -> str:
    """The service, the runbook or strategy, and from which image to which.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> sc = {"service": "checkout", "stable": {"image": "checkout:1.42.0"}, "candidate": {"image": "checkout:1.41.0"}}
    >>> rec = Record({"strategy": "rolling", "world": "sim"}, pd.DataFrame(), [], [], {}, sc)
    >>> what_ran(rec, "rollback")
    'checkout: rollback runbook (rolling update), checkout:1.42.0 → checkout:1.41.0, rehearsed'
    """
    s = record.summary or {}
    strategy = s.get("strategy") or (record.plan or {}).get("strategy") or "rollout"
    how = f"{strategy} update" if strategy in ("rolling", "recreate") else f"{strategy} rollout"
    ran = f"{runbook} runbook ({how})" if runbook else how
    service = (record.scenario or {}).get("service")
    old, new = image(record, "stable"), image(record, "candidate")
    parts = [f"{service}: {ran}" if service else ran]
    if old and new:
        parts.append(f"{old} → {new}")
    world = s.get("world")
    if world:
        parts.append("rehearsed" if world == "sim" else f"on {world}")
    return ", ".join(parts)


def outcome_line(record: Record, runbook: str | None = None) -> str:
    """How it ended and why, with the rollout's duration; a rollback runbook's promotion is
    the previous version serving again, its abort a failed rollback.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> d = [{"at": 446.25, "kind": "abort", "reason": "analysis step-3 Failed: error_rate 0.02366 > 0.01"}]
    >>> outcome_line(Record({"outcome": "rolled_back", "rollout_seconds": 176.25}, pd.DataFrame(), d, [], {}))
    'ROLLED BACK after 2m56s: analysis step-3 Failed: error_rate 0.02366 > 0.01'
    >>> sc = {"candidate": {"image": "checkout:1.41.0"}}
    >>> outcome_line(Record({"outcome": "promoted", "rollout_seconds": 28.97}, pd.DataFrame(), [], [], {}, sc), "rollback")
    'ROLLED BACK to checkout:1.41.0 in 29s: it serves all traffic again'
    """
    s = record.summary or {}
    outcome = s.get("outcome") or "incomplete"
    took = None if s.get("rollout_seconds") is None else format_duration(round(s["rollout_seconds"]))
    abort, pause = _last(record, "abort"), _last(record, "pause")
    why_abort = abort["reason"] if abort else "aborted"
    if runbook == "rollback":
        back = image(record, "candidate") or "the previous version"
        if outcome == "promoted":
            return f"ROLLED BACK to {back}{f' in {took}' if took else ''}: it serves all traffic again"
        if outcome in ("rolled_back", "failed"):
            return f"ROLLBACK FAILED: {why_abort}"
    word = OUTCOME_WORDS.get(outcome, outcome.upper())
    if outcome == "promoted":
        promote = _last(record, "promote")
        return f"{word}{f' in {took}' if took else ''}: {promote['reason'] if promote else 'every step passed'}"
    if outcome in ("rolled_back", "failed"):
        return f"{word}{f' after {took}' if took else ''}: {why_abort}"
    if outcome == "rolling_back":
        return f"{word} when the run ended: {why_abort}"
    if outcome in ("paused", "inconclusive"):
        return f"{word}: {pause['reason'] if pause else 'waiting for a person'}"
    return f"{word}: no verdict when the run ended"


def cost_line(record: Record) -> str:
    """What the run cost users, over the whole run.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> cost_line(Record({"failed_requests": 4405, "requests": 4296769, "rollout_attributable_failures": 104.3},
    ...                  pd.DataFrame(), [], [], {}))
    '4,405 failed of 4,296,769 requests over the run, 104 attributable to the rollout'
    """
    s = record.summary or {}
    if s.get("failed_requests") is None or s.get("requests") is None:
        return "requests not counted"
    text = f"{s['failed_requests']:,} failed of {s['requests']:,} requests over the run"
    if s.get("rollout_attributable_failures") is not None:
        text += f", {s['rollout_attributable_failures']:,.0f} attributable to the rollout"
    return text


def title(record: Record, runbook: str | None = None, width: int = WIDTH) -> str:
    """The picture's title: what ran, then how it ended and why, wrapped to ``width``."""
    lines = [what_ran(record, runbook), outcome_line(record, runbook)]
    return "\n".join(textwrap.fill(line, width, subsequent_indent="  ") for line in lines)
