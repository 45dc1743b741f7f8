"""Where the binaries and each cluster's state live, and building the binaries once."""

from __future__ import annotations

import os
import subprocess
from importlib import resources
from pathlib import Path

from deploysim.errors import ClusterError

#: Keep in step with K8S_VERSION in k8s/build.sh.
K8S_VERSION = "v1.35.4"
#: What k8s/build.sh builds; kwokctl runs the first five and uses kubectl to see the API answer.
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kwokctl",
    "kubectl",
)
HOST = "127.0.0.1"


class ClusterStartError(ClusterError):
    """A component could not start; everything started before it has been stopped."""


def kwok_workdir() -> Path:
    """kwokctl's work folder (``KWOK_WORKDIR``): clusters, locks and kept logs live under it.

    Our own folder rather than ``~/.kwok``, so no kwokctl configuration of the user's is read
    and our clusters do not show up among theirs.
    """
    env = os.environ.get("DEPLOYSIM_KWOK_WORKDIR")
    return Path(env) if env else Path.home() / ".cache" / "deploysim" / "kwok"


def clusters_dir() -> Path:
    """The folder that holds one state folder per cluster (kwokctl's ``clusters/``)."""
    return kwok_workdir() / "clusters"


def state_dir(name: str) -> Path:
    """Cluster ``name``'s folder: kwokctl's config, pki, pids, logs, etcd and Prometheus data."""
    return clusters_dir() / name


def failed_logs_dir(name: str) -> Path:
    """Where the logs of the last failed ``up`` of ``name`` are kept."""
    return kwok_workdir() / "failed-logs" / name


def default_bin_dir() -> Path:
    env = os.environ.get("DEPLOYSIM_K8S_BIN")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "deploysim" / "k8s" / K8S_VERSION / "bin"


def build_script() -> Path | None:
    """k8s/build.sh of the source checkout this package runs from, if any."""
    candidate = Path(__file__).resolve().parents[3] / "k8s" / "build.sh"
    return candidate if candidate.is_file() else None


def missing_binaries(bin_dir: Path | None = None) -> list[str]:
    bin_dir = bin_dir or default_bin_dir()
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def ensure_built() -> Path:
    """Run k8s/build.sh when a binary is missing (a no-op once cached); return the bin dir."""
    if not missing_binaries():
        return default_bin_dir()
    script = build_script()
    if script is None:
        raise ClusterStartError(
            f"control-plane binaries missing in {default_bin_dir()} and no k8s/build.sh found; "
            "build them from a source checkout with 'bash k8s/build.sh'"
        )
    out = subprocess.run(["bash", str(script)], check=False, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise ClusterStartError(f"{script} failed with exit code {out.returncode}")
    return Path(out.stdout.strip().splitlines()[-1])


def stage_files() -> list[Path]:
    """The KWOK stages shipped with the package (``deploysim/kube/stages/*.yaml``)."""
    folder = resources.files("deploysim.kube") / "stages"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))
