"""The drive loop while its world is out of reach (deploysim/driver.py): a cluster whose API
stopped answering for a while.

The scripted world of tests/test_driver.py, made to refuse observing, acting or saving for a
window of its clock: the loop must commit nothing of a pass cut short, act only after a fresh
observation, and past its outage limit roll back as soon as the world answers.
"""

from __future__ import annotations

import pytest
from test_driver import ScriptedWorld, Store, canary

from deploysim.controller import ABORTED, PROMOTED
from deploysim.driver import OUTAGE_RETRY_SECONDS, Drive, drive, run_blocking
from deploysim.plan import Pause, SetWeight


class Outage(ConnectionError):
    pass


def transient(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError)


class DarkWorld(ScriptedWorld):
    """Out of reach from ``start`` to ``end`` on its clock, in the calls named by ``where``."""

    def __init__(self, start: float, end: float, where: tuple[str, ...] = ("observe", "apply")) -> None:
        super().__init__(poll=2.0)  # a cluster's loop looks at least this often
        self.start, self.end, self.where = start, end, where
        self.refused: list[tuple[str, float]] = []
        self.observed_at: list[float] = []

    def dark(self, call: str) -> bool:
        if call in self.where and self.start <= self.t < self.end:
            self.refused.append((call, self.t))
            return True
        return False

    def observe(self):  # noqa: ANN201
        if self.dark("observe"):
            raise Outage("connection refused")
        self.observed_at.append(self.t)
        return super().observe()

    def apply(self, action) -> None:  # noqa: ANN001
        if self.dark("apply"):
            raise Outage("connection refused")
        super().apply(action)


class DarkStore(Store):
    def __init__(self, world: DarkWorld) -> None:
        super().__init__(world=world)

    def save(self, status: dict) -> None:
        if self.world.dark("save"):
            raise Outage("connection refused")
        super().save(status)


def plan():  # 25% for 30 s, then 100%
    return canary(SetWeight(25), Pause(30.0), SetWeight(100))


def kinds(run: Drive) -> list[str]:
    return [d.kind for d in run.decisions]


def test_a_short_outage_is_waited_out_and_the_rollout_goes_on() -> None:
    world = DarkWorld(start=10.0, end=40.0)
    run = Drive(plan(), limit=600, transient=transient, outage_limit=120)
    run_blocking(drive(world, run, provider=None))
    assert run.status["phase"] == PROMOTED
    assert kinds(run).count("outage") == 1 and kinds(run).count("recovered") == 1
    (o,) = run.outages
    assert o["start"] == 10.0 and o["end"] >= 40.0 and o["end"] - 40.0 <= OUTAGE_RETRY_SECONDS
    # while it was out of reach the loop looked every OUTAGE_RETRY_SECONDS and did nothing else
    tries = [t for _, t in world.refused]
    assert all(b - a == pytest.approx(OUTAGE_RETRY_SECONDS) for a, b in zip(tries, tries[1:], strict=False))
    # the pause ended in the dark: the next step waited for the first observation after it
    later = [a for a in world.applied if a.args.get("weight") == 100]
    assert later and world.observed_at[-1] >= o["end"]
    recovered = run.decisions[kinds(run).index("recovered")]
    assert recovered.at == o["end"] and "observed afresh" in recovered.reason


def test_a_pass_cut_short_commits_nothing_and_is_done_again_whole() -> None:
    # the first apply of the 100% step fails: its status, decisions and actions are retried as one
    world = DarkWorld(start=30.0, end=35.0, where=("apply",))
    run = Drive(plan(), limit=600, transient=transient, outage_limit=120)
    run_blocking(drive(world, run, provider=None))
    assert run.status["phase"] == PROMOTED
    steps = [d.reason for d in run.decisions if d.kind == "step"]
    assert len(steps) == len(set(steps)) == 3  # each step once, none lost to the cut-short pass
    assert [a.args["weight"] for a in world.applied if a.kind == "route"] == [25, 100]
    assert world.refused and all(call == "apply" for call, _ in world.refused)


def test_past_the_outage_limit_the_run_rolls_back_once_it_answers() -> None:
    world = DarkWorld(start=10.0, end=50.0)
    run = Drive(plan(), limit=600, transient=transient, outage_limit=20)
    run_blocking(drive(world, run, provider=None))
    assert run.status["phase"] == ABORTED and run.status["outcome"] == "rolled_back"
    assert kinds(run)[3:] == ["outage", "outage", "recovered", "abort", "complete"]
    over = [d for d in run.decisions if d.kind == "outage" and "rolling back once it answers" in d.reason]
    assert len(over) == 1 and 30.0 <= over[0].at <= 30.0 + OUTAGE_RETRY_SECONDS
    abort = next(d for d in run.decisions if d.kind == "abort")
    assert abort.reason.startswith("the world did not answer for 40s from t=10s (outage limit 20s)")
    assert not any("by a person" in d.reason for d in run.decisions)
    assert abort.at >= 50.0  # acted on only after it answered
    assert run.outages[0]["over_limit"] is True


def test_an_outage_to_the_end_of_the_run_stops_without_acting() -> None:
    world = DarkWorld(start=10.0, end=10_000.0)
    run = Drive(plan(), limit=100, transient=transient, outage_limit=20)
    run_blocking(drive(world, run, provider=None))
    assert run.timed_out and run.status["phase"] not in (PROMOTED, ABORTED)
    assert run.outages[0]["end"] is None
    assert [a.args.get("weight") for a in world.applied if a.kind == "route"] == [25]


def test_a_failed_save_is_written_by_the_next_pass() -> None:
    world = DarkWorld(start=0.0, end=5.0, where=("save",))
    store = DarkStore(world)
    run = Drive(plan(), limit=600, transient=transient, outage_limit=120)
    run_blocking(drive(world, run, provider=None, store=store))
    assert run.status["phase"] == PROMOTED
    assert store.saved[-1]["phase"] == PROMOTED
    assert kinds(run).count("outage") == 1


def test_an_error_that_is_not_an_outage_stops_the_run() -> None:
    class Refusing(ScriptedWorld):
        def apply(self, action) -> None:  # noqa: ANN001
            raise PermissionError("403 Forbidden")

    run = Drive(plan(), limit=600, transient=transient, outage_limit=120)
    with pytest.raises(PermissionError):
        run_blocking(drive(Refusing(), run, provider=None))
    assert run.attempted is not None and run.attempted["step"] == 0
    assert kinds(run) == []  # the pass it failed is not in the log


def test_without_a_transient_rule_any_error_stops_the_run() -> None:
    world = DarkWorld(start=0.0, end=5.0)
    with pytest.raises(Outage):
        run_blocking(drive(world, Drive(plan(), limit=600), provider=None))
