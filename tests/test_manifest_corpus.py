"""Every manifest of ``tests/manifests/corpus/`` through ``deploysim plan`` and ``deploysim
rehearse``, as a user runs them (issue 11, "Must show").

The corpus holds Argo Rollouts and Flagger manifests written in the shapes the two projects
document and ship (``argoproj/argo-rollouts`` ``examples/``, ``docs/features/``,
``docs/analysis/``; ``fluxcd/flagger`` ``docs/gitbook/tutorials/``, ``docs/gitbook/usage/``,
``kustomize/``), one rollout and what it needs per file, a few files with several rollouts or a
``kind: List``. For each rollout (each ``--name`` where a file holds several, and once without
it) the commands must:

* exit 0 or 2 (``plan``), 0, 1 or 2 (``rehearse``), and both refuse or neither;
* never raise nor print a traceback;
* refuse with one line naming the file, the document and the path, say what is allowed, and
  be a refusal this module lists in :data:`EXPECTED_REFUSALS` with the reason it is right;
* name in a warning, with its path, every field of :data:`NOT_SIMULATED` the file holds
  (``test_unsimulated_field_is_named``: one test per file and field, so a failure is the row).

``python tests/test_manifest_corpus.py`` prints the counts over the corpus for the notes. The
rehearsals here draw no plots (nine tenths of a rehearsal's time; tests/test_cli.py checks them).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from deploysim.cli import main

CORPUS = Path(__file__).parent / "manifests" / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))
# an hour of simulated time: long enough for the corpus's pauses and analyses to play out
REHEARSAL = ["--set", "duration=1h", "--set", "traffic.shape=constant"]

WARNING = "deploysim: warning: "
ERROR = "deploysim: error: "
WARNING_LINE = re.compile(r"^(?P<file>\S+) \(document (?P<doc>\d+)\): (?P<path>\S+?): ")
REFUSAL_LINE = re.compile(r"^(?P<file>.+?) \(document (?P<doc>\d+)\): (?P<path>\S+): (?P<message>.+)$")
# a refusal says what is allowed, in one of these words
ALLOWED_WORDS = re.compile(r"\b(allowed|expected|must|needs?|pick one|give|add|drop|one of|only|"
                           r"a duration like|is not one of|requires)\b")

SEVERAL = ("several rollouts among the manifests", "the file holds two: the command must be told which one")
#: refusals that are right, by case id: (a part of the path and message, why refusing is right)
EXPECTED_REFUSALS: dict[str, tuple[str, str]] = {
    "argo-canary-analysis-pod-template-hash.yaml": (
        "podTemplateHashValue",
        "the hash names a ReplicaSet the Argo controller creates; a rehearsal or a plain cluster has none"),
    **{f"{name}::(no --name)": SEVERAL for name in (
        "argo-rollouts-several.yaml", "argo-rollouts-list-with-hpa.yaml", "argo-canary-workloadref-deployment.yaml",
        "flagger-several-canaries.yaml")},
}

GATE_HOOKS = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion")
SIMULATED_ARGO_PROVIDERS = ("prometheus", "web")
SIMULATED_FLAGGER_PROVIDERS = ("prometheus",)


# (path regex, which values count (None: any), a path whose warning names it too (regex replacement))
Row = tuple[str, Callable[[Any], bool] | None, str]

#: fields not simulated, by the kind of the document that holds them (paths without a List's
#: prefix); a Rollout's ``workloadRef``, a template's metrics and an autoscaler are read in
#: :func:`expected_warnings`, since whether they count depends on the other documents
NOT_SIMULATED: dict[str, tuple[Row, ...]] = {
    "Rollout": (
        (r"spec\.(rollbackWindow|restartAt)", None, ""),
        (r"spec\.paused", bool, ""),
        (r"spec\.strategy\.canary\.dynamicStableScale", bool, ""),
        (r"spec\.strategy\.canary\.(minPodsPerReplicaSet|antiAffinity)", None, ""),
        # the routers a cluster run does not carry out (it sets an HTTPRoute or NGINX Ingress instead)
        (r"spec\.strategy\.canary\.trafficRouting\.(istio|alb|smi|traefik|ambassador|apisix|appMesh)", None, ""),
        (r"spec\.strategy\.canary\.trafficRouting\.(managedRoutes|istio\.destinationRule|"
         r"istio\.virtualServices\[\d+\]\.(tlsRoutes|tcpRoutes))", None, ""),
        (r"spec\.strategy\.canary\.trafficRouting\.nginx\.(annotationPrefix|additionalIngressAnnotations|"
         r"canaryIngressAnnotations)", None, ""),
        (r"spec\.strategy\.canary\.trafficRouting\.plugins\.(?!argoproj-labs/gatewayAPI$)[^.\[]+", None, ""),
        (r"spec\.strategy\.canary\.steps\[\d+\]\.(setHeaderRoute|setMirrorRoute|plugin|experiment)", None, ""),
        (r"spec\.strategy\.blueGreen\.(antiAffinity|abortScaleDownDelaySeconds)", None, ""),
    ),
    "Canary": (
        (r"spec\.autoscalerRef", None, ""),
        (r"spec\.suspend", bool, ""),
        (r"spec\.targetRef\.kind", lambda kind: kind != "Deployment", ""),
        (r"spec\.service\.(retries|timeout|trafficPolicy|match)", None, ""),
        (r"spec\.(analysis|canaryAnalysis)\.mirror", bool, ""),
        # the weight of a mirror the rehearsal does not have: named by the mirror's warning too
        (r"spec\.(analysis|canaryAnalysis)\.mirrorWeight", None, r"spec.\1.mirror"),
        (r"spec\.(analysis|canaryAnalysis)\.(sessionAffinity|match|canaryReadinessThreshold|"
         r"primaryReadinessThreshold)", None, ""),
        (r"spec\.(analysis|canaryAnalysis)\.webhooks\[\d+\]",
         lambda hook: isinstance(hook, dict) and hook.get("type", "rollout") not in GATE_HOOKS, ""),
    ),
    "Deployment": ((r"spec\.paused", bool, ""),),
    # an Argo template's metric whose provider the rehearsal has no stand-in for
    "AnalysisTemplate": ((r"spec\.metrics\[\d+\]", lambda m: isinstance(m, dict) and not set(
        m.get("provider") or {}) <= set(SIMULATED_ARGO_PROVIDERS), ""),),
}
NOT_SIMULATED["ClusterAnalysisTemplate"] = NOT_SIMULATED["AnalysisTemplate"]
AUTOSCALER_KINDS = ("HorizontalPodAutoscaler", "ScaledObject")


@dataclass(frozen=True)
class Doc:
    """One object of a corpus file: its document number (from 1) and, in a List, its prefix."""

    index: int
    prefix: str
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.data.get("metadata") or {}).get("name", ""))

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}


def read_docs(path: Path) -> list[Doc]:
    """Every object of the file, a List's items one by one."""
    docs: list[Doc] = []

    def add(index: int, data: dict[str, Any], prefix: str) -> None:
        if data.get("kind") == "List":
            for i, item in enumerate(data.get("items") or []):
                add(index, item, f"{prefix}items[{i}].")
        else:
            docs.append(Doc(index, prefix, data))

    for index, data in enumerate(yaml.safe_load_all(path.read_text()), start=1):
        if isinstance(data, dict):
            add(index, data, "")
    return docs


