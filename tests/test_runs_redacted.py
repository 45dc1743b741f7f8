"""``deploysim runs list | show | diff`` print no secret a record holds, in text or JSON, and
change nothing else.

Two runs are made in-process; copies of their records get secrets planted where a record
carries free text: the run's status, decisions' reasons, steps' descriptions, parameters
(given and resolved), measurements and API changes. Secrets are assembled at run time from
pieces and random characters of a fixed seed, so no scanner mistakes this file for a leak.
"""

from __future__ import annotations

import base64
import io
import json
import random
import shutil
import string
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from trails import BAD, GOOD, make_run

from deploysim.cli import main
from deploysim.cli.runs import redact_diff, run_redactor
from deploysim.history import diff_runs, format_diff, show_run
from deploysim.redact import REDACTED
from deploysim.runbooks import session

_RNG = random.Random(20250412)
B62 = string.ascii_letters + string.digits


def rnd(n: int, alphabet: str = B62) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


URL_PASSWORD = "pw" + rnd(10)
JWT = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': 'deployer', 'exp': 1999999999})}.{rnd(43)}"
BEARER = rnd(30)
PEM_BODY = [rnd(64, B62 + "+/") for _ in range(3)]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----"
AWS_KEY_ID = "AKIA" + rnd(16, string.ascii_uppercase + string.digits)
AWS_SECRET = rnd(40, B62 + "+/")
# no shape gives these away: only the name they are given under, and the by-value net after it
TOKEN_A = "plain-" + rnd(12, string.ascii_lowercase)
TOKEN_B = "plain-" + rnd(12, string.ascii_lowercase)
SHORT_PIN = 4242  # a secret's name, a value too short and plain for any other net
DB_PASSWORD = "db-" + rnd(12, string.ascii_lowercase)

SECRETS = [URL_PASSWORD, JWT, JWT.split(".")[2], BEARER, *PEM_BODY, AWS_KEY_ID, AWS_SECRET, TOKEN_A, DB_PASSWORD]


@pytest.fixture(scope="module")
def trails(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    record_dir = tmp_path_factory.mktemp("redacted") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session, "notebook_output_path", lambda hint=None: None)
        clean = {"bad": make_run("canary", BAD, record_dir), "good": make_run("canary", {**GOOD, "step_pause": "30s"},
                                                                               record_dir)}
    planted_dir = record_dir.parent / "planted"
    return {**clean, "planted_a": _plant(clean["bad"], planted_dir, TOKEN_A),
            "planted_b": _plant(clean["good"], planted_dir, TOKEN_B)}


def _plant(folder: Path, into: Path, token: str) -> Path:
    """A copy of ``folder`` whose record holds secrets in every free-text field it has."""
    copy = into / folder.name
    shutil.copytree(folder, copy)
    data = json.loads((copy / "record.json").read_text())
    run = data["run"]
    run["status"] += f" (probe https://admin:{URL_PASSWORD}@prom.example:9090/api/v1/query failed)"
    for part in ("given", "resolved"):
        run["parameters"][part].update({"prometheus_token": token, "api_key": SHORT_PIN,
                                        "prometheus_url": f"https://admin:{URL_PASSWORD}@prom.example:9090"})
    data["decisions"][0]["reason"] += f"; header Authorization: Bearer {JWT}"
    data["decisions"][1]["reason"] += f"; the key was {PEM}"
    data["decisions"][2]["reason"] += f"; aws_access_key_id={AWS_KEY_ID} aws_secret_access_key={AWS_SECRET}"
    data["decisions"][3]["reason"] += f"; the query was sent with {token}"
    data["decisions"][3].setdefault("values", {})["token"] = BEARER
    data["steps"][1]["describe"] += f", sent with Authorization: Bearer {BEARER} to the probe"
    data["steps"][2]["measurements"].append({"at": 1.0, "verdict": f"Error: {JWT} rejected"})
    data["changes"] = [{"at": 1.0, "kind": "patch", "object": "Deployment/web", "namespace": "prod",
                        "body": {"env": [{"name": "DB_PASSWORD", "value": DB_PASSWORD}],
                                 "note": f"Authorization: Bearer {JWT}"}}]
    (copy / "record.json").write_text(json.dumps(data))
    return copy


