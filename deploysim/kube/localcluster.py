"""A real Kubernetes control plane on 127.0.0.1, with KWOK standing in for kubelets.

``up()`` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the
KWOK controller (and optionally Prometheus) as child processes, each in its own session,
creates fake nodes and waits until the API answers and every node is Ready::

    >>> info = up(nodes=3, prometheus=True)          # doctest: +SKIP
    >>> info.kubeconfig                               # doctest: +SKIP
    PosixPath('/root/.cache/deploysim/clusters/deploysim/kubeconfig')
    >>> down("deploysim")                             # doctest: +SKIP

The binaries come from ``k8s/build.sh`` (cached in ``~/.cache/deploysim/k8s/<version>/bin``;
``DEPLOYSIM_K8S_BIN`` points elsewhere). State (pids, ports, certificates, kubeconfig,
logs, etcd and Prometheus data) lives in ``~/.cache/deploysim/clusters/<name>/``
(``DEPLOYSIM_CLUSTERS_DIR`` moves it); ``down()`` ends every process recorded there and
removes the folder.

Pod behaviour comes from the KWOK stages shipped in ``deploysim/kube/stages/`` and is chosen
per pod by annotations (see each stage file): ``deploysim.io/ready-delay`` and
``deploysim.io/ready-jitter``, ``deploysim.io/never-ready``, ``deploysim.io/fail-after``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from deploysim.errors import ClusterError

#: Keep in step with K8S_VERSION in k8s/build.sh.
K8S_VERSION = "v1.35.4"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
)
#: Start order; down() stops in reverse.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "prometheus",
)
NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
HOST = "127.0.0.1"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


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


class ClusterStartError(ClusterError):
    """A component could not start; everything started before it has been stopped."""


@dataclass
class ProcessInfo:
    """One child process of the cluster."""

    component: str
    pid: int
    port: int
    url: str
    log: str
    argv: list[str] = field(default_factory=list)


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


# --------------------------------------------------------------------------- paths


def clusters_dir() -> Path:
    env = os.environ.get("DEPLOYSIM_CLUSTERS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "deploysim" / "clusters"


def state_dir(name: str) -> Path:
    return clusters_dir() / name


def default_bin_dir() -> Path:
    env = os.environ.get("DEPLOYSIM_K8S_BIN")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "deploysim" / "k8s" / K8S_VERSION / "bin"


def build_script() -> Path | None:
    """k8s/build.sh of the source checkout this package runs from, if any."""
    candidate = Path(__file__).resolve().parents[2] / "k8s" / "build.sh"
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


# --------------------------------------------------------------------------- processes


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0): reap it if it is ours.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _is_our_process(proc: ProcessInfo) -> bool:
    """The pid still runs the binary we started (pids get reused after a reboot)."""
    if not _pid_alive(proc.pid):
        return False
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # An interpreted program shows as "/bin/sh <path>": accept the path in either place.
    head = [part.decode(errors="replace") for part in cmdline[:2]]
    return bool(proc.argv) and proc.argv[0] in head


def _stop_process(proc: ProcessInfo, timeout: float = 10.0) -> None:
    if not _is_our_process(proc):
        return
    # Each component runs in its own session (start_new_session), so its pid is its
    # process group id: signal the group to catch any helper it forked.
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(proc.pid):
                return
            time.sleep(0.1)


def _stop_all(info: ClusterInfo) -> list[str]:
    """Stop every recorded process, last started first; return those still alive."""
    order = [c for c in reversed(COMPONENTS) if c in info.processes]
    order += [c for c in info.processes if c not in order]
    for component in order:
        _stop_process(info.processes[component])
    return [c for c in order if _is_our_process(info.processes[c])]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _check_port(port: int, component: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As Go servers do: a port in TIME_WAIT is free, only a bound one is taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as e:
            raise ClusterStartError(
                f"port {HOST}:{port} for {component} is already in use ({e.strerror}); "
                "pick another port or stop what holds it"
            ) from None


def _log_tail(path: str | Path, lines: int = 20) -> list[str]:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return []
    return text[-lines:]


_ERROR_LINE = re.compile(r"error|fatal|fail|panic|unknown flag|in use|denied|invalid", re.I)


def _why(path: str | Path) -> str:
    """The line of a component's log that most likely says why it stopped."""
    tail = _log_tail(path)
    for line in reversed(tail):
        if _ERROR_LINE.search(line):
            return line.strip()[:400]
    return tail[-1].strip()[:400] if tail else "(empty log)"


