"""Redaction for one run: the shapes, plus the literal secrets its parameters held.

A secret found among a run's parameters (by its name or its shape) is replaced wherever it
appears later, also as JSON, a Python literal, HTML or a URL encode it (``a"b`` is ``a\\"b``
in a notebook's JSON, ``a&quot;b`` in its HTML copy and ``a%22b`` in a query).

>>> r = Redactor.from_parameters({"prometheus_token": "s3cr3t-value", "namespace": "prod"})
>>> r.text("token was s3cr3t-value"), r.data({"prometheus_token": "s3cr3t-value"})
('token was [REDACTED]', {'prometheus_token': '[REDACTED]'})
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from deploysim.redaction.names import is_secret_name
from deploysim.redaction.spans import REDACTED
from deploysim.redaction.text import find_secrets, redact_text

# Shortest literal value replaced everywhere: shorter ones ("1", "prod") would shred the text.
MIN_LITERAL = 6

# Notebook output data that is binary (base64); secrets cannot hide there and the
# high-entropy rule would destroy it.
BINARY_MIMETYPES = ("image/png", "image/jpeg", "image/gif", "application/pdf")

# names of a mapping's "name" and "value" fields (Kubernetes env entries, header lists)
_ENTRY_NAMES = ("name", "key", "header")
_ENTRY_VALUES = ("value",)


def encodings(secret: str) -> set[str]:
    """``secret`` as it reads in JSON, a Python literal, HTML, a URL and a URL's query.

    >>> sorted(encodings('a"b/cd'))
    ['a"b/cd', 'a%22b%2Fcd', 'a&quot;b/cd', 'a\\\\"b/cd']
    """
    forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], html.escape(secret), quote(secret, safe=""),
             quote_plus(secret)}
    return {f for f in forms if len(f) >= MIN_LITERAL}


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

    @classmethod
    def from_words(cls, words: Iterable[str]) -> Redactor:
        """The secrets of a command line (``-p prometheus_token VALUE``, ``-y '{token: x}'``).

        >>> sorted(Redactor.from_words(["run", "-p", "prometheus_token", "plain-value-1"]).literals)
        ['plain-value-1']
        """
        words = list(words)
        literals: set[str] = set()
        for text in (*words, " ".join(words)):
            literals.update(find_secrets(text))
        return cls({s for s in literals if len(s) >= MIN_LITERAL})

    def _forms(self) -> set[str]:
        forms: set[str] = set()
        for literal in self.literals:
            forms |= encodings(literal)
        return forms

    def text(self, text: str) -> str:
        return redact_text(text, self._forms())

    def text_literals(self, text: str) -> str:
        """Only the by-value net: for documents with embedded binary data (HTML with images)
        that were rendered from already redacted content."""
        for literal in sorted(self._forms(), key=len, reverse=True):
            text = text.replace(literal, REDACTED)
        return text

    def data(self, value: Any, key: str | None = None) -> Any:
        """A deep copy of JSON-like ``value`` with secrets replaced (by key name, shape, value)."""
        if isinstance(value, Mapping):
            entry_secret = _is_secret_entry(value)
            return {k: (REDACTED if entry_secret and k in _ENTRY_VALUES and _scalar(v) and v != ""
                        else self._item(str(k), v)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def _item(self, key: str, value: Any) -> Any:
        if key in BINARY_MIMETYPES:
            return value
        if is_secret_name(key) and _scalar(value):
            return REDACTED if value not in ("", None) else value
        return self.data(value, key)

    def notebook(self, nb: Any) -> Any:
        """A redacted copy of a notebook (an nbformat NotebookNode or its dict)."""
        import nbformat

        return nbformat.from_dict(self.data(_plain(nb)))


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _is_secret_entry(value: Mapping[Any, Any]) -> bool:
    """``{"name": "DB_PASSWORD", "value": "..."}``: an entry naming a secret."""
    return any(isinstance(value.get(k), str) and is_secret_name(value[k]) for k in _ENTRY_NAMES)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _collect(value: Any, key: str | None, out: set[str]) -> None:
    if isinstance(value, Mapping):
        entry_secret = _is_secret_entry(value)
        for k, v in value.items():
            if entry_secret and k in _ENTRY_VALUES and isinstance(v, str) and v:
                out.add(v)
            _collect(v, str(k), out)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, key, out)
    elif isinstance(value, str):
        if key is not None and is_secret_name(key) and value:
            out.add(value)
        out.update(find_secrets(value))
    elif _scalar(value) and key and is_secret_name(key):
        out.add(str(value))
