"""Our Prometheus configuration, given to the Prometheus that kwokctl runs.

kwokctl writes a configuration that scrapes the control plane every 15 s; ours replaces it
(``--config.file`` overridden by a component patch) so the scrape interval is the caller's
and targets added later by ``add_prometheus_target`` are picked up from a file_sd file
without a restart.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ._paths import HOST
from ._state import ClusterNotRunningError, load

JOB = "deploysim"


def config_path(state: Path) -> Path:
    return state / "prometheus" / "deploysim.yml"


def targets_path(state: Path) -> Path:
    return state / "prometheus" / "targets.json"


def write_config(state: Path, port: int, scrape_interval: str) -> Path:
    """Write the configuration and an empty targets file; return the targets file."""
    targets = targets_path(state)
    targets.parent.mkdir(parents=True, exist_ok=True)
    if not targets.exists():
        targets.write_text("[]\n")
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [f"{HOST}:{port}"]}]},
            {
                "job_name": JOB,
                "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}],
            },
        ],
    }
    config_path(state).write_text(yaml.safe_dump(config, sort_keys=False))
    return targets


def add_prometheus_target(name: str, target: str, labels: dict[str, str] | None = None) -> Path:
    """Have the cluster's Prometheus scrape ``target`` (``host:port``) in job ``deploysim``.

    Prometheus re-reads the file_sd file within a second or so; returns its path.
    """
    info = load(name)
    if info is None or info.prometheus_targets_file is None:
        raise ClusterNotRunningError(f"cluster {name!r} is not running with --prometheus")
    path = info.prometheus_targets_file
    groups = json.loads(path.read_text() or "[]")
    groups = [g for g in groups if target not in g.get("targets", [])]
    groups.append({"targets": [target], "labels": labels or {}})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups, indent=2))
    tmp.replace(path)
    return path
