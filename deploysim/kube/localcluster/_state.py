"""What ``up()`` started, kept as JSON in the cluster's folder, and one up/down at a time."""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deploysim.errors import ClusterError

from ._paths import failed_logs_dir, kwok_workdir, state_dir

STATE_FILE = "deploysim.json"


@dataclass
class ProcessInfo:
    """One process of the cluster, as kwokctl started it."""

    component: str
    pid: int
    port: int
    url: str
    log: str
    argv: list[str] = field(default_factory=list)
    #: psutil's create_time, so a pid reused by another program is not taken for ours.
    create_time: float = 0.0


@dataclass
class ClusterInfo:
    """What ``up()`` started: where to reach it and what to stop."""

    name: str
    state_dir: Path
    kubeconfig: Path
    api_server: str
    nodes: int
    k8s_version: str
    bin_dir: Path
    processes: dict[str, ProcessInfo] = field(default_factory=dict)
    prometheus_url: str | None = None
    #: file_sd file Prometheus watches: add targets with add_prometheus_target().
    prometheus_targets_file: Path | None = None
    started_at: float = 0.0
    ready: bool = False

    def to_json(self) -> str:
        d = asdict(self)
        for key in ("state_dir", "kubeconfig", "bin_dir", "prometheus_targets_file"):
            d[key] = None if d[key] is None else str(d[key])
        return json.dumps(d, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterInfo:
        d = json.loads(text)
        procs = {k: ProcessInfo(**v) for k, v in d.pop("processes", {}).items()}
        for key in ("state_dir", "kubeconfig", "bin_dir"):
            d[key] = Path(d[key])
        if d.get("prometheus_targets_file"):
            d["prometheus_targets_file"] = Path(d["prometheus_targets_file"])
        return cls(processes=procs, **d)


class ClusterAlreadyRunningError(ClusterError):
    """``up()`` found a cluster of that name running; ``down()`` it first or reuse it."""

    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        super().__init__(
            f"cluster {info.name!r} is already running (API {info.api_server}, "
            f"KUBECONFIG={info.kubeconfig}); run 'deploysim cluster down --name {info.name}' first"
        )


class ClusterNotRunningError(ClusterError):
    """The named cluster has no state: it was never started or has been brought down."""


def load(name: str) -> ClusterInfo | None:
    path = state_dir(name) / STATE_FILE
    try:
        return ClusterInfo.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as e:
        raise ClusterError(f"{path} is unreadable ({e}); remove {path.parent} by hand") from None


def save(info: ClusterInfo) -> None:
    path = info.state_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(info.to_json())
    tmp.replace(path)


def keep_logs(name: str) -> Path | None:
    """Move the cluster's logs where failed_logs_dir() says, before its folder is removed."""
    logs = state_dir(name) / "logs"
    if not logs.is_dir() or not any(logs.iterdir()):
        return None
    dest = failed_logs_dir(name)
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(logs, dest)
    return dest


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """One up/down at a time per cluster name, across processes."""
    locks = kwok_workdir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
