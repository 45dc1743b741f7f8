"""Planted secrets never survive: hypothesis builds secrets (vendors' token shapes, URL passwords
of any printable characters, random high-entropy tokens), plants them in random ordinary text
in several syntaxes, and checks that ``redact_text`` and ``Redactor.data`` leave no trace.

Derandomized: the same few hundred cases on every run, so CI is deterministic.
"""

from __future__ import annotations

import json
import random
import string

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from deploysim.redact import REDACTED, Redactor, redact_text

FUZZ = settings(max_examples=120, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

B62 = string.ascii_letters + string.digits
WORDS = ["rollout", "canary", "step", "paused", "weight", "25%", "checkout", "analysis", "Failed", "promoted",
         "replicas=10", "error_rate", "0.02", "p99", "180ms", "web-api-7d4b9c8f6-x2x9z", "v1.42.0", "sim",
         "prometheus", "namespace:", "prod", "->", "(limit", "0)", "ghcr.io/acme/checkout:1.42.0", "1h30m"]
ORDINARY_KEYS = ["detail", "note", "value", "message", "build_ref", "x", "data", "reason", "status", "id"]

# (prefix, alphabet of what follows, shortest, longest): the shapes vendors document
PREFIXES = [
    ("ghp_", B62, 36, 36), ("gho_", B62, 36, 36), ("ghs_", B62, 36, 36), ("github_pat_", B62 + "_", 40, 82),
    ("glpat-", B62 + "-_", 20, 20), ("xoxb-", string.digits + "-" + B62, 20, 60), ("xoxp-", B62 + "-", 20, 60),
    ("sk_live_", B62, 24, 99), ("rk_live_", B62, 24, 99), ("AKIA", string.ascii_uppercase + string.digits, 16, 16),
    ("ASIA", string.ascii_uppercase + string.digits, 16, 16), ("AIza", B62 + "-_", 35, 35),
    ("npm_", B62, 36, 36), ("pypi-", B62 + "-_", 50, 120), ("sk-", B62 + "-_", 32, 64),
    ("sk-ant-api03-", B62 + "-_", 40, 95), ("hvs.", B62 + "-_", 24, 90), ("hf_", B62, 34, 34),
    ("SK", "0123456789abcdef", 32, 32), ("GOCSPX-", B62 + "-_", 28, 28), ("dop_v1_", "0123456789abcdef", 64, 64),
]


@st.composite
def vendor_tokens(draw: st.DrawFn) -> str:
    prefix, alphabet, low, high = draw(st.sampled_from(PREFIXES))
    return prefix + draw(st.text(alphabet=alphabet, min_size=low, max_size=high))


@st.composite
def jwts(draw: st.DrawFn) -> str:
    import base64

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    alg = draw(st.sampled_from(["HS256", "RS256", "ES384", "none"]))
    claims = draw(st.dictionaries(st.sampled_from(["sub", "iss", "aud", "exp", "role"]),
                                  st.text(alphabet=B62, min_size=1, max_size=12), min_size=1))
    signature = "" if alg == "none" else part(draw(st.binary(min_size=16, max_size=64)))
    return f"{part(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{part(json.dumps(claims).encode())}.{signature}"


@st.composite
def random_tokens(draw: st.DrawFn) -> str:
    """Uniformly random characters, as a key generator makes them (not hypothesis's favourite
    simple strings): 40 to 64 of base62, base64 or base64url."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    alphabet = draw(st.sampled_from([B62, B62 + "+/", B62 + "-_"]))
    return "".join(rng.choice(alphabet) for _ in range(draw(st.integers(40, 64))))


def _sentence(draw: st.DrawFn, secret: str) -> str:
    before = draw(st.lists(st.sampled_from(WORDS), max_size=6))
    after = draw(st.lists(st.sampled_from(WORDS), max_size=6))
    return " ".join([*before, secret, *after])


def _planted(draw: st.DrawFn, secret: str) -> tuple[str, str]:
    """The secret in one syntax; returns (context, text)."""
    context = draw(st.sampled_from(["alone", "sentence", "json", "yaml", "log", "field"]))
    key = draw(st.sampled_from(ORDINARY_KEYS))
    if context == "alone":
        return context, secret
    if context == "sentence":
        return context, _sentence(draw, secret)
    if context == "json":
        return context, json.dumps({key: _sentence(draw, secret), "step": 3})
    if context == "yaml":
        return context, yaml.safe_dump({key: _sentence(draw, secret), "steps": [1, 2]})
    if context == "log":
        return context, f'2025-03-01T10:15:00Z level=warn msg="{_sentence(draw, secret)}" step=3'
    return context, f"{key}: {secret}"


def _yaml_or_text(out: str) -> str:
    """What a YAML reader gets back; ``[REDACTED]`` starting a plain scalar can make YAML
    unreadable (a flow sequence), and then the text is what there is to read."""
    try:
        return str(yaml.safe_load(out))
    except yaml.YAMLError:
        return out


def _assert_gone(secret: str, text: str, context: str) -> None:
    out = redact_text(text)
    assert secret not in out, (context, text, out)
    if context == "json":
        assert secret not in json.dumps(json.loads(out))
    if context == "yaml":
        assert secret not in _yaml_or_text(out)
    assert secret not in json.dumps(Redactor().data({"a": text, "b": [text, {"c": text}]}))


@FUZZ
@given(st.data(), st.one_of(vendor_tokens(), jwts()))
def test_planted_vendor_tokens_and_jwts_never_survive(data: st.DataObject, secret: str) -> None:
    context, text = _planted(data.draw, secret)
    _assert_gone(secret, text, context)


@FUZZ
@given(st.data(), random_tokens())
def test_planted_random_tokens_never_survive(data: st.DataObject, secret: str) -> None:
    context, text = _planted(data.draw, secret)
    _assert_gone(secret, text, context)


# any printable character but whitespace (a space ends a URL in text; it is never in one unencoded)
URL_PASSWORD = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation, min_size=1, max_size=24)


@FUZZ
@given(st.data(), URL_PASSWORD,
       st.text(alphabet=string.ascii_letters + string.digits + "._-", max_size=8),
       st.sampled_from(["http", "https", "postgres", "redis", "amqp", "mongodb+srv"]),
       st.sampled_from(["h", "db", "prometheus.example", "10.0.0.7", "cache.internal"]),
       st.sampled_from(["", "/", "/api/v1/query", ":5432/app", ":9090/api?query=up"]))
def test_url_passwords_of_any_printable_characters_never_survive(
        data: st.DataObject, password: str, user: str, scheme: str, host: str, rest: str) -> None:
    url = f"{scheme}://{user}:{password}@{host}{rest}"
    context = data.draw(st.sampled_from(["alone", "sentence", "json", "yaml", "log"]))
    text = {
        "alone": url,
        "sentence": f"probe {url} failed with 401",
        "json": json.dumps({"prometheus_url": url, "step": 3}),
        "yaml": yaml.safe_dump({"url": url}),
        "log": f"level=error url={url} msg=unreachable",
    }[context]
    out = redact_text(text)
    decoded = {"json": lambda: json.loads(out)["prometheus_url"], "yaml": lambda: _yaml_or_text(out)}.get(
        context, lambda: out)()
    # the userinfo keeps the user and loses the password, whole; the host stays
    assert f"://{user}:{REDACTED}@{host}" in decoded, (text, out)
    assert decoded.count(REDACTED) >= 1
    if len(password) >= 4:
        assert password not in decoded.replace(f"://{user}:", "", 1), (text, out)


@FUZZ
@given(st.data(), st.one_of(vendor_tokens(), jwts(), random_tokens()))
def test_a_parameter_named_for_a_secret_never_survives_even_when_plain(data: st.DataObject, secret: str) -> None:
    plain = data.draw(st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=8, max_size=20))
    params = {"prometheus_token": plain, "reason": _sentence(data.draw, secret), "namespace": "prod"}
    assume(plain not in '"parameters" "prometheus_token" "reason" "namespace" "log" "echo" "saw" "prod"')
    r = Redactor.from_parameters(params)
    record = json.dumps(r.data({"parameters": params, "log": [f"echo {plain}", f"saw {secret}"]}))
    assert plain not in record and secret not in record
    assert "prod" in record  # ordinary values are kept
