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
from deploysim.record import TIMELINE_COLUMNS, Record
from deploysim.report import plot_traffic, write_report
from deploysim.runbooks import validate_parameters
from deploysim.runbooks.session import execute
from deploysim.scenario import CanaryStep, Check, Fault, load_scenario
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


def levels(line) -> list[tuple[float, float, float]]:  # noqa: ANN001
    """A stepped line's level segments as (from, to, value); gaps (NaN) left out."""
    xs, ys = np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)
    return [(xs[i], xs[i + 1], ys[i]) for i in range(0, len(xs) - 1, 2) if np.isfinite(ys[i])]


def rate_by_hand(timeline: pd.DataFrame, version: str, a: float, b: float) -> float:
    """Failed over requests of ``version`` summed over the timeline's bins inside [a, b]."""
    inside = timeline[(timeline["start"] >= a - 1e-9) & (timeline["time"] <= b + 1e-9)]
    return inside[f"failed_{version}"].sum() / inside[f"requests_{version}"].sum()


def legend_labels(fig) -> list[str]:  # noqa: ANN001
    return [t.get_text() for t in fig.legends[0].get_texts()]


def with_changes(record: Record, **changes) -> Record:  # noqa: ANN003
    """``record`` with some of its parts replaced."""
    parts = {k: getattr(record, k) for k in ("summary", "timeline", "decisions", "steps", "plan", "scenario")}
    return Record(**{**parts, **changes})


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
    drawn = levels(line)
    lo, hi = rollout_window(rolled_back)
    t = rolled_back.timeline
    served = t[(t["time"] >= lo) & (t["start"] <= hi) & (t["requests_candidate"] > 0)]
    assert len(drawn) == len(served) > 10  # a level per bin the candidate served in the window
    for a, b, y in drawn:  # each the failed over the requests of the bins it spans, summed by hand
        assert y == pytest.approx(rate_by_hand(t, "candidate", a, b))
    assert 0.01 < max(y for _, _, y in drawn) < 0.1  # a 2% regression as a rate, not ~0.7 failed requests per second
    assert ax.get_ylabel().startswith("error rate")


def test_a_bin_cut_to_a_sliver_is_drawn_within_its_neighbour() -> None:
    # five bins of 10 s; the third cut at 29 s by a decision, its last second a sliver of its own
    t = pd.DataFrame({"start": [0.0, 10.0, 20.0, 29.0, 30.0, 40.0], "time": [10.0, 20.0, 29.0, 30.0, 40.0, 50.0],
                      "seconds": [10.0, 10.0, 9.0, 1.0, 10.0, 10.0],
                      "requests_stable": [900, 800, 720, 80, 900, 1000], "failed_stable": [9, 8, 7, 1, 9, 10],
                      "requests_candidate": [100, 200, 90, 10, 100, 0], "failed_candidate": [1, 2, 1, 5, 2, 0]})
    d = [{"at": 0.0, "step": 0, "kind": "start", "reason": "", "values": {}},
         {"at": 29.0, "step": 0, "kind": "step", "reason": "", "values": {}},
         {"at": 50.0, "step": 0, "kind": "promote", "reason": "every step passed", "values": {}}]
    ax = traffic_figure(Record({}, t, d, [], {})).axes[0]
    (line,) = by_gid(ax, "version:candidate")
    # 1/100, 2/200, (1 + 5)/(90 + 10): the sliver's 5 of 10 folded in, not a 50% spike; 2/100; none served last
    assert np.ravel(levels(line)).tolist() == pytest.approx([0, 10, 0.01, 10, 20, 0.01, 20, 30, 0.06, 30, 40, 0.02])
    (stable,) = by_gid(ax, "version:stable")
    assert [y for _, _, y in levels(stable)] == pytest.approx([0.01, 0.01, 0.01, 0.01, 0.01])


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


def _judged_on_latency_only(judge: str) -> Record:
    """A healthy candidate whose analysis bounds latency only, at 150 ms: its ~190 ms fails."""
    sc = load_scenario().with_healthy_candidate()
    analysis = sc.analysis.model_copy(update={"judge": judge, "checks": [Check(metric="latency_p99", max=150.0)]})
    return rehearse(sc.model_copy(update={"analysis": analysis}))


def test_a_marker_shows_its_own_metrics_verdict_not_the_measurements() -> None:
    # the sequential judge tests the error rate itself (its e-value) and bounds latency
    record = _judged_on_latency_only("sequential")
    (m,) = measures(record)
    assert m["reason"].startswith("step-3: Failed (latency_p99") and m["values"]["e_value"] < 20
    fig = traffic_figure(record)
    (rate,) = by_gid(fig.axes[0], "measurements:error_rate")
    (latency,) = by_gid(fig.axes[1], "measurements:latency_p99")
    assert colours(rate) == [palette.PASS.lower()]  # its error rate passed the test; latency failed it
    assert colours(latency) == [palette.FAIL.lower()]
    # the threshold judge keeps no error rate when no check bounds it: a hollow cross, not a red one
    ax = traffic_figure(_judged_on_latency_only("threshold")).axes[0]
    (cross,) = by_gid(ax, "measurements:not-judged")
    assert colours(cross) == [palette.NOT_JUDGED.lower()]
    assert not by_gid(ax, "measurements:no-value") and not by_gid(ax, "measurements:error_rate")


