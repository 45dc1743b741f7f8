"""What the cluster tests of tests/kube share: :class:`App`, one namespace with a service's
workloads, its emulated traffic scraped by the local Prometheus, and a least-privilege
kubeconfig for the runbook (the fixtures that make them are in conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import yaml
from kubernetes import client

from deploysim.kube import naming as n
from deploysim.kube.app import apply_rbac, create_app, delete_namespace, service_account_kubeconfig
from deploysim.kube.traffic import start_exporter

ROOT = Path(__file__).resolve().parents[2]
PAPERMILL = str(Path(sys.executable).parent / "papermill")
STABLE, CANDIDATE = "web:1.0.0", "web:1.1.0"
REPLICAS = 4


def scenario_file(tmp_path: Path, candidate: dict, strategy: dict) -> Path:
    data = {
        "service": "web", "replicas": REPLICAS, "duration": "4m", "resolution": "5s", "seed": 3,
        "traffic": {"rps": 80, "shape": "constant"},
        "pod": {"startup": "1s", "startup_jitter": "0s", "termination": "2s", "capacity_rps": 200},
        "stable": {"image": STABLE, "error_rate": 0.0},
        "candidate": {"image": CANDIDATE, "error_rate": 0.0, **candidate},
        "strategy": {"progress_deadline_seconds": "25s", "scale_down_delay_seconds": "3s",
                     "abort_scale_down_delay_seconds": "3s",
                     "auto_promotion_seconds": 0, "max_surge": 1, "max_unavailable": 0, **strategy},
        "analysis": {"interval": "5s", "count": 2, "min_requests": 1, "consecutive_error_limit": 1,
                     "checks": [{"metric": "error_rate", "max": 0.05}]},
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class App:
    """One namespace with the service's workloads, its traffic and a least-privilege kubeconfig."""

    def __init__(self, cluster, tmp_path: Path, strategy: str, router: bool, candidate: dict, knobs: dict,
                 ingress: bool = False):
        info, admin = cluster
        self.info, self.admin = info, admin
        self.ns = f"e2e-{uuid.uuid4().hex[:6]}"
        self.strategy, self.router, self.ingress = strategy, router, ingress
        self.tmp_path = tmp_path
        self.scenario = scenario_file(tmp_path, candidate, knobs)
        # the stable pods start and stop as the scenario says its pods do (KWOK stages);
        # with ``ingress`` users come in by the stable Ingress ``web`` (the NGINX router's)
        create_app(admin, self.ns, "web", strategy, REPLICAS, STABLE, router=router, ingress=ingress,
                   pod_annotations={"deploysim.io/terminate-delay": "2s"})
        apply_rbac(admin, self.ns, str(ROOT / "deploy" / "rbac.yaml"))
        self.kubeconfig = service_account_kubeconfig(admin, self.ns, "deploysim-runbook", str(info.kubeconfig),
                                                     str(tmp_path / "sa-kubeconfig"))
        self.exporter = start_exporter(self.scenario, kubeconfig=str(info.kubeconfig), namespace=self.ns,
                                       service="web", tick=0.5, register=info.name,
                                       ingress="web" if ingress else None)
        self.record_dir = tmp_path / "runs"
        self._wait_for_metrics()

    def _wait_for_metrics(self) -> None:
        query = f'sum(deploysim_requests_total{{service="web",namespace="{self.ns}"}})'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.info.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
            if r.json()["data"]["result"]:
                return
            time.sleep(0.5)
        raise AssertionError("Prometheus never scraped the traffic exporter")

    def run(self, runbook: str, *extra: str, target: str = "kubernetes",
            label: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
        """Run ``runbook`` through the papermill CLI; its records go to ``record_dir/<label>``
        (default: the target), so runs under different labels never mix."""
        label = label or target
        self.record_dir.mkdir(parents=True, exist_ok=True)
        out = self.record_dir / f"{runbook}-{label}-out.ipynb"
        args = [PAPERMILL, str(ROOT / "runbooks" / f"{runbook}.ipynb"), str(out),
                "-p", "target", target, "-p", "scenario", str(self.scenario),
                "-p", "record_dir", str(self.record_dir / label), *extra]
        if target == "kubernetes":
            args += ["-p", "kubeconfig", self.kubeconfig, "-p", "namespace", self.ns,
                     "-p", "prometheus_url", self.info.prometheus_url]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
        records = sorted((self.record_dir / label).glob("*/record.json"), key=lambda p: p.stat().st_mtime)
        assert records, f"no record.json written:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc, json.loads(records[-1].read_text())

    def run_folder(self, label: str) -> Path:
        """The audit folder of the latest run under ``label``."""
        records = sorted((self.record_dir / label).glob("*/record.json"), key=lambda p: p.stat().st_mtime)
        return records[-1].parent

    # --- reading the cluster afterwards ------------------------------------------------

    def deployment(self, name: str) -> client.V1Deployment:
        return client.AppsV1Api(self.admin).read_namespaced_deployment(name, self.ns)

    def stable_slot(self) -> str:
        svc = client.CoreV1Api(self.admin).read_namespaced_service("web", self.ns)
        return svc.metadata.annotations[n.STABLE_SLOT_ANNOTATION]

    def serving(self) -> dict[str, int]:
        """Ready pods per image among the Deployments the users' traffic reaches."""
        apps = client.AppsV1Api(self.admin)
        images: dict[str, int] = {}
        for d in apps.list_namespaced_deployment(self.ns).items:
            image = d.spec.template.spec.containers[0].image
            images[image] = images.get(image, 0) + (d.status.available_replicas or 0)
        return images

    def close(self) -> None:
        self.exporter.stop()
        delete_namespace(self.admin, self.ns)


def decision_sequence(record: dict) -> list[str]:
    """A record's decisions as kinds, with a measurement's verdict and a step's description:
    what must agree between a rehearsal and the cluster run of the same plan."""
    seq = []
    for d in record["decisions"]:
        if d["kind"] == "measure":
            seq.append("measure:" + d["reason"].split(": ", 1)[1].split(" ")[0])
        elif d["kind"] == "step":
            seq.append("step:" + d["reason"].split(": ", 1)[1])
        else:
            seq.append(d["kind"])
    return seq