# --------------------------------------------------------------------------- health


def _ssl_context(sd: Path, verify: bool = True) -> ssl.SSLContext:
    pki = sd / "pki"
    if verify:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def _probe(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:  # noqa: S310
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _health_url(component: str, port: int) -> str:
    return {
        "etcd": f"http://{HOST}:{port}/health",
        "kube-apiserver": f"https://{HOST}:{port}/readyz",
        "kube-controller-manager": f"https://{HOST}:{port}/healthz",
        "kube-scheduler": f"https://{HOST}:{port}/healthz",
        "kwok": f"http://{HOST}:{port}/healthz",
        "prometheus": f"http://{HOST}:{port}/-/ready",
    }[component]


def _healthy(info: ClusterInfo, component: str) -> bool:
    proc = info.processes[component]
    ctx = None
    if proc.url.startswith("https"):
        ctx = _ssl_context(info.state_dir, verify=component == "kube-apiserver")
    return _probe(proc.url, ctx)


# --------------------------------------------------------------------------- files


def _openssl(*args: str, cwd: Path) -> None:
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ClusterStartError(f"openssl {args[0]} failed: {out.stderr.strip()[-300:]}")


def _write_pki(pki: Path) -> None:
    """A CA, the API server's serving cert, one admin client cert (system:masters), SA keys."""
    if shutil.which("openssl") is None:
        raise ClusterStartError("'openssl' is not on PATH; install it (apt-get install openssl)")
    pki.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=deploysim-local-ca",
        cwd=pki,
    )
    sans = ",".join(
        [
            f"IP:{HOST}",
            "DNS:localhost",
            "IP:10.96.0.1",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
    )
    certs = {
        "apiserver": (
            "/CN=kube-apiserver",
            f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n",
        ),
        "admin": ("/O=system:masters/CN=deploysim-admin", "extendedKeyUsage=clientAuth\n"),
    }
    for stem, (subj, ext) in certs.items():
        (pki / f"{stem}.ext").write_text(ext)
        _openssl(
            "req",
            "-new",
            *ec,
            "-keyout",
            f"{stem}.key",
            "-out",
            f"{stem}.csr",
            "-subj",
            subj,
            cwd=pki,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{stem}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            f"{stem}.crt",
            "-extfile",
            f"{stem}.ext",
            cwd=pki,
        )
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-out",
        "sa.key",
        cwd=pki,
    )
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def _write_kubeconfig(path: Path, name: str, server: str, pki: Path) -> None:
    import yaml

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": f"{name}-admin",
                "user": {
                    "client-certificate": str(pki / "admin.crt"),
                    "client-key": str(pki / "admin.key"),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def stage_files() -> list[Path]:
    """The KWOK stages shipped with the package."""
    folder = resources.files("deploysim.kube") / "stages"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))


def _write_kwok_config(path: Path) -> None:
    docs = [
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\n"
        "kind: KwokConfiguration\n"
        "options:\n"
        "  podPlayStageParallelism: 16\n"
        "  nodePlayStageParallelism: 8\n"
        "  nodeLeaseParallelism: 8\n"
    ]
    docs += [p.read_text() for p in stage_files()]
    path.write_text("\n---\n".join(d.strip() + "\n" for d in docs))


def _write_scheduler_config(path: Path, kubeconfig: Path) -> None:
    path.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "clientConnection:\n"
        f"  kubeconfig: {kubeconfig}\n"
        "  qps: 1000\n"
        "  burst: 2000\n"
        "leaderElection:\n"
        "  leaderElect: false\n"
    )


