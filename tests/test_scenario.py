"""Scenario input: durations, overrides, and one readable line for every bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deploysim.errors import ScenarioError
from deploysim.scenario import load_scenario, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1h30m", 5400.0), ("250ms", 0.25),
     ("10", 10.0), (45, 45.0), ("2.5s", 2.5), ("1d", 86400.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "5x", "", "m5", "-3s", "1h 30m", True])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_keys_from_file_and_overrides(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        "service: cart\nreplicas: 4\nstrategy:\n  kind: blue-green\n  preview_replicas: 2\n"
        "traffic:\n  rps: 50\n  shape: step\n  step_at: 10m\n"
        "faults:\n  - kind: node_failure\n    at: 5m\n  - kind: dependency_outage\n    at: 20m\n    duration: 1m\n"
    )
    s = load_scenario(f, ["replicas=6", "candidate.error_rate=0.05", "analysis.interval=30s",
                          "pod.startup=3s", "faults.1.duration=2m"])
    assert (s.service, s.replicas, s.strategy.kind, s.strategy.preview_replicas) == ("cart", 6, "blue-green", 2)
    assert s.candidate.error_rate == 0.05 and s.analysis.interval == 30.0 and s.pod.startup == 3.0
    assert s.traffic.step_at == 600.0
    assert [f.kind for f in s.faults] == ["node_failure", "dependency_outage"]
    assert s.faults[1].duration == 120.0


def test_canary_steps_pause_forms():
    s = load_scenario(data={"strategy": {"kind": "canary", "steps": [
        {"set_weight": 10}, {"pause": "1m"}, {"pause": None}, {"analysis": True}]}})
    steps = s.strategy.steps
    assert steps[1].is_pause and steps[1].pause == 60.0
    assert steps[2].is_pause and steps[2].pause is None  # a manual gate
    assert not steps[0].is_pause


def test_trace_shape_reads_csv(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp,rps\n1000,10\n1060,70\n")
    s = load_scenario(overrides=["traffic.shape=trace", f"traffic.trace={trace}"])
    from deploysim.sim.traffic import TrafficShape

    shape = TrafficShape(s.traffic)
    assert shape.rps(30) == pytest.approx(40.0)
    assert shape.requests(0, 60) == pytest.approx(2400.0)


@pytest.mark.parametrize(
    ("override", "key", "value_text", "allowed"),
    [
        ("replicas=-2", "replicas", "-2", "at least 1"),
        ("strategy.steps.0.set_weight=150", "strategy.steps.0.set_weight", "150", "at most 100"),
        ("no_such_key=1", "no_such_key", "1", "unknown key"),
        ("strategy.kind=rainbow", "strategy.kind", "'rainbow'", "'rolling', 'canary', 'blue-green' or 'recreate'"),
        ("strategy.max_surge=-1", "strategy.max_surge", "-1", "0 or more"),
        ("duration=5 minutes", "duration", "'5 minutes'", "a duration like 30s"),
        ("candidate.error_rate=2", "candidate.error_rate", "2", "at most 1"),
        ("traffic.shape=sawtooth", "traffic.shape", "'sawtooth'", "'constant', 'diurnal', 'step' or 'trace'"),
    ],
)
def test_bad_values_name_key_value_and_allowed(override, key, value_text, allowed):
    with pytest.raises(ScenarioError) as err:
        load_scenario(overrides=[override])
    message = str(err.value)
    assert f"{key}: got {value_text}" in message
    assert allowed in message


@pytest.mark.parametrize("override", ["replicas=-1", "strategy.kind=rainbow", "bogus=1",
                                      "strategy.steps.0.set_weight=150"])
def test_cli_bad_value_is_one_line_without_traceback(override, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "deploysim.cli", "rehearse", "--set", override, "--out", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert override.split("=")[0] in lines[0]
    assert not (tmp_path / "summary.json").exists()
