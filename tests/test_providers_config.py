"""Choosing a metrics source by configuration, and a run that needs one failing before it starts."""

from __future__ import annotations

import doctest
import importlib

import pytest

from deploysim.analysis.measurement import Measurement
from deploysim.errors import MetricsConfigError, ParameterError
from deploysim.kube import execute_plan, metrics_config
from deploysim.plan import Plan, RollingUpdate
from deploysim.providers import (
    KINDS,
    PROVIDERS,
    HttpProbeProvider,
    NoMetricsProvider,
    PrometheusProvider,
    ProviderConfig,
    SimulatedProvider,
    provider_for,
)
from deploysim.runbooks import KubeTarget
from deploysim.scenario import load_scenario
from deploysim.strategies import compile_plan


class World:
    """A world that measures itself, recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    def measure(self, start: float, end: float, spec=None) -> Measurement:
        self.asked.append((start, end))
        return Measurement(start, end, error=None)


def test_every_kind_has_a_provider() -> None:
    assert set(PROVIDERS) == set(KINDS) == {"simulated", "prometheus", "http", "none"}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (ProviderConfig("prometheus", url="http://prom:9090"), PrometheusProvider),
        (ProviderConfig("http", probe_urls={"candidate": "http://c/"}), HttpProbeProvider),
        (ProviderConfig("none"), NoMetricsProvider),
        (ProviderConfig("simulated"), SimulatedProvider),
    ],
)
def test_the_kind_chooses_the_provider(config, expected) -> None:
    p = provider_for(config, world=World())
    assert type(p) is expected
    p.close()


def test_the_simulated_provider_asks_its_world() -> None:
    world = World()
    p = provider_for(ProviderConfig("simulated"), world=world)
    assert p.measure(30.0, 90.0).end == 90.0
    assert world.asked == [(30.0, 90.0)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "datadog"}, "metrics.kind: got 'datadog'; allowed: simulated, prometheus, http, none"),
        ({"kind": "prometheus"}, "metrics.url: got None; the prometheus source needs the URL of a Prometheus server"),
        ({"kind": "http"}, "metrics.probe_urls: got {}; the http source needs a URL per version, keys from stable, candidate"),
        ({"kind": "http", "probe_urls": {"canary": "http://c/"}},
         "metrics.probe_urls: got {'canary': 'http://c/'}; the http source needs a URL per version, keys from stable, candidate"),
        ({"kind": "none", "step": 0}, "metrics.step: got 0; must be more than 0 seconds"),
        ({"kind": "http", "probe_urls": {"stable": "http://s/"}, "probes": 0}, "metrics.probes: got 0; must be at least 1"),
        ({"kind": "none", "query": "up"}, "metrics: unknown key(s) query; allowed: "),
    ],
)
def test_a_bad_configuration_names_the_setting(data, message) -> None:
    with pytest.raises(MetricsConfigError) as err:
        ProviderConfig.from_mapping(data)
    assert str(err.value).startswith(message)
    assert err.value.exit_code == 2


def test_simulated_needs_a_world() -> None:
    with pytest.raises(MetricsConfigError, match="only a rehearsal has a simulated world"):
        provider_for(ProviderConfig("simulated"))


def Target(**kw: object) -> KubeTarget:  # noqa: N802 - reads as the target it builds
    """A runbook's target on a kubeconfig that does not exist (reading it would fail)."""
    base: dict[str, object] = {
        "kubeconfig": "/nonexistent/kubeconfig", "context": None, "namespace": "shop", "workload": "checkout",
        "candidate_workload": None, "route": None, "prometheus_url": None, "prometheus_token": None,
        "image": "checkout:2"}
    return KubeTarget(**{**base, **kw})


CANARY = load_scenario(overrides=["strategy.kind=canary"])
NO_ANALYSIS = Plan(strategy="rolling", replicas=3, steps=(RollingUpdate(),))


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        (Target(prometheus_url="http://prom:9090", probe_urls={"candidate": "http://c/"}), "prometheus"),
        (Target(probe_urls={"stable": "http://s/", "candidate": "http://c/"}), "http"),
        (Target(metrics="http", prometheus_url="http://prom:9090", probe_urls={"candidate": "http://c/"}), "http"),
    ],
)
def test_auto_takes_prometheus_then_the_http_probes(target, kind) -> None:
    config = metrics_config(target, CANARY, compile_plan(CANARY))
    assert config.kind == kind
    assert (config.service, config.namespace, config.step) == (CANARY.service, "shop", CANARY.resolution)


def test_no_source_is_fine_for_a_plan_without_analysis() -> None:
    config = metrics_config(Target(), CANARY, NO_ANALYSIS)
    assert config.kind == "none"
    assert provider_for(config).measure(0, 1).error == "no metrics source: give prometheus_url or probe_urls"


def test_analysis_without_a_source_fails_before_the_cluster_is_touched() -> None:
    # the kubeconfig does not exist: reading it would be a ClusterError
    with pytest.raises(ParameterError) as err:
        execute_plan(CANARY, compile_plan(CANARY), Target())
    assert str(err.value).startswith(
        "parameter 'prometheus_url': got None and no probe_urls; analysis 'step-3' of the canary plan needs metrics")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (Target(metrics="prometheus"), "parameter 'prometheus_url': got None; the prometheus source needs"),
        (Target(metrics="http"), "parameter 'probe_urls': got {}; the http source needs a URL per version"),
        (Target(metrics="graphite"), "parameter 'metrics': got 'graphite'; allowed: simulated, prometheus, http, none"),
    ],
)
def test_a_source_chosen_without_its_settings_names_the_parameter(target, message) -> None:
    with pytest.raises(ParameterError) as err:
        metrics_config(target, CANARY, NO_ANALYSIS)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("module", [
    "deploysim.providers", "deploysim.providers.spec", "deploysim.providers.simulated",
    "deploysim.providers.prometheus", "deploysim.providers.http",
])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
