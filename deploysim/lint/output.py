"""A lint report as text for a person, and as JSON for a program.

>>> from deploysim.lint.findings import Location, finding
>>> r = LintReport([finding("single-replica", Location("web.yaml", 1, "spec.replicas"), "one replica", "run 2",
...                         "Deployment web")], inputs=["web.yaml"])
>>> print(to_text(r, fail_on="error").splitlines()[1])
warning  single-replica  Deployment web  web.yaml (document 1): spec.replicas
>>> to_json(r, fail_on="warning")["exit_code"], to_json(r, fail_on="error")["exit_code"]
(1, 0)
"""

from __future__ import annotations

from typing import Any

from deploysim.durations import format_duration
from deploysim.lint.findings import RULES, Cost, LintReport

FORMATS = ("text", "json", "sarif")


def _count_words(report: LintReport) -> str:
    counts = report.counts()
    words = [f"{counts['error']} error{'s' if counts['error'] != 1 else ''}",
             f"{counts['warning']} warning{'s' if counts['warning'] != 1 else ''}",
             f"{counts['info']} info"]
    return ", ".join(words)


def _numbers(s: dict[str, Any]) -> str:
    failed = s.get("failed_requests")
    budget = s.get("error_budget_consumed")
    seconds = s.get("rollout_seconds")
    parts = [f"{failed:,} failed requests" if failed is not None else "failed requests unknown",
             f"{budget:.2%} of the error budget" if budget is not None else "error budget unknown",
             f"rollout {format_duration(seconds)}" if seconds is not None else "rollout duration unknown"]
    return ", ".join(parts) + f" ({s.get('outcome')})"


def cost_lines(cost: Cost) -> list[str]:
    """The cost in three lines: how it was rehearsed, as written, fixed and the difference.

    >>> c = Cost("maxUnavailable 25%", "a healthy candidate", None,
    ...          {"outcome": "promoted", "failed_requests": 3000, "error_budget_consumed": 0.02, "rollout_seconds": 60.0},
    ...          {"outcome": "promoted", "failed_requests": 200, "error_budget_consumed": 0.001, "rollout_seconds": 150.0})
    >>> print("\\n".join(cost_lines(c)))
    cost, rehearsed with a healthy candidate:
      as written: 3,000 failed requests, 2.00% of the error budget, rollout 1m (promoted)
      fixed (maxUnavailable 25%): 200 failed requests, 0.10% of the error budget, rollout 2m30s (promoted)
      the fix saves 2,800 failed requests and 1.90% of the error budget; the rollout takes 1m30s longer
    """
    fault = f", {cost.fault}" if cost.fault else ""
    d = cost.difference
    saved = d["failed_requests"]
    budget = d["error_budget_consumed"]
    seconds = d["rollout_seconds"]
    words = []
    if saved is not None:
        words.append(f"saves {saved:,.0f} failed requests" if saved >= 0 else f"costs {-saved:,.0f} more failed requests")
    if budget is not None:
        same = saved is None or (saved >= 0) == (budget >= 0)
        verb = "" if same else ("saves " if budget >= 0 else "costs ")
        words.append(f"{verb}{abs(budget):.2%}{'' if budget >= 0 or same else ' more'} of the error budget")
    tail = ""
    if seconds is not None and seconds:
        tail = f"; the rollout takes {format_duration(abs(seconds))} {'longer' if seconds < 0 else 'less'}"
    return [f"cost, rehearsed with {cost.candidate}{fault}:",
            f"  as written: {_numbers(cost.as_is)}",
            f"  fixed ({cost.fix}): {_numbers(cost.fixed)}",
            f"  the fix {' and '.join(words)}{tail}"]


def to_text(report: LintReport, fail_on: str = "error") -> str:
    """Every finding with its place, message, fix, the same check in other linters, and its
    cost; then the notes and the verdict."""
    lines = [f"deploysim lint: {_count_words(report)} ({', '.join(report.inputs) or 'nothing'})"]
    for f in report.findings:
        lines.append(f"{f.severity:8} {f.id}  {f.subject}  {f.location.describe()}")
        lines.append(f"         {f.message}")
        lines.append(f"         fix: {f.hint}")
        also = RULES[f.id].also
        if also:
            lines.append(f"         also: {', '.join(also)}")
        if f.cost is not None:
            lines.extend(f"         {line}" for line in cost_lines(f.cost))
        elif f.not_costed:
            lines.append(f"         cost: {f.not_costed}")
    for note in report.notes:
        lines.append(f"note: {note}")
    failing = report.failing(fail_on)
    verdict = (f"fail: {len(failing)} finding(s) at or above {fail_on}" if failing
               else f"pass: nothing at or above {fail_on}" if fail_on != "none" else "pass: --fail-on none")
    lines.append(verdict)
    return "\n".join(lines) + "\n"


def to_json(report: LintReport, fail_on: str = "error") -> dict[str, Any]:
    """The report as plain data (``--format json``)."""
    return {
        "version": 1,
        "inputs": report.inputs,
        "counts": report.counts(),
        "fail_on": fail_on,
        "exit_code": report.exit_code(fail_on),
        "findings": [f.to_dict() for f in report.findings],
        "notes": report.notes,
        "rules": {r.id: {"title": r.title, "severity": r.severity, "why": r.why, "also": list(r.also)}
                  for r in RULES.values()},
    }
