"""Starting a local control plane beside another one: a port taken between pick and bind is
tried again after a random wait (no cluster is started here: the start itself is stood in for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.kube.localcluster import _cluster
from deploysim.kube.localcluster._paths import BINARIES, ClusterStartError

TAKEN = ("kwok-controller exited during start-up: a port it was given was taken "
         "(address already in use) (log /tmp/kwok-controller.log)")


@pytest.fixture
def bins(tmp_path: Path) -> Path:
    for name in BINARIES:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    return tmp_path


def start(monkeypatch: pytest.MonkeyPatch, bins: Path, failures: list[str]) -> tuple[object, list[float], int]:
    calls: list[int] = []
    waits: list[float] = []

    def up_once(*args: object, **kwargs: object) -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise ClusterStartError(failures[len(calls) - 1])
        return "started"

    monkeypatch.setattr(_cluster, "_up_once", up_once)
    monkeypatch.setattr(_cluster.time, "sleep", waits.append)
    name = f"dsk-start-{abs(hash(str(bins))) % 10**6}"
    try:
        result = _cluster.up(nodes=1, name=name, bin_dir=bins, prometheus=False)
    except ClusterStartError as e:
        result = e
    return result, waits, len(calls)


def test_a_taken_port_is_tried_again_after_a_random_wait(monkeypatch: pytest.MonkeyPatch, bins: Path) -> None:
    result, waits, calls = start(monkeypatch, bins, [TAKEN, TAKEN, TAKEN])
    assert result == "started" and calls == 4
    # waits that grow, each drawn at random so two clusters started together fall out of step
    assert len(waits) == 3 and all(1.0 <= w <= 4.0 * (i + 1) for i, w in enumerate(waits))
    assert len(set(waits)) == 3


def test_five_collisions_give_up_with_the_reason(monkeypatch: pytest.MonkeyPatch, bins: Path) -> None:
    result, waits, calls = start(monkeypatch, bins, [TAKEN] * 5)
    assert isinstance(result, ClusterStartError) and "address already in use" in str(result)
    assert calls == 5 and len(waits) == 4


def test_another_failure_is_not_tried_again(monkeypatch: pytest.MonkeyPatch, bins: Path) -> None:
    result, waits, calls = start(monkeypatch, bins, ["kube-apiserver exited during start-up: bad flag"])
    assert isinstance(result, ClusterStartError) and calls == 1 and waits == []
