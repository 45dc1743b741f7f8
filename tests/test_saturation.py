"""The saturation rules (rules/saturation.py) and the scenario keys that feed them."""

from __future__ import annotations

import math

import pytest

from deploysim.errors import ScenarioError
from deploysim.resources import Resources
from deploysim.rules.saturation import (
    BACKOFF_MAX,
    Costs,
    PodResources,
    cpu_saturation,
    parse_quantity,
    parse_resources,
    pod_usage,
    restart_backoff,
    throttle_factor,
    undefined_metric,
)
from deploysim.scenario import load_scenario

# --- quantities, as k8s.io/apimachinery ParseQuantity reads them ----------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0.0), ("1", 1.0), ("500m", 0.5), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("+2", 2.0),
    ("100m", 0.1), ("1500m", 1.5), ("1k", 1e3), ("1M", 1e6), ("1G", 1e9), ("1T", 1e12), ("1P", 1e15),
    ("1E", 1e18), ("250u", 0.00025), ("7n", 7e-9),
    ("1Ki", 1024.0), ("256Mi", 256 * 2**20), ("1.5Gi", 1.5 * 2**30), ("1Ti", 2.0**40),
    ("1e3", 1e3), ("1E3", 1e3), ("5e-3", 0.005), ("12e+6", 12e6),
    ("0.1n", 1e-9),  # below a nano rounds up, as ParseQuantity rounds up to scale -9
    (2, 2.0), (0.25, 0.25),  # YAML numbers
])
def test_parse_quantity(text, value) -> None:
    assert parse_quantity(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text", ["", "m", "1 m", "256MB", "1mi", "1KI", "1e", "1e3.5", "1.2.3", "abc", True, None,
                                  float("nan"), "-1", "-500m", "1e19", "1e308", 1e300])
def test_parse_quantity_refuses(text) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_a_limit_alone_is_the_request_too_and_a_request_above_its_limit_is_refused() -> None:
    assert parse_resources(limits={"cpu": "1"}) == PodResources(cpu_request=1.0, cpu_limit=1.0)
    assert parse_resources(limits={"cpu": "0", "memory": 0}).cpu_limit is None  # 0: no quota, no limit
    assert parse_quantity("9E") == 9e18  # the largest are kept
    assert parse_resources(requests={"memory": "1Gi"}) == PodResources(memory_request=2.0**30)
    with pytest.raises(ValueError, match="requests.memory 2Gi is above limits.memory 1Gi"):
        Resources(requests={"memory": "2Gi"}, limits={"memory": "1Gi"})


# --- the load model -------------------------------------------------------------------------


@pytest.mark.parametrize(("rps", "per_request", "limit", "demand", "used", "saturation", "throttle"), [
    (20.0, 0.01, 0.5, 0.25, 0.25, 0.5, 1.0),     # half the limit
    (20.0, 0.02, 0.5, 0.45, 0.45, 0.9, 1.0),     # twice the cost per request: 0.9
    (20.0, 0.04, 0.5, 0.85, 0.5, 1.0, 1.7),      # past the limit: used at the limit, 1.7x slower
    (0.0, 0.04, 0.5, 0.05, 0.05, 0.1, 1.0),      # idle: the base alone
])
def test_pod_usage(rps, per_request, limit, demand, used, saturation, throttle) -> None:
    u = pod_usage(rps, Costs(cpu_per_request=per_request, cpu_base=0.05), PodResources(cpu_limit=limit))
    assert (u.demand, u.used, u.saturation, u.throttle) == pytest.approx((demand, used, saturation, throttle))


def test_saturation_divides_by_the_request_without_a_limit_and_never_throttles() -> None:
    res = PodResources(cpu_request=0.25)
    u = pod_usage(20.0, Costs(cpu_per_request=0.02, cpu_base=0.05), res)
    assert (u.used, u.saturation, u.throttle) == pytest.approx((0.45, 1.8, 1.0))
    assert math.isnan(cpu_saturation(0.3, PodResources()))
    assert throttle_factor(5.0, None) == 1.0


def test_memory_past_the_limit_is_an_oom_kill() -> None:
    costs = Costs(memory_base=100 * 2**20, memory_per_rps=8 * 2**20)
    limit = PodResources(memory_limit=256 * 2**20)
    at_19, at_20 = pod_usage(19.0, costs, limit), pod_usage(20.0, costs, limit)
    assert (at_19.memory / 2**20, at_19.oom) == (252.0, False)
    assert (at_20.memory / 2**20, at_20.oom) == (260.0, True)
    assert pod_usage(20.0, costs, PodResources()).oom is False  # no limit: never killed


