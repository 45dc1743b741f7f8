"""Secrets told by what stands before them: ``name: value`` and ``name=value`` under a secret's
name, HTTP headers, command-line flags, Kubernetes ``env`` entries, and "the password is ...".

A value is read the way its syntax says: quoted (JSON, YAML, Python, a shell) up to its closing
quote, escapes included; a YAML block scalar (``|``) over its indented lines; bare after ``=``
up to a space or a separator; bare after ``:`` up to the end of the line or a separator. Values
that hold no secret stay (``None``, ``null``, ``true``, ``""``, ``$VAR``, ``${VAR}``, ``<token>``).

``Authorization`` (and ``Proxy-Authorization``) keeps its scheme: ``Bearer``, ``Basic``,
``Token`` ... then the credential is hidden; for schemes with parameters (``Digest``,
``AWS4-HMAC-SHA256``) each parameter's value is. ``Cookie`` loses each cookie's value,
``Set-Cookie`` its cookie's (its attributes stay). A YAML tag or anchor before a value
(``!!str``, ``&pw``) is stepped over.

>>> from deploysim.redaction.spans import replace_spans
>>> redact = lambda text: replace_spans(text, field_spans(text))
>>> redact('curl -H "Authorization: Bearer abc.def" -d \\'{"password": "a \\\\"b\\\\" c"}\\'')
'curl -H "Authorization: Bearer [REDACTED]" -d \\'{"password": "[REDACTED]"}\\''
>>> redact("- name: DB_PASSWORD\\n  value: hunter2\\n- name: LOG_LEVEL\\n  value: debug")
'- name: DB_PASSWORD\\n  value: [REDACTED]\\n- name: LOG_LEVEL\\n  value: debug'
>>> redact("deploysim run canary -p prometheus_token s3cr3t-v4lue --log-output; the password is hunter2.")
'deploysim run canary -p prometheus_token [REDACTED] --log-output; the password is [REDACTED].'
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from deploysim.redaction.names import is_secret_name, name_words
from deploysim.redaction.spans import Span, starts_word

# name, optional closing quote, separator; a flag's dashes are allowed before the name
# (not a URL's user: "//user:password@" is the URL rules' to read)
_FIELD = re.compile(starts_word(r"\w.\-") + r"(?<!//)-{0,2}([A-Za-z_][\w.\-]{0,100})(?:\\?[\"'])?[ \t]*(:=|=>|:|=)(?!//)[ \t]*")
_FLAG = re.compile(starts_word(r"\w-") + r"--([A-Za-z][\w-]{0,100})[ \t]+(?=[^\s-])")
_PARAMETER = re.compile(starts_word(r"\w-") + r"(?:-[pr]|--parameters(?:_raw)?)[ \t]+[\"']?([A-Za-z_][\w.\-]*)[\"']?[ \t]+(?=\S)")
_USER_FLAG = re.compile(starts_word(r"\w-") + r"(?:-u|--user|--proxy-user)[ \t=]+[\"']?[^\s:\"']*:(?=[^\s\"'])")
# a line break, also as the two characters of a JSON or Python string's escape
_NL = r"(?:\r?\n|(?:\\r)?\\n)"
_ENV_ENTRY = re.compile(
    r"([\"']?)name\1[ \t]*[:=][ \t]*(?:\\?[\"'])?([A-Za-z_][\w.\-]*)(?:\\?[\"'])?[ \t]*,?[ \t]*"
    r"(?:" + _NL + r"[ \t]*)?([\"']?)value\3[ \t]*[:=][ \t]*")
_PHRASE = re.compile(r"(?i)" + starts_word(r"\w") + r"(?:password|passwd|passphrase|pass ?code|token|secret|api ?key|pin)[ \t]+"
                     r"(?:is|was|of)[ \t]+[\"'`]?(?=\S)")
_SCHEME = re.compile(r"(?i)(bearer|basic|token|bot|sswss?|apikey|negotiate|ntlm|digest|oauth|"
                     r"aws4-hmac-sha256|hmac-sha256|signature|scram-sha-\d+|hoba|mutual|vapid|dpop)[ \t]+(?=\S)")
# a scheme's parameters: name=value or name="value" (its quotes perhaps escaped), comma-separated
_AUTH_PARAM = re.compile(r"[ \t]*,?[ \t]*[\w-]+=(\\?\"(?:[^\"\\]|\\[^\"])*\\?\"|[^\s,\"\\]+)")
_COOKIE_PAIR = re.compile(r"[ \t]*;?[ \t]*[^\s=;,\"'\\]+=([^\s;,\"'\\]*)")
_ONE_TOKEN_SCHEMES = frozenset({"bearer", "basic", "token", "bot", "ssws", "sswss", "apikey", "negotiate", "ntlm",
                                "dpop"})
_HARMLESS = re.compile(r"(?i)(none|null|nil|~|true|false|yes|no|undefined|\*+|\$\{?\w+\}?|<[^<>]*>|\{\{[^}]*\}\})")
_BARE_AFTER_EQUALS = re.compile(r"(?:(?!\\[\"'nrt])[^\s&,;\"'<>)}\]`])+")
_BARE_AFTER_COLON = re.compile(r"(?:(?!\\[nrt])[^\n\r,\"'}\]`])+")
_WORD = re.compile(r"(?:(?!\\[\"'nrt])[^\s\"',;`])+")
_YAML_TAG = re.compile(r"(?:![\w!/:.-]*|&[\w-]+)[ \t]+(?=\S)")
_LINE_END = re.compile(r"[\r\n]|\\[nr]")
# the most of a value read after its name (and of its line read before it): each look is
# bounded, so a long line with many names costs time in proportion to its length
MAX_VALUE = 4096


def _quoted(text: str, start: int) -> Span:
    """The inside of the quoted string that opens at ``start`` (to the end of the line when it
    does not close)."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and quote == '"':
            i += 2
            continue
        if c == quote:
            if quote == "'" and text.startswith("''", i):  # YAML's doubled quote
                i += 2
                continue
            return start + 1, i
        if c in "\r\n" and quote == "'":
            break
        i += 1
    line_end = text.find("\n", start)
    return start + 1, (line_end if line_end != -1 else len(text))


