"""The pictures a person reads: drawn from real rehearsals, checked on the figure's artists
before saving, then written as PNGs that decode.

Artists are found by their ``gid`` (what they show), never by colour alone."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from deploysim.compare import compare_strategies
from deploysim.plots import (
    comparison_figure,
    palette,
    plot_comparison,
    pods_figure,
    rollout_window,
    traffic_figure,
)
from deploysim.plots.series import in_window, merge_slivers
from deploysim.record import Record
from deploysim.report import plot_traffic, write_report
from deploysim.runbooks import validate_parameters
from deploysim.runbooks.session import execute
from deploysim.scenario import CanaryStep, Fault, load_scenario
from deploysim.sim import rehearse

GATE = [{"set_weight": 20}, {"pause": None}, {"analysis": True}, {"set_weight": 100}]


@pytest.fixture(scope="module")
def rolled_back() -> Record:
    """The built-in scenario: a 2% regression caught by the canary's first analysis."""
    return rehearse(load_scenario())


@pytest.fixture(scope="module")
def promoted() -> Record:
    """The built-in scenario with a healthy candidate: every analysis passes."""
    return rehearse(load_scenario().with_healthy_candidate())


@pytest.fixture(scope="module")
def blue_green() -> Record:
    """Blue-green on the built-in scenario: the preview's test traffic fails the pre-promotion analysis."""
    return rehearse(load_scenario().with_strategy("blue-green"))


@pytest.fixture(scope="module")
def gated() -> Record:
    """A canary with a manual gate approved after 2m, a node lost and a dependency outage."""
    sc = load_scenario(overrides=["candidate.error_rate=0.001", "approve=2m", "candidate.fail_after=10m"])
    sc = sc.model_copy(update={
        "strategy": sc.strategy.model_copy(update={"steps": [CanaryStep(**s) for s in GATE]}),
        "faults": [Fault(kind="node_failure", at=420.0, node=0),
                   Fault(kind="dependency_outage", at=480.0, duration=60.0, error_rate=0.2)],
    })
    return rehearse(sc)


def by_gid(ax, gid: str) -> list:  # noqa: ANN001
    return [a for a in ax.get_children() if a.get_gid() == gid]


def measures(record: Record) -> list[dict]:
    return [d for d in record.decisions if d["kind"] == "measure"]


def at(record: Record, kind: str) -> float:
    return next(d["at"] for d in record.decisions if d["kind"] == kind)


def colours(collection) -> list[str]:  # noqa: ANN001
    return [to_hex(c) for c in collection.get_facecolors()]


# --- the window ------------------------------------------------------------------------------


def test_the_x_axis_covers_the_rollout_and_not_the_whole_run(rolled_back: Record) -> None:
    fig = traffic_figure(rolled_back)
    lo, hi = fig.axes[0].get_xlim()
    assert (lo, hi) == rollout_window(rolled_back)
    # the rollout (start 5m, rolled back by 7m56s) with three minutes either side, not 2 hours
    assert lo == pytest.approx(at(rolled_back, "start") - 180) and hi == pytest.approx(at(rolled_back, "complete") + 180)
    assert hi - lo < 0.1 * rolled_back.summary["simulated_seconds"]
    for ax in fig.axes:
        assert ax.get_xlim() == (lo, hi)


def test_full_draws_the_whole_run(rolled_back: Record) -> None:
    fig = pods_figure(rolled_back, full=True)
    assert fig.axes[0].get_xlim() == (0.0, rolled_back.summary["simulated_seconds"])


def test_a_loaded_record_has_the_same_window(rolled_back: Record, tmp_path) -> None:
    rolled_back.save(tmp_path)
    loaded = Record.load(tmp_path)  # no status: the window comes from the decisions
    assert rollout_window(loaded) == pytest.approx(rollout_window(rolled_back))


# --- error rate, bounds, measurements ---------------------------------------------------------


