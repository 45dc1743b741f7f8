"""One error tree, one exit-code convention (deploysim.errors)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import deploysim
from deploysim import errors
from deploysim.errors import (
    EXIT_BAD_INPUT,
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_NOT_PROMOTED,
    EXIT_OK,
    ClusterError,
    DeploysimError,
    ManifestError,
    MetricsError,
    ParameterError,
    PrometheusError,
    RolloutNotPromoted,
    ScenarioError,
    TargetUnavailable,
    exit_code,
    exit_code_for_outcome,
    exit_code_named,
)


def _modules() -> list[str]:
    # __main__ modules run the command when imported
    return [m.name for m in pkgutil.walk_packages(deploysim.__path__, "deploysim.")
            if not m.name.endswith("__main__")]


@pytest.mark.parametrize(("exc", "code"), [
    (ScenarioError("replicas", 0, "must be at least 1"), EXIT_BAD_INPUT),
    (ManifestError("rollout.yaml", 1, "spec.replicas", "expected an integer"), EXIT_BAD_INPUT),
    (ParameterError("parameter 'seed': got 'abc'"), EXIT_BAD_INPUT),
    (ClusterError("cannot reach the API server"), EXIT_ENVIRONMENT),
    (TargetUnavailable("target kubernetes needs deploysim.kube"), EXIT_ENVIRONMENT),
    (MetricsError("http://probe: connection refused"), EXIT_ENVIRONMENT),
    (PrometheusError("prometheus at http://127.0.0.1:1: connection refused"), EXIT_ENVIRONMENT),
    (RolloutNotPromoted("canary: rolled back", "rolled_back"), EXIT_NOT_PROMOTED),
    (FileNotFoundError(2, "No such file or directory", "out/summary.json"), EXIT_ENVIRONMENT),
    (KeyboardInterrupt(), EXIT_INTERRUPTED),
    (ZeroDivisionError(), EXIT_NOT_PROMOTED),  # a crash: what Python itself exits with
])
def test_exit_code_of_each_error(exc: BaseException, code: int) -> None:
    assert exit_code(exc) == code
    assert exit_code_named(type(exc).__name__) == code


@pytest.mark.parametrize(("outcome", "code"), [
    ("promoted", EXIT_OK), ("rolled_back", EXIT_NOT_PROMOTED), ("failed", EXIT_NOT_PROMOTED),
    ("paused", EXIT_NOT_PROMOTED), ("incomplete", EXIT_NOT_PROMOTED), (None, EXIT_NOT_PROMOTED),
])
def test_only_a_promoted_rollout_exits_0(outcome: str | None, code: int) -> None:
    assert exit_code_for_outcome(outcome) == code


def test_the_four_codes_are_distinct() -> None:
    assert [EXIT_OK, EXIT_NOT_PROMOTED, EXIT_BAD_INPUT, EXIT_ENVIRONMENT] == [0, 1, 2, 3]


def test_every_exception_deploysim_defines_is_a_deploysim_error() -> None:
    stray = []
    codes = {}
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # a private exception is control flow inside its module, never shown to a user
            if cls.__module__ != name or not issubclass(cls, BaseException) or cls.__name__.startswith("_"):
                continue
            if not issubclass(cls, DeploysimError):
                stray.append(f"{name}.{cls.__name__}")
            else:
                codes[f"{name}.{cls.__name__}"] = cls.exit_code
    assert stray == []
    assert set(codes.values()) <= {EXIT_NOT_PROMOTED, EXIT_BAD_INPUT, EXIT_ENVIRONMENT}
    # the cluster's own errors are environment problems whatever module defines them
    assert all(code == EXIT_ENVIRONMENT for name, code in codes.items() if name.endswith("ClusterError"))


def test_prometheus_errors_are_the_one_class() -> None:
    from deploysim.providers import prometheus

    assert prometheus.PrometheusError is errors.PrometheusError
    assert issubclass(errors.PrometheusError, MetricsError)
