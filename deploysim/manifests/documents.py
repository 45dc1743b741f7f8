"""Reading manifests: YAML documents, their kinds, and a Reader whose errors name the path.

Every reader (``argo``, ``flagger``, ``deployment``) works through a :class:`Reader` over one
:class:`Document`: typed fields by path, a :class:`~deploysim.errors.ManifestError` naming
the file, the document (from 1) and the path for what is wrong, and a warning with its path
for what the rehearsal does not model. A reader returns an :class:`ImportedRollout`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from deploysim import yamlsafe
from deploysim.durations import parse_duration
from deploysim.errors import ManifestError
from deploysim.plan import Plan
from deploysim.scenario import _int_or_percent

ManifestPaths = Sequence[str | Path] | str | Path
WEIGHT_HELP = "a weight is a whole number from 0 to 100"

# kind -> API group; a rollout kind is read by the reader of that kind (deploysim.manifests.READERS)
ROLLOUT_KINDS = {"Rollout": "argoproj.io", "Canary": "flagger.app", "Deployment": "apps"}
TEMPLATE_KINDS = {
    "AnalysisTemplate": "argoproj.io",
    "ClusterAnalysisTemplate": "argoproj.io",
    "MetricTemplate": "flagger.app",
}
# objects that travel with a rollout and change nothing the rehearsal models
COMPANION_KINDS = {
    "Service", "Ingress", "HTTPRoute", "GRPCRoute", "Gateway", "VirtualService", "DestinationRule",
    "TrafficSplit", "TraefikService", "Mapping", "ApisixRoute", "HorizontalPodAutoscaler",
    "ConfigMap", "Secret", "ServiceAccount", "Namespace", "PodDisruptionBudget", "NetworkPolicy",
    "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceMonitor", "PodMonitor",
    "AlertProvider", "ScaledObject", "HTTPScaledObject", "Upstream", "TrafficTarget",
}


@dataclass(frozen=True)
class Document:
    """One object of one file: a YAML document, or an item of a ``kind: List`` document.
    ``index`` counts documents from 1 as people do; ``prefix`` is the item's place in its List
    (``items[2].``), put before every path an error or warning names."""

    file: str
    index: int
    data: dict[str, Any]
    prefix: str = ""

    @property
    def kind(self) -> str:
        return str(self.data.get("kind"))

    @property
    def group(self) -> str:
        api = str(self.data.get("apiVersion") or "")
        return api.rsplit("/", 1)[0] if "/" in api else ""

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    def error(self, path: str, message: str) -> ManifestError:
        return ManifestError(self.file, self.index, self.prefix + path, message)

    def describe(self) -> str:
        """``Rollout 'checkout' (rollouts.yaml, document 2)``, for messages that list objects."""
        where = f"{Path(self.file).name}, document {self.index}" + (f", {self.prefix[:-1]}" if self.prefix else "")
        return f"{self.kind} {self.name!r} ({where})"


class Reader:
    """Reads one document: typed fields by path, errors that name the path, and warnings
    for what the rehearsal does not model."""

    def __init__(self, doc: Document, warnings: list[str]) -> None:
        self.doc = doc
        self.warnings = warnings

    def fail(self, path: str, message: str) -> NoReturn:
        raise self.doc.error(path, message)

    def warn(self, path: str, message: str) -> None:
        note = f"{Path(self.doc.file).name} (document {self.doc.index}): {self.doc.prefix}{path}: {message}"
        if note not in self.warnings:
            self.warnings.append(note)

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"got {value!r}; expected a mapping of keys")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"got {value!r}; expected a list")
        return value

    def integer(self, m: dict[str, Any], key: str, path: str, default: int | None,
                lo: int | None = None, hi: int | None = None, allowed: str = "") -> int | None:
        """An int, or a string of digits (Kubernetes' int-or-string fields)."""
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{path}.{key}", f"got {m[key]!r}; {allowed or 'expected a whole number'}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = allowed or (f"must be from {lo} to {hi}" if hi is not None else f"must be {lo} or more")
            self.fail(f"{path}.{key}", f"got {value!r}; {bounds}")
        return value

    def weight(self, m: dict[str, Any], key: str, path: str) -> int:
        """A traffic weight field, 0 to 100 (0 when unset)."""
        return self.integer(m, key, path, 0, lo=0, hi=100, allowed=WEIGHT_HELP) or 0

    def boolean(self, m: dict[str, Any], key: str, path: str, default: bool) -> bool:
        if key not in m or m[key] is None:
            return default
        if not isinstance(m[key], bool):
            self.fail(f"{path}.{key}", f"got {m[key]!r}; expected true or false")
        return m[key]

    def string(self, m: dict[str, Any], key: str, path: str, default: str | None = None) -> str | None:
        if key not in m or m[key] is None:
            return default
        if not isinstance(m[key], str | int | float) or isinstance(m[key], bool):
            self.fail(f"{path}.{key}", f"got {m[key]!r}; expected a string")
        return str(m[key])

    def name(self, m: dict[str, Any], key: str, path: str, missing: str) -> str:
        """A name that must be given; ``missing`` says what it is for."""
        value = self.string(m, key, path)
        if not value:
            self.fail(f"{path}.{key}", f"missing; {missing}")
        return value

    def duration(self, value: Any, path: str, numbers: bool = True) -> float:
        """Go durations (``30s``, ``5m``, ``1h30m``, ``250ms``); a bare number is seconds
        where the tool allows it (Argo Rollouts does, Flagger does not)."""
        try:
            return parse_duration(value, numbers=numbers, days=False)
        except ValueError as exc:
            self.fail(path, f"got {value!r}; {exc}")

    def int_or_percent(self, m: dict[str, Any], key: str, path: str, default: int | str) -> int | str:
        if key not in m or m[key] is None:
            return default
        try:
            return _int_or_percent(m[key])
        except ValueError as exc:
            self.fail(f"{path}.{key}", f"got {m[key]!r}; {exc}")

    def unused(self, m: dict[str, Any], path: str, used: Iterable[str], quiet: Iterable[str] = ()) -> None:
        """Warn, by path, about every key the rehearsal neither uses nor can safely ignore."""
        known = set(used) | set(quiet)
        for key in m:
            if key not in known:
                self.warn(f"{path}.{key}", "not simulated; the rehearsal ignores it")


@dataclass
class ImportedRollout:
    """What the manifests say, before it meets a scenario.

    ``build(replicas, judge)`` makes the plan; ``strategy`` holds the scenario's strategy
    fields the manifest decides (for the record and for the world's blue-green preview).
    """

    kind: str  # canary, blue-green, rolling, recreate
    source: str  # "Rollout checkout", "Canary podinfo", ...
    replicas: int | None
    strategy: dict[str, Any]
    build: Callable[[int, str], Plan]
    warnings: list[str] = field(default_factory=list)
    pod: dict[str, Any] = field(default_factory=dict)  # the scenario's pod keys the pod template decides


@dataclass(frozen=True)
class Catalog:
    """The documents a rollout may refer to: templates by (kind, name), Deployments by name,
    and the HorizontalPodAutoscalers that may scale it."""

    templates: dict[tuple[str, str], Document] = field(default_factory=dict)
    deployments: dict[str, Document] = field(default_factory=dict)
    autoscalers: list[Document] = field(default_factory=list)

    def template(self, r: Reader, kind: str, name: str, path: str) -> Document:
        """The template a rollout names at ``path``; an error there when it was not given."""
        doc = self.templates.get((kind, name))
        if doc is None:
            r.fail(path, f"{kind} {name!r} is not among the manifests; pass its file with another --manifest")
        return doc


# a reader of one rollout kind: the Reader over its document, the templates and Deployments beside it
RolloutReader = Callable[[Reader, Catalog], ImportedRollout]


def _as_list(manifests: ManifestPaths) -> list[Path]:
    if isinstance(manifests, str | Path):
        return [Path(manifests)]
    return [Path(m) for m in manifests]


def read_documents(manifests: ManifestPaths) -> list[Document]:
    """Every non-empty YAML document of every file, in order."""
    docs: list[Document] = []
    for path in _as_list(manifests):
        name = str(path)
        try:
            text = yamlsafe.read_text(path)
        except OSError as exc:
            raise ManifestError(name, 0, "(file)", f"cannot read the file ({exc.strerror})") from None
        except ValueError as exc:
            raise ManifestError(name, 0, "(file)", f"cannot be read: {exc}") from None
        index = 0
        try:
            for index, data in enumerate(yamlsafe.load_all(text), start=1):  # noqa: B007
                if data is None:
                    continue
                if not isinstance(data, dict):
                    raise ManifestError(name, index, "(document)",
                                        f"got a {type(data).__name__}; a manifest is a mapping with kind and apiVersion")
                docs.extend(list_items(Document(name, index, data)))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
            raise ManifestError(name, index + 1, "(yaml)", f"not valid YAML{where}: {reason[:200]}") from None
    if not docs:
        raise ManifestError(", ".join(str(p) for p in _as_list(manifests)) or "(none)", 0, "(file)",
                            "no manifests found; expected a Rollout, a Canary or a Deployment")
    return docs


def list_items(doc: Document) -> list[Document]:
    """The objects of a document: itself, or each item of a ``kind: List`` (``apiVersion: v1``,
    as ``kubectl get -o yaml`` writes several objects), Lists within it read the same way.

    >>> items = list_items(Document("f.yaml", 1, {"apiVersion": "v1", "kind": "List", "items": [
    ...     {"kind": "Service"}, {"apiVersion": "v1", "kind": "List", "items": [{"kind": "Rollout"}]}]}))
    >>> [(d.kind, d.prefix) for d in items]
    [('Service', 'items[0].'), ('Rollout', 'items[1].items[0].')]
    """
    if doc.data.get("kind") != "List":
        return [doc]
    if doc.data.get("apiVersion") != "v1":
        raise doc.error("apiVersion", f"got {doc.data.get('apiVersion')!r}; a List is v1")
    items = doc.data.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise doc.error("items", f"got {items!r}; a List's items are a list of objects")
    out: list[Document] = []
    for i, item in enumerate(items):
        here = f"{doc.prefix}items[{i}]"
        if not isinstance(item, dict):
            raise ManifestError(doc.file, doc.index, here, f"got {item!r}; an item is a mapping with kind and apiVersion")
        out.extend(list_items(Document(doc.file, doc.index, item, f"{here}.")))
    return out


def document_role(doc: Document) -> str:
    """'rollout', 'template', 'companion' or 'unknown' (a kind the rehearsal does not read,
    skipped with a warning); a missing kind, or a known kind of another API group, is an error."""
    kind = doc.data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise doc.error("kind", "missing; expected Rollout, Canary, Deployment or an analysis template")
    expected = ROLLOUT_KINDS.get(kind) or TEMPLATE_KINDS.get(kind)
    if expected is not None:
        if doc.group != expected:
            raise doc.error("apiVersion", f"got {doc.data.get('apiVersion')!r}; a {kind} is "
                            f"{expected}/{'v1' if expected == 'apps' else '...'}")
        return "rollout" if kind in ROLLOUT_KINDS else "template"
    if kind in COMPANION_KINDS:
        return "companion"
    return "unknown"


def skipped_note(doc: Document) -> str:
    """The warning for a document of a kind the rehearsal does not read (an Argo Experiment,
    an Istio or Gateway object not among the companions, a CRD of the team's own).

    >>> print(skipped_note(Document("all.yaml", 3, {"kind": "Rolout", "metadata": {"name": "web"}})))
    all.yaml (document 3): kind: Rolout 'web' skipped (did you mean Rollout?); the rehearsal reads Rollout, Canary, Deployment, AnalysisTemplate, ClusterAnalysisTemplate, MetricTemplate
    """
    known = [*ROLLOUT_KINDS, *TEMPLATE_KINDS]
    close = difflib.get_close_matches(doc.kind, known, n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return (f"{Path(doc.file).name} (document {doc.index}): {doc.prefix}kind: {doc.kind} {doc.name!r} skipped{hint}; "
            f"the rehearsal reads {', '.join(known)}")
