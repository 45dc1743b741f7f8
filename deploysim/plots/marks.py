"""What a picture marks on a run, read from its record alone: pauses and gates, faults,
analysis measurements and the checks' bounds.

Everything here is plain data from ``record.steps``, ``record.decisions``, ``record.plan``
and ``record.scenario`` (a record loaded from its folder has no status), so a rehearsal and
a cluster run are marked the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from deploysim.durations import format_duration
from deploysim.rules.checks import within_bounds

if TYPE_CHECKING:
    from deploysim.record import Record


@dataclass(frozen=True)
class Span:
    """A stretch of the run: a pause, a gate, an outage."""

    start: float
    end: float
    kind: str
    label: str


@dataclass(frozen=True)
class Moment:
    """A point in the run: a node lost, a run resumed."""

    at: float
    kind: str
    label: str


@dataclass(frozen=True)
class Measured:
    """One analysis measurement: when, which analysis, its phase and its values."""

    at: float
    analysis: str
    phase: str
    values: dict[str, float] = field(default_factory=dict)


Mark = TypeVar("Mark", Span, Moment, Measured)


def shown(marks: Sequence[Mark], window: tuple[float, float]) -> list[Mark]:
    """The marks a picture of ``window`` shows: spans that overlap it, moments and
    measurements inside it (its ends included); what lies outside is neither drawn nor named
    in the legend.

    >>> marks = [Span(60.0, 100.0, "pause", "pause 40s"), Span(900.0, 960.0, "gate", "gate"),
    ...          Moment(5400.0, "node_failure", "node 0 lost"), Measured(120.0, "a", "Successful")]
    >>> [getattr(m, "label", None) or m.analysis for m in shown(marks, (90.0, 656.0))]
    ['pause 40s', 'a']
    """
    a, b = window
    return [m for m in marks if (m.start <= b and m.end >= a if isinstance(m, Span) else a <= m.at <= b)]


def pause_spans(record: Record, end: float) -> list[Span]:
    """Timed pauses and manual gates (from the steps), and pauses that wait for a person
    after an inconclusive analysis (from the decisions); one still open runs to ``end``.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> steps = [{"kind": "pause", "describe": "pause 2m", "start": 326.0, "end": 446.0},
    ...          {"kind": "pause", "describe": "pause until approved (manual gate)", "start": 500.0, "end": None}]
    >>> [(s.kind, s.start, s.end) for s in pause_spans(Record({}, pd.DataFrame(), [], steps, {}), 900.0)]
    [('pause', 326.0, 446.0), ('gate', 500.0, 900.0)]
    """
    spans = []
    for s in record.steps:
        if s.get("kind") != "pause" or s.get("start") is None:
            continue
        stop = s["end"] if s.get("end") is not None else end
        gate = "manual gate" in (s.get("describe") or "")
        spans.append(Span(float(s["start"]), float(stop), "gate" if gate else "pause", s.get("describe") or "pause"))
    waiting: float | None = None
    for d in record.decisions:
        if d["kind"] == "pause" and "Inconclusive" in d["reason"] and waiting is None:
            waiting = float(d["at"])
        elif d["kind"] in ("resume", "abort", "promote") and waiting is not None:
            spans.append(Span(waiting, float(d["at"]), "waiting", "inconclusive: waiting for a person"))
            waiting = None
    if waiting is not None:
        spans.append(Span(waiting, end, "waiting", "inconclusive: waiting for a person"))
    return spans


def fault_marks(record: Record, end: float) -> tuple[list[Span], list[Moment]]:
    """The faults the record holds: the scenario's faults in a rehearsal (a cluster run's
    scenario faults were not injected by deploysim, so they are not drawn), the times its world
    was out of reach (``outage`` .. ``recovered`` decisions) and resumed runs.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> sc = {"faults": [{"kind": "node_failure", "at": 400.0, "node": 1, "duration": 300.0},
    ...                  {"kind": "dependency_outage", "at": 600.0, "duration": 120.0, "error_rate": 0.5}]}
    >>> spans, moments = fault_marks(Record({"world": "sim"}, pd.DataFrame(), [], [], {}, sc), 7200.0)
    >>> [(s.kind, s.start, s.end, s.label) for s in spans], [(m.at, m.label) for m in moments]
    ([('dependency_outage', 600.0, 720.0, 'dependency outage: 50% of requests fail')], [(400.0, 'node 1 lost')])
    """
    spans: list[Span] = []
    moments: list[Moment] = []
    if (record.summary or {}).get("world", "sim") == "sim":
        for f in (record.scenario or {}).get("faults") or []:
            at = float(f["at"])
            if f["kind"] == "node_failure":
                moments.append(Moment(at, "node_failure", f"node {f.get('node', 0)} lost"))
            elif f["kind"] == "dependency_outage":
                spans.append(Span(at, at + float(f.get("duration", 0.0)), "dependency_outage",
                                  f"dependency outage: {float(f.get('error_rate', 1.0)):.0%} of requests fail"))
            elif f["kind"] == "metrics_outage":
                spans.append(Span(at, at + float(f.get("duration", 0.0)), "metrics_outage", "metrics source down"))
    out: float | None = None
    for d in record.decisions:
        if d["kind"] == "outage" and out is None:
            out = float(d["at"])
        elif d["kind"] == "recovered" and out is not None:
            spans.append(Span(out, float(d["at"]), "outage", "out of reach"))
            out = None
        elif d["kind"] == "resumed":
            moments.append(Moment(float(d["at"]), "resumed", "run resumed"))
    if out is not None:
        spans.append(Span(out, end, "outage", "out of reach"))
    return spans, moments


def version_faults(record: Record) -> list[str]:
    """The faults of a version itself, as the scenario gives them (no single moment to mark).

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> sc = {"candidate": {"fail_after": 90.0, "crash_rate_per_hour": 0.0, "never_ready": False}}
    >>> version_faults(Record({}, pd.DataFrame(), [], [], {}, sc))
    ['candidate pods fail 1m30s after ready (crash loop)']
    """
    notes = []
    for version in ("stable", "candidate"):
        v = (record.scenario or {}).get(version) or {}
        if v.get("never_ready"):
            notes.append(f"{version} pods never become ready")
        if v.get("fail_after"):
            notes.append(f"{version} pods fail {format_duration(float(v['fail_after']))} after ready (crash loop)")
        for key, what in (("crash_rate_per_hour", "crash"), ("hang_rate_per_hour", "hang")):
            if v.get(key):
                notes.append(f"{version} pods {what} {float(v[key]):g} times an hour each")
    return notes


def measurements(record: Record) -> list[Measured]:
    """Every ``measure`` decision: the analysis and phase its reason names, its numeric values.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> d = {"at": 446.25, "kind": "measure", "reason": "step-3: Failed (error_rate 0.02366 > 0.01)",
    ...      "values": {"error_rate": 0.02366, "latency_p99": 187.97, "requests": 1733.0, "metrics": []}}
    >>> measurements(Record({}, pd.DataFrame(), [d], [], {}))
    [Measured(at=446.25, analysis='step-3', phase='Failed', values={'error_rate': 0.02366, 'latency_p99': 187.97, 'requests': 1733.0})]
    """
    found = []
    for d in record.decisions:
        if d["kind"] != "measure":
            continue
        analysis, _, rest = d["reason"].partition(": ")
        phase = rest.split(" (", 1)[0].strip() or "Error"
        values = {k: float(v) for k, v in (d.get("values") or {}).items()
                  if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
        found.append(Measured(float(d["at"]), analysis, phase, values))
    return found


def _analyses(plan: dict[str, Any]) -> list[dict[str, Any]]:
    specs = [s["analysis"] for s in plan.get("steps") or [] if s.get("kind") == "analyze" and s.get("analysis")]
    if plan.get("background"):
        specs.append(plan["background"])
    return specs


def bounds(record: Record, metric: str) -> dict[tuple[float | None, float | None], list[str]]:
    """The bounds the plan's analyses put on ``metric`` (min, max), each with the analyses
    that judge it.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> a = lambda name: {"kind": "analyze", "analysis": {"name": name, "checks": [
    ...     {"metric": "error_rate", "max": 0.01, "min": None}]}}
    >>> bounds(Record({}, pd.DataFrame(), [], [], {"steps": [a("step-3"), a("step-6")]}), "error_rate")
    {(None, 0.01): ['step-3', 'step-6']}
    """
    found: dict[tuple[float | None, float | None], list[str]] = {}
    for spec in _analyses(record.plan or {}):
        for check in spec.get("checks") or []:
            if check.get("metric") == metric and (check.get("min") is not None or check.get("max") is not None):
                found.setdefault((check.get("min"), check.get("max")), []).append(spec.get("name", "analysis"))
    return found


#: the verdict a marker shows on a metric its analysis did not judge: neutral, neither passed nor failed
NOT_JUDGED = "NotJudged"
#: judges whose bounded checks are each a verdict of their own, as
#: :func:`deploysim.analysis.judges.threshold_judge` and the two of :mod:`deploysim.analysis.statistical` apply them
BOUNDING_JUDGES = ("threshold", "sequential", "mann_whitney")


def verdict_on(record: Record, m: Measured, metric: str) -> str:
    """The verdict a measurement's marker shows on ``metric``'s picture: that metric's own,
    never the measurement's verdict on another metric.

    - a metric the analysis bounds (a check on it): passed within every bound, failed past
      one, whatever else the measurement failed on; inconclusive when the candidate served too
      few requests to be judged (``min_requests``, at least one), an error when the provider
      erred;
    - the sequential judge's error rate (``sequential_judge``: its test, not the bound, judges
      it): failed once the e-value reached 1/α (20), passed before;
    - a metric the analysis did not judge (no check on it, or an analysis the plan does not
      hold): :data:`NOT_JUDGED`, drawn neutral, with its value or without;
    - a judged metric without a value: the measurement's phase (no data, the provider erred).

    An analysis that judged only latency, failed at 900 ms: its 0.01% error rate is not judged,
    its latency failed; one that judged both, failed on error rate, passed on latency.

    >>> from deploysim.record import Record
    >>> import pandas as pd
    >>> spec = lambda name, *checks: {"kind": "analyze", "analysis": {"name": name, "judge": "threshold",
    ...     "checks": [{"metric": c, "max": {"error_rate": 0.01, "latency_p99": 400.0}[c]} for c in checks]}}
    >>> rec = Record({}, pd.DataFrame(), [], [], {"steps": [spec("a", "latency_p99"), spec("b", "error_rate", "latency_p99")]})
    >>> m = Measured(60.0, "a", "Failed", {"error_rate": 0.0001, "latency_p99": 900.0})
    >>> verdict_on(rec, m, "error_rate"), verdict_on(rec, m, "latency_p99")
    ('NotJudged', 'Failed')
    >>> m = Measured(60.0, "b", "Failed", {"error_rate": 0.02, "latency_p99": 190.0})
    >>> verdict_on(rec, m, "error_rate"), verdict_on(rec, m, "latency_p99")
    ('Failed', 'Successful')
    """
    spec = next((s for s in _analyses(record.plan or {}) if s.get("name") == m.analysis), None)
    if spec is None:
        return NOT_JUDGED
    judge = spec.get("judge", "threshold")
    checks = [c for c in spec.get("checks") or [] if c.get("metric") == metric]
    tested = judge == "sequential" and metric == "error_rate"
    if not checks and not tested:
        return NOT_JUDGED
    if metric not in m.values or m.phase == "Error" or judge not in BOUNDING_JUDGES:
        return m.phase
    if tested:
        if m.phase == "Inconclusive" or "e_value" not in m.values:
            return m.phase
        from deploysim.analysis.statistical import ALPHA  # scipy: imported when a record needs it

        return "Failed" if m.values["e_value"] >= 1.0 / ALPHA else "Successful"
    if m.phase == "Inconclusive" and m.values.get("requests", math.inf) < max(int(spec.get("min_requests") or 0), 1):
        return m.phase
    return "Successful" if all(within_bounds(m.values[metric], c.get("min"), c.get("max")) for c in checks) else "Failed"
