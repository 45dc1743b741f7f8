"""Staging before production: image digests, the gate's decisions, its parameters, and what
the record keeps (run.release, run.lint); the cluster side is tests/kube/test_staging_gate.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kubefake import FakeCluster
from kubernetes import client

from deploysim.errors import ClusterError, ParameterError, exit_code
from deploysim.kube.store import (
    KEPT_RELEASES,
    RELEASES_KEY,
    ClusterStore,
    keep_release,
    read_releases,
)
from deploysim.release import (
    Evidence,
    ReleaseRefused,
    Wanted,
    decide,
    keep_after,
    parse_reference,
    records_evidence,
    refusal,
    releases_evidence,
)
from deploysim.runbooks import validate_parameters

D = "sha256:" + "d" * 64
E = "sha256:" + "e" * 64
IMAGE_D = f"checkout:1.43.0@{D}"
IMAGE_E = f"checkout:1.44.0@{E}"
BASE = {"duration": "20m", "candidate": {"error_rate": 0.001}}


@pytest.fixture(autouse=True)
def _no_freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    # a production run on a cluster is frozen on Friday afternoons: these tests run any day
    monkeypatch.setenv("DEPLOYSIM_FREEZE", "off")


# --- image references: the distribution/reference grammar -------------------------------------

VALID = [
    # image, domain, path, tag, digest
    (f"web@{D}", None, "web", None, D),
    (f"web:1.4.2@{D}", None, "web", "1.4.2", D),
    (f"ghcr.io/acme/web:1.4.2@{D}", "ghcr.io", "acme/web", "1.4.2", D),
    (f"localhost:5000/web@{D}", "localhost:5000", "web", None, D),
    (f"[::1]:5000/team/web:v2@{D}", "[::1]:5000", "team/web", "v2", D),
    ("team/web:1.0", None, "team/web", "1.0", None),  # "team" is a path component, not a registry
    ("a__b/c--d.e_f:Tag_1.x-y", None, "a__b/c--d.e_f", "Tag_1.x-y", None),
    ("docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
    ("web@sha512:" + "0" * 128, None, "web", None, "sha512:" + "0" * 128),
]
INVALID = [
    ("Web:1.0", "must be lower case"),
    (f"web@sha256:{'d' * 63}", "64 lower-case hex digits, got 63"),
    (f"web@sha256:{'D' * 64}", "with upper case"),  # [[:xdigit:]] matches, go-digest does not
    ("web@md5:" + "0" * 32, "algorithm md5 is not one of sha256"),
    ("web@sha256:abc", "not an image reference"),  # fewer than 32 hex digits: not a digest at all
    (":1.0", "not an image reference"),
    ("web:", "not an image reference"),
    ("-web:1.0", "not an image reference"),
    ("web:" + "x" * 129, "not an image reference"),  # a tag is at most 128 characters
    ("web:.1", "not an image reference"),  # a tag starts with a word character
    ("web/:1", "not an image reference"),
    ("a" * 256 + ":1", "at most 255 characters"),
    ("", "empty image reference"),
]


@pytest.mark.parametrize(("image", "domain", "path", "tag", "digest"), VALID)
def test_valid_references_split_as_the_grammar_does(image, domain, path, tag, digest) -> None:
    ref = parse_reference(image)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)


@pytest.mark.parametrize(("image", "why"), INVALID)
def test_invalid_references_are_refused_saying_why(image, why) -> None:
    with pytest.raises(ValueError) as info:
        parse_reference(image)
    assert why in str(info.value)


# --- the gate's decisions ---------------------------------------------------------------------


def ev(run: str, digest: str | None, outcome: str = "promoted", exit: int | None = 0, env: str | None = "staging",
       target: str = "kubernetes", at: str = "2026-12-01T10:00:00Z", **more) -> Evidence:
    return Evidence("record folder runs", run, env, digest, None, outcome, exit, at, target, **more)


DECISIONS = [
    # id, evidence, passed, a line found
    ("no-record", [], False, "no runs there"),
    ("rolled-back", [ev("r1", D, "rolled_back", 1)], False, "staging run r1 of this digest rolled back (exit code 1)"),
    ("other-digest", [ev("r2", E)], False, "1 promoted staging run(s) of other digests (latest: sha256:eeeeeeeeeeee"),
    ("rehearsal", [ev("r3", D, target="sim")], False, "was a rehearsal (target sim): it deployed nothing"),
    ("other-environment", [ev("r4", D, env="dev")], False, "ran in environment dev, not staging"),
    ("unnamed-environment", [ev("r5", D, env=None)], False, "ran in environment (unnamed), not staging"),
    ("promoted-exit-1", [ev("r6", D, exit=1)], False, "promoted (exit code 1)"),
    ("no-digest", [ev("r7", None)], False, "1 run(s) that name no digest"),
    ("not-deployed", [ev("r9", D, deployed=False)], False, "deployed nothing (its summary.world is not kubernetes"),
    ("overridden", [ev("r10", D, overridden=True)], False, "its own gate was overridden: not evidence"),
    # the latest run of the digest decides, whatever order the sources list them in
    ("promoted-then-rolled-back", [ev("r8", D), ev("r11", D, "rolled_back", 1, at="2026-12-01T11:00:00Z")], False,
     "the latest staging run of this digest, r11, did not promote: it decides"),
    ("rolled-back-listed-last-but-older", [ev("r8", D), ev("r1", D, "rolled_back", 1, at="2026-12-01T09:00:00Z")],
     True, "staging run r8 of this digest promoted at"),
    ("an-overridden-promotion-is-no-verdict", [ev("r8", D), ev("r12", D, overridden=True, at="2026-12-01T12:00:00Z")],
     True, "staging run r8 of this digest promoted at"),
    ("a-running-run-is-no-verdict", [ev("r8", D), ev("r13", D, "running", None, at="2026-12-01T12:00:00Z")], True,
     "staging run r8 of this digest promoted at"),
    ("promoted", [ev("r1", D, "rolled_back", 1, at="2026-12-01T09:00:00Z"), ev("r8", D)], True,
     "staging run r8 of this digest promoted at"),
]


@pytest.mark.parametrize(("evidence", "passed", "line"), [c[1:] for c in DECISIONS], ids=[c[0] for c in DECISIONS])
def test_the_gate_decides_on_the_evidence(evidence, passed, line) -> None:
    gate = decide("production", D, "staging", evidence, ["record folder runs"])
    assert gate["passed"] is passed and gate["overridden"] is False
    assert any(line in f for f in gate["found"]), gate["found"]
    if passed:
        assert gate["evidence"]["run"] == "r8"
    else:
        text = refusal(gate)
        assert D in text and "looked in record folder runs" in text and line in text
        assert "staging_override" in text


def test_an_override_lets_the_run_go_on_and_keeps_what_was_missing() -> None:
    gate = decide("production", D, "staging", [ev("r1", D, "rolled_back", 1)], ["record folder runs"],
                  override="INC-42: staging is down", by={"user": "ana"})
    assert gate["passed"] is False and gate["overridden"] is True
    assert gate["override"]["reason"] == "INC-42: staging is down" and gate["override"]["by"] == {"user": "ana"}
    assert "staging run r1 of this digest rolled back" in gate["override"]["missing"]
    # an override has nothing to say when the evidence passes
    assert decide("production", D, "staging", [ev("r8", D)], ["x"], override="why")["override"] is None


# --- parameters: each bad value names the field, exit 2 ---------------------------------------

BAD = [
    ({"environment": "Prod"}, "parameter 'environment': got 'Prod'; must be an environment name"),
    ({"environment": ""}, "parameter 'environment': got ''; must be an environment name"),
    ({"environment": 3}, "parameter 'environment': got 3"),
    ({"staging_override": "  "}, "parameter 'staging_override': got '  '; must say why"),
    ({"staging_namespace": "Staging_1"}, "parameter 'staging_namespace': got 'Staging_1'; must be a namespace"),
    ({"staging_records": ""}, "parameter 'staging_records': got ''; must be a path"),
    ({"environment_gates": {"production": "production"}}, "production cannot need itself"),
    ({"environment_gates": {"Production": "staging"}}, "must be environment names"),
    ({"environment_gates": ["production"]}, "parameter 'environment_gates': got ['production']"),
    ({"staging_envirnment": "x"}, "unknown parameter 'staging_envirnment'"),
]


@pytest.mark.parametrize(("values", "message"), BAD, ids=[str(b[0]) for b in BAD])
def test_bad_release_parameters_name_the_field_and_exit_2(values, message) -> None:
    with pytest.raises(ParameterError) as info:
        validate_parameters("rolling", {**BASE, **values})
    assert message in str(info.value)
    assert exit_code(info.value) == 2


def test_a_gated_cluster_run_without_a_digest_is_refused_even_with_an_override() -> None:
    for extra in ({}, {"staging_override": "hotfix"}):
        with pytest.raises(ParameterError) as info:
            validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "production",
                                            "image": "checkout:1.43.0", **extra})
        assert "parameter 'image': got 'checkout:1.43.0'" in str(info.value)
        assert "compares digests, never tags" in str(info.value) and exit_code(info.value) == 2
    # a malformed digest in a gated run: the grammar's reason
    with pytest.raises(ParameterError, match="64 lower-case hex digits, got 63"):
        validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "production",
                                        "image": "checkout@sha256:" + "d" * 63})


def test_a_gated_cluster_run_without_any_evidence_is_refused_with_exit_2(tmp_path: Path) -> None:
    with pytest.raises(ReleaseRefused) as info:
        validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "production",
                                        "image": IMAGE_D, "record_dir": str(tmp_path / "prod")})
    assert exit_code(info.value) == 2
    assert D in str(info.value) and "no staging evidence was given" in str(info.value)
    assert not (tmp_path / "prod").exists()  # refused before the run folder


def test_an_unreadable_staging_cluster_is_an_environment_error_unless_overridden(tmp_path: Path) -> None:
    params = {**BASE, "target": "kubernetes", "environment": "production", "image": IMAGE_D,
              "staging_namespace": "staging", "staging_kubeconfig": str(tmp_path / "no-such-kubeconfig")}
    with pytest.raises(ClusterError) as info:
        validate_parameters("rolling", params)
    assert exit_code(info.value) == 3 and "could not read: ConfigMap staging/deploysim-checkout" in str(info.value)
    run = validate_parameters("rolling", {**params, "staging_override": "staging cluster rebuilt, INC-9"})
    gate = run.release["gate"]
    assert gate["overridden"] and gate["problems"][0].startswith("ConfigMap staging/deploysim-checkout: ")
    assert "could not read" in gate["override"]["missing"]


# --- real record folders, written by real runbook runs ----------------------------------------


def _sim_run(record_dir: Path, runbook: str, image: str, environment: str | None, **params) -> Path:
    run = validate_parameters(runbook, {**BASE, "image": image, "environment": environment,
                                        "record_dir": str(record_dir), **params})
    run.start()
    run.execute(on_decision=lambda d: None)
    run.finish()
    assert run.folder is not None
    return run.folder


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two staging rehearsals: D promoted, E rolled back."""
    root = tmp_path_factory.mktemp("staging")
    folders = {
        "promoted": _sim_run(root / "runs", "rolling", IMAGE_D, "staging"),
        "rolled_back": _sim_run(root / "runs", "canary", IMAGE_E, "staging", weights=[50], step_pause="1m",
                                candidate={"error_rate": 0.2}),
    }
    return {"root": root / "runs", **folders}