def _write_prometheus_config(sd: Path, scrape_interval: str) -> Path:
    targets = sd / "prometheus" / "targets.json"
    targets.parent.mkdir(parents=True, exist_ok=True)
    if not targets.exists():
        targets.write_text("[]\n")
    config = sd / "prometheus" / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "scrape_configs:\n"
        "  - job_name: prometheus\n"
        "    static_configs:\n"
        "      - targets: ['PROM_ADDR']\n"
        "  - job_name: deploysim\n"
        "    file_sd_configs:\n"
        f"      - files: ['{targets}']\n"
        "        refresh_interval: 1s\n"
    )
    return targets


def add_prometheus_target(name: str, target: str, labels: dict[str, str] | None = None) -> Path:
    """Have the cluster's Prometheus scrape ``target`` (``host:port``) in job ``deploysim``.

    Prometheus re-reads the file_sd file within a second or so; returns its path.
    """
    info = _load(name)
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


# --------------------------------------------------------------------------- state


def _load(name: str) -> ClusterInfo | None:
    path = state_dir(name) / "state.json"
    try:
        return ClusterInfo.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as e:
        raise ClusterError(f"{path} is unreadable ({e}); remove {path.parent} by hand") from None


def _save(info: ClusterInfo) -> None:
    path = info.state_dir / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(info.to_json())
    tmp.replace(path)


def failed_logs_dir(name: str) -> Path:
    """Where the logs of the last failed ``up`` of ``name`` are kept."""
    return clusters_dir() / ".failed-logs" / name


def _keep_logs(info: ClusterInfo) -> Path | None:
    logs = info.state_dir / "logs"
    if not logs.is_dir():
        return None
    dest = failed_logs_dir(info.name)
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(logs), str(dest))
    return dest


def _running(info: ClusterInfo) -> list[str]:
    return [c for c, p in info.processes.items() if _is_our_process(p)]


# --------------------------------------------------------------------------- up/down


def _spawn(
    info: ClusterInfo, component: str, argv: list[str], port: int, env: dict[str, str] | None = None
) -> None:
    log_path = info.state_dir / "logs" / f"{component}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=info.state_dir,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    info.processes[component] = ProcessInfo(
        component=component,
        pid=proc.pid,
        port=port,
        url=_health_url(component, port),
        log=str(log_path),
        argv=argv,
    )
    _save(info)


