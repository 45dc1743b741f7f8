"""A text stream that redacts what is written to it, line by line (the CLI's stderr).

Lines are held until they end (a secret split over two ``write`` calls is still seen whole);
``flush`` and leaving :func:`redacted_stderr` let a partial line through, redacted.

>>> import io
>>> sink = io.StringIO()
>>> stream = RedactingStream(sink, Redactor({"plain-value-1"}))
>>> _ = stream.write("error: -y '{prometheus_token: ghp_" + "a1B2c3D4" * 5)
>>> _ = stream.write("}' and plain-value-1\\n")
>>> sink.getvalue()
"error: -y '{prometheus_token: [REDACTED]}' and [REDACTED]\\n"
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from deploysim.redaction.redactor import Redactor


class RedactingStream:
    """Wraps ``stream``: whole lines are redacted with ``redactor`` before they pass."""

    def __init__(self, stream: TextIO, redactor: Redactor | None = None) -> None:
        self.stream = stream
        self.redactor = redactor or Redactor()
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self.stream.write(self.redactor.text(lines + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.stream.write(self.redactor.text(self._pending))
            self._pending = ""
        self.stream.flush()

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno ... of the stream
        return getattr(self.stream, name)


@contextmanager
def redacted_stderr(redactor: Redactor | None = None) -> Iterator[RedactingStream]:
    """``sys.stderr`` redacted while the block runs (argparse's errors, warnings, a command's
    own messages), then the stream it was."""
    original = sys.stderr
    stream = RedactingStream(original, redactor)
    sys.stderr = stream  # type: ignore[assignment]
    try:
        yield stream
    finally:
        stream.flush()
        sys.stderr = original
