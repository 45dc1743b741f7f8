"""Secrets known by their shape: vendors' token prefixes, PEM private keys, JWTs, and base64
that decodes to a secret.

The prefixes are the ones each vendor documents for its tokens (GitHub ``ghp_``/``gho_``/
``ghs_``/``github_pat_``, GitLab ``glpat-``, Slack ``xoxb-``, Stripe ``sk_live_``, AWS ``AKIA``,
npm ``npm_``, PyPI ``pypi-``, OpenAI and Anthropic ``sk-``, SendGrid ``SG.``, Twilio ``SK``,
Google ``AIza``/``GOCSPX-``/``ya29.``, HashiCorp Vault ``hvs.``, Hugging Face ``hf_`` ...). A
prefix needs only a few characters after it: a token cut short in an error's excerpt is still
hidden.

>>> text = "pushed with ghp_" + "a1B2c3D4" * 4 + "e5F6 and AKIA" + "IOSFODNN7EXAMPL0"
>>> [text[s:e][:8] for s, e in token_spans(text)]
['ghp_a1B2', 'AKIAIOSF']
>>> pem = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEA7\\n-----END RSA PRIVATE KEY-----"
>>> [pem[s:e] for s, e in token_spans(pem)]
['\\nMIIEowIBAAKCAQEA7\\n']
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator

from deploysim.redaction.spans import Span, starts_word

_B = starts_word("A-Za-z0-9_")  # not inside a longer word
_E = r"(?![A-Za-z0-9_])"

# (what, pattern); the whole match is the secret
PREFIXED: tuple[tuple[str, re.Pattern[str]], ...] = tuple((what, re.compile(pattern)) for what, pattern in (
    ("GitHub token", _B + r"gh[pousr]_[A-Za-z0-9]{8,}"),
    ("GitHub fine-grained token", _B + r"github_pat_[A-Za-z0-9_]{8,}"),
    ("GitLab token", _B + r"gl(?:pat|dt|rt|ptt|cbt|imt|soat|ffct|agent|oas|ft)-[A-Za-z0-9_-]{8,}"),
    ("GitLab runner token", _B + r"GR1348941[A-Za-z0-9_-]{8,}"),
    ("Slack token", _B + r"xox[abposre]-[A-Za-z0-9-]{8,}"),
    ("Slack app token", _B + r"xapp-\d-[A-Za-z0-9-]{8,}"),
    ("Stripe key", _B + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"),
    ("Stripe webhook secret", _B + r"whsec_[A-Za-z0-9]{8,}"),
    ("AWS access key id", _B + r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{12,}" + _E),
    ("Google API key", _B + r"AIza[0-9A-Za-z_-]{20,}"),
    ("Google OAuth client secret", _B + r"GOCSPX-[A-Za-z0-9_-]{8,}"),
    ("Google OAuth access token", _B + r"ya29\.[0-9A-Za-z_-]{8,}"),
    ("npm token", _B + r"npm_[A-Za-z0-9]{8,}"),
    ("PyPI token", _B + r"pypi-[A-Za-z0-9_-]{16,}"),
    ("OpenAI or Anthropic key", _B + r"sk-(?:proj-|ant-(?:api|admin)\d\d-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}"),
    ("SendGrid key", _B + r"SG\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("Twilio API key", _B + r"SK[0-9a-fA-F]{32}" + _E),
    ("Twilio account id", _B + r"AC[0-9a-f]{32}" + _E),
    ("Mailgun key", _B + r"key-[0-9a-z]{32}" + _E),
    ("Mailchimp key", _B + r"[0-9a-f]{32}-us\d{1,2}" + _E),
    ("HashiCorp Vault token", _B + r"hv[sbr]\.[A-Za-z0-9_-]{16,}"),
    ("Terraform Cloud token", _B + r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_-]{16,}"),
    ("Hugging Face token", _B + r"hf_[A-Za-z0-9]{16,}"),
    ("DigitalOcean token", _B + r"do[opr]_v1_[a-f0-9]{16,}"),
    ("Shopify token", _B + r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{16,}"),
    ("Grafana token", _B + r"gl(?:sa|c)_[A-Za-z0-9_+/=-]{16,}"),
    ("Databricks token", _B + r"dapi[a-f0-9]{16,}"),
    ("Postman key", _B + r"PMAK-[A-Za-z0-9-]{16,}"),
    ("New Relic key", _B + r"NRAK-[A-Z0-9]{16,}"),
    ("Sentry token", _B + r"sntry[su]_[A-Za-z0-9_=+/-]{16,}"),
    ("Doppler token", _B + r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{16,}"),
    ("Linear key", _B + r"lin_api_[A-Za-z0-9]{16,}"),
    ("Square token", _B + r"(?:sq0atp|sq0csp|EAAA)[A-Za-z0-9_-]{16,}"),
    ("Age secret key", _B + r"AGE-SECRET-KEY-1[0-9A-Z]{16,}"),
    ("Telegram bot token", _B + r"\d{8,10}:AA[A-Za-z0-9_-]{30,}"),
    ("Azure AD client secret", _B + r"[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{20,}"),
    ("JFrog token", _B + r"AKCp[A-Za-z0-9]{16,}"),
    ("Slack webhook", r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{8,}"),
    ("Discord webhook", r"discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{8,}"),
))

# -----BEGIN ... PRIVATE KEY----- up to its END line, or to the end of the key's characters when
# the excerpt was cut; in JSON or a Python string the newlines are the two characters \n
_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----"
    r"((?:[A-Za-z0-9+/=:,.\- \t\r\n]|\\[nr])*?)"
    r"(?=-----END \1PRIVATE KEY\2-----|$|[^A-Za-z0-9+/=:,.\- \t\r\n\\])"
)
# a PuTTY key's private lines (after "Private-Lines: N", as plain lines or escaped ones)
_PUTTY = re.compile(r"Private-Lines: *\d+(?:\r?\n|(?:\\r)?\\n)((?:[A-Za-z0-9+/=]+(?:\r?\n|(?:\\r)?\\n)?)+)")
# a JWT (or JWE): base64url JSON header, then two to four more dot-separated parts
_JWT = re.compile(starts_word("A-Za-z0-9_-") + r"eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,4}")
# base64 long enough to hide a secret: decoded and looked at (kubeconfig's client-key-data,
# a docker config, a Basic credential)
_BASE64 = re.compile(starts_word("A-Za-z0-9+/_-") + r"[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")


def b64decode(text: str) -> bytes | None:
    """``text`` decoded as base64 or base64url (padding optional), None if it is neither.

    >>> b64decode("dXNlcjpwYXNz"), b64decode("not base64!")
    (b'user:pass', None)
    """
    data = text.strip().rstrip("=")
    if not data or len(data) % 4 == 1:
        return None
    padded = data + "=" * (-len(data) % 4)
    try:
        if "-" in data or "_" in data:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_jwt(token: str) -> bool:
    raw = b64decode(token.split(".", 1)[0])
    try:
        header = json.loads(raw) if raw else None
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(header, dict) and ("alg" in header or "enc" in header)


def pem_spans(text: str) -> Iterator[Span]:
    """The body of each PEM private key (the BEGIN/END lines stay, to say what was there)."""
    for match in _PEM.finditer(text):
        if match.group(3).strip(" \t\r\n\\nr"):
            yield match.span(3)
    for match in _PUTTY.finditer(text):
        yield match.span(1)


def token_spans(text: str) -> Iterator[Span]:
    """Vendors' tokens, PEM private keys and JWTs in ``text``."""
    for _what, pattern in PREFIXED:
        for match in pattern.finditer(text):
            yield match.span()
    yield from pem_spans(text)
    for match in _JWT.finditer(text):
        if _is_jwt(match.group(0)):
            yield match.span()


def encoded_spans(text: str, holds_secret: Callable[[str], bool]) -> Iterator[Span]:
    """Base64 runs whose decoded text holds a secret (by ``holds_secret``), or a private key,
    or a ``user:password`` pair.

    >>> text = "client-cert LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t and dXNlcjpodW50ZXIy"
    >>> [text[s:e] for s, e in encoded_spans(text, lambda t: False)]
    ['dXNlcjpodW50ZXIy']
    """
    for match in _BASE64.finditer(text):
        raw = b64decode(match.group(0))
        if not raw or len(raw) < 8:
            continue
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if not decoded.isprintable() and not all(c.isprintable() or c in "\r\n\t" for c in decoded):
            continue
        if "PRIVATE KEY" in decoded or _USERINFO.fullmatch(decoded) or holds_secret(decoded):
            yield match.span()


# what a Basic credential decodes to: user:password, both printable, no spaces around
_USERINFO = re.compile(r"[^\s:]{1,64}:[^\s]{4,}")