def test_the_error_rate_is_per_request_not_per_second(rolled_back: Record) -> None:
    ax = traffic_figure(rolled_back).axes[0]
    (line,) = by_gid(ax, "version:candidate")
    # per bin (a bin cut to a sliver by a decision is drawn within its neighbour)
    t = merge_slivers(in_window(rolled_back.timeline, rollout_window(rolled_back)))
    served = t[t["requests_candidate"] > 0]
    expected = (served["failed_candidate"] / served["requests_candidate"]).to_numpy()
    drawn = np.asarray(line.get_ydata(), dtype=float)
    assert sorted(set(drawn[np.isfinite(drawn)])) == pytest.approx(sorted(set(expected)))
    assert 0.01 < np.nanmax(drawn) < 0.1  # a 2% regression as a rate, not ~0.7 failed requests per second
    assert ax.get_ylabel().startswith("error rate")


def test_a_horizontal_line_at_each_checks_bound(rolled_back: Record) -> None:
    fig = traffic_figure(rolled_back)
    err, latency = fig.axes[0], fig.axes[1]
    (bound,) = by_gid(err, "threshold:error_rate")
    assert list(bound.get_ydata()) == [0.01, 0.01]  # analysis: error_rate max 0.01
    (p99,) = by_gid(latency, "threshold:latency_p99")
    assert list(p99.get_ydata()) == [400.0, 400.0]  # latency_p99 max 400
    assert latency.get_ylim()[1] > 400.0


def test_one_marker_per_measurement_coloured_by_its_verdict(promoted: Record, rolled_back: Record) -> None:
    fig = traffic_figure(promoted)
    (dots,) = by_gid(fig.axes[0], "measurements:error_rate")
    assert len(dots.get_offsets()) == len(measures(promoted)) == 9  # 3 analyses x 3 measurements
    assert set(colours(dots)) == {palette.PASS.lower()}
    values = sorted(float(y) for _, y in dots.get_offsets())
    assert values == pytest.approx(sorted(d["values"]["error_rate"] for d in measures(promoted)))
    # the failed measurement: over the bound on error rate, within it on latency
    fig = traffic_figure(rolled_back)
    (bad,) = by_gid(fig.axes[0], "measurements:error_rate")
    (ok,) = by_gid(fig.axes[1], "measurements:latency_p99")
    assert colours(bad) == [palette.FAIL.lower()] and colours(ok) == [palette.PASS.lower()]
    (x, y), = bad.get_offsets()
    assert (x, y) == pytest.approx((at(rolled_back, "abort"), measures(rolled_back)[0]["values"]["error_rate"]))
    assert "2.37%" in [t.get_text() for t in fig.axes[0].texts]  # its value, beside it


def test_a_measurement_without_a_value_is_still_marked() -> None:
    # a rolling update's background analysis measures at the start, before the candidate served anyone
    record = rehearse(load_scenario().with_strategy("rolling"))
    ax = traffic_figure(record).axes[0]
    (valued,) = by_gid(ax, "measurements:error_rate")
    (missing,) = by_gid(ax, "measurements:no-value")
    assert len(valued.get_offsets()) + len(missing.get_offsets()) == len(measures(record)) == 2
    assert colours(missing) == [palette.NO_VALUE.lower()]


# --- pauses, gates, faults, preview -----------------------------------------------------------


def test_pauses_are_shaded_over_their_steps(promoted: Record) -> None:
    ax = traffic_figure(promoted).axes[0]
    spans = sorted((r.get_x(), r.get_x() + r.get_width()) for r in by_gid(ax, "pause"))
    steps = [(s["start"], s["end"]) for s in promoted.steps if s["kind"] == "pause"]
    assert len(spans) == len(steps) == 3
    assert [x for span in spans for x in span] == pytest.approx([x for step in steps for x in step])
    assert all(b - a == pytest.approx(120.0) for a, b in spans)  # pause: 2m


def test_a_manual_gate_is_shaded_until_approved_and_faults_are_marked(gated: Record) -> None:
    fig = traffic_figure(gated)
    ax = fig.axes[0]
    (gate,) = by_gid(ax, "gate")
    resumed = at(gated, "resume")
    assert gate.get_width() == pytest.approx(120.0)  # approve: 2m
    assert gate.get_x() + gate.get_width() == pytest.approx(resumed)
    (node,) = by_gid(ax, "fault:node_failure")
    assert list(node.get_xdata()) == [420.0, 420.0]
    (outage,) = by_gid(ax, "fault:dependency_outage")
    assert (outage.get_x(), outage.get_width()) == (480.0, 60.0)
    assert "crash loop" in ax.get_title(loc="right")  # candidate.fail_after: no single moment to mark


