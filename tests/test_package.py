"""The public surface: what ``import deploysim`` gives, typed, without loading the heavy parts."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import deploysim

ROOT = Path(__file__).resolve().parents[1]


def test_every_exported_name_resolves() -> None:
    missing = [name for name in deploysim.__all__ if not hasattr(deploysim, name)]
    assert missing == []
    assert set(deploysim.__all__) <= set(dir(deploysim))
    from deploysim.controller import Observation, reconcile
    from deploysim.plan import Plan

    assert (deploysim.Plan, deploysim.Observation, deploysim.reconcile) == (Plan, Observation, reconcile)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        deploysim.nope  # noqa: B018


def test_import_deploysim_is_light_and_typed() -> None:
    code = ("import sys, deploysim\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'kubernetes', 'simpy', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert (ROOT / "deploysim" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("module", [
    "deploysim", "deploysim.errors", "deploysim.runbooks", "deploysim.runbooks.parameters",
    "deploysim.runbooks.notebook", "deploysim.runbooks.session",
])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