def test_restart_backoff_doubles_to_five_minutes_and_resets_after_ten() -> None:
    entry, waits, t = None, [], 0.0
    for _ in range(9):
        wait, entry = restart_backoff(entry, t)
        waits.append(wait)
        t += wait + 1.0  # up for a second each time, then killed again
    assert waits == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
    # running more than 2 x 5 min since the last restart starts the back-off over
    assert restart_backoff(entry, entry[1] + 2 * BACKOFF_MAX + 1)[0] == 0.0


def test_metrics_a_scenario_leaves_undefined() -> None:
    none = PodResources()
    assert undefined_metric("saturation", none, [Costs(cpu_per_request=0.01)]) is not None
    assert undefined_metric("saturation", PodResources(cpu_request=0.1), [Costs()]) is None
    assert "candidate.cpu_per_request" in undefined_metric("cpu", none, [Costs(), Costs()])
    assert "candidate.memory_per_rps" in undefined_metric("memory", none, [Costs(cpu_base=0.1)])
    assert undefined_metric("error_rate", none, []) is None


# --- the scenario keys ----------------------------------------------------------------------


def test_extreme_costs_and_limits_stay_finite() -> None:
    from deploysim.sim.engine import rehearse

    s = load_scenario(overrides=["duration=10m", "replicas=4", "traffic.rps=1e9", "candidate.cpu_per_request=1e6",
                                 "candidate.cpu_base=9E", "candidate.memory_per_rps=9E", "pod.resources.limits.cpu=1n",
                                 "pod.resources.limits.memory=1n"])
    summary = rehearse(s).summary
    assert all(math.isfinite(v) for v in summary.values() if isinstance(v, float))
    with pytest.raises(ScenarioError, match="candidate.cpu_per_request"):
        load_scenario(overrides=["candidate.cpu_per_request=1e308"])


def test_new_keys_default_to_no_model() -> None:
    s = load_scenario()
    assert s.pod.resources.parsed() == PodResources()
    assert (s.candidate.cpu_per_request, s.candidate.cpu_base, s.candidate.memory_base,
            s.candidate.memory_per_rps) == (0.0, 0.0, 0.0, 0.0)


def test_quantities_in_a_scenario_are_kept_as_written_and_read_as_numbers() -> None:
    s = load_scenario(overrides=["pod.resources.limits.cpu=500m", "pod.resources.limits.memory=256Mi",
                                 "pod.resources.requests.cpu=0.25", "candidate.cpu_base=50m",
                                 "candidate.memory_base=128Mi", "candidate.cpu_per_request=0.002"])
    assert (s.pod.resources.limits.cpu, s.pod.resources.requests.cpu) == ("500m", "0.25")
    assert s.candidate.cpu_base == 0.05 and s.candidate.memory_base == 128 * 2**20
    again = load_scenario(data=s.to_data())
    assert again.pod.resources == s.pod.resources and again.candidate == s.candidate


@pytest.mark.parametrize(("overrides", "key", "words"), [
    (["analysis.checks.1.metric=saturation", "candidate.cpu_per_request=0.01"], "analysis.checks.1.metric",
     "pod.resources.limits.cpu"),
    (["analysis.checks.0.metric=cpu"], "analysis.checks.0.metric", "candidate.cpu_per_request"),
    (["analysis.checks.0.metric=memory"], "analysis.checks.0.metric", "candidate.memory_per_rps"),
    (["pod.resources.limits.cpu=half"], "pod.resources.limits.cpu", "Kubernetes quantity"),
    (["pod.resources.limits.cpu=1", "pod.resources.requests.cpu=2"], "pod.resources",
     "requests.cpu 2 is above limits.cpu 1"),
    (["candidate.memory_base=-1Mi"], "candidate.memory_base", "never negative"),
    (["pod.resources.limits.gpu=1"], "pod.resources.limits.gpu", "unknown key"),
])
def test_refused_up_front_naming_the_field(overrides, key, words) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(overrides=overrides)
    assert info.value.key == key
    assert words in str(info.value)
    print(info.value)


def test_a_saturation_check_with_a_limit_is_accepted() -> None:
    s = load_scenario(overrides=["analysis.checks.1.metric=saturation", "analysis.checks.1.max=0.8",
                                 "pod.resources.limits.cpu=500m"])
    assert [c.metric for c in s.analysis.checks] == ["error_rate", "saturation"]
