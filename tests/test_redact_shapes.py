"""Redaction by structure: over a hundred secret shapes, each planted in six contexts, are gone;
ordinary strings that look a little like them stay exactly as they were.

Secrets are assembled at run time from pieces (and random characters from a fixed seed), so no
scanner mistakes this file for a leak.
"""

from __future__ import annotations

import base64
import json
import random
import string
from urllib.parse import quote, unquote

import pytest
import yaml

from deploysim.redact import REDACTED, Redactor, find_secrets, redact_text

_RNG = random.Random(20250301)
B62 = string.ascii_letters + string.digits


def rnd(n: int, alphabet: str = B62) -> str:
    """n random characters, with digits, upper and lower case all present."""
    while True:
        s = "".join(_RNG.choice(alphabet) for _ in range(n))
        if alphabet != B62 or (any(c.isdigit() for c in s) and any(c.isupper() for c in s)
                               and any(c.islower() for c in s)):
            return s


def hexs(n: int) -> str:
    return "".join(_RNG.choice("0123456789abcdef") for _ in range(n))


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def b64url(data: dict | bytes) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def pem(kind: str) -> tuple[str, str]:
    body = "\n".join(rnd(64, B62 + "+/") for _ in range(3))
    head = f"{kind} PRIVATE KEY" + (" BLOCK" if kind == "PGP" else "")
    head = head.strip()
    return f"-----BEGIN {head}-----\n{body}\n-----END {head}-----", body.splitlines()[1]


JWT_HS = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': 'deployer', 'exp': 1999999999})}.{rnd(43)}"
JWT_RS = (f"{b64url({'alg': 'RS256', 'kid': 'k1'})}.{b64url({'iss': 'kubernetes/serviceaccount', 'sub': 'sa'})}"
          f".{rnd(86, B62 + '-_')}")
JWT_NONE = f"{b64url({'alg': 'none'})}.{b64url({'sub': 'admin', 'role': 'root'})}."
JWE = ".".join([b64url({"alg": "RSA-OAEP", "enc": "A256GCM"}), rnd(40), rnd(16), rnd(60), rnd(22)])
DOCKER_AUTH = b64("deployer:" + rnd(20))
DOCKER_CONFIG = json.dumps({"auths": {"ghcr.io": {"auth": DOCKER_AUTH}}})
PEMS = {kind: pem(kind) for kind in ("RSA", "EC", "OPENSSH", "", "ENCRYPTED", "DSA", "PGP")}
AWS_SECRET = rnd(40, B62 + "+/")