def _record(folder: Path) -> dict:
    return json.loads((folder / "record.json").read_text())


def test_the_record_names_the_environment_the_image_digest_and_the_lint_warnings(staging) -> None:
    run = _record(staging["promoted"])["run"]
    assert run["release"]["environment"] == "staging" and run["release"]["image"] == IMAGE_D
    assert run["release"]["digest"] == D
    assert run["release"]["gate"] == {"checked": False, "why": "a rehearsal (target sim) deploys nothing: not gated"}
    assert run["environment"]["python"]  # the machine's environment is where it was
    # the built-in scenario's stable image is pinned by tag: lint said so, and the record keeps it
    assert {"id": "image-not-pinned-by-digest", "severity": "info", "path": "stable.image",
            "subject": "runbook rolling"}.items() <= run["lint"][0].items()
    assert all(set(f) == {"id", "severity", "path", "message", "subject"} for f in run["lint"])
    assert run["lint"] and all(f["severity"] != "error" for f in run["lint"])
    assert _record(staging["rolled_back"])["run"]["outcome"] == "rolled_back"


def test_a_record_folder_reads_as_evidence_and_names_the_damaged_runs(staging, tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    shutil.copytree(staging["root"], folder)
    (folder / "20261201T100000Z-rolling-abc123").mkdir()  # a run folder without its record
    evidence, damaged = records_evidence(folder)
    assert [(e.run, e.environment, e.digest, e.outcome, e.exit_code, e.target) for e in evidence] == [
        (staging["promoted"].name, "staging", D, "promoted", 0, "sim"),
        (staging["rolled_back"].name, "staging", E, "rolled_back", 1, "sim")]
    assert damaged == [f"{folder / '20261201T100000Z-rolling-abc123'}: no record.json"]


def test_rehearsals_are_not_staging_evidence(staging) -> None:
    with pytest.raises(ReleaseRefused) as info:
        validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "production",
                                        "image": IMAGE_D, "staging_records": str(staging["root"])})
    text = str(info.value)
    assert f"looked in record folder {staging['root']} (2 runs)" in text
    assert f"run {staging['promoted'].name} of this digest was a rehearsal (target sim)" in text