def _block(text: str, start: int) -> Span | None:
    """A YAML block scalar's lines (``|`` or ``>`` at ``start``), by their indentation; the
    lines may end in real line breaks or in escaped ones (YAML inside a JSON string)."""
    real = text.find("\n", start)
    escaped = text.find("\\n", start)
    newline = "\\n" if escaped != -1 and (real == -1 or escaped < real) else "\n"
    line_start = max(text.rfind("\n", 0, start), text.rfind("\\n", 0, start) + 1) + 1
    indent = len(text[line_start:start]) - len(text[line_start:start].lstrip())
    body = text.find(newline, start)
    if body == -1:
        return None
    first = pos = end = body + len(newline)
    for line in text[first:].split(newline):
        stripped = line.strip()
        if stripped and len(line) - len(line.lstrip()) <= indent:
            break
        pos += len(line) + len(newline)
        if stripped:
            end = pos - len(newline)
    return (first, end) if end > first else None


def _consecutive(pattern: re.Pattern[str], text: str, pos: int, end: int) -> list[Span]:
    """Group 1 of each match of ``pattern`` one right after the other from ``pos``."""
    spans: list[Span] = []
    while pos < end:
        match = pattern.match(text, pos, end)
        if not match or match.end() == pos:
            break
        if match.end(1) > match.start(1):
            spans.append(match.span(1))
        pos = match.end()
    return spans


def _unquote(text: str, span: Span) -> Span:
    """``span`` without the quotes (plain or escaped) around it."""
    s, e = span
    for quote in ('\\"', '"'):
        if text.startswith(quote, s) and e - s >= 2 * len(quote) and text[e - len(quote):e] == quote:
            return s + len(quote), e - len(quote)
    return s, e


def _scheme_spans(text: str, start: int, end: int, name: str) -> list[Span] | None:
    """After an auth scheme: its credential, or each of its parameters' values; None when no
    scheme starts at ``start``."""
    scheme = _SCHEME.match(text, start, end)
    if not scheme:
        return None
    kind = scheme.group(1).lower()
    if kind not in _ONE_TOKEN_SCHEMES and "authorization" not in name_words(name):
        return None
    if kind not in _ONE_TOKEN_SCHEMES:
        params = [_unquote(text, span) for span in _consecutive(_AUTH_PARAM, text, scheme.end(), end)]
        if params:
            return params
    word = _WORD.match(text, scheme.end(), end)
    return [word.span()] if word else []