def test_blue_green_preview_traffic_is_drawn(blue_green: Record, rolled_back: Record) -> None:
    fig = traffic_figure(blue_green)
    (preview,) = by_gid(fig.axes[0], "version:preview")
    t = merge_slivers(blue_green.timeline)
    tested = t[t["requests_preview"] > 0]
    assert len(tested) >= 1
    drawn = np.asarray(preview.get_ydata(), dtype=float)
    # the preview's error rate is what failed the pre-promotion analysis: above the 1% bound
    assert np.nanmax(drawn) == pytest.approx((tested["failed_preview"] / tested["requests_preview"]).max())
    assert np.nanmax(drawn) > 0.01
    assert by_gid(fig.axes[-1], "requests:preview")
    assert by_gid(pods_figure(blue_green).axes[1], "version:preview")
    assert not by_gid(traffic_figure(rolled_back).axes[0], "version:preview")  # a canary has none


def test_a_cluster_runs_outage_is_marked_and_its_scenario_faults_are_not(rolled_back: Record) -> None:
    outage = [{"at": 320.0, "step": 0, "kind": "outage", "reason": "the cluster is out of reach", "values": {}},
              {"at": 380.0, "step": 0, "kind": "recovered", "reason": "answering again after 60s", "values": {}}]
    decisions = sorted(rolled_back.decisions + outage, key=lambda d: d["at"])
    run = Record(summary={**rolled_back.summary, "world": "kubernetes"}, timeline=rolled_back.timeline,
                 decisions=decisions, steps=rolled_back.steps, plan=rolled_back.plan,
                 scenario={**rolled_back.scenario, "faults": [{"kind": "node_failure", "at": 400.0, "node": 0}]})
    ax = traffic_figure(run).axes[0]
    (span,) = by_gid(ax, "fault:outage")
    assert (span.get_x(), span.get_width()) == (320.0, 60.0)
    assert not by_gid(ax, "fault:node_failure")  # deploysim did not take a node on the cluster


def test_a_gate_never_approved_is_shaded_to_the_end_and_the_title_says_paused() -> None:
    sc = load_scenario(overrides=["duration=20m", "approve=never"])
    sc = sc.model_copy(update={
        "strategy": sc.strategy.model_copy(update={"steps": [CanaryStep(**s) for s in GATE]})})
    record = rehearse(sc)
    assert record.summary["outcome"] == "paused"
    fig = traffic_figure(record)
    (gate,) = by_gid(fig.axes[0], "gate")
    assert gate.get_x() + gate.get_width() == pytest.approx(1200.0)  # waiting when the run ended
    assert fig.axes[0].get_xlim()[1] == pytest.approx(1200.0)
    assert "PAUSED: manual gate: waiting for approval" in fig._suptitle.get_text()


# --- titles -----------------------------------------------------------------------------------


def test_the_title_says_what_ran_and_why_it_ended(rolled_back: Record, promoted: Record) -> None:
    text = traffic_figure(rolled_back)._suptitle.get_text()
    assert "canary rollout" in text and "checkout:1.41.0 → checkout:1.42.0" in text
    assert "ROLLED BACK after 2m56s" in text and "error_rate 0.02366 > 0.01" in text
    assert "PROMOTED" in pods_figure(promoted)._suptitle.get_text()


def test_the_rollback_runbooks_plot_is_not_titled_promoted(tmp_path) -> None:
    run = validate_parameters("rollback", {"duration": "30m"})
    record = execute(run)
    assert (record.summary["strategy"], record.summary["outcome"]) == ("rolling", "promoted")  # the record's words
    text = traffic_figure(record, runbook=run.runbook)._suptitle.get_text()
    assert "rollback runbook (rolling update), checkout:1.42.0 → checkout:1.41.0" in text
    assert "ROLLED BACK to checkout:1.41.0" in text and "PROMOTED" not in text
    paths = write_report(record, tmp_path, runbook="rollback")
    assert [p.name for p in paths] == ["traffic.png", "pods.png"]


# --- comparison -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compared() -> list[Record]:
    return compare_strategies(load_scenario())