def rollouts_of(docs: list[Doc]) -> list[Doc]:
    """The rollouts a file holds as deploysim picks them: Rollouts and Canaries, else Deployments."""
    found = [d for d in docs if d.kind in ("Rollout", "Canary")]
    return found or [d for d in docs if d.kind == "Deployment"]


@dataclass(frozen=True)
class Case:
    file: Path
    name: str | None = None  # --name, when the file holds several rollouts
    several: bool = False  # the file holds several and no --name is given

    @property
    def id(self) -> str:
        return self.file.name + ("::(no --name)" if self.several else f"::{self.name}" if self.name else "")

    def argv(self) -> list[str]:
        return ["--manifest", str(self.file), *(["--name", self.name] if self.name else [])]


def cases_of(path: Path) -> list[Case]:
    names = [d.name for d in rollouts_of(read_docs(path))]
    if len(names) <= 1:
        return [Case(path)]
    return [Case(path, several=True), *(Case(path, n) for n in names)]


CASES = [case for path in FILES for case in cases_of(path)]


@dataclass(frozen=True)
class Expected:
    """A not-simulated field the output must name: a warning on ``document`` whose path is one
    of ``paths`` or below it (``""``: any path of that document), or one of ``alternatives``."""

    row: str
    document: int
    paths: tuple[str, ...]
    alternatives: tuple[tuple[int, str], ...] = ()

    @property
    def label(self) -> str:
        path = self.paths[0]
        item = f", {path[:-1]}" if path else ""
        return path if path and not path.endswith(".") else f"{self.row} (document {self.document}{item})"

    def named_by(self, warnings: list[tuple[int, str]]) -> bool:
        wanted = [(self.document, p) for p in self.paths] + list(self.alternatives)
        return any(doc == d and _below(path, p) for doc, path in warnings for d, p in wanted)


