"""Saturation on the local control plane: a candidate whose CPU cost per request doubled, with
the same error rate as the stable version, is aborted by a ``saturation <= 0.8`` check that
the canary runbook measures through Prometheus, over the cAdvisor-shaped series the traffic
exporter serves; its rehearsal reaches the same outcome on the same check."""

from __future__ import annotations

import cluster_app
import httpx
import pytest
import yaml
from cluster_app import CANDIDATE, STABLE, decision_sequence

pytestmark = pytest.mark.cluster

# 80 rps over 4 stable pods; at 25% the router sends 20 rps to the one candidate pod.
# Stable: 80m + 15 rps x 10 ms of a core = 0.23 of a 500m limit, saturation 0.46 (0.56 at all
# the traffic); the candidate at 20 ms a request wants 0.08 + 20 x 0.02 = 0.48 cores:
# saturation 0.96, not yet throttled.
COSTS = {"cpu_base": "80m", "cpu_per_request": 0.01}
DOUBLED = {**COSTS, "cpu_per_request": 0.02}
CHECKS = [{"metric": "error_rate", "max": 0.05}, {"metric": "saturation", "max": 0.8}]
# the pause outlasts the candidate pod's start and a whole 10 s window of it at 25%
ARGS = ["-p", "image", CANDIDATE, "-p", "traffic_router", "True", "-y", "{weights: [25], step_pause: 20s}"]


@pytest.fixture
def saturation_scenario(monkeypatch):
    """The cluster tests' scenario with a 500m CPU limit, both versions' costs and the check."""
    plain = cluster_app.scenario_file

    def scenario_file(tmp_path, candidate, strategy):
        path = plain(tmp_path, candidate, strategy)
        data = yaml.safe_load(path.read_text())
        data["pod"]["resources"] = {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
        data["stable"].update(COSTS)
        # 10 s windows: rate() over 0.5 s ticks scraped every second is within a few percent
        data["analysis"].update(interval="10s", checks=CHECKS)
        path.write_text(yaml.safe_dump(data))
        return path

    monkeypatch.setattr(cluster_app, "scenario_file", scenario_file)


def measured(record: dict, metric: str) -> list[float]:
    return [d["values"][metric] for d in record["decisions"]
            if d["kind"] == "measure" and metric in (d.get("values") or {})]


def abort_reason(record: dict) -> str:
    return next((d["reason"] for d in record["decisions"] if d["kind"] == "abort"), "no abort")


def test_doubled_cpu_per_request_is_aborted_by_saturation_on_the_cluster_as_rehearsed(
        make_app, saturation_scenario):
    app = make_app("canary", router=True, candidate=DOUBLED)
    proc, real = app.run("canary", *ARGS)
    _, sim = app.run("canary", *ARGS, target="sim")
    for world, record in (("kubernetes", real), ("sim", sim)):
        print(f"{world}: {record['summary']['outcome']}; saturation "
              f"{[round(x, 3) for x in measured(record, 'saturation')]}, error_rate "
              f"{[round(x, 4) for x in measured(record, 'error_rate')]}; {abort_reason(record)}")
        print("  " + "\n  ".join(f"{d['kind']}: {d['reason']}" for d in record["decisions"]))
    assert proc.returncode != 0
    assert decision_sequence(sim) == decision_sequence(real)
    for record in (real, sim):
        assert record["summary"]["outcome"] == "rolled_back"
        assert "saturation" in abort_reason(record) and "error_rate" not in abort_reason(record)
        assert all(rate <= 0.05 for rate in measured(record, "error_rate"))
    # the cluster's saturation is rate() over 10 s of the emulated cAdvisor counters (ticks of
    # 0.5 s scraped every second, extrapolated to the window's ends): about 0.96
    assert 0.8 < measured(real, "saturation")[-1] < 1.2
    assert measured(sim, "saturation")[-1] == pytest.approx(0.96)
    # the series are there as cAdvisor's, per pod, and the stable pods are well within their limit
    sel = f'{{namespace="{app.ns}",container="app"}}'
    q = f"sum by (pod) (rate(container_cpu_usage_seconds_total{sel}[10s]))"
    result = httpx.get(f"{app.info.prometheus_url}/api/v1/query", params={"query": q}, timeout=5).json()
    per_pod = {r["metric"]["pod"]: float(r["value"][1]) for r in result["data"]["result"]}
    print("cores per pod after the rollback:", {k: round(v, 3) for k, v in per_pod.items()})
    stable = [cores for pod, cores in per_pod.items() if pod.startswith("web-blue-")]
    assert len(stable) == 4 and all(0.2 < cores < 0.36 for cores in stable)  # 0.28 at 20 rps each
    serving = app.serving()
    assert serving.get(STABLE) == 4 and serving.get(CANDIDATE, 0) == 0, serving
