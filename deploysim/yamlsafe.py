"""YAML read within bounds: UTF-8 text, limited nesting, aliases that cannot explode.

``yaml.safe_load`` builds an alias as a shared reference, so a "billion laughs" document is
small in memory until something walks it: validation, a deep copy, an error message. Each
document is therefore measured as it would be expanded (every alias counted as the nodes it
stands for) and refused past :data:`MAX_NODES`; nesting is refused past :data:`MAX_DEPTH`
(the composer recurses, so a deeper document would end in a RecursionError); a file must
be UTF-8 text, and at most :data:`MAX_BYTES` long.

>>> load("a: &x [1, 2]\\nb: *x\\n")
{'a': [1, 2], 'b': [1, 2]}
>>> load("[" * 100 + "]" * 100)
Traceback (most recent call last):
...
deploysim.yamlsafe.YamlLimitError: nested deeper than 64 levels
>>> laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\\n" + "".join(
...     f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\\n" for p, n in zip("abcdef", "bcdefg"))
>>> load(laughs)
Traceback (most recent call last):
...
deploysim.yamlsafe.YamlLimitError: expands to more than 100000 values through its aliases (&anchor / *alias)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from deploysim.errors import DeploysimError

MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_BYTES = 10 * 1024 * 1024


class YamlLimitError(yaml.YAMLError, DeploysimError):
    """The document is valid YAML but past a bound: too deep, too large, or exploding aliases
    (a YAML error to whoever reads YAML, bad input to whoever reports it)."""


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that counts nesting while composing."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def expanded_size(node: yaml.Node, limit: int = MAX_NODES) -> tuple[int, int]:
    """How many values ``node`` holds once every alias is expanded, and how deep it is then,
    counted without expanding (a shared node is measured once); the count is capped at
    ``limit + 1``. Aliases can nest a value deeper than it is written.

    >>> expanded_size(yaml.compose("[1, [2, 3]]"))
    (5, 3)
    >>> expanded_size(yaml.compose("a: &a [[1]]\\nb: [[*a]]"))
    (11, 6)
    """
    sizes: dict[int, tuple[int, int]] = {}

    def size(n: yaml.Node) -> tuple[int, int]:
        key = id(n)
        if key not in sizes:
            sizes[key] = (1, 1)  # a cycle (not possible in YAML from text) counts once
            children = ([c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode)
                        else n.value if isinstance(n, yaml.SequenceNode) else [])
            measured = [size(child) for child in children]
            total = 1 + sum(m[0] for m in measured)
            depth = 1 + max((m[1] for m in measured), default=0)
            sizes[key] = (min(total, limit + 1), depth)
        return sizes[key]

    return size(node)


def _documents(text: str, construct: bool = True) -> Iterator[Any]:
    if len(text) > MAX_BYTES:
        raise YamlLimitError(f"longer than {MAX_BYTES // (1024 * 1024)} MB")
    loader = _BoundedLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            count, depth = expanded_size(node)
            if count > MAX_NODES:
                raise YamlLimitError(f"expands to more than {MAX_NODES} values through its aliases "
                                     "(&anchor / *alias)")
            if depth > MAX_DEPTH:
                raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels through its aliases "
                                     "(&anchor / *alias)")
            yield loader.construct_document(node) if construct else node
    finally:
        loader.dispose()


def check(text: str) -> None:
    """Raise :class:`YamlLimitError` (or a YAML error) if ``text`` is past a bound, for text
    another loader will read (papermill's, which keeps dates as strings).

    >>> check("a: [1, 2]"), check("a: &a [1]\\nb: *a")
    (None, None)
    """
    for _ in _documents(text, construct=False):
        pass


def load(text: str) -> Any:
    """One YAML document within the bounds (None for an empty one)."""
    docs = _documents(text)
    first = next(docs, None)
    if next(docs, None) is not None:
        raise yaml.YAMLError("expected a single document, found several (---)")
    return first


def load_all(text: str) -> Iterator[Any]:
    """Every document of a YAML stream within the bounds."""
    yield from _documents(text)


def read_text(path: str | Path) -> str:
    """A file's text, refused with a clear reason when it is not UTF-8 or too long (OSError
    and :class:`UnicodeDecodeError` become ``ValueError`` with the reason).

    >>> import tempfile, os
    >>> f = tempfile.NamedTemporaryFile(delete=False); _ = f.write(b"a: \\xff"); f.close()
    >>> read_text(f.name)
    Traceback (most recent call last):
    ...
    ValueError: not UTF-8 text (byte 0xff at offset 3)
    >>> os.unlink(f.name)
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError("is a folder, not a file")
    with path.open("rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ValueError(f"longer than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