def _wait_healthy(info: ClusterInfo, component: str, timeout: float) -> None:
    proc = info.processes[component]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(proc.pid):
            raise ClusterStartError(
                f"{component} exited during start-up: {_why(proc.log)} (log {proc.log})"
            )
        if _healthy(info, component):
            return
        time.sleep(0.2)
    raise ClusterStartError(
        f"{component} did not become healthy at {proc.url} within {timeout:.0f}s "
        f"(last log line: {_why(proc.log)}; log {proc.log})"
    )


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One up/down at a time per cluster name, across processes."""
    import fcntl

    locks = clusters_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _lost_port_race(error: ClusterStartError) -> bool:
    """A free port picked for a component was taken by someone else before it bound."""
    text = str(error).lower()
    return "address already in use" in text or "bind: address" in text


def up(
    nodes: int = 3,
    prometheus: bool = False,
    name: str = "deploysim",
    *,
    bin_dir: Path | str | None = None,
    api_port: int | None = None,
    prometheus_port: int | None = None,
    scrape_interval: str = "2s",
    reuse: bool = False,
    timeout: float = 120.0,
) -> ClusterInfo:
    """Start a control plane on 127.0.0.1 with ``nodes`` fake nodes; return once all are Ready.

    A cluster of the same name already running raises ClusterAlreadyRunningError, or is
    returned as it is when ``reuse`` is true. Any failure stops what was started, removes
    the state folder and raises ClusterStartError naming the cause.
    """
    if not _NAME_RE.match(name):
        raise ClusterError(f"cluster name {name!r}: use 1-40 lowercase letters, digits or '-'")
    if nodes < 1:
        raise ClusterError(f"nodes: got {nodes}; at least 1 is needed to run pods")
    with _locked(name):
        existing = _load(name)
        if existing is not None:
            if _running(existing):
                if reuse:
                    return existing
                raise ClusterAlreadyRunningError(existing)
            # Left over from a crash: nothing of it runs, so clear it.
            shutil.rmtree(existing.state_dir, ignore_errors=True)

        bins = Path(bin_dir) if bin_dir else default_bin_dir()
        needed = [b for b in BINARIES if b != "kubectl"]
        missing = [b for b in needed if not os.access(bins / b, os.X_OK)]
        if missing:
            raise ClusterStartError(
                f"missing binaries in {bins}: {', '.join(missing)}; "
                "build them with 'bash k8s/build.sh'"
            )
        prom_bin = shutil.which("prometheus") if prometheus else None
        if prometheus and prom_bin is None:
            raise ClusterStartError(
                "'prometheus' is not on PATH; install it with 'bash k8s/setup.sh'"
            )
        # Ports are picked free here and bound moments later by the components; another
        # cluster starting at the same time can grab one in between. Try again then.
        attempts = 1 if api_port and (prometheus_port or not prometheus) else 3
        for attempt in range(attempts):
            try:
                return _up_once(
                    name, nodes, bins, prom_bin, api_port, prometheus_port, scrape_interval, timeout
                )
            except ClusterStartError as e:
                if attempt + 1 == attempts or not _lost_port_race(e):
                    raise
    raise AssertionError("unreachable")


def _up_once(
    name: str,
    nodes: int,
    bins: Path,
    prom_bin: str | None,
    api_port: int | None,
    prometheus_port: int | None,
    scrape_interval: str,
    timeout: float,
) -> ClusterInfo:
    ports = {
        "kube-apiserver": api_port or _free_port(),
        "etcd": _free_port(),
        "etcd-peer": _free_port(),
        "kube-controller-manager": _free_port(),
        "kube-scheduler": _free_port(),
        "kwok": _free_port(),
    }
    if prom_bin:
        ports["prometheus"] = prometheus_port or _free_port()
    for component, port in ports.items():
        _check_port(port, component)
    if len(set(ports.values())) != len(ports):
        raise ClusterStartError(
            f"port clash among {ports}; pass a different api_port/prometheus_port"
        )

    sd = state_dir(name)
    sd.mkdir(parents=True, exist_ok=True)
    info = ClusterInfo(
        name=name,
        state_dir=sd,
        kubeconfig=sd / "kubeconfig",
        api_server=f"https://{HOST}:{ports['kube-apiserver']}",
        nodes=nodes,
        k8s_version=K8S_VERSION,
        bin_dir=bins,
        started_at=time.time(),
    )
    _save(info)
    try:
        _start(info, ports, prom_bin, scrape_interval, timeout)
    except BaseException as e:
        left = _stop_all(info)
        kept = _keep_logs(info)
        shutil.rmtree(sd, ignore_errors=True)
        if left:
            pids = ", ".join(f"{c} pid {info.processes[c].pid}" for c in left)
            raise ClusterStartError(f"{e}; and could not stop {pids}") from e
        if isinstance(e, ClusterStartError) and kept is not None:
            raise ClusterStartError(str(e).replace(str(sd / "logs"), str(kept))) from None
        raise
    info.ready = True
    _save(info)
    return info


def _start(
    info: ClusterInfo,
    ports: dict[str, int],
    prom_bin: str | None,
    scrape_interval: str,
    timeout: float,
) -> None:
    sd, bins = info.state_dir, info.bin_dir
    pki = sd / "pki"
    _write_pki(pki)
    _write_kubeconfig(info.kubeconfig, info.name, info.api_server, pki)
    _write_scheduler_config(sd / "kube-scheduler.yaml", info.kubeconfig)
    _write_kwok_config(sd / "kwok.yaml")

    etcd_url = f"http://{HOST}:{ports['etcd']}"
    peer_url = f"http://{HOST}:{ports['etcd-peer']}"
    _spawn(
        info,
        "etcd",
        [
            str(bins / "etcd"),
            "--name=deploysim",
            f"--data-dir={sd / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=deploysim={peer_url}",
            "--initial-cluster-state=new",
            # Throw-away data: skip fsync, which dominates etcd latency on small disks.
            "--unsafe-no-fsync",
            "--quota-backend-bytes=8589934592",
            "--log-level=warn",
        ],
        ports["etcd"],
    )
    _wait_healthy(info, "etcd", 30)

    _spawn(
        info,
        "kube-apiserver",
        [
            str(bins / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={ports['kube-apiserver']}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            # Published in extension-apiserver-authentication, which the controller-manager
            # and scheduler read; nothing sends front-proxy headers here.
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # The kubernetes Service cannot point at a loopback address; nothing in-cluster needs it.
            "--endpoint-reconciler-type=none",
            # One user, many requests during scale tests: no flow control or inflight caps.
            "--enable-priority-and-fairness=false",
            "--max-requests-inflight=0",
            "--max-mutating-requests-inflight=0",
        ],
        ports["kube-apiserver"],
    )
    _wait_healthy(info, "kube-apiserver", 60)

    kc = str(info.kubeconfig)
    common = [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        f"--bind-address={HOST}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
    ]
    (pki / "kube-controller-manager").mkdir(exist_ok=True)
    _spawn(
        info,
        "kube-controller-manager",
        [
            str(bins / "kube-controller-manager"),
            *common,
            f"--secure-port={ports['kube-controller-manager']}",
            f"--cert-dir={pki / 'kube-controller-manager'}",
            "--leader-elect=false",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            "--use-service-account-credentials=false",
            "--kube-api-qps=1000",
            "--kube-api-burst=2000",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--concurrent-endpoint-syncs=10",
            "--concurrent-service-endpoint-syncs=10",
            # Failed (churned) pods are deleted once more than this many pile up.
            "--terminated-pod-gc-threshold=50",
        ],
        ports["kube-controller-manager"],
    )

    (pki / "kube-scheduler").mkdir(exist_ok=True)
    _spawn(
        info,
        "kube-scheduler",
        [
            str(bins / "kube-scheduler"),
            *common,
            f"--config={sd / 'kube-scheduler.yaml'}",
            f"--secure-port={ports['kube-scheduler']}",
            f"--cert-dir={pki / 'kube-scheduler'}",
        ],
        ports["kube-scheduler"],
    )

    _spawn(
        info,
        "kwok",
        [
            str(bins / "kwok"),
            f"--kubeconfig={kc}",
            f"--config={sd / 'kwok.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION[0]}={NODE_ANNOTATION[1]}",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.0.0.1",
            f"--server-address={HOST}:{ports['kwok']}",
            # INFO logs every pod patch and lease renewal: megabytes per thousand pods.
            "--v=WARN",
        ],
        ports["kwok"],
        env={"HOME": str(sd)},
    )  # so no ~/.kwok/kwok.yaml of the user's leaks in

    if prom_bin:
        targets = _write_prometheus_config(sd, scrape_interval)
        config = sd / "prometheus" / "prometheus.yml"
        config.write_text(config.read_text().replace("PROM_ADDR", f"{HOST}:{ports['prometheus']}"))
        info.prometheus_url = f"http://{HOST}:{ports['prometheus']}"
        info.prometheus_targets_file = targets
        _spawn(
            info,
            "prometheus",
            [
                prom_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={sd / 'prometheus' / 'data'}",
                f"--web.listen-address={HOST}:{ports['prometheus']}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            ports["prometheus"],
        )

    for component in ("kube-controller-manager", "kube-scheduler", "kwok", "prometheus"):
        if component in info.processes:
            _wait_healthy(info, component, 60)

    _create_nodes(info, timeout)


def _api(info: ClusterInfo):  # -> kubernetes.client.CoreV1Api
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(info.kubeconfig))
    return client.CoreV1Api(api_client)


def node_names(nodes: int) -> list[str]:
    return [f"kwok-node-{i}" for i in range(nodes)]


def _create_nodes(info: ClusterInfo, timeout: float) -> None:
    from kubernetes.client.rest import ApiException

    core = _api(info)
    try:
        for node in node_names(info.nodes):
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node,
                    "annotations": {
                        NODE_ANNOTATION[0]: NODE_ANNOTATION[1],
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": node,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/role": "agent",
                        "node-role.kubernetes.io/agent": "",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                    "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                },
            }
            try:
                core.create_node(body)
            except ApiException as e:
                if e.status != 409:
                    raise ClusterStartError(
                        f"creating node {node} failed: {e.status} {e.reason}"
                    ) from None

        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            ready = sum(
                1
                for n in core.list_node().items
                for c in (n.status.conditions or [])
                if c.type == "Ready" and c.status == "True"
            )
            sa = core.list_namespaced_service_account("default").items
            if ready >= info.nodes and any(s.metadata.name == "default" for s in sa):
                return
            for component in ("kube-controller-manager", "kwok"):
                if not _pid_alive(info.processes[component].pid):
                    proc = info.processes[component]
                    raise ClusterStartError(
                        f"{component} exited: {_why(proc.log)} (log {proc.log})"
                    )
            time.sleep(0.3)
        raise ClusterStartError(
            f"only {ready} of {info.nodes} nodes became Ready within {timeout:.0f}s "
            f"(kwok: {_why(info.processes['kwok'].log)}; log {info.processes['kwok'].log})"
        )
    finally:
        core.api_client.close()


def down(name: str = "deploysim") -> bool:
    """Stop every process of cluster ``name`` and remove its state; False if it was not there."""
    with _locked(name):
        return _down(name)


def _down(name: str) -> bool:
    info = _load(name)
    if info is None:
        sd = state_dir(name)
        if sd.exists():
            shutil.rmtree(sd, ignore_errors=True)
        return False
    left = _stop_all(info)
    if left:
        pids = ", ".join(f"{c} pid {info.processes[c].pid}" for c in left)
        raise ClusterError(f"could not stop {pids}; state kept in {info.state_dir}")
    shutil.rmtree(info.state_dir, ignore_errors=True)
    return True


def status(name: str = "deploysim") -> dict:
    """What runs for cluster ``name``: per component pid, port, alive and healthy."""
    info = _load(name)
    if info is None:
        return {"name": name, "running": False, "state_dir": str(state_dir(name))}
    components = {}
    for component, proc in info.processes.items():
        alive = _is_our_process(proc)
        components[component] = {
            "pid": proc.pid,
            "port": proc.port,
            "url": proc.url,
            "alive": alive,
            "healthy": alive and _healthy(info, component),
            "log": proc.log,
        }
    running = bool(components) and all(c["alive"] for c in components.values())
    return {
        "name": name,
        "running": running,
        "ready": info.ready,
        "api_server": info.api_server,
        "kubeconfig": str(info.kubeconfig),
        "nodes": info.nodes,
        "k8s_version": info.k8s_version,
        "prometheus_url": info.prometheus_url,
        "prometheus_targets_file": str(info.prometheus_targets_file)
        if info.prometheus_targets_file
        else None,
        "state_dir": str(info.state_dir),
        "components": components,
    }


def info(name: str = "deploysim") -> ClusterInfo:
    """The ClusterInfo of a running cluster."""
    found = _load(name)
    if found is None or not _running(found):
        raise ClusterNotRunningError(
            f"cluster {name!r} is not running; start it with 'deploysim cluster up'"
        )
    return found


def env(name: str = "deploysim") -> str:
    """Shell line that points kubectl at the cluster: ``export KUBECONFIG=...``."""
    found = info(name)
    lines = [f"export KUBECONFIG={found.kubeconfig}"]
    kubectl = found.bin_dir / "kubectl"
    if kubectl.exists():
        lines.append(f"export PATH={found.bin_dir}:$PATH")
    if found.prometheus_url:
        lines.append(f"export DEPLOYSIM_PROMETHEUS_URL={found.prometheus_url}")
    return "\n".join(lines)


@contextlib.contextmanager
def running(
    nodes: int = 3, prometheus: bool = False, name: str = "deploysim", **kwargs
) -> Iterator[ClusterInfo]:
    """``with running() as info:`` brings a cluster up and always down again."""
    started = up(nodes=nodes, prometheus=prometheus, name=name, **kwargs)
    try:
        yield started
    finally:
        down(name)