def _cookie_spans(text: str, start: int, end: int, name: str) -> list[Span]:
    """The values of a Cookie header's pairs (of Set-Cookie's first pair: the rest are attributes)."""
    spans = _consecutive(_COOKIE_PAIR, text, start, end)
    return spans[:1] if "set" in name_words(name) else spans


def value_spans(text: str, start: int, separator: str = ":", name: str = "") -> list[Span]:
    """Where the secret of the value starting at ``start`` lies, its quotes and an auth
    scheme left out; empty when it holds none.

    >>> text = 'Authorization: Digest username="bob", response="6629fae4"'
    >>> [text[s:e] for s, e in value_spans(text, 15, ":", "Authorization")]
    ['bob', '6629fae4']
    """
    if start >= len(text):
        return []
    tag = _YAML_TAG.match(text, start)  # YAML's !!str, !secret or &anchor before the value
    if tag:
        start = tag.end()
        if start >= len(text):
            return []
    c = text[start]
    if c == "\\" and text[start + 1:start + 2] in ("\"", "'"):  # a quoted value inside a quoted string
        close = text.find("\\" + text[start + 1], start + 2)
        s, e = start + 2, (close if close != -1 else len(text))
    elif c in "\"'":
        s, e = _quoted(text, start)
    elif c in "|>" and separator == ":":
        block = _block(text, start)
        return [block] if block else []
    elif c in "{[(&*!#\r\n":
        return []
    else:
        stop = min(len(text), start + MAX_VALUE)
        line = _LINE_END.search(text, start, stop)
        s, e = start, (line.start() if line else stop)
        if "cookie" in name_words(name):
            return _cookie_spans(text, s, e, name)
        scheme = _scheme_spans(text, s, e, name)
        if scheme is not None:
            return scheme
        bare = (_BARE_AFTER_COLON if separator == ":" else _BARE_AFTER_EQUALS).match(text, start, e)
        value = bare.group(0).rstrip() if bare else ""
        return [] if not value or _HARMLESS.fullmatch(value) else [(start, start + len(value))]
    if "cookie" in name_words(name):
        return _cookie_spans(text, s, e, name)
    scheme = _scheme_spans(text, s, e, name)
    if scheme is not None:
        return scheme
    return [(s, e)] if e > s and not _HARMLESS.fullmatch(text[s:e].strip()) else []


def _phrase_value(text: str, start: int) -> Span | None:
    """The word after "the password is": a value with a digit or a symbol, not a plain word
    ("the token is expired" says nothing secret)."""
    word = re.compile(r"[^\s\"'`]+").match(text, start)
    if not word:
        return None
    value = word.group(0).rstrip(".,;:!?)")
    if not value or value.isalpha() or _HARMLESS.fullmatch(value):
        return None
    return start, start + len(value)


def _starts_line(text: str, start: int) -> bool:
    """Only indentation, a list dash or a quote stand between ``start`` and the line's start
    (a real line break or an escaped one)."""
    window = max(0, start - MAX_VALUE)
    escaped = text.rfind("\\n", window, start)
    begin = max(text.rfind("\n", window, start) + 1, escaped + 2 if escaped != -1 else 0, window)
    return not text[begin:start].strip(" \t-\"'{,")


def field_spans(text: str) -> Iterator[Span]:
    """Values under secret names in ``text`` (fields, headers, flags, env entries, phrases)."""
    for match in _FIELD.finditer(text):
        if is_secret_name(match.group(1)):
            # after ':' a value runs to the end of the line when its name starts the line (YAML,
            # a header); inside a sentence it ends at a space, as after '='
            separator = match.group(2)[0] if _starts_line(text, match.start()) else "="
            yield from value_spans(text, match.end(), separator, match.group(1))
    for match in _FLAG.finditer(text):
        if is_secret_name(match.group(1)):
            yield from value_spans(text, match.end(), "=", match.group(1))
    for match in _PARAMETER.finditer(text):
        if is_secret_name(match.group(1)):
            yield from value_spans(text, match.end(), "=", match.group(1))
    for match in _USER_FLAG.finditer(text):
        yield from value_spans(text, match.end(), "=")
    for match in _ENV_ENTRY.finditer(text):
        if is_secret_name(match.group(2)):
            yield from value_spans(text, match.end(), ":", match.group(2))
    for match in _PHRASE.finditer(text):
        span = _phrase_value(text, match.end())
        if span:
            yield span
