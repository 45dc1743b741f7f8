"""Secrets in URLs: the password of the userinfo, whatever it holds, and secret query parameters.

``urllib.parse.urlsplit`` reads a well-formed URL (``postgres://app:pw@db:5432/app``,
``redis://:pw@cache``). A password that holds ``/``, ``?``, ``#`` or ``@`` unencoded
(``http://u:a/b@h/``) is not well-formed, and urllib would read ``u:a`` as host and port; so
the URL is also scanned: a user, ``:``, then the text up to the last ``@`` that a host follows
is the userinfo, and such a password is hidden whole. Both readings are hidden. A URL ends at
whitespace, or at its closing quote when a quote opens it. Where ``scheme://name:rest`` has no
``@`` at all and ``rest`` is no port, the text was cut (an excerpt) or is broken: ``rest`` is
hidden too. The cost of reading so: a URL with a port and an ``@`` followed by a host-like word
in its path (``http://h:8080/a/@b``) loses ``8080/a/``.

Query and fragment parameters are read with ``urllib.parse.unquote_plus``; the value is
hidden when the name is a secret's (:func:`~deploysim.redaction.names.is_secret_name`:
``access_token``, ``X-Amz-Signature``, ``X-Amz-Credential``, ``client_secret``) or one that
only URLs use for one (``sig``, ``key``, ``code``, ``X-Goog-Signature``).

>>> from deploysim.redaction.spans import replace_spans
>>> redact = lambda text: replace_spans(text, url_spans(text))
>>> redact("http://u:a/b@h/"), redact("redis://:pw@cache:6379/0")
('http://u:[REDACTED]@h/', 'redis://:[REDACTED]@cache:6379/0')
>>> redact("https://s3.example/b/k?X-Amz-Date=20250301&X-Amz-Signature=9f86d081")
'https://s3.example/b/k?X-Amz-Date=20250301&X-Amz-Signature=[REDACTED]'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from urllib.parse import unquote_plus, urlsplit

from deploysim.redaction.names import is_secret_name
from deploysim.redaction.spans import Span, starts_word

_SCHEME = re.compile(starts_word("A-Za-z0-9+.-") + r"[A-Za-z][A-Za-z0-9+.-]{0,30}://")
# the user: anything but the characters that end it
_USER = re.compile(r"[^\s/?#@:\[\]\"'<>`{}]*")
# a host after '@': a name with a letter, an IPv4 address or [IPv6], then the end of the authority
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|(?:\d{1,3}\.){3}\d{1,3}|[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*)"
    r"(?=$|[:/?#\s\"'<>`),;\]}.\\])"
)
_WHITESPACE = re.compile(r"\s|\\[nrt]")
_URL_ONLY_SECRETS = frozenset({"sig", "key", "code", "x-goog-signature", "x-goog-credential", "se-sig", "st",
                               "private_token", "access_token", "id_token", "refresh_token", "auth"})


def url_end(text: str, start: int) -> int:
    """Where the URL that starts at ``start`` ends: at its closing quote when a quote opens it
    (JSON, YAML, Python, a shell; the quote perhaps escaped), else at whitespace. Quotes inside
    an unquoted URL are part of it (a password may hold them).

    >>> text = '{"url": "http://u:p@h/x", "b": 1} http://u:a"b@h/ next'
    >>> text[9:url_end(text, 9)], text[34:url_end(text, 34)]
    ('http://u:p@h/x', 'http://u:a"b@h/')
    """
    quote = text[start - 1] if start else ""
    if quote not in ("\"", "'"):
        found = _WHITESPACE.search(text, start)
        return found.start() if found else len(text)
    escaped = start >= 2 and text[start - 2] == "\\"
    i = start
    while i < len(text):
        c = text[i]
        if c in "\r\n":
            return i
        if escaped:
            if text.startswith("\\" + quote, i):
                return i
        elif c == "\\" and quote == '"':
            i += 1
        elif c == quote:
            if quote == "'" and text.startswith("''", i):  # YAML's doubled quote
                i += 1
            else:
                return i
        i += 1
    return len(text)


def _last_at_before_host(text: str, start: int, stop: int) -> int | None:
    """The position of the last '@' in text[start:stop] that a host follows."""
    at = text.rfind("@", start, stop)
    while at != -1:
        if _HOST.match(text, at + 1):
            return at
        at = text.rfind("@", start, at)
    return None


def _userinfo_password(text: str, authority: int, end: int) -> tuple[Span | None, int]:
    """The password's span of the URL whose authority starts at ``authority`` (after '//')
    and which ends at ``end``, and where its host starts."""
    user = _USER.match(text, authority, end)
    colon = user.end() if user else authority
    if colon >= end or text[colon] != ":":
        return None, (colon + 1 if colon < end and text[colon] == "@" else authority)
    at = _last_at_before_host(text, colon + 1, end)
    if at is not None:
        return ((colon + 1, at) if at > colon + 1 else None), at + 1
    port = re.match(r"[^/?#]*", text[colon + 1:end])
    rest = port.group(0) if port else ""
    # a port may end a sentence: "at http://127.0.0.1:46185: connection refused"
    if rest and not rest.rstrip(":.,;!)]}'\"").isdigit():  # no '@' and no port: cut or broken, hide it
        return (colon + 1, colon + 1 + len(rest)), colon + 1 + len(rest)
    return None, authority


def _param_spans(text: str, start: int, end: int, holds_secret: Callable[[str], bool] | None) -> Iterator[Span]:
    """Secret values among the ``name=value`` pairs of text[start:end] (a query or fragment):
    by the parameter's name, or, for an encoded value, by what it decodes to."""
    pos = start
    for pair in re.split(r"[&;]", text[start:end]):
        name, sep, value = pair.partition("=")
        if sep:
            key = unquote_plus(name).strip()
            value_start = pos + len(name) + 1
            value_end = pos + len(pair)
            decoded = unquote_plus(value)
            if value_end > value_start and (
                    is_secret_name(key) or key.lower() in _URL_ONLY_SECRETS
                    or (holds_secret is not None and decoded != value and holds_secret(decoded))):
                yield value_start, value_end
        pos += len(pair) + 1


def _urllib_password(text: str, start: int, authority: int, end: int) -> Span | None:
    """The password as ``urlsplit`` reads it, for a well-formed URL."""
    try:
        parts = urlsplit(text[start:end])
        password = parts.password
    except ValueError:  # e.g. an unclosed '[' of an IPv6 host, a port out of range
        return None
    if not password:
        return None
    userinfo = parts.netloc.rpartition("@")[0]
    colon = userinfo.find(":")
    return (authority + colon + 1, authority + len(userinfo)) if colon != -1 else None


def url_spans(text: str, holds_secret: Callable[[str], bool] | None = None) -> Iterator[Span]:
    """Secret parts of every URL in ``text``: urllib's reading and the scan's, both;
    ``holds_secret`` looks into percent-encoded query values."""
    for match in _SCHEME.finditer(text):
        authority = match.end()
        end = url_end(text, match.start())
        well_formed = _urllib_password(text, match.start(), authority, end)
        if well_formed:
            yield well_formed
        password, host = _userinfo_password(text, authority, end)
        if password:
            yield password
        url = text[host:end]
        try:
            parts = urlsplit("x://" + url)
        except ValueError:
            continue
        if parts.query:
            query_at = host + url.index("?") + 1
            yield from _param_spans(text, query_at, query_at + len(parts.query), holds_secret)
        if parts.fragment and "=" in parts.fragment:
            yield from _param_spans(text, end - len(parts.fragment), end, holds_secret)
