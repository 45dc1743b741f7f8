"""deploysim.redact: secrets never reach the audit trail; ordinary values survive untouched."""

from __future__ import annotations

import base64
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from deploysim.redact import REDACTED, Redactor, find_secrets, is_secret_name, redact_text
from deploysim.trail import export_notebook

# secrets are assembled at run time so that no scanner mistakes this file for a leak
GITHUB_TOKEN = "ghp_" + "A1b2C3d4" * 4 + "E5f6"
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPL0"


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


JWT = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': 'deployer', 'exp': 1999999999})}.{'Zx9' * 14}"
RANDOM_KEY = "q8Vx2LmT9zR4kW7pN3bY6cJ1hF5dG0sAeU"  # 34 mixed characters, high entropy
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("curl -H 'Authorization: Bearer abc.def.ghi' https://prom", "abc.def.ghi"),
        ('{"Authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
        ("headers = {'authorization': 'Bearer tok_123456'}", "tok_123456"),
        ("token: s3cr3t-t0ken-value", "s3cr3t-t0ken-value"),
        ("    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=", "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo="),
        ("jdbc?user=app&password=hunter2&ssl=1", "hunter2"),
        ("prometheus_token = 'opaque-value-42'", "opaque-value-42"),
        ("https://admin:hunter2hunter2@prometheus.example:9090/api", "hunter2hunter2"),
        (f"pushed with {GITHUB_TOKEN} yesterday", GITHUB_TOKEN),
        (f"id token {JWT}", JWT),
        (f"aws {AWS_KEY} key", AWS_KEY),
        (f"key {RANDOM_KEY} here", RANDOM_KEY),
        (PEM, "MIIEowIBAAKCAQEA7"),
    ],
)
def test_secret_shapes_are_redacted(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert REDACTED in out
    assert any(secret in s for s in find_secrets(text))  # found, perhaps with its label


@pytest.mark.parametrize(
    "text",
    [
        "the commit is 54769c8d2f0e4b6a9c1d3e5f7a9b1c3d5e7f9a1b",  # hex, no upper case
        "checkout@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "/work/main/runs/20250301T101500Z-canary-3f2a1c/record.json",
        "rollout_attributable_failures 133.0, time_to_detect_seconds 180.0",
        "analysis step-3 Failed: 1 failed measurements (limit 0): error_rate 0.02071 > 0.01",
        "checkout:1.42.0 -> canary rollout of 10 replicas, 10 steps",
        "Tokens per second and the tokenizer are fine words",
        "see https://example.com/a/b?x=1&y=2",
        "e7c3a9f0-5d1b-4c2e-8a6f-1b2c3d4e5f60",  # a uuid
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact_text(text) == text
    assert find_secrets(text) == []


@pytest.mark.parametrize(
    ("name", "secret"),
    [("prometheus_token", True), ("password", True), ("client-key-data", True), ("Authorization", True),
     ("api_key", True), ("namespace", False), ("kubeconfig", False), ("prometheus_url", False),
     ("time_to_detect_seconds", False), ("image", False)],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_parameters_give_literals_that_are_replaced_everywhere() -> None:
    # a secret without a recognisable shape is caught by its parameter's name, then
    # wherever its value shows up alone (an echo, a traceback)
    r = Redactor.from_parameters({"prometheus_token": "plainish-value", "namespace": "prod",
                                  "reason": "deploy; password=hunter2x"})
    assert r.literals == {"plainish-value", "hunter2x"}
    assert r.text("echo plainish-value; hunter2x again") == f"echo {REDACTED}; {REDACTED} again"
    assert "prod" not in r.literals  # short, ordinary values are never literals


def test_data_redacts_by_key_shape_and_value_and_keeps_the_rest() -> None:
    r = Redactor.from_parameters({"prometheus_token": "plainish-value"})
    data = {"run": {"parameters": {"prometheus_token": "plainish-value", "replicas": 10,
                                   "headers": ["Authorization: Bearer zzzzzzzz"]}},
            "note": "saw plainish-value", "password": 12345678, "ok": True, "none": None}
    out = r.data(data)
    assert out["run"]["parameters"]["prometheus_token"] == REDACTED
    assert out["run"]["parameters"]["replicas"] == 10
    assert out["run"]["parameters"]["headers"] == [f"Authorization: Bearer {REDACTED}"]
    assert out["note"] == f"saw {REDACTED}"
    assert out["password"] == REDACTED
    assert out["ok"] is True and out["none"] is None
    assert data["note"] == "saw plainish-value"  # the input is not changed


def test_notebook_and_html_copies_hold_no_secret(tmp_path) -> None:  # noqa: ANN001
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8).decode()
    nb = new_notebook(cells=[
        new_code_cell(f'# Parameters\nprometheus_token = "{GITHUB_TOKEN}"\n',
                      metadata={"tags": ["injected-parameters"]}),
        new_code_cell("print(token)", outputs=[
            new_output("stream", name="stdout", text=f"token is {GITHUB_TOKEN}\n"),
            new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
            new_output("error", ename="ValueError", evalue=f"bad {GITHUB_TOKEN}",
                       traceback=[f"ValueError: bad {GITHUB_TOKEN}"]),
        ]),
    ])
    nb.metadata["papermill"] = {"parameters": {"prometheus_token": GITHUB_TOKEN}}
    source = tmp_path / "executed.ipynb"
    nbformat.write(nb, str(source))
    folder = tmp_path / "run"
    folder.mkdir()
    files = export_notebook(source, folder, "canary", Redactor.from_parameters({"prometheus_token": GITHUB_TOKEN}))
    assert files == {"ipynb": "canary.ipynb", "html": "canary.html"}
    for name in files.values():
        text = (folder / name).read_text()
        assert GITHUB_TOKEN not in text
        assert REDACTED in text
    copy = nbformat.read(str(folder / "canary.ipynb"), as_version=4)
    assert copy.cells[1].outputs[1].data["image/png"] == png  # binary output left intact
    html = (folder / "canary.html").read_text()
    assert "print(token)" not in html  # the HTML copy has no code cells
    assert "token is" in html


@pytest.mark.parametrize("text", [f"Authorization: Bearer {JWT}", f"token: {GITHUB_TOKEN}", "password=hunter2x",
                                  "https://a:hunter2hunter2@h/"])
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text, {"hunter2x"})
    assert redact_text(once, {"hunter2x"}) == once
    assert Redactor({"hunter2x"}).data({"note": once}) == {"note": once}


# --- what the command line prints on stderr ------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["run", "canary", "-y", f"{{prometheus_token: {GITHUB_TOKEN}, candidate: {{error_rate: 0.05"],
    ["run", "canary", "-y", f"[1, 'https://admin:{'p/ss@w0rd'}@prom.example:9090']"],
    ["run", "canary", "-p", "prometheus_token", "plain-cli-value", "--no-such-flag", "plain-cli-value"],
    ["plan", "--set", f"strategy.kind={JWT}"],
])
def test_stderr_of_the_command_line_holds_no_secret(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from deploysim.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(("deploysim: error:", "usage:")), err
    for secret in (GITHUB_TOKEN, "p/ss@w0rd", "plain-cli-value", JWT):
        assert secret not in err
    assert REDACTED in err


@pytest.mark.parametrize("module", [
    "deploysim.redact", "deploysim.redaction.spans", "deploysim.redaction.names", "deploysim.redaction.urls",
    "deploysim.redaction.fields", "deploysim.redaction.tokens", "deploysim.redaction.entropy",
    "deploysim.redaction.text", "deploysim.redaction.redactor", "deploysim.redaction.stream",
])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
