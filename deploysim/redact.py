"""Keep secrets out of the audit trail: tokens, passwords, bearer headers, kubeconfig keys.

Redaction is on by default for everything a run writes (record.json, the executed notebook,
its HTML copy). Three nets, each catching what the others may miss:

1. by name: a value under a key that names a secret (``prometheus_token``, ``password``,
   ``client-key-data``, ``Authorization`` ...) is replaced whole;
2. by shape: text that looks like a secret (``Authorization: Bearer ...``, ``token: ...``,
   ``password=...``, ``https://user:pass@host``, ``ghp_...``, ``eyJ...`` JWTs, AWS keys, PEM
   private keys, long high-entropy strings) has the secret part replaced;
3. by value: every secret found in a run's parameters by (1) or (2) is replaced wherever it
   appears verbatim later, e.g. echoed alone in a cell's output or a traceback.

>>> redact_text("curl -H 'Authorization: Bearer abc.def.ghi' https://x")
"curl -H 'Authorization: Bearer [REDACTED]' https://x"
>>> redact_text("postgres://app:hunter2@db:5432/app")
'postgres://app:[REDACTED]@db:5432/app'
>>> r = Redactor.from_parameters({"prometheus_token": "s3cr3t-value", "namespace": "prod"})
>>> r.text("token was s3cr3t-value"), r.data({"prometheus_token": "s3cr3t-value"})
('token was [REDACTED]', {'prometheus_token': '[REDACTED]'})
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REDACTED = "[REDACTED]"

# Shortest literal value replaced everywhere: shorter ones ("1", "prod") would shred the text.
MIN_LITERAL = 6

# Key names that hold a secret: the value is replaced whole.
SECRET_NAME = re.compile(
    r"(?i)(pass(word|wd|phrase)?$|pwd$|secret|token|api[_-]?key|apikey|private[_-]?key|"
    r"client[_-]key[_-]data|credential|authorization|bearer|cookie|session[_-]?id|"
    r"access[_-]?key|signature)"
)

_SECRET_WORDS = (
    r"[\w-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|"
    r"client-key-data|client_key_data|access[_-]?key|credentials?)[\w-]*"
)

# (pattern, group holding the secret). Order matters: specific shapes first.
_PATTERNS: tuple[tuple[re.Pattern[str], int], ...] = (
    # PEM private keys (kubeconfig client keys decoded, service-account keys)
    (re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)"), 1),
    # Authorization: Bearer xyz / "Authorization": "Basic xyz"
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)?\s*)([^\s\"',;}\]]+)"), 2),
    (re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9\-._~+/]{6,}=*)"), 2),
    # token: abc / password=abc / "api_key": "abc" / client-key-data: LS0t...
    (re.compile(rf"(?i)(\b{_SECRET_WORDS}[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}}\]\)]+)"), 2),
    # https://user:password@host
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^/\s@]+)(?=@)"), 2),
    # known token shapes
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,})"), 1),
    (re.compile(r"\b(github_pat_[A-Za-z0-9_]{20,})"), 1),
    (re.compile(r"\b(glpat-[A-Za-z0-9_-]{20,})"), 1),
    (re.compile(r"\b(eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)"), 1),
    (re.compile(r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b"), 1),
    (re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]{10,})"), 1),
    (re.compile(r"\b(sk-[A-Za-z0-9_-]{20,})"), 1),
    (re.compile(r"\b(AIza[0-9A-Za-z_-]{35})"), 1),
)

# Long runs of token characters; redacted when they also look random (see _looks_random).
# '/' and '.' are left out so that paths and file names are never mistaken for tokens.
_HIGH_ENTROPY = re.compile(r"(?<![A-Za-z0-9_+=-])([A-Za-z0-9_+=-]{32,})(?![A-Za-z0-9_+=-])")

# Notebook output data that is binary (base64); secrets cannot hide there and the
# high-entropy rule would destroy it.
BINARY_MIMETYPES = ("image/png", "image/jpeg", "image/gif", "application/pdf")


def entropy(text: str) -> float:
    """Shannon entropy in bits per character.

    >>> round(entropy("aaaa"), 2), round(entropy("abcd"), 2)
    (0.0, 2.0)
    """
    if not text:
        return 0.0
    n = len(text)
    return max(0.0, -sum(c / n * math.log2(c / n) for c in Counter(text).values()))


def _looks_random(token: str) -> bool:
    """Mixed case and digits with high entropy: an API key, not a word, hash or identifier.

    Hex digests (a git commit, an image digest) have no upper case and are kept.
    """
    return (
        any(c.isupper() for c in token)
        and any(c.islower() for c in token)
        and any(c.isdigit() for c in token)
        and entropy(token) >= 4.0
    )


def is_secret_name(name: str) -> bool:
    """True for a key or parameter name that holds a secret.

    >>> is_secret_name("prometheus_token"), is_secret_name("client-key-data"), is_secret_name("namespace")
    (True, True, False)
    """
    return bool(SECRET_NAME.search(name))


def find_secrets(text: str) -> list[str]:
    """The secret parts of ``text`` that redaction replaces (for the by-value net).

    >>> find_secrets("password=hunter2 and ghp_" + "a1B2" * 6)
    ['hunter2', 'ghp_a1B2a1B2a1B2a1B2a1B2a1B2']
    """
    found: list[str] = []
    for pattern, group in _PATTERNS:
        for match in pattern.finditer(text):
            value = match.group(group)
            if value and not value.startswith(REDACTED[:-1]) and value not in found:
                found.append(value)
    for match in _HIGH_ENTROPY.finditer(text):
        if _looks_random(match.group(1)) and match.group(1) not in found:
            found.append(match.group(1))
    return found


def redact_text(text: str, literals: Iterable[str] = ()) -> str:
    """``text`` with every secret part replaced by ``[REDACTED]``.

    >>> redact_text("token: abc123 and password=x")
    'token: [REDACTED] and password=[REDACTED]'
    >>> redact_text(redact_text("Authorization: Bearer abc.def.ghi"))  # idempotent
    'Authorization: Bearer [REDACTED]'
    >>> redact_text("the commit is 54769c8d2f0e4b6a9c1d3e5f7a9b1c3d5e7f9a1b")
    'the commit is 54769c8d2f0e4b6a9c1d3e5f7a9b1c3d5e7f9a1b'
    """
    for literal in sorted(set(literals), key=len, reverse=True):
        if len(literal) >= MIN_LITERAL:
            text = text.replace(literal, REDACTED)
    for pattern, group in _PATTERNS:
        text = pattern.sub(lambda m, g=group: _replace_group(m, g), text)
    return _HIGH_ENTROPY.sub(lambda m: REDACTED if _looks_random(m.group(1)) else m.group(1), text)


def _replace_group(match: re.Match[str], group: int) -> str:
    if match.group(group).startswith(REDACTED[:-1]):  # already redacted: keep it as it is
        return match.group(0)
    start, end = match.span(group)
    whole_start = match.start()
    text = match.group(0)
    return text[: start - whole_start] + REDACTED + text[end - whole_start:]


@dataclass
class Redactor:
    """Redaction for one run: the shapes, plus the literal secrets its parameters held."""

    literals: set[str] = field(default_factory=set)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> Redactor:
        """Collect the secrets among a run's parameters (by name and by shape)."""
        literals: set[str] = set()
        _collect(parameters, None, literals)
        return cls({s for s in literals if len(s) >= MIN_LITERAL})

    def text(self, text: str) -> str:
        return redact_text(text, self.literals)

    def text_literals(self, text: str) -> str:
        """Only the by-value net: for documents with embedded binary data (HTML with images)
        that were rendered from already redacted content."""
        for literal in sorted(self.literals, key=len, reverse=True):
            text = text.replace(literal, REDACTED)
        return text

    def data(self, value: Any, key: str | None = None) -> Any:
        """A deep copy of JSON-like ``value`` with secrets replaced (by key name, shape, value)."""
        if isinstance(value, Mapping):
            return {k: self._item(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def _item(self, key: str, value: Any) -> Any:
        if key in BINARY_MIMETYPES:
            return value
        if is_secret_name(key) and isinstance(value, str | int | float) and not isinstance(value, bool):
            return REDACTED if value not in ("", None) else value
        return self.data(value, key)

    def notebook(self, nb: Any) -> Any:
        """A redacted copy of a notebook (an nbformat NotebookNode or its dict)."""
        import nbformat

        return nbformat.from_dict(self.data(_plain(nb)))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _collect(value: Any, key: str | None, out: set[str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _collect(v, str(k), out)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, key, out)
    elif isinstance(value, str):
        if key is not None and is_secret_name(key) and value:
            out.add(value)
        out.update(find_secrets(value))
    elif isinstance(value, int | float) and not isinstance(value, bool) and key and is_secret_name(key):
        out.add(str(value))