def _below(path: str, named: str) -> bool:
    """Whether a warning's ``path`` is ``named`` or below it; ``named`` ending in a dot (a List
    item's prefix) or empty stands for the whole object.

    >>> _below("spec.service.retries.attempts", "spec.service.retries"), _below("spec.services", "spec.service")
    (True, False)
    >>> _below("items[1].spec.scaleTargetRef", "items[1]."), _below("items[0].kind", "items[1].")
    (True, False)
    """
    if not named or named.endswith("."):
        return path.startswith(named)
    return path == named or path.startswith((named + ".", named + "["))


def walk(value: Any, base: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every key and list item below ``value``, in Argo's path spelling.

    >>> [p for p, _ in walk({"spec": {"steps": [{"setWeight": 5}]}})]
    ['spec', 'spec.steps', 'spec.steps[0]', 'spec.steps[0].setWeight']
    """
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{base}.{key}" if base else str(key)
            yield path, item
            yield from walk(item, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            path = f"{base}[{i}]"
            yield path, item
            yield from walk(item, path)


def _referenced_templates(rollout: Doc) -> set[tuple[str, str]]:
    """(kind, name) of the analysis templates a rollout runs: analysis steps, background and
    blue-green analysis (an experiment's own analyses run only inside the experiment)."""
    found = set()
    for path, value in walk(rollout.spec):
        if re.fullmatch(r"strategy\.(canary\.steps\[\d+\]\.analysis|canary\.analysis|"
                        r"blueGreen\.(pre|post)PromotionAnalysis)\.templates\[\d+\]", path) and isinstance(value, dict):
            kind = "ClusterAnalysisTemplate" if value.get("clusterScope") else "AnalysisTemplate"
            found.add((kind, str(value.get("templateName"))))
        if re.fullmatch(r"(analysis|canaryAnalysis)\.metrics\[\d+\]\.templateRef", path) and isinstance(value, dict):
            found.add(("MetricTemplate", str(value.get("name"))))
    return found


def _rows(doc: Doc, rows: tuple[Row, ...]) -> Iterator[Expected]:
    for path, value in walk(doc.data):
        for pattern, counts, also in rows:
            if re.fullmatch(pattern, path) and (counts is None or counts(value)):
                paths = (path, re.sub(pattern, also, path)) if also else (path,)
                yield Expected(path, doc.index, tuple(doc.prefix + p for p in paths))


def expected_warnings(docs: list[Doc], rollout: Doc) -> list[Expected]:
    """Every field of :data:`NOT_SIMULATED` the rollout, its templates, its target and its
    autoscaler hold."""
    out = list(_rows(rollout, NOT_SIMULATED.get(rollout.kind, ())))
    target = str((rollout.spec.get("targetRef") or {}).get("name", "")) if rollout.kind == "Canary" else ""
    templates = _referenced_templates(rollout)
    by_name = {(d.kind, d.name): d for d in docs}
    ref = rollout.spec.get("workloadRef") if rollout.kind == "Rollout" else None
    if isinstance(ref, dict):
        # the pod template is the scenario's either way; the Deployment's own pods are not simulated
        workload = by_name.get((str(ref.get("kind")), str(ref.get("name"))))
        if workload is None or workload.spec.get("replicas", 1) != 0:
            path = rollout.prefix + "spec.workloadRef"
            out.append(Expected("spec.workloadRef", rollout.index, (path,)))
    for doc in docs:
        if doc is rollout:
            continue
        if (doc.kind, doc.name) in templates and doc.kind != "MetricTemplate":
            out.extend(_rows(doc, NOT_SIMULATED[doc.kind]))
        elif doc.kind == "Deployment" and doc.name == target:
            out.extend(_rows(doc, NOT_SIMULATED["Deployment"]))
        elif doc.kind in AUTOSCALER_KINDS and str((doc.spec.get("scaleTargetRef") or {}).get("name")) in (
                rollout.name, target):
            ref_path = ((rollout.index, rollout.prefix + "spec.autoscalerRef"),)
            out.append(Expected(f"{doc.kind} {doc.name}", doc.index, (doc.prefix,),
                                ref_path if "autoscalerRef" in rollout.spec else ()))
        elif doc.kind == "Experiment":
            out.append(Expected("Experiment", doc.index, (doc.prefix + "kind",)))
    key = "analysis" if "analysis" in rollout.spec else "canaryAnalysis"
    analysis = (rollout.spec.get(key) or {}) if rollout.kind == "Canary" else {}
    for i, metric in enumerate(analysis.get("metrics") or []):
        template = by_name.get(("MetricTemplate", str((metric.get("templateRef") or {}).get("name"))))
        ptype = str(((template.spec.get("provider") or {}).get("type")) or "prometheus") if template else "prometheus"
        if ptype not in SIMULATED_FLAGGER_PROVIDERS:
            path = f"spec.{key}.metrics[{i}]"
            out.append(Expected(f"{path} ({ptype} MetricTemplate)", rollout.index, (rollout.prefix + path,)))
    return out


ROWS = [(case, e) for case in CASES if not case.several
        for e in expected_warnings(read_docs(case.file), next(
            d for d in rollouts_of(read_docs(case.file)) if case.name in (None, d.name)))]


@dataclass
class Run:
    code: int | None
    out: str
    err: str
    raised: str = ""  # the traceback of an exception that escaped main()

    def lines(self, prefix: str) -> list[str]:
        return [line[len(prefix):] for line in self.err.splitlines() if line.startswith(prefix)]

    warnings = property(lambda self: self.lines(WARNING))

    def warned_paths(self) -> list[tuple[int, str]]:
        return [(int(m["doc"]), m["path"]) for w in self.warnings if (m := WARNING_LINE.match(w))]


def _no_plot(record: Any, path: str | Path) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def run_cli(argv: list[str]) -> Run:
    """``deploysim ARGV`` in this process, its output captured and any escaping exception kept."""
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    raised = ""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            mock.patch.multiple("deploysim.report", plot_traffic=_no_plot, plot_pods=_no_plot):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception:  # noqa: BLE001 - an exception escaping main() is what this module looks for
            raised = traceback.format_exc()
    return Run(code, out.getvalue(), err.getvalue(), raised)


@functools.cache
def planned(case: Case) -> Run:
    return run_cli(["plan", *case.argv()])


def rehearsed(case: Case, out: Path) -> Run:
    return run_cli(["rehearse", *case.argv(), *REHEARSAL, "--out", str(out)])


def refusal_problem(case: Case, run: Run) -> str:
    """Why a refusal is not a valid one ('' when it is)."""
    lines = [line for line in run.err.splitlines() if line.strip() and not line.startswith(WARNING)]
    if len(lines) != 1 or not lines[0].startswith(ERROR):
        return f"a refusal is one line 'deploysim: error: ...'; got {lines}"
    m = REFUSAL_LINE.match(lines[0][len(ERROR):])
    if m is None:
        return f"the refusal does not name file, document and path: {lines[0]}"
    if case.file.name not in m["file"]:
        return f"the refusal names {m['file']!r}, not the file given"
    if not ALLOWED_WORDS.search(m["message"]):
        return f"the refusal does not say what is allowed: {m['message']}"
    expected = EXPECTED_REFUSALS.get(case.id)
    if expected is None:
        return f"not a refusal this module expects (add it to EXPECTED_REFUSALS with why it is right): {lines[0]}"
    if expected[0] not in f"{m['path']}: {m['message']}":
        return f"refused for another reason than {expected[0]!r}: {m['path']}: {m['message']}"
    return ""


def test_the_corpus_has_the_documented_shapes():
    assert 60 <= len(FILES) <= 100
    every = "\n".join(p.read_text() for p in FILES)
    for needle in ("istio:", "nginx:", "alb:", "smi:", "traefik:", "ambassador:", "apisix:", "appMesh:",
                   "argoproj-labs/gatewayAPI:", "destinationRule:", "setHeaderRoute:", "setMirrorRoute:",
                   "experiment:", "workloadRef:", "prePromotionAnalysis:", "postPromotionAnalysis:",
                   "kind: HorizontalPodAutoscaler", "kind: VirtualService", "kind: DestinationRule",
                   "kind: Ingress", "kind: ClusterAnalysisTemplate", "kind: List", "podTemplateHashValue",
                   "retries:", "autoscalerRef:", "dynamicStableScale:", "match:", "flagger-loadtester"):
        assert needle in every, needle
    for provider in ("prometheus", "web", "job", "datadog", "newRelic", "wavefront", "cloudWatch", "kayenta",
                     "graphite", "influxdb", "skywalking", "plugin"):
        assert re.search(rf"^\s+{provider}:\s*$", every, re.M), provider
    for mesh in ("istio", "linkerd", "nginx", "contour", "gloo", "gatewayapi:v1", "kubernetes", "appmesh:v1beta2",
                 "traefik", "skipper", "apisix", "kuma", "knative"):
        assert re.search(rf"^  provider: {re.escape(mesh)}$", every, re.M), mesh
    for template in ("prometheus", "datadog", "cloudwatch", "newrelic", "graphite", "influxdb", "stackdriver"):
        assert re.search(rf"^\s+type: {template}$", every, re.M), template
    for hook in (*GATE_HOOKS, "pre-rollout", "rollout", "post-rollout", "rollback", "event"):
        assert f"type: {hook}\n" in every, hook
    assert sum(len(rollouts_of(read_docs(p))) > 1 for p in FILES) >= 3


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan_and_rehearse(case, tmp_path):
    plan, rehearsal = planned(case), rehearsed(case, tmp_path)
    for run in (plan, rehearsal):
        assert not run.raised and "Traceback" not in run.err, run.raised or run.err
    assert plan.code in (0, 2), (plan.code, plan.err)
    assert rehearsal.code in (0, 1, 2), (rehearsal.code, rehearsal.err)
    assert (plan.code == 2) == (rehearsal.code == 2), "plan and rehearse refuse the same manifests"
    if plan.code == 2:
        assert refusal_problem(case, plan) == ""
        assert plan.lines(ERROR) == rehearsal.lines(ERROR)
        return
    stray = [line for line in plan.err.splitlines() if line.strip() and not line.startswith(WARNING)]
    assert not stray, "stderr holds warnings only"
    unplaced = [w for w in plan.warnings if not WARNING_LINE.match(w)]
    assert not unplaced, "every warning names its file, document and path"
    assert plan.out.strip(), "plan prints the plan"
    assert "expected duration with a healthy candidate" in plan.out
    assert rehearsal.warnings == plan.warnings, "both commands name the same fields"
    outcome = json.loads((tmp_path / "summary.json").read_text())["outcome"]
    assert (rehearsal.code == 0) == (outcome == "promoted"), (rehearsal.code, outcome)
    assert f": {outcome}" in rehearsal.out.splitlines()[0]


@pytest.mark.parametrize("case,expected", ROWS, ids=[f"{c.id}::{e.label}" for c, e in ROWS])
def test_unsimulated_field_is_named(case, expected):
    run = planned(case)
    assert expected.named_by(run.warned_paths()), (
        f"{case.file.name} (document {expected.document}): {expected.label} is not simulated "
        f"and no warning names it; warnings: {run.warnings}")


@dataclass
class Counts:  # what the __main__ block prints
    files: int
    rollouts: int
    cases: int
    planned: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    fields: Counter[str] = field(default_factory=Counter)
    unnamed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _field(path: str) -> str:
    """A warning's path without its List prefix and with list indices as [*]."""
    return re.sub(r"\[\d+\]", "[*]", re.sub(r"^(items\[\d+\]\.)+", "", path))


def _reason(run: Run) -> str:
    """A refusal's path and message with names and places left out, so alike refusals count together.

    >>> _reason(Run(2, "", "deploysim: error: f.yaml (document 3): items[1].metadata.name: several "
    ...             "rollouts: Rollout 'a' (f.yaml, document 3); pick one"))
    "metadata.name: several rollouts: Rollout '…'; pick one"
    """
    m = REFUSAL_LINE.match(run.lines(ERROR)[0]) if run.lines(ERROR) else None
    if m is None:
        return run.err.strip()[:100]
    message = re.sub(r"\s*\([^)]*\)", "", re.sub(r"'[^']*'", "'…'", m["message"]))
    return f"{_field(m['path'])}: {message[:100]}"


def corpus_counts() -> Counts:
    counts = Counts(len(FILES), sum(len(rollouts_of(read_docs(p))) for p in FILES), len(CASES))
    with tempfile.TemporaryDirectory() as tmp:
        for n, case in enumerate(CASES):
            plan = planned(case)
            rehearsal = rehearsed(case, Path(tmp) / str(n))
            for command, run in (("plan", plan), ("rehearse", rehearsal)):
                if run.raised or "Traceback" in run.err:
                    last = (run.raised or run.err).strip().splitlines()[-1]
                    counts.problems.append(f"{case.id}: {command} raised {last}")
            if plan.code == 0:
                counts.planned += 1
                counts.fields.update(_field(path) for _, path in plan.warned_paths())
            elif plan.code == 2:
                counts.refused[_reason(plan)] += 1
                if problem := refusal_problem(case, plan):
                    counts.problems.append(f"{case.id}: {problem}")
            summary = Path(tmp) / str(n) / "summary.json"
            if rehearsal.code in (0, 1) and summary.exists():
                counts.outcomes[json.loads(summary.read_text())["outcome"]] += 1
    counts.unnamed = [f"{c.id}: {e.label}" for c, e in ROWS
                      if not e.named_by(planned(c).warned_paths())]
    return counts


def print_counts(c: Counts) -> None:
    other = {k: v for k, v in c.outcomes.items() if k not in ("promoted", "rolled_back")}
    print(f"files {c.files}, rollouts {c.rollouts}, cases {c.cases} (each rollout; each file of several also without --name)")
    raised = c.cases - c.planned - sum(c.refused.values())
    print(f"planned {c.planned}, refused {sum(c.refused.values())}, raised {raised}; rehearsed {sum(c.outcomes.values())}: promoted {c.outcomes['promoted']}, "
          f"rolled back {c.outcomes['rolled_back']}, other {sum(other.values())} {dict(sorted(other.items()))}")
    print(f"refused {sum(c.refused.values())}:")
    for reason, n in c.refused.most_common():
        print(f"  {n} x {reason}")
    print(f"warnings per field ({sum(c.fields.values())} in all):")
    for name, n in sorted(c.fields.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:3} {name}" + (" (a document of a kind the rehearsal does not read, skipped)" if name == "kind" else ""))
    print(f"not-simulated fields (table rows) {len(ROWS)}, named {len(ROWS) - len(c.unnamed)}, "
          f"not yet named {len(c.unnamed)}:" + "".join(f"\n  {row}" for row in c.unnamed))
    print(f"problems {len(c.problems)}:" + "".join(f"\n  {p}" for p in c.problems))


if __name__ == "__main__":
    print_counts(corpus_counts())