def test_comparison_panels_have_their_own_y_and_their_verdict_and_cost(compared: list[Record]) -> None:
    fig = comparison_figure(compared)
    errors = [ax for ax in fig.axes if ax.get_subplotspec().rowspan.start == 0]
    assert len(errors) == len(compared) == 4
    for ax in errors:
        assert ax.get_shared_y_axes().get_siblings(ax) == [ax]
    tops = {rec.summary["strategy"]: ax.get_ylim()[1] for rec, ax in zip(compared, errors, strict=True)}
    # recreate's outage (every request failed while no pod was ready) is on its own, logarithmic scale
    assert tops["recreate"] >= 1.0 and tops["canary"] < 0.1
    assert errors[3].get_yscale() == "symlog" and errors[1].get_yscale() == "linear"
    for rec, ax in zip(compared, errors, strict=True):
        title = ax.get_title(loc="left")
        s = rec.summary
        assert title.startswith(f"{s['strategy']}: ROLLED BACK")
        assert f"{s['failed_requests']:,} failed" in title and "rollout " in title
        assert ax.get_xlim() == rollout_window(rec)  # each over its own rollout


def test_one_palette_for_stable_and_candidate_everywhere(rolled_back: Record, compared: list[Record]) -> None:
    traffic = traffic_figure(rolled_back).axes[0]
    pods = pods_figure(rolled_back).axes[0]
    cmp = comparison_figure(compared).axes[0]
    for version, colour in (("stable", palette.STABLE), ("candidate", palette.CANDIDATE)):
        (line,) = by_gid(traffic, f"version:{version}")
        assert to_hex(line.get_color()) == colour.lower()
        (band,) = by_gid(pods, f"ready:{version}")
        assert to_hex(band.get_facecolor()[0], keep_alpha=False) == colour.lower()
        (line,) = by_gid(cmp, f"version:{version}")
        assert to_hex(line.get_color()) == colour.lower()


# --- the files --------------------------------------------------------------------------------


def _decoded(path) -> np.ndarray:  # noqa: ANN001
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image[..., :3].std() > 0.05  # something drawn, not a blank page
    return image


@pytest.mark.parametrize("which", ["promoted", "rolled_back", "blue_green"])
def test_pngs_are_written_and_decode(which: str, request, tmp_path) -> None:  # noqa: ANN001
    record = request.getfixturevalue(which)
    paths = write_report(record, tmp_path)
    assert [p.name for p in paths] == ["traffic.png", "pods.png"]
    traffic, pods = (_decoded(p) for p in paths)
    assert traffic.shape[1] == 1100 and traffic.shape[0] >= 700  # 11 in at 100 dpi, three panels
    assert pods.shape[1] == 1100 and 500 <= pods.shape[0] < traffic.shape[0]
    assert plot_traffic(record, tmp_path / "full.png", full=True).stat().st_size > 10_000


def test_comparison_png_decodes(compared: list[Record], tmp_path) -> None:
    image = _decoded(plot_comparison(compared, tmp_path / "comparison.png"))
    assert image.shape[1] == round(4.4 * 4 * 100) and image.shape[0] >= 800  # 4.4 in per strategy


def test_a_run_whose_traffic_was_never_counted_still_draws(rolled_back: Record, tmp_path) -> None:
    # a cluster run whose metrics source never answered: decisions, no timeline
    bare = Record(summary={**rolled_back.summary, "requests": None, "failed_requests": None, "world": "kubernetes"},
                  timeline=pd.DataFrame(), decisions=rolled_back.decisions, steps=rolled_back.steps,
                  plan=rolled_back.plan, scenario=rolled_back.scenario)
    fig = traffic_figure(bare)
    assert len(fig.axes) == 2  # no latency to draw: error rate and requests only
    assert fig.axes[0].get_title(loc="left") == "requests not counted"
    assert fig.axes[0].get_xlim() == (at(bare, "start"), at(bare, "complete"))  # the decisions' span
    for path in write_report(bare, tmp_path):
        _decoded(path)


def test_the_window_is_refused_a_negative_context(rolled_back: Record) -> None:
    with pytest.raises(ValueError, match=r"context: got -1; allowed: seconds, 0 or more"):
        rollout_window(rolled_back, context=-1)
