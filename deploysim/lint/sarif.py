"""A lint report as SARIF 2.1.0, the format code scanning reads (``--format sarif``).

One run of the tool ``deploysim-lint``: every rule in ``tool.driver.rules`` (its severity
as ``defaultConfiguration.level``: error, warning, or note for info), every finding a
``result`` with its file as ``artifactLocation`` (relative to the working directory, as code
scanning matches files of the repository), the line of its path in that file as ``region``,
the path itself as a ``logicalLocation``, and its cost under ``properties``. Notes on what
could not be linted are ``toolExecutionNotifications``.

>>> from deploysim.lint.findings import Location, finding
>>> log = to_sarif(LintReport([finding("single-replica", Location(None, None, "replicas"), "m", "h", "scenario")]))
>>> log["version"], log["runs"][0]["results"][0]["level"], log["runs"][0]["results"][0]["ruleId"]
('2.1.0', 'warning', 'single-replica')
>>> line_of_path("a: 1\\nspec:\\n  replicas: 3\\n", 1, "spec.replicas")
3
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from deploysim.lint.findings import RULES, Finding, LintReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _version() -> str:
    try:
        return metadata.version("deploysim")
    except metadata.PackageNotFoundError:
        return "0"


def line_of_path(text: str, document: int, path: str) -> int | None:
    """The line (from 1) where ``path`` is written in document ``document`` of ``text``; the
    line of the deepest part of it that is written when the rest is not (a missing
    ``readinessProbe`` points at its container); None when the text cannot be read."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    if not 1 <= document <= len(nodes) or nodes[document - 1] is None:
        return None
    node: yaml.Node = nodes[document - 1]
    line = node.start_mark.line + 1
    for key, index in _TOKEN.findall(path):
        child = None
        if key and isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if child is not None:
                key_node = next(k for k, v in node.value if v is child)
                line = key_node.start_mark.line + 1
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            child = node.value[int(index)]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _uri(file: str) -> str:
    path = Path(file)
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        path = path.resolve()
        return path.as_uri()
    return path.as_posix()


def _location(f: Finding, texts: dict[str, str | None]) -> list[dict[str, Any]]:
    logical = [{"fullyQualifiedName": f.location.path, "kind": "member"}]
    if f.location.file is None:
        return [{"logicalLocations": logical}]
    file = f.location.file
    if file not in texts:
        try:
            texts[file] = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            texts[file] = None
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(file)}}
    text = texts[file]
    line = line_of_path(text, f.location.document or 1, f.location.path) if text is not None else None
    if line is not None:
        physical["region"] = {"startLine": line}
    return [{"physicalLocation": physical, "logicalLocations": logical}]


def _result(f: Finding, index: dict[str, int], texts: dict[str, str | None]) -> dict[str, Any]:
    props: dict[str, Any] = {"subject": f.subject, "path": f.location.path, "severity": f.severity}
    if f.location.document is not None:
        props["document"] = f.location.document
    if f.cost is not None:
        props["cost"] = {"fix": f.cost.fix, "candidate": f.cost.candidate, "fault": f.cost.fault,
                         "asIs": f.cost.as_is, "fixed": f.cost.fixed, "difference": f.cost.difference}
    elif f.not_costed:
        props["notCosted"] = f.not_costed
    return {"ruleId": f.id, "ruleIndex": index[f.id], "level": LEVELS[f.severity],
            "message": {"text": f"{f.message}. Fix: {f.hint}"}, "locations": _location(f, texts),
            "properties": props}


def to_sarif(report: LintReport) -> dict[str, Any]:
    """The report as one SARIF 2.1.0 log."""
    rules = list(RULES.values())
    index = {r.id: i for i, r in enumerate(rules)}
    texts: dict[str, str | None] = {}
    driver = {
        "name": "deploysim-lint",
        "version": _version(),
        "rules": [{"id": r.id, "name": "".join(w.capitalize() for w in r.id.split("-")),
                   "shortDescription": {"text": r.title}, "fullDescription": {"text": r.why},
                   "defaultConfiguration": {"level": LEVELS[r.severity]},
                   "properties": {"also": list(r.also), "tags": ["reliability", "rollout"]}} for r in rules],
    }
    invocation: dict[str, Any] = {"executionSuccessful": True,
                                  "workingDirectory": {"uri": Path(os.getcwd()).resolve().as_uri()}}
    if report.notes:
        invocation["toolExecutionNotifications"] = [{"level": "note", "message": {"text": n}} for n in report.notes]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": driver}, "invocations": [invocation],
                      "results": [_result(f, index, texts) for f in report.findings]}]}