def test_a_rehearsal_record_relabelled_as_a_cluster_run_is_not_evidence(staging, tmp_path: Path) -> None:
    # target.name edited to kubernetes: its summary.world is still sim, and it lists no API changes
    folder = tmp_path / "runs"
    copy = folder / staging["promoted"].name
    shutil.copytree(staging["promoted"], copy)
    data = _record(copy)
    data["run"]["target"] = {"name": "kubernetes", "namespace": "staging"}
    (copy / "record.json").write_text(json.dumps(data))
    assert data["summary"]["world"] == "sim" and not data.get("changes")
    with pytest.raises(ReleaseRefused) as info:
        validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "production",
                                        "image": IMAGE_D, "staging_records": str(folder)})
    assert f"run {copy.name} of this digest deployed nothing (its summary.world is not kubernetes" in str(info.value)


def _as_cluster_runs(staging, tmp_path: Path, edit=None) -> Path:
    """The staging rehearsals' folders, each record made what a cluster run's is: target and
    world kubernetes, in namespace staging, with the API changes it made (the rest as written;
    tests/kube/test_staging_gate.py makes real cluster ones). ``edit(data)`` changes more."""
    folder = tmp_path / "staging-runs"
    for name in ("promoted", "rolled_back"):
        copy = folder / staging[name].name
        shutil.copytree(staging[name], copy)
        data = _record(copy)
        data["run"]["target"] = {"name": "kubernetes", "namespace": "staging"}
        data["summary"]["world"] = "kubernetes"
        data["changes"] = [{"verb": "patch", "kind": "Deployment", "name": "checkout"}]
        if edit is not None:
            edit(data)
        (copy / "record.json").write_text(json.dumps(data))
    return folder