def test_a_value_its_analysis_did_not_judge_is_drawn_neutral(rolled_back: Record) -> None:
    # an analysis that bounds latency only, failed at 900 ms, with the 0.01% error rate it also read
    plan = {**rolled_back.plan, "steps": [
        {**s, "analysis": {**s["analysis"], "checks": [{"metric": "latency_p99", "max": 400.0, "min": None}]}}
        if s.get("kind") == "analyze" else s for s in rolled_back.plan["steps"]]}
    decisions = [{**d, "reason": "step-3: Failed (latency_p99 900 > 400)",
                  "values": {"error_rate": 0.0001, "latency_p99": 900.0, "requests": 1733.0}}
                 if d["kind"] == "measure" else d for d in rolled_back.decisions]
    fig = traffic_figure(with_changes(rolled_back, plan=plan, decisions=decisions))
    (rate,) = by_gid(fig.axes[0], "measurements:error_rate")
    (latency,) = by_gid(fig.axes[1], "measurements:latency_p99")
    assert colours(rate) == [palette.NOT_JUDGED.lower()] and colours(latency) == [palette.FAIL.lower()]
    assert "measurement not judged on this metric" in legend_labels(fig)


def test_marks_outside_the_window_are_neither_drawn_nor_named(rolled_back: Record) -> None:
    # the window is 02:00-10:56; a node lost at 7m (inside) and at 1:30:00, an outage, a gate,
    # the world out of reach and a resumed run, all after it
    far = [{"at": 6800.0, "step": 0, "kind": "outage", "reason": "out of reach", "values": {}},
           {"at": 6850.0, "step": 0, "kind": "recovered", "reason": "answering again", "values": {}},
           {"at": 7000.0, "step": 0, "kind": "resumed", "reason": "the run resumed", "values": {}}]
    run = with_changes(
        rolled_back, decisions=rolled_back.decisions + far,
        steps=rolled_back.steps + [{"kind": "pause", "describe": "pause until approved (manual gate)",
                                    "start": 6000.0, "end": 6100.0}],
        scenario={**rolled_back.scenario, "faults": [
            {"kind": "node_failure", "at": 420.0, "node": 1}, {"kind": "node_failure", "at": 5400.0, "node": 0},
            {"kind": "dependency_outage", "at": 6200.0, "duration": 60.0, "error_rate": 0.2}]})
    assert rollout_window(run) == rollout_window(rolled_back)
    for fig in (traffic_figure(run), pods_figure(run), comparison_figure([run])):
        ax = fig.axes[0]
        labels = legend_labels(fig)
        assert "node 1 lost" in labels and "pause" in labels and "abort" in labels  # inside: drawn and named
        (node,) = by_gid(ax, "fault:node_failure")
        assert list(node.get_xdata()) == [420.0, 420.0]
        for label in ("node 0 lost", "dependency outage: 20% of requests fail", "manual gate", "out of reach",
                      "run resumed", "resumed"):
            assert label not in labels
        for gid in ("gate", "fault:dependency_outage", "fault:outage", "fault:resumed", "decision:resumed"):
            assert not by_gid(ax, gid), gid


def test_the_y_axes_fit_what_the_window_shows(rolled_back: Record) -> None:
    # a measurement an hour after the window, at a 60% error rate and 5 s: not drawn, not scaled for
    late = {"at": 7000.0, "step": 2, "kind": "measure", "reason": "step-3: Failed (error_rate 0.6 > 0.01)",
            "values": {"error_rate": 0.6, "latency_p99": 5000.0, "requests": 900.0}}
    before, after = traffic_figure(rolled_back), traffic_figure(with_changes(rolled_back,
                                                                             decisions=rolled_back.decisions + [late]))
    for was, now in zip(before.axes[:2], after.axes[:2], strict=True):
        assert now.get_ylim() == pytest.approx(was.get_ylim())
    assert after.axes[0].get_yscale() == "linear" and after.axes[0].get_ylim()[1] < 0.05
    assert after.axes[1].get_ylim()[1] < 1000.0
    (dots,) = by_gid(after.axes[0], "measurements:error_rate")
    assert len(dots.get_offsets()) == 1  # the one inside the window


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
    drawn = levels(preview)
    assert len(drawn) >= 1
    for a, b, y in drawn:
        assert y == pytest.approx(rate_by_hand(blue_green.timeline, "preview", a, b))
    # the preview's error rate is what failed the pre-promotion analysis: above the 1% bound
    assert max(y for _, _, y in drawn) > 0.01
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


@pytest.mark.parametrize("empty", [
    pd.DataFrame(),
    # what a world that counted no traffic gives: the columns, no rows, object cells
    pd.DataFrame(columns=list(TIMELINE_COLUMNS)),
], ids=["no-columns", "columns-no-rows"])
def test_a_run_whose_traffic_was_never_counted_still_draws(rolled_back: Record, tmp_path, empty) -> None:
    # a cluster run whose metrics source never answered: decisions, no timeline
    bare = Record(summary={**rolled_back.summary, "requests": None, "failed_requests": None, "world": "kubernetes"},
                  timeline=empty, decisions=rolled_back.decisions, steps=rolled_back.steps,
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
