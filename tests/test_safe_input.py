"""Bad input never crashes or hangs, and a verdict is never passed by default.

Each bad value gives one clear line naming the key, the value and what is allowed, before
anything runs; the fuzz tests at the end walk the scenario schema and
``--set`` values and expect either that line or a completed run whose figures make sense.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploysim import limits, yamlsafe
from deploysim.analysis.judges import FAILED, threshold_judge
from deploysim.analysis.measurement import Measurement, VersionWindow
from deploysim.errors import ScenarioError, excerpt
from deploysim.plan import AnalysisSpec, Check
from deploysim.record import outcome_of
from deploysim.scenario import load_scenario
from deploysim.sim import rehearse

OUTCOMES = {"promoted", "rolled_back", "failed", "paused", "inconclusive", "rolling_back", "incomplete"}


def written(f: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    return f


def refused(overrides: list[str], path: str | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    text = str(info.value)
    assert "\n" not in text and len(text) < 400
    return text


# --- finite numbers, whole numbers, bounds ---------------------------------------------------


@pytest.mark.parametrize(("override", "key", "allowed"), [
    ("candidate.latency_sigma=.inf", "candidate.latency_sigma", "finite number"),
    ("candidate.error_rate=nan", "candidate.error_rate", "finite number"),
    ("traffic.rps=inf", "traffic.rps", "finite number"),
    ("traffic.rps=-.inf", "traffic.rps", "finite number"),
    ("analysis.checks.0.max=nan", "analysis.checks.0.max", "finite number"),
    ("pod.capacity_rps=.nan", "pod.capacity_rps", "finite number"),
    ("replicas=true", "replicas", "whole number, not true/false"),
    ("analysis.count=false", "analysis.count", "whole number, not true/false"),
    ("strategy.steps.0.set_weight=true", "strategy.steps.0.set_weight", "whole number"),
    ("analysis.checks=[]", "analysis.checks", "at least one check"),
    ("analysis.interval=1ms", "analysis.interval", "at least 1.0"),
    ("start_at=100d", "start_at", "before the end of the simulated time"),
    ("start_at=2h", "start_at", "before the end of the simulated time"),
])
def test_values_that_would_crash_or_pass_anything_are_refused(override: str, key: str, allowed: str) -> None:
    text = refused([override])
    assert f"{key}: got " in text and allowed in text


def test_bounds_that_cannot_be_met_are_refused() -> None:
    text = refused(["analysis.checks.0.min=0.5", "analysis.checks.0.max=0.1"])
    assert "min 0.5 is above max 0.1" in text


@pytest.mark.parametrize(("overrides", "key", "limit"), [
    (["replicas=100000"], "replicas", "at most 10000"),
    (["duration=365d"], "resolution", "at most 260000 timeline bins"),
    (["resolution=1ms"], "resolution", "at most 260000 timeline bins"),
    (["duration=30d", "resolution=1s"], "resolution", "at least 10s for a duration of 720h"),
    (["controller_interval=1ms"], "controller_interval", "at most 1000000 controller passes"),
    (["duration=30d", "analysis.interval=1s"], "analysis.interval", "at most 100000 measurements"),
    (["nodes.count=100000000"], "nodes.count", "at most 10000"),
    (["nodes.pods_per_node=5000"], "nodes.pods_per_node", "at most 1000"),
    (["traffic.rps=1e12"], "traffic.rps", "at most 1e+09"),
    # a crash loop restarts every replica each fail_after + startup: bounded in pod starts
    (["candidate.fail_after=1ms", "pod.startup=0s"], "candidate.fail_after", "at most 500000 pod starts"),
    (["stable.crash_rate_per_hour=1e6"], "stable.crash_rate_per_hour", "500000 pod starts"),
])
def test_runs_past_a_minute_or_2_gb_are_refused_naming_the_limit(overrides: list[str], key: str, limit: str) -> None:
    text = refused(overrides)
    assert text.startswith(f"default scenario: {key}: got ") and limit in text
    assert f"{limits.ENV}=1 lifts the limits" in text


def test_the_limits_can_be_lifted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.ENV, "1")
    assert load_scenario(overrides=["replicas=20000"]).replicas == 20000
    monkeypatch.setenv(limits.ENV, "0")
    refused(["replicas=20000"])


def test_a_crash_loop_within_the_bound_runs() -> None:
    # 10 replicas over 2h failing every 20 s: 3,600 pod starts
    assert load_scenario(overrides=["candidate.fail_after=20s"]).candidate.fail_after == 20.0


def test_thirty_days_at_ten_seconds_is_within_the_limits() -> None:
    assert load_scenario(overrides=["duration=30d", "resolution=10s"]).duration == 30 * 86400


@pytest.mark.parametrize(("override", "message"), [
    ("strategy.steps.10000000.set_weight=5", "an index of the 10 items there, or 10 to add one"),
    ("faults.100000000.at=1", "an index of the 0 items there, or 0 to add one"),
    ("faults.1.at=1", "an index of the 0 items there, or 0 to add one"),
    ("faults.x.at=1", "faults: got {'x': {'at': 1}}; expected a valid list"),
    ("strategy.steps.x.pause=1m", "expected a list index"),
])
def test_list_index_overrides_reach_one_past_the_end_at_most(override: str, message: str) -> None:
    assert message in refused([override])


def test_one_past_the_end_adds_an_item() -> None:
    s = load_scenario(overrides=["faults.0.kind=node_failure", "faults.0.at=5m",
                                 "faults.1.kind=metrics_outage", "faults.1.at=10m"])
    assert [f.kind for f in s.faults] == ["node_failure", "metrics_outage"]


# --- files: YAML within bounds --------------------------------------------------------------


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize(("content", "message"), [
    ("faults: *i\n".join([LAUGHS.replace("a: &a", "x_a: &a"), ""]), "expands to more than 100000 values"),
    ("candidate:\n  image: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
    (b"replicas: 4\nservice: \xff\xfe\n", "not UTF-8 text (byte 0xff at offset 21)"),
    ("replicas: [unclosed\n", "is not valid YAML"),
    ("- a\n- b\n", "the file must hold a mapping of keys"),
    ("a: 1\n---\nb: 2\n", "expected a single document"),
])
def test_bad_files_give_one_line(tmp_path: Path, content: str | bytes, message: str) -> None:
    text = refused([], str(written(tmp_path / "s.yaml", content)))
    assert message in text and len(text) < 400


def test_a_folder_given_as_the_scenario_file(tmp_path: Path) -> None:
    assert "is a folder" in refused([], str(tmp_path))


def test_aliases_within_the_bound_still_load() -> None:
    assert yamlsafe.load("base: &b {rps: 5}\ntraffic: *b\n") == {"base": {"rps": 5}, "traffic": {"rps": 5}}


def test_errors_show_a_short_excerpt_and_never_a_secret() -> None:
    text = refused(["service=" + "x" * 5000])
    assert len(text) < 300 and "(5000 characters)" in text
    token = "ghp_" + "a1B2c3D4e5" * 4
    text = refused([f"service=https://deploy:{token}@git.example.com/app"])  # not a service name
    assert text.startswith("default scenario: service: got ") and token not in text
    assert token not in excerpt({"Authorization": f"Bearer {token}"})


# --- verdicts --------------------------------------------------------------------------------


def window(requests: int, errors: int, p99: float) -> VersionWindow:
    return VersionWindow(requests=requests, errors=errors, latency_p50=p99 / 2, latency_p95=p99,
                         latency_p99=p99, seconds=60.0)


def test_a_failed_check_wins_over_a_metric_with_no_value() -> None:
    spec = AnalysisSpec(checks=(Check("error_rate", max=0.01), Check("latency_p99", max=500.0)))
    m = Measurement(0.0, 60.0, {"stable": window(1000, 1, 100.0), "candidate": window(1000, 300, math.nan)})
    verdict = threshold_judge(spec, m, {})
    assert verdict.phase == FAILED and "error_rate" in verdict.reason


def test_an_inconclusive_analysis_waits_for_a_person_under_approve_auto() -> None:
    s = load_scenario(overrides=["analysis.min_requests=100000000", "approve=auto", "candidate.error_rate=0.5"])
    rec = rehearse(s)
    assert rec.summary["outcome"] == "inconclusive"
    assert not any(d["kind"] == "resume" for d in rec.decisions)


def test_approve_inconclusive_is_explicit_and_recorded() -> None:
    s = load_scenario(overrides=["analysis.min_requests=100000000", "approve_inconclusive=auto",
                                 "candidate.error_rate=0.001"])
    rec = rehearse(s)
    assert rec.summary["outcome"] == "promoted"
    resumes = [d["reason"] for d in rec.decisions if d["kind"] == "resume"]
    assert resumes and all("passed by approve_inconclusive, not by a person" in r for r in resumes)
    waited = rehearse(load_scenario(overrides=["analysis.min_requests=100000000", "approve_inconclusive=10m",
                                               "candidate.error_rate=0.001"]))
    assert waited.summary["outcome"] == "promoted"  # each of the three analyses waited ten minutes
    # (pods start with jitter drawn anew, so the two rollouts' other waits differ by seconds)
    assert waited.summary["rollout_seconds"] >= rec.summary["rollout_seconds"] + 3 * 600 - 30


def test_an_abort_under_way_when_time_runs_out_is_rolling_back() -> None:
    # recreate: the candidate's pods take 20 minutes to start, so the background analysis finds
    # no data and aborts after its error limit, and the stable version's pods take 20 minutes
    # to come back: past the simulated time
    s = load_scenario(overrides=["strategy.kind=recreate", "pod.startup=20m", "strategy.progress_deadline_seconds=2h",
                                 "duration=25m", "analysis.interval=1m", "candidate.error_rate=0.5"])
    rec = rehearse(s)
    assert rec.summary["outcome"] == "rolling_back"
    assert rec.summary["rolled_back"] is False and rec.summary["time_to_detect_seconds"] is not None
    assert outcome_of({"phase": "Progressing"}) == "incomplete"


# --- the command line -------------------------------------------------------------------------


def deploysim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploysim", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (["sweep", "--runs", "0"], "argument --runs/-n: got 0; expected a whole number of at least 1"),
    (["sweep", "--runs", "-3"], "expected a whole number of at least 1"),
    (["sweep", "--workers", "0"], "argument --workers: got 0"),
    (["sweep", "--judges", "thresold", "--runs", "1"], "analysis.judge: got 'thresold'; one of"),
])
def test_commands_refuse_bad_flags_in_one_line(args: list[str], message: str) -> None:
    done = deploysim(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_out_naming_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("")
    for out in (str(f), str(f / "inside")):
        done = deploysim("rehearse", "--out", out)
        assert done.returncode == 2 and "is a file, and the report is a folder" in done.stderr
        assert "Traceback" not in done.stderr


# --- fuzzing ------------------------------------------------------------------------------------

KEYS = ["replicas", "seed", "duration", "start_at", "resolution", "controller_interval", "approve",
        "approve_inconclusive", "traffic.rps", "traffic.shape", "traffic.peak_factor", "pod.startup",
        "pod.startup_jitter", "pod.termination", "pod.capacity_rps", "pod.latency_ms", "candidate.error_rate",
        "candidate.latency_sigma", "candidate.crash_rate_per_hour", "candidate.never_ready", "nodes.count",
        "nodes.pods_per_node", "strategy.kind", "strategy.max_surge", "strategy.max_unavailable",
        "strategy.min_ready_seconds", "strategy.steps.0.set_weight", "strategy.steps.1.pause",
        "strategy.steps.10.set_canary_scale", "strategy.preview_replicas", "strategy.scale_down_delay_seconds",
        "analysis.interval", "analysis.count", "analysis.failure_limit", "analysis.min_requests", "analysis.judge",
        "analysis.checks.0.max", "analysis.checks.1.min", "analysis.checks.2.metric", "faults.0.kind",
        "faults.0.at", "faults.0.duration", "faults.0.node", "slo.target", "unknown.key", "strategy", "analysis"]

VALUES = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "null", "nan", ".inf", "-.inf", "[]", "{}", "[1, 2]", "''", "~", "1e308",
                     "30s", "5m", "1h", "0s", "-1s", "1ms", "365d", "25%", "101%", "auto", "never", "canary",
                     "rolling", "blue-green", "recreate", "node_failure", "metrics_outage", "mann_whitney",
                     "&a [*a]", "*a", "!!python/object:os.system ls", "[[[[[[[[[[]]]]]]]]]]", "\x00", "é"]),
    st.text(max_size=30),
)


def small_enough(s) -> bool:  # noqa: ANN001
    return (s.replicas <= 60 and s.duration / s.resolution <= 3000 and s.duration / s.controller_interval <= 20000
            and s.traffic.rps <= 1e6 and s.nodes_count <= 200)


@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3))
def test_fuzz_overrides_give_one_line_or_a_sane_run(pairs: list[tuple[str, str]]) -> None:
    overrides = [f"{k}={v}" for k, v in pairs]
    try:
        s = load_scenario(overrides=overrides)
    except ScenarioError as exc:
        text = str(exc)
        assert "\n" not in text.strip() and len(text) < 400
        return
    if not small_enough(s):
        return
    rec = rehearse(s)
    summary = rec.summary
    assert summary["outcome"] in OUTCOMES
    assert 0 <= summary["failed_requests"] <= summary["requests"]
    assert summary["max_pods"] >= 0
    if summary["min_available"] is not None:
        assert 0 <= summary["min_available"] <= max(summary["max_pods"], s.replicas)
    for value in summary.values():
        assert not (isinstance(value, float) and not math.isfinite(value))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.sampled_from(KEYS + ["x"]), inner, max_size=4)),
                    max_leaves=12))
def test_fuzz_scenario_files_give_one_line_or_a_scenario(tmp_path_factory: pytest.TempPathFactory, data) -> None:  # noqa: ANN001
    import yaml

    f = tmp_path_factory.mktemp("fuzz") / "s.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        load_scenario(str(f))
    except ScenarioError as exc:
        assert "\n" not in str(exc).strip() and len(str(exc)) < 400


@pytest.mark.parametrize(("content", "message"), [
    (LAUGHS.replace("a: &a", "x: &a") + "---\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: *i}\n",
     "expands to more than 100000 values"),
    (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: caf\xe9}\n", "not UTF-8 text (byte 0xe9 at offset"),
    ("kind: Rollout\nspec: " + "{a: " * 200 + "}" * 200 + "\n", "nested deeper than 64 levels"),
])
def test_bad_manifest_files_give_one_line(tmp_path: Path, content: str | bytes, message: str) -> None:
    from deploysim.errors import ManifestError
    from deploysim.manifests.documents import read_documents

    with pytest.raises(ManifestError) as info:
        read_documents([written(tmp_path / "rollout.yaml", content)])
    assert message in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("kind", ["file", "yaml"])
@pytest.mark.parametrize(("content", "message"), [
    (LAUGHS.replace("a: &a", "x: &a") + "candidate: *i\n", "expands to more than 100000 values"),
    ("candidate: " + "[" * 500 + "]" * 500 + "\n", "nested deeper than 64 levels"),
    ("- 1\n- 2\n", "expected a mapping"),
])
def test_runbook_parameter_yaml_is_read_within_the_bounds(tmp_path: Path, kind: str, content: str,
                                                          message: str) -> None:
    from deploysim.errors import ParameterError
    from deploysim.runbooks.notebook import collect_parameters

    with pytest.raises(ParameterError) as info:
        if kind == "file":
            collect_parameters(files=[str(written(tmp_path / "params.yaml", content))])
        else:
            collect_parameters(yaml_texts=[content])
    assert message in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 400


def test_runbook_parameter_files_must_be_utf8(tmp_path: Path) -> None:
    from deploysim.errors import ParameterError
    from deploysim.runbooks.notebook import collect_parameters

    with pytest.raises(ParameterError, match=r"not UTF-8 text \(byte 0xff at offset 6\)"):
        collect_parameters(files=[str(written(tmp_path / "p.yaml", b"seed: \xff\n"))])
    assert collect_parameters(files=[str(written(tmp_path / "q.yaml", "seed: 3\nwhen: 2024-01-01\n"))]) == {
        "seed": 3, "when": "2024-01-01"}  # papermill's loader: dates stay strings


def test_aliases_cannot_nest_past_the_depth_bound(tmp_path: Path) -> None:
    # each anchor is 30 levels deep and holds the one before: 40 of them nest 1,200 levels
    lines = ["a0: &a0 " + "[" * 30 + "1" + "]" * 30]
    lines += [f"a{i}: &a{i} " + "[" * 30 + f"*a{i - 1}" + "]" * 30 for i in range(1, 40)]
    text = refused([], str(written(tmp_path / "s.yaml", "\n".join(lines) + "\nservice: *a39\n")))
    assert "nested deeper than 64 levels through its aliases" in text


@pytest.mark.parametrize(("approve", "seconds"), [("10ns", 1e-8), ("90.5s", 90.5), ("1.234567s", 1.234567),
                                                  (45, 45.0), ("auto", 0.0)])
def test_approve_durations_read_back_as_written(approve: object, seconds: float) -> None:
    s = load_scenario(overrides=[f"approve={approve}", f"approve_inconclusive={approve}"])
    assert s.approve_after() == pytest.approx(seconds) == s.approve_after("approve_inconclusive")
    again = load_scenario(data=s.to_data())
    assert again.approve_after() == pytest.approx(seconds)


def test_a_list_index_is_ascii_digits() -> None:
    assert "expected a list index" in refused(["strategy.steps.²=1"])