def _production(**more) -> dict:
    return {**BASE, "target": "kubernetes", "environment": "production", "image": IMAGE_D, **more}


OTHER_RUNS = [
    # id, how the staging record differs, the gate's parameters beside staging_records, the line found
    ("other-service", lambda d: d["scenario"].update(service="cart"), {}, "is of service cart, not checkout"),
    ("other-repository", lambda d: d["run"]["release"].update(image=f"cart:7.0@{D}"), {"image": f"ghcr.io/acme/checkout:1.43.0@{D}"},
     "is of image repository cart, not ghcr.io/acme/checkout"),
    ("other-namespace", None, {"staging_namespace": "staging-eu", "staging_kubeconfig": "/no/such/kubeconfig"},
     "ran in namespace staging, not staging-eu"),
    ("overridden", lambda d: d["run"]["release"].update(gate={"checked": True, "overridden": True}), {},
     "promoted, but its own gate was overridden: not evidence"),
]


@pytest.mark.parametrize(("edit", "extra", "line"), [c[1:] for c in OTHER_RUNS], ids=[c[0] for c in OTHER_RUNS])
def test_a_staging_run_of_another_service_repository_namespace_or_overridden_is_not_evidence(
        staging, tmp_path: Path, edit, extra, line) -> None:
    folder = _as_cluster_runs(staging, tmp_path, edit)
    with pytest.raises((ReleaseRefused, ClusterError)) as info:
        validate_parameters("rolling", _production(staging_records=str(folder), **extra))
    assert f"run {staging['promoted'].name} of this digest {line}" in str(info.value)


