"""Random-looking tokens: a long word of mixed characters that no name or prefix gives away.

A token (a run of ``A-Z a-z 0-9 _ + / = -``, 20 characters or more) is random-looking when it
mixes upper and lower case and at least three of these four say so:

- it has digits;
- it holds two or more short words: split at separators and case changes, words of one or
  two letters (``q``, ``Vx``, ``Lm``) abound in random text and are rare in identifiers, whose
  words are words (``V1alpha3PodGroupSpec``, ``test_min_max_dt64_with_NaT``); hex pieces such
  as the ``3f2a1c`` of a run name are not counted;
- its entropy is at least 0.8 × log2(length) bits per character (a random token's is close to
  the log of its length, an identifier's well below);
- it changes class often: 30% of its characters start a new run of digits, letters or capitals
  (an upper-case letter starting a word does not count).

Measured on uniformly random tokens (3 × 3000 per length, alphabets base62, base64 and base64url):
about 5% pass unnoticed at 20 characters, 4% at 24, 0.8% at 32, 0.2% at 40 and none at 64; a
shorter secret is caught by its name, its prefix or its place (a URL's password, a header). Of
68,000 words in the sources of Python, pandas, numpy, matplotlib and the kubernetes client, 20
read as random, most of them test keys and base64 data.
Hex strings (commit ids, sha256 digests, UUIDs) and text in one case (``web-api-7d4b9c8f6-x2x9z``)
are never random-looking by this rule. ``detect-secrets`` (Yelp) scores only quoted strings, per
line, and reports values rather than places in the text, hence this small rule of our own.

>>> looks_random("q8Vx2LmT9zR4kW7pN3bY6cJ1hF5dG0sAeU"), looks_random("V1alpha3PodGroupSchedulingPolicy")
(True, False)
>>> looks_random("20250301T101500Z-canary-3f2a1c"), looks_random("54769c8d2f0e4b6a9c1d3e5f7a9b1c3d5e7f9a1b")
(False, False)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from deploysim.redaction.spans import Span, starts_word

MIN_RANDOM = 20
# runs of token characters; '.' and ':' end a run, so paths, file names, versions and image
# references are cut into pieces first; '=' only pads the end (``name=value`` is two runs)
TOKEN_RUN = re.compile(starts_word("A-Za-z0-9_+/-") + rf"[A-Za-z0-9_+/-]{{{MIN_RANDOM},}}={{0,3}}(?![A-Za-z0-9_+/=-])")
_SEPARATORS = re.compile(r"[-_/+.=]")
_LETTER_WORDS = re.compile(r"[A-Z]?[a-z]+")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_ALL_HEX = re.compile(r"[0-9a-fA-F_=-]+")


def entropy(text: str) -> float:
    """Shannon entropy in bits per character.

    >>> round(entropy("aaaa"), 2), round(entropy("abcd"), 2)
    (0.0, 2.0)
    """
    if not text:
        return 0.0
    n = len(text)
    return max(0.0, -sum(c / n * math.log2(c / n) for c in Counter(text).values()))


def _kind(c: str) -> str:
    return "u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else ""


def class_changes(token: str) -> int:
    """How often a character starts a new run of digits, lower or upper case (not counting a
    capital that starts a word, ``Ab``).

    >>> class_changes("abc123Def"), class_changes("a1B2c3")
    (2, 5)
    """
    count = 0
    for a, b in zip(token, token[1:], strict=False):
        ka, kb = _kind(a), _kind(b)
        if ka and kb and ka != kb and not (ka == "u" and kb == "l"):
            count += 1
    return count


def short_words(token: str) -> int:
    """Words of one or two letters, hex pieces aside.

    >>> short_words("q8Vx2LmT9z"), short_words("V1alpha3PodGroupSpec"), short_words("build-3f2a1c")
    (4, 0, 0)
    """
    count = 0
    for piece in _SEPARATORS.split(token):
        if piece and not _HEX.fullmatch(piece):
            count += sum(1 for w in _LETTER_WORDS.findall(piece) if len(w) <= 2)
    return count


def looks_random(token: str) -> bool:
    """True for a token that reads as random characters (see the module's rule)."""
    core = token.strip("=")
    n = len(core)
    if n < MIN_RANDOM or _ALL_HEX.fullmatch(core):
        return False
    if not (any(c.isupper() for c in core) and any(c.islower() for c in core)):
        return False
    votes = (
        any(c.isdigit() for c in core),
        short_words(core) >= 2,
        entropy(core) >= 0.8 * math.log2(min(n, 64)),
        class_changes(core) >= 0.3 * n,
    )
    return sum(votes) >= 3


def random_spans(text: str) -> Iterator[Span]:
    """Where ``text`` holds a random-looking token.

    >>> text = "key q8Vx2LmT9zR4kW7pN3bY6cJ1hF5dG0sAeU in /work/main/runs/20250301T101500Z-canary-3f2a1c"
    >>> [text[s:e] for s, e in random_spans(text)]
    ['q8Vx2LmT9zR4kW7pN3bY6cJ1hF5dG0sAeU']
    """
    for match in TOKEN_RUN.finditer(text):
        if looks_random(match.group(0)):
            yield match.span()
