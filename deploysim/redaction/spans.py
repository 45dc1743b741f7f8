"""Spans of text that hold a secret: found by the detectors, merged, replaced by ``[REDACTED]``.

Every detector answers with ``(start, end)`` pairs into the text it was given; the text is
rewritten once, after all of them ran, so one detector never sees another's output and the
order they run in does not matter.

>>> merge_spans([(8, 12), (0, 3), (2, 5), (12, 14)])
[(0, 5), (8, 14)]
>>> replace_spans("user=bob pass=hunter2", [(14, 21)])
'user=bob pass=[REDACTED]'
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[REDACTED]"

Span = tuple[int, int]


def starts_word(chars: str) -> str:
    """A regex lookbehind: not right after one of ``chars`` (a character class's inside),
    except after an escaped line break or tab (``\\n`` in JSON), which ends a word too.

    >>> import re
    >>> [m.start() for m in re.finditer(starts_word("A-Za-z") + "tok", r"tok xtok \\ntok")]
    [0, 11]
    """
    return rf"(?:(?<![\\{chars}])|(?<=\\[nrt]))"


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans as one, sorted."""
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def already_redacted(value: str) -> bool:
    """True when nothing but ``[REDACTED]`` marks (and punctuation) is left in ``value``:
    redacting it again would change nothing a reader could use.

    >>> already_redacted("[REDACTED]"), already_redacted('"[REDACTED]"'), already_redacted("[REDACTED]x1")
    (True, True, False)
    """
    rest = value.replace(REDACTED, "")
    return REDACTED in value and not any(c.isalnum() for c in rest)


def replace_spans(text: str, spans: Iterable[Span]) -> str:
    """``text`` with each merged span replaced by ``[REDACTED]``; a span that holds only
    earlier marks is kept as it is, so redaction is idempotent."""
    out: list[str] = []
    last = 0
    for start, end in merge_spans(spans):
        if already_redacted(text[start:end]):
            continue
        out.append(text[last:start])
        out.append(REDACTED)
        last = end
    out.append(text[last:])
    return "".join(out)


def span_texts(text: str, spans: Iterable[Span]) -> list[str]:
    """The text of each merged span, in order, without repeats or earlier marks."""
    found: list[str] = []
    for start, end in merge_spans(spans):
        value = text[start:end]
        if value and not already_redacted(value) and value not in found:
            found.append(value)
    return found