def cli(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


def _assert_clean(out: str) -> None:
    leaked = [s for s in SECRETS if s in out]
    assert not leaked, leaked


def test_runs_show_prints_no_secret_and_keeps_the_words_around_them(trails) -> None:  # noqa: ANN001
    out = cli("runs", "show", str(trails["planted_a"]))
    _assert_clean(out)
    assert f"https://admin:{REDACTED}@prom.example:9090/api/v1/query failed" in out  # the URL, less its password
    assert f"header Authorization: Bearer {REDACTED}" in out
    assert "rolled back: analysis step-3 Failed" in out and "canary rollout of 10 replicas" in out
    assert "the query was sent with " + REDACTED in out  # a token without shape, known by its name
    given = next(line for line in out.splitlines() if line.startswith("given "))
    assert f"prometheus_token={REDACTED}" in given and f"api_key={REDACTED}" in given
    assert "duration=20m" in given and "candidate={'error_rate': 0.05}" in given


def test_runs_show_json_is_the_whole_record_redacted(trails) -> None:  # noqa: ANN001
    out = cli("runs", "show", str(trails["planted_a"]), "--json")
    _assert_clean(out)
    shown = json.loads(out)
    original = json.loads((trails["planted_a"] / "record.json").read_text())
    assert shown["run"] == trails["planted_a"].name and shown["outcome"] == "rolled_back"
    record = shown["record"]
    assert record["run"]["parameters"]["given"]["prometheus_token"] == REDACTED
    assert record["run"]["parameters"]["resolved"]["api_key"] == REDACTED
    assert record["run"]["parameters"]["given"]["duration"] == "20m"
    change = record["changes"][0]
    assert change["body"]["env"] == [{"name": "DB_PASSWORD", "value": REDACTED}]
    assert change["body"]["note"] == f"Authorization: Bearer {REDACTED}"
    assert (change["kind"], change["object"], change["namespace"]) == ("patch", "Deployment/web", "prod")
    # what held no secret is as written, field by field
    assert record["summary"] == original["summary"] and record["steps"][0] == original["steps"][0]
    assert [d["kind"] for d in record["decisions"]] == [d["kind"] for d in original["decisions"]]


def test_runs_diff_prints_no_secret_and_a_changed_secret_still_shows_as_changed(trails) -> None:  # noqa: ANN001
    out = cli("runs", "diff", str(trails["planted_a"]), str(trails["planted_b"]))
    _assert_clean(out)
    assert TOKEN_B not in out
    params = out.split("parameters (only those that differ):")[1].split("outcome:")[0]
    (token_row,) = [line for line in params.splitlines() if "prometheus_token" in line]
    assert token_row.split() == ["*", "prometheus_token", REDACTED, REDACTED, "(not", "the", "same", "as", "A)"]
    assert "candidate.error_rate  0.05" in params and "step_pause" in params
    assert not [line for line in params.splitlines() if "api_key" in line]  # the same in both: not listed
    assert f"pause 2m, sent with Authorization: Bearer {REDACTED} to the probe" in out  # a step's description
    assert f"Error: {REDACTED} rejected" in out  # a measurement's verdict


def test_runs_diff_json_is_redacted_too(trails) -> None:  # noqa: ANN001
    out = cli("runs", "diff", str(trails["planted_a"]), str(trails["good"]), "--json")
    _assert_clean(out)
    shown = json.loads(out)
    rows = {row["name"]: row for row in shown["parameters"]}
    assert rows["prometheus_token"] == {"name": "prometheus_token", "a": REDACTED, "b": None, "differs": True}
    assert rows["api_key"]["a"] == REDACTED and rows["api_key"]["b"] is None
    assert rows["prometheus_url"]["a"] == f"https://admin:{REDACTED}@prom.example:9090"
    assert rows["candidate.error_rate"] == {"name": "candidate.error_rate", "a": 0.05, "b": 0.001, "differs": True}
    outcome = {row["name"]: row for row in shown["outcome"]}
    assert outcome["outcome"]["a"] == "rolled_back" and outcome["outcome"]["b"] == "promoted"
    assert URL_PASSWORD not in outcome["status"]["a"] and "prom.example:9090" in outcome["status"]["a"]


def test_a_clean_record_prints_exactly_as_before(trails) -> None:  # noqa: ANN001
    """Ordinary words stay: redacting what holds no secret changes nothing, not one column."""
    bad, good = trails["bad"], trails["good"]
    assert cli("runs", "show", str(bad)) == show_run(bad) + "\n"
    assert cli("runs", "diff", str(bad), str(good)) == format_diff(bad, good, diff_runs(bad, good)) + "\n"
    shown = json.loads(cli("runs", "show", str(bad), "--json"))
    assert shown["record"] == json.loads((bad / "record.json").read_text())


def test_runs_list_is_redacted(trails, tmp_path: Path) -> None:  # noqa: ANN001
    folder = tmp_path / trails["good"].name
    shutil.copytree(trails["good"], folder)
    data = json.loads((folder / "record.json").read_text())
    data["run"]["target"]["name"] = f"https://admin:{URL_PASSWORD}@kube.example:6443"
    (folder / "record.json").write_text(json.dumps(data))
    out = cli("runs", "list", str(tmp_path))
    assert URL_PASSWORD not in out and f"https://admin:{REDACTED}@kube.example:6443" in out
    assert folder.name in out and "promoted" in out


@pytest.mark.parametrize(("name", "a", "b", "expected"), [
    ("prometheus_token", "old-value-1", "new-value-2", (REDACTED, f"{REDACTED} (not the same as A)")),
    ("prometheus_token", "same-value-1", "same-value-1", (REDACTED, REDACTED)),
    ("prometheus_token", None, "new-value-2", (None, REDACTED)),
    ("analysis.api_key", 1234, 5678, (REDACTED, f"{REDACTED} (not the same as A)")),
    ("prometheus_url", "https://u:secret-1@p:9090", "https://u:secret-2@p:9090",
     (f"https://u:{REDACTED}@p:9090", f"https://u:{REDACTED}@p:9090 (not the same as A)")),
    ("namespace", "prod", "staging", ("prod", "staging")),
    ("replicas", 10, 4, (10, 4)),
    ("token_url", "https://auth.example.com/token", None, ("https://auth.example.com/token", None)),
])
def test_redact_diff_cells(name: str, a: object, b: object, expected: tuple) -> None:
    assert redact_diff({"parameters": [(name, a, b)]}, run_redactor())["parameters"] == [(name, *expected)]


def test_the_secrets_one_run_was_given_are_hidden_in_the_other_runs_text_too() -> None:
    redactor = run_redactor({"run": {"parameters": {"resolved": {"prometheus_token": TOKEN_A}}}},
                            {"run": {"parameters": {"given": {"namespace": "prod"}}}})
    assert redactor.text(f"B's reason echoes {TOKEN_A} in prod") == f"B's reason echoes {REDACTED} in prod"