# (shape, the text as it is written, the part that must not survive)
SHAPES: list[tuple[str, str, str]] = [
    # GitHub, GitLab
    *[(f"github {p}", tok, tok) for p, tok in (
        (p, p + rnd(36)) for p in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"))],
    ("github fine-grained", (t := "github_pat_" + rnd(22) + "_" + rnd(59)), t),
    *[(f"gitlab {p}", tok, tok) for p, tok in ((p, p + rnd(20, B62 + "-_")) for p in ("glpat-", "gldt-", "glrt-"))],
    ("gitlab runner", (t := "GR1348941" + rnd(20)), t),
    # chat
    *[(f"slack {p}", tok, tok) for p, tok in (
        (p, f"{p}{_RNG.randrange(10**11, 10**12)}-{_RNG.randrange(10**11, 10**12)}-{rnd(24)}")
        for p in ("xoxb-", "xoxp-", "xoxa-", "xoxr-"))],
    ("slack app token", (t := f"xapp-1-A{rnd(10).upper()}-{_RNG.randrange(10**12, 10**13)}-{hexs(64)}"), t),
    ("slack webhook", f"https://hooks.slack.com/services/T{rnd(8).upper()}/B{rnd(8).upper()}/{(t := rnd(24))}", t),
    ("discord webhook", f"https://discord.com/api/webhooks/{_RNG.randrange(10**17, 10**18)}/{(t := rnd(68))}", t),
    ("telegram bot", (t := f"{_RNG.randrange(10**8, 10**9)}:AA{rnd(33)}"), t),
    # payments, mail, SaaS
    *[(f"stripe {p}", tok, tok) for p, tok in ((p, p + rnd(24)) for p in ("sk_live_", "rk_live_", "sk_test_"))],
    ("stripe webhook secret", (t := "whsec_" + rnd(32)), t),
    ("sendgrid", (t := f"SG.{rnd(22)}.{rnd(43)}"), t),
    ("twilio api key", (t := "SK" + hexs(32)), t),
    ("twilio auth token", f"TWILIO_AUTH_TOKEN={(t := hexs(32))}", t),
    ("mailgun", (t := "key-" + hexs(32)), t),
    ("mailchimp", (t := hexs(32) + "-us14"), t),
    ("shopify", (t := "shpat_" + hexs(32)), t),
    ("square", (t := "sq0atp-" + rnd(22, B62 + "-_")), t),
    ("postman", (t := f"PMAK-{hexs(24)}-{hexs(34)}"), t),
    ("linear", (t := "lin_api_" + rnd(40)), t),
    ("new relic", (t := "NRAK-" + rnd(27).upper()), t),
    ("sentry", (t := "sntrys_" + rnd(60)), t),
    ("hugging face", (t := "hf_" + rnd(34)), t),
    ("databricks", (t := "dapi" + hexs(32)), t),
    ("doppler", (t := "dp.pt." + rnd(43)), t),
    ("grafana service account", (t := "glsa_" + rnd(32) + "_" + hexs(8)), t),
    ("digitalocean", (t := "dop_v1_" + hexs(64)), t),
    ("terraform cloud", (t := f"{rnd(14)}.atlasv1.{rnd(67)}"), t),
    ("vault", (t := "hvs." + rnd(24)), t),
    ("jfrog", (t := "AKCp" + rnd(69)), t),
    ("age", (t := "AGE-SECRET-KEY-1" + rnd(58).upper()), t),
    ("npm", (t := "npm_" + rnd(36)), t),
    ("pypi", (t := "pypi-AgEIcHlwaS5vcmc" + rnd(60, B62 + "-_")), t),
    ("openai", (t := "sk-" + rnd(48)), t),
    ("openai project", (t := "sk-proj-" + rnd(64, B62 + "-_")), t),
    ("anthropic", (t := "sk-ant-api03-" + rnd(80, B62 + "-_")), t),
    # clouds
    ("aws access key id", (t := "AKIA" + rnd(16).upper()), t),
    ("aws temporary key id", (t := "ASIA" + rnd(16).upper()), t),
    ("aws secret access key, bare", AWS_SECRET, AWS_SECRET),
    ("aws credentials file", f"[default]\naws_access_key_id = AKIA{rnd(16).upper()}\n"
     f"aws_secret_access_key = {(t := rnd(40, B62 + '+/'))}", t),
    ("aws session token", (t := "FwoGZXIvYXdzE" + rnd(200, B62 + "+/")), t),
    ("aws signed url", f"https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA{rnd(16).upper()}%2F20250301"
     f"&X-Amz-Signature={(t := hexs(64))}", t),
    ("gcp api key", (t := "AIza" + rnd(35, B62 + "-_")), t),
    ("gcp oauth client secret", (t := "GOCSPX-" + rnd(28, B62 + "-_")), t),
    ("gcp access token", (t := "ya29." + rnd(120, B62 + "-_")), t),
    ("gcp service account json", json.dumps({"type": "service_account", "private_key_id": hexs(40),
                                             "private_key": PEMS[""][0] + "\n"}), PEMS[""][1]),
    ("azure storage connection string", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
     f"{(t := rnd(86, B62 + '+/'))}==;EndpointSuffix=core.windows.net", t),
    ("azure sas url", f"https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2025-03-01&sp=r&sig={(t := quote(rnd(43, B62 + '+/') + '='))}", t),
    ("azure service bus", f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={(t := rnd(43, B62 + '+/'))}=", t),
    ("azure ad client secret", (t := f"{rnd(3)}8Q~{rnd(31, B62 + '_~.-')}"), t),
    # containers and clusters
    ("docker config auth", DOCKER_CONFIG, DOCKER_AUTH),
    ("dockerconfigjson, base64", f".dockerconfigjson: {(t := b64(DOCKER_CONFIG))}", t),
    ("docker login", f"docker login -u deployer --password {(t := rnd(12) + '!x')} ghcr.io", t),
    ("kubeconfig token", f"users:\n- name: deployer\n  user:\n    token: {JWT_RS}\n", JWT_RS),
    ("kubeconfig client key", f"    client-key-data: {(t := b64(PEMS['RSA'][0]))}", t),
    ("kubeconfig basic auth", "  user:\n    username: admin\n    password: " + (t := "Tr0ub4dor&3-" + rnd(4)), t),
    ("kubeconfig auth provider", f"      config:\n        access-token: {(t := rnd(30, B62 + '._-'))}\n", t),
    ("kubernetes env entry", f"env:\n- name: DB_PASSWORD\n  value: {(t := 'pl41n-' + rnd(6))}\n", t),
    ("kubectl literal", f"kubectl create secret generic db --from-literal=password={(t := 'pl41n-' + rnd(8))}", t),
    # private keys
    *[(f"pem {kind or 'pkcs8'}", text, secret) for kind, (text, secret) in PEMS.items()],
    ("putty key", f"PuTTY-User-Key-File-2: ssh-rsa\nPrivate-Lines: 2\n{(t := rnd(64, B62 + '+/'))}\n{rnd(20)}\n"
     f"Private-MAC: {hexs(40)}", t),
    # tokens by structure
    ("jwt hs256", JWT_HS, JWT_HS),
    ("jwt rs256", JWT_RS, JWT_RS),
    ("jwt alg none", JWT_NONE, JWT_NONE),
    ("jwe", JWE, JWE),
    # headers
    ("basic auth", f"Authorization: Basic {(t := b64('admin:' + rnd(10)))}", t),
    ("bearer opaque", f"Authorization: Bearer {(t := 'op4que-' + rnd(8))}", t),
    ("token scheme", f"Authorization: token {(t := 'plain' + rnd(10))}", t),
    ("digest", f'Authorization: Digest username="bob", nonce="{hexs(16)}", response="{(t := hexs(32))}"', t),
    ("aws sigv4 header", f"Authorization: AWS4-HMAC-SHA256 Credential=AKIA{rnd(16).upper()}/20250301/eu/s3/aws4_request, "
     f"SignedHeaders=host, Signature={(t := hexs(64))}", t),
    ("proxy authorization", f"Proxy-Authorization: Basic {(t := b64('proxy:' + rnd(12)))}", t),
    ("x-api-key", f"X-Api-Key: {(t := 'k3y-' + rnd(8))}", t),
    ("x-auth-token", f'{{"X-Auth-Token": "{(t := "t0k-" + rnd(8))}"}}', t),
    ("gitlab private-token", f"PRIVATE-TOKEN: {(t := 'pr1v-' + rnd(8))}", t),
    ("azure subscription key", f"Ocp-Apim-Subscription-Key: {(t := hexs(32))}", t),
    ("cookie", f"Cookie: theme=dark; session={(t := 's3ss-' + rnd(10))}", t),
    ("set-cookie", f"Set-Cookie: sid={(t := 's1d-' + rnd(12))}; Path=/; HttpOnly", t),
    ("bearer in a curl", f"curl -sH 'Authorization: Bearer {(t := 'cUrl-' + rnd(9))}' https://prom/api", t),
    ("curl user", f"curl -u admin:{(t := 'pa55-' + rnd(6))} https://prom/api", t),
    # URLs
    ("url password with a slash", f"http://u:{(t := 'a/b' + rnd(4))}@h/", t),
    ("url password with an at", f"https://admin:{(t := 'p@ss' + rnd(5))}@prometheus.example:9090/api", t),
    ("url password, no user", f"redis://:{(t := 'r3dis-' + rnd(6))}@cache:6379/0", t),
    ("url password, all symbols", f"amqp://app:{(t := '#?/:@' + rnd(5))}@mq.internal:5672/", t),
    ("postgres url", f"postgres://app:{(t := 'pg-' + rnd(9))}@db:5432/app", t),
    ("mongodb srv", f"mongodb+srv://app:{(t := 'm0ngo' + rnd(6))}@cluster0.example.net/db?retryWrites=true", t),
    ("jdbc query password", f"jdbc:postgresql://db:5432/app?user=app&password={(t := 'jdbc-' + rnd(6))}&ssl=true", t),
    ("query access_token", f"https://api.example.com/v1/me?access_token={(t := 'at-' + rnd(10))}", t),
    ("query token", f"https://grafana.example/d/x?orgId=1&token={(t := 'gr-' + rnd(10))}", t),
    ("query api_key", f"https://api.example.com/data?api_key={(t := 'ak-' + rnd(10))}&page=2", t),
    ("fragment token", f"https://app.example/cb#access_token={(t := 'fr-' + rnd(10))}&token_type=bearer", t),
    ("git remote token", f"https://x-access-token:{(t := 'ghs_' + rnd(36))}@github.com/org/repo.git", t),
    # names, flags, phrases
    ("password field", f"password={(t := 'hunter2-' + rnd(3))}", t),
    ("pgpassword", f"PGPASSWORD={(t := 'pg-' + rnd(8))} psql -h db", t),
    ("yaml password", f"db:\n  password: {(t := 'correct horse ' + rnd(6))}\n", t),
    ("json client_secret", f'{{"client_id": "deploysim", "client_secret": "{(t := "cs-" + rnd(12))}"}}', t),
    ("flag", f"deploysim-agent --api-token {(t := 'fl4g-' + rnd(8))} --verbose", t),
    ("papermill parameter", f"deploysim run canary -p prometheus_token {(t := 'pm-' + rnd(10))}", t),
    ("raw parameter", f"papermill in.ipynb out.ipynb -r prometheus_token {(t := 'pr-' + rnd(10))}", t),
    ("phrase", f"rollback: the password is {(t := 'hunter2-' + rnd(3))}.", t),
    ("yaml block scalar", f"secret: |\n  {(t := rnd(24))}\n  {rnd(24)}\nnext: 1", t),
    ("python kwargs", f"Client(url, api_key='{(t := 'py-' + rnd(10))}')", t),
    # random-looking, under no key that names a secret
    ("random base62", (t := rnd(32)), t),
    ("random base64", (t := rnd(48, B62 + "+/") + "=="), t),
    ("random base64url", (t := rnd(64, B62 + "-_")), t),
    ("random under an ordinary key", f"build_ref: {(t := rnd(40))}", t),
]


def _contexts(text: str) -> dict[str, str]:
    return {
        "alone": text,
        "sentence": f"step 3 paused after {text} was seen; see the runbook",
        "json": json.dumps({"detail": text, "step": 3}),
        "yaml": yaml.safe_dump({"detail": text, "step": 3}),
        "url": f"https://hooks.example.com/notify?detail={quote(text, safe='')}&step=3",
        "log": f'2025-03-01T10:15:00.123Z level=error logger=deploysim msg="probe failed" detail="{text}" step=3',
    }


def _decoded(context: str, out: str) -> str:
    """What a reader of that context gets back (JSON and YAML parsed, a URL unquoted)."""
    if context == "json":
        return str(json.loads(out))
    if context == "yaml":
        return str(yaml.safe_load(out))
    if context == "url":
        return unquote(out)
    return out


def test_there_are_at_least_eighty_shapes() -> None:
    assert len(SHAPES) >= 80
    assert len({name for name, _, _ in SHAPES}) == len(SHAPES)


@pytest.mark.parametrize(("shape", "text", "secret"), SHAPES, ids=[s[0] for s in SHAPES])
def test_a_secret_shape_is_gone_in_every_context(shape: str, text: str, secret: str) -> None:
    assert secret and secret in text
    for context, planted in _contexts(text).items():
        out = redact_text(planted)
        assert REDACTED in out, (shape, context)
        assert secret not in out, (shape, context, out)
        assert secret not in _decoded(context, out), (shape, context)
        assert redact_text(out) == out, (shape, context)  # idempotent


@pytest.mark.parametrize(("shape", "text", "secret"), SHAPES, ids=[s[0] for s in SHAPES])
def test_a_secret_shape_is_gone_from_data_and_found_for_the_by_value_net(shape: str, text: str, secret: str) -> None:
    data = {"run": {"notes": [text], "detail": {"text": text}}}
    assert secret not in json.dumps(Redactor().data(data)), shape
    found = find_secrets(text)
    assert any(secret in f or f in secret for f in found), (shape, found)
    # once known, the by-value net replaces it alone, wherever it shows up
    if len(secret) >= 6:
        r = Redactor.from_parameters({"detail": text})
        assert secret not in r.text(f"echoed: {secret}"), shape


# Ordinary strings that must come out unchanged. Decisions: an image digest (sha256:...) and a
# git commit are public content addresses, not secrets; UUIDs and run names identify runs;
# Kubernetes' generated names, PromQL, durations and paths are the daily text of a rollout.
# Not kept: a long base64 blob reads as random even when public (a certificate's
# client-certificate-data); it is redacted with the rest.
ORDINARY = [
    "tokenizer", "the tokenizer splits text into tokens", "max_tokens: 512", "token_type: Bearer",
    "password-reset page", "a password-reset page for users", "secretary", "the secretary's keyboard", "keyboard",
    "keys: [a, b]", "key: value", "secretName: checkout-tls", "secretKeyRef: {name: prom, key: token}",
    "password_file: /run/secrets/db", "token_url: https://auth.example.com/token", "auth_type: none",
    "the token is expired", "token expired at 10:15", "Authorization header missing", "kind: Secret",
    "bypass the cache", "pass rate 99%", "session: 3",
    "cannot reach the API server at http://127.0.0.1:46185: connection refused",
    "Prometheus at http://127.0.0.1:9090, then http://localhost:8080.",
    "ghcr.io/stefanprodan/podinfo:6.0.1",
    "ghcr.io/stefanprodan/podinfo@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "checkout@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "registry.example.com:5000/team/checkout:1.42.0", "docker.io/library/nginx:1.25-alpine",
    "commit 54769c8d2f0e4b6a9c1d3e5f7a9b1c3d5e7f9a1b", "run e7c3a9f0-5d1b-4c2e-8a6f-1b2c3d4e5f60",
    "E7C3A9F0-5D1B-4C2E-8A6F-1B2C3D4E5F60",
    "20250301T101500Z-canary-3f2a1c", "/work/main/runs/20250301T101500Z-blue_green-4ac64e/record.json",
    "web-api-7d4b9c8f6-x2x9z", "checkout-canary-7d4b9c8f6d-x2x9z", "pod web-api-7d4b9c8f6-x2x9z is Ready",
    'sum(rate(http_requests_total{job="checkout",code=~"5.."}[5m])) / sum(rate(http_requests_total{job="checkout"}[5m]))',
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app="checkout"}[1m])))',
    "up @ 1609746000", "http://prom:9090/api/v1/query?query=up@1609746000",
    "https://example.com/a/b?x=1&y=2", "https://prometheus.example:9090/api/v1/query?query=up&time=1700000000",
    "http://localhost:8080/metrics", "http://[::1]:9090/", "https://medium.com/@user/post", "http://user@host/",
    "s3://bucket/path/to/object.json", "git@github.com:org/repo.git", "ssh://git@github.com/org/repo.git",
    "email ops@example.com", "1h30m", "PT5M", "30s", "365d", "5m0s",
    "/etc/deploysim/scenario.yaml", "C:\\Users\\me\\file.txt", "runbooks/canary.ipynb",
    "replicas=10 maxSurge=25% maxUnavailable=0", "--set strategy.steps.2.pause=5m",
    "deploysim run canary -p duration 20m -p step_pause 30s", "2025-03-01T10:15:00.000Z",
    "apiVersion: argoproj.io/v1alpha1", "V1alpha3PodGroupSchedulingPolicy", "V1RollingUpdateDeployment",
    "RolloutNotPromoted: canary: rolled back", "PapermillExecutionError", "CamelCaseIdentifierWithoutDigits",
    "analysis step-3 Failed: 1 failed measurements (limit 0): error_rate 0.02071 > 0.01",
    "rollout_attributable_failures 133.0, time_to_detect_seconds 180.0",
    "Traceback (most recent call last):\n  File \"/work/main/deploysim/runbooks/session.py\", line 318, in execute",
    "KeyError: 'candidate'", "ValueError: math domain error", "python3.11", "numpy==1.26.4", "x86_64-linux-gnu",
    "prometheus_url: http://prometheus:9090", "api_url: https://api.example.com", "namespace: prod",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_strings_stay_unchanged(text: str) -> None:
    assert redact_text(text) == text
    assert find_secrets(text) == []
    assert Redactor().data({"note": text, "list": [text]}) == {"note": text, "list": [text]}


def test_only_the_secret_goes_and_the_rest_of_a_line_stays() -> None:
    line = f"probe https://admin:{'p@ss/' + 'w0rd'}@prom.example:9090/api?query=up&token=abc123 failed"
    assert redact_text(line) == f"probe https://admin:{REDACTED}@prom.example:9090/api?query=up&token={REDACTED} failed"
    header = f"Authorization: Basic {b64('admin:' + 'x' * 12)}"
    assert redact_text(header) == f"Authorization: Basic {REDACTED}"
    key, _ = PEMS["RSA"]
    assert redact_text(key) == f"-----BEGIN RSA PRIVATE KEY-----{REDACTED}-----END RSA PRIVATE KEY-----"
