"""Blue-green: bring up the idle colour, check it through the preview, switch all at once."""

from __future__ import annotations

from deploysim.plan import (
    Analyze,
    Pause,
    Plan,
    ScaleCandidate,
    ScaleDownStable,
    Step,
    SwitchTraffic,
)


def compile_blue_green(scenario) -> Plan:  # noqa: ANN001
    from deploysim.strategies import analysis_spec

    s = scenario.strategy
    replicas = scenario.replicas
    preview = replicas if s.preview_replicas is None else min(s.preview_replicas, replicas)
    steps: list[Step] = [ScaleCandidate(preview)]
    if s.pre_promotion_analysis:
        steps.append(Analyze(analysis_spec(scenario.analysis, name="pre-promotion")))
    if s.auto_promotion_seconds is None:
        steps.append(Pause(None))
    elif s.auto_promotion_seconds > 0:
        steps.append(Pause(s.auto_promotion_seconds))
    if preview < replicas:
        steps.append(ScaleCandidate(replicas))
    steps.append(SwitchTraffic())
    if s.post_promotion_analysis:
        steps.append(Analyze(analysis_spec(scenario.analysis, name="post-promotion")))
    steps.append(ScaleDownStable(s.scale_down_delay_seconds))
    return Plan(
        strategy="blue-green",
        replicas=replicas,
        steps=tuple(steps),
        routing="active",
        min_ready_seconds=s.min_ready_seconds,
        progress_deadline_seconds=s.progress_deadline_seconds,
        scale_down_delay=s.scale_down_delay_seconds,
    )
