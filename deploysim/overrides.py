"""Scenario data before validation: ``--set a.b=c`` overrides and YAML files read within bounds.

>>> apply_overrides({"faults": []}, ["faults.0.kind=node_failure", "replicas=4"])
{'faults': [{'kind': 'node_failure'}], 'replicas': 4}
>>> apply_overrides({"faults": []}, ["faults.7.at=1"])
Traceback (most recent call last):
...
deploysim.errors.ScenarioError: faults.7.at: got 7; an index of the 0 items there, or 0 to add one
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from deploysim import yamlsafe
from deploysim.errors import ScenarioError


def _parse_scalar(text: str) -> Any:
    """A ``--set`` value as YAML reads it (numbers, booleans, null, lists), else the string."""
    try:
        return yamlsafe.load(text)
    except yamlsafe.YamlLimitError as exc:
        raise ScenarioError("--set", text, f"not allowed: {exc}") from None
    except yaml.YAMLError:
        return text


def _index(key: str, part: str, items: list[Any]) -> int:
    """A list index in an override: an item that exists, or one past the end (a new item)."""
    if not re.fullmatch(r"[0-9]+", part):  # str.isdigit would take "²"
        raise ScenarioError(key, part, "expected a list index (0, 1, ...)")
    idx = int(part)
    if idx > len(items):
        raise ScenarioError(key, idx, f"an index of the {len(items)} items there, or {len(items)} to add one")
    if idx == len(items):
        items.append({})
    return idx


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to nested scenario data; list items by index (``faults.0.at``)."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError("--set", item, "expected key=value, e.g. --set replicas=20")
        key, _, raw = item.partition("=")
        parts = key.strip().split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt_is_index = re.fullmatch(r"[0-9]+", parts[i + 1]) is not None
            if isinstance(node, list):
                node = node[_index(key, part, node)]
                continue
            if not isinstance(node, dict):
                raise ScenarioError(key, raw, f"{'.'.join(parts[:i]) or 'the scenario'} is not a mapping")
            if part not in node or node[part] is None:
                node[part] = [] if nxt_is_index else {}
            node = node[part]
        last = parts[-1]
        value = _parse_scalar(raw)
        if isinstance(node, list):
            node[_index(key, last, node)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError(key, raw, f"{'.'.join(parts[:-1])} is not a mapping")
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = yamlsafe.read_text(path)
    except OSError as exc:
        raise ScenarioError("--scenario", str(path), f"cannot read the file ({exc.strerror})") from None
    except ValueError as exc:
        raise ScenarioError("--scenario", str(path), f"cannot be read: {exc}") from None
    try:
        data = yamlsafe.load(text) or {}
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())  # PyYAML's message spans lines, with a caret
        raise ScenarioError("--scenario", str(path), f"is not valid YAML ({reason[:200]})") from None
    if not isinstance(data, dict):
        raise ScenarioError("scenario", type(data).__name__, "the file must hold a mapping of keys")
    return data
