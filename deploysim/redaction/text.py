"""All the detectors over one text: where its secrets are, the secrets, the text without them.

Five nets, each catching what the others miss: by place (a URL's password, a header's
credential, the value under a secret's name, a flag's value), by shape (vendors' tokens, PEM
private keys, JWTs), by content (base64 that decodes to a secret), by look (random-looking
tokens under any key or none), and by value (:class:`~deploysim.redaction.redactor.Redactor`:
the secrets a run was given, wherever they show up again).

>>> redact_text("curl -H 'Authorization: Bearer abc.def.ghi' https://x")
"curl -H 'Authorization: Bearer [REDACTED]' https://x"
>>> redact_text("postgres://app:hunter2@db:5432/app and redis://:pw@cache")
'postgres://app:[REDACTED]@db:5432/app and redis://:[REDACTED]@cache'
>>> redact_text("tokenizer: bert, the secretary, password-reset page, web-api-7d4b9c8f6-x2x9z")
'tokenizer: bert, the secretary, password-reset page, web-api-7d4b9c8f6-x2x9z'
"""

from __future__ import annotations

from collections.abc import Iterable

from deploysim.redaction.entropy import random_spans
from deploysim.redaction.fields import field_spans
from deploysim.redaction.spans import REDACTED, Span, replace_spans, span_texts
from deploysim.redaction.tokens import encoded_spans, token_spans
from deploysim.redaction.urls import url_spans

# decoded base64 is searched again, this many times deep (base64 inside base64)
_DEPTH = 2


def secret_spans(text: str, depth: int = _DEPTH) -> list[Span]:
    """Where the secrets of ``text`` are, by place, shape, content and look."""
    def holds_secret(decoded: str) -> bool:
        return bool(secret_spans(decoded, depth - 1))

    spans: list[Span] = []
    spans.extend(url_spans(text, holds_secret if depth > 0 else None))
    spans.extend(field_spans(text))
    spans.extend(token_spans(text))
    spans.extend(random_spans(text))
    if depth > 0:
        spans.extend(encoded_spans(text, holds_secret))
    return spans


def _literal_spans(text: str, literals: Iterable[str]) -> list[Span]:
    spans: list[Span] = []
    for literal in literals:
        start = text.find(literal)
        while start != -1:
            spans.append((start, start + len(literal)))
            start = text.find(literal, start + len(literal))
    return spans


def find_secrets(text: str) -> list[str]:
    """The secret parts of ``text``, in order (for the by-value net).

    >>> find_secrets("password=hunter2 and ghp_" + "a1B2" * 6)
    ['hunter2', 'ghp_a1B2a1B2a1B2a1B2a1B2a1B2']
    """
    return span_texts(text, secret_spans(text))


EXCERPT_SCAN = 10_000  # an excerpt redacts at most this much of a text (the cost grows with it)


def excerpt_text(text: str, limit: int = 60) -> str:
    """``text`` redacted, then cut to ``limit`` characters: a secret is hidden before the cut,
    so no part of it shows (only the first :data:`EXCERPT_SCAN` characters are read).

    >>> excerpt_text("{prometheus_token: ghp_" + "a1B2c3D4" * 5 + ", candidate: {error_rate: 0.05}", 40)
    '{prometheus_token: [REDACTED], candidat…'
    """
    clean = redact_text(text[:EXCERPT_SCAN])
    return clean if len(clean) <= limit and len(text) <= EXCERPT_SCAN else clean[:limit - 1] + "…"


def redact_text(text: str, literals: Iterable[str] = ()) -> str:
    """``text`` with every secret part replaced by ``[REDACTED]``; ``literals`` are replaced
    wherever they appear.

    >>> redact_text("the token: abc123 and password=x")
    'the token: [REDACTED] and password=[REDACTED]'
    >>> redact_text("db:\\n  password: correct horse battery staple\\n  user: app")
    'db:\\n  password: [REDACTED]\\n  user: app'
    >>> redact_text(redact_text("Authorization: Bearer abc.def.ghi"))  # idempotent
    'Authorization: Bearer [REDACTED]'
    >>> redact_text("the commit is 54769c8d2f0e4b6a9c1d3e5f7a9b1c3d5e7f9a1b")
    'the commit is 54769c8d2f0e4b6a9c1d3e5f7a9b1c3d5e7f9a1b'
    """
    if not text:
        return text
    spans = _literal_spans(text, literals)
    spans.extend(secret_spans(text))
    return replace_spans(text, spans) if spans else text


__all__ = ["REDACTED", "find_secrets", "redact_text", "secret_spans"]