def test_a_passing_staging_record_of_the_digest_lets_production_go_on(staging, tmp_path: Path) -> None:
    folder = _as_cluster_runs(staging, tmp_path)
    run = validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "production",
                                          "image": IMAGE_D, "staging_records": str(folder),
                                          "record_dir": str(tmp_path / "prod")})
    gate = run.release["gate"]
    assert gate["passed"] and not gate["overridden"]
    assert gate["evidence"]["run"] == staging["promoted"].name and gate["evidence"]["digest"] == D
    assert run.release["digest"] == D and run.release["environment"] == "production"
    # the rolled-back run of E: refused, and the refusal says what it found
    with pytest.raises(ReleaseRefused) as info:
        validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "production",
                                        "image": IMAGE_E, "staging_records": str(folder)})
    assert f"staging run {staging['rolled_back'].name} of this digest rolled back (exit code 1)" in str(info.value)
    assert "1 promoted staging run(s) of other digests (latest: sha256:dddddddddddd" in str(info.value)


def test_an_overridden_run_says_so_in_its_record(staging, tmp_path: Path) -> None:
    folder = _as_cluster_runs(staging, tmp_path)
    run = validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "production",
                                          "image": IMAGE_E, "staging_records": str(folder),
                                          "staging_override": "INC-42: rollback target", "record_dir": str(tmp_path)})
    run.start()  # the record is written before any step: a kubernetes run's too, without the cluster
    gate = _record(run.folder)["run"]["release"]["gate"]
    assert gate["overridden"] is True and gate["passed"] is False
    assert gate["override"]["reason"] == "INC-42: rollback target" and gate["override"]["by"]["user"]
    assert "rolled back (exit code 1)" in gate["override"]["missing"]


def test_an_ungated_environment_is_recorded_and_not_checked() -> None:
    run = validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "staging", "image": IMAGE_D})
    assert run.release["gate"]["checked"] is False
    assert run.release["gate"]["why"] == "environment staging is not gated (environment_gates: production needs staging)"
    with pytest.raises(ReleaseRefused, match="environment qa needs a passing dev run"):
        validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "qa", "image": IMAGE_D,
                                        "environment_gates": {"qa": "dev"}, "staging_records": "."})


# --- the staging ConfigMap: promoted releases kept across runs ---------------------------------


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    return FakeCluster().install(monkeypatch)


def test_promoted_releases_survive_later_status_writes_and_stay_bounded(cluster: FakeCluster) -> None:
    api = client.ApiClient()
    first = ClusterStore(api, "shop", "checkout", "run-1", "rolling")
    first.save({"phase": "Healthy"})
    keep_release(api, "shop", "checkout", {"digest": D, "image": IMAGE_D, "run": "run-1", "environment": "staging"})
    # a later run of another digest: its status writes patch only their own keys
    later = ClusterStore(api, "shop", "checkout", "run-2", "rolling")
    assert later.load() is not None
    later.save({"phase": "Progressing", "step": 1})
    stored = read_releases(api, "shop", "checkout")
    assert stored["run"] == "run-2" and stored["phase"] == "Progressing"
    assert [r["digest"] for r in stored["releases"]] == [D]
    for i in range(KEPT_RELEASES + 3):
        keep_release(api, "shop", "checkout", {"digest": f"sha256:{i:064x}", "run": f"r{i}", "environment": "staging"})
    rows = json.loads(cluster.raw("ConfigMap", "deploysim-checkout")["data"][RELEASES_KEY])
    assert len(rows) == KEPT_RELEASES and rows[-1]["run"] == f"r{KEPT_RELEASES + 2}"
    assert read_releases(api, "other", "checkout") is None


def test_a_status_write_never_drops_a_release_kept_between_its_load_and_its_write(cluster: FakeCluster) -> None:
    api = client.ApiClient()
    later = ClusterStore(api, "shop", "checkout", "run-2", "rolling")
    later.save({"phase": "Progressing"})
    assert later.load() is not None
    keep_release(api, "shop", "checkout", {"digest": D, "image": IMAGE_D, "run": "run-1", "environment": "staging"})
    later.save({"phase": "Progressing", "step": 1})  # loaded before the release was kept
    assert [r["run"] for r in read_releases(api, "shop", "checkout")["releases"]] == ["run-1"]


def test_a_run_of_the_digest_that_did_not_promote_replaces_its_release(cluster: FakeCluster) -> None:
    api = client.ApiClient()
    keep_release(api, "shop", "checkout", {"digest": D, "image": IMAGE_D, "run": "r1", "environment": "staging"})
    keep_release(api, "shop", "checkout", {"digest": D, "image": IMAGE_D, "run": "r2", "environment": "staging",
                                           "outcome": "rolled_back", "exit_code": 1})
    evidence = releases_evidence(read_releases(api, "shop", "checkout"), "cm", "checkout", "shop")
    gate = decide("production", D, Wanted("staging", "checkout", "checkout", "shop"), evidence, ["cm"])
    assert gate["passed"] is False and "staging in namespace shop run r2 of this digest rolled back" in gate["found"][0]


# --- the gates themselves: weakened, cyclic, production by another name -------------------------


@pytest.mark.parametrize("gates", [{}, {"production": "dev"}, {"production": "qa"}])
def test_gates_that_drop_the_default_are_refused_unless_overridden(gates) -> None:
    with pytest.raises(ReleaseRefused) as info:
        validate_parameters("rolling", _production(environment_gates=gates))
    assert f"environment_gates {gates} drops the default gate production needs staging" in str(info.value)
    run = validate_parameters("rolling", _production(environment_gates=gates, staging_override="INC-3: gates off"))
    gate = run.release["gate"]
    assert gate["overridden"] and gate["requires"] == "staging" and "drops the default gate" in gate["weakened"]
    # a longer path that still leads to staging is not a weakening: production needs qa
    with pytest.raises(ReleaseRefused, match="environment production needs a passing qa run"):
        validate_parameters("rolling", _production(environment_gates={"production": "qa", "qa": "staging"}))


@pytest.mark.parametrize("gates", [{"production": "staging", "staging": "production"},
                                   {"production": "qa", "qa": "dev", "dev": "qa"}])
def test_cyclic_gates_are_refused(gates) -> None:
    with pytest.raises(ParameterError, match="environment_gates has a cycle: ") as info:
        validate_parameters("rolling", {**BASE, "environment_gates": gates})
    assert exit_code(info.value) == 2


@pytest.mark.parametrize("environment", ["prod", "prd", "live", "prod-eu", "eu-production"])
def test_a_production_like_environment_that_is_not_gated_is_warned_of(environment) -> None:
    run = validate_parameters("rolling", _production(environment=environment))
    assert run.release["gate"]["checked"] is False
    assert [f["id"] for f in run.lint if f["path"] == "environment"] == ["environment-looks-like-production"]
    assert environment in run.lint[-1]["message"]
    assert not [f for f in validate_parameters("rolling", _production(environment="qa")).lint
                if f["id"] == "environment-looks-like-production"]


def test_a_staging_run_without_a_digest_is_warned_that_it_can_never_be_evidence(tmp_path: Path) -> None:
    run = validate_parameters("rolling", {**BASE, "target": "kubernetes", "environment": "staging",
                                          "image": "checkout:1.43.0", "record_dir": str(tmp_path)})
    run.start()
    lint = _record(run.folder)["run"]["lint"]
    found = [f for f in lint if f["id"] == "release-evidence-without-digest"]
    assert found and found[0]["path"] == "image" and "can never be their evidence" in found[0]["message"]
    assert run.release["no_digest"] == "the image names a tag, not a digest"


# --- the rollback runbook, a resumed run, and what cannot be read ---------------------------------


@pytest.fixture
def own_cluster(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    """The fake cluster, reached through the run's own kubeconfig whatever it names."""
    import deploysim.kube

    monkeypatch.setattr(deploysim.kube, "api_client", lambda kubeconfig, context: (client.ApiClient(), "fake"))
    return cluster


ROLLBACK = {"target": "kubernetes", "environment": "production", "namespace": "shop", "image": IMAGE_E,
            "to_image": IMAGE_D}


def test_a_rollback_goes_back_only_to_a_digest_that_served_in_its_namespace(own_cluster: FakeCluster) -> None:
    with pytest.raises(ReleaseRefused) as info:
        validate_parameters("rollback", {**ROLLBACK, "to_image": f"evil/other:9.9.9@{E}"})
    assert "or a run of it that served in production in namespace shop before" in str(info.value)
    api = client.ApiClient()
    keep_release(api, "shop", "checkout", {"digest": D, "image": IMAGE_D, "run": "r1", "environment": "production",
                                           "overridden": True})  # it served, however it got there
    run = validate_parameters("rollback", ROLLBACK)
    assert run.release["digest"] == D and run.release["gate"]["passed"]
    assert run.release["gate"]["evidence"]["run"] == "r1"
    assert run.release["gate"]["evidence"]["source"] == "ConfigMap shop/deploysim-checkout"
    # a rollback run is not kept as a release: it returns to one
    from types import SimpleNamespace as NS

    keep_after(run.params, run.scenario, run.release, "r2", None, NS(outcome="promoted", exit_code=0), True)
    assert "kept" not in run.release
    assert [r["run"] for r in read_releases(api, "shop", "checkout")["releases"]] == ["r1"]


def test_a_resumed_run_reuses_the_decision_of_its_first_part(own_cluster: FakeCluster, tmp_path: Path,
                                                              staging) -> None:
    folder = _as_cluster_runs(staging, tmp_path)
    first = validate_parameters("rolling", _production(namespace="shop", staging_records=str(folder),
                                                       record_dir=str(tmp_path / "prod")))
    first.start()
    store = ClusterStore(client.ApiClient(), "shop", "checkout", first.folder.name, "rolling")
    store.save({"phase": "Progressing", "step": 1})
    shutil.rmtree(folder)  # the staging evidence aged out meanwhile
    again = validate_parameters("rolling", _production(namespace="shop", resume=True, staging_records=str(folder),
                                                       record_dir=str(tmp_path / "prod")))
    gate = again.release["gate"]
    assert gate["passed"] and gate["evidence"]["run"] == staging["promoted"].name
    assert gate["reused"].startswith(f"decided when run {first.folder.name} started")
    with pytest.raises(ReleaseRefused):  # not a resume: gated again
        validate_parameters("rolling", _production(namespace="shop", staging_records=str(folder),
                                                   record_dir=str(tmp_path / "prod")))


def test_an_empty_error_message_and_a_digest_without_a_colon_are_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    import deploysim.kube

    def timeout(kubeconfig, context):
        raise TimeoutError()

    monkeypatch.setattr(deploysim.kube, "api_client", timeout)
    with pytest.raises(ClusterError, match="could not read: ConfigMap staging/deploysim-checkout: TimeoutError"):
        validate_parameters("rolling", _production(staging_namespace="staging"))

    def broken(kubeconfig, context):
        raise KeyError("a fault of the code, not an unreachable cluster")

    monkeypatch.setattr(deploysim.kube, "api_client", broken)
    with pytest.raises(KeyError):
        validate_parameters("rolling", _production(staging_namespace="staging"))
    odd = Evidence("cm", "r1", "staging", "nocolonatall0123456789", None, "promoted", 0, None, "kubernetes")
    gate = decide("production", D, "staging", [odd], ["cm"])
    assert "(latest: nocolonatall01234567 in run r1)" in gate["found"][0]
