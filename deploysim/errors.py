"""Every error a user can cause, and the exit code each command gives for it.

Each error has its own exception with a message that says what to change; all of them are
:class:`DeploysimError`, and each class carries the exit code it means, so the convention
is written once, here:

=====  ======================  ====================================================
code   name                    when
=====  ======================  ====================================================
0      ``EXIT_OK``             promoted, or the command did what it was asked
1      ``EXIT_NOT_PROMOTED``   rolled back, failed, paused or incomplete
2      ``EXIT_BAD_INPUT``      a scenario, parameter, manifest or flag is not allowed
3      ``EXIT_ENVIRONMENT``    the cluster, a metrics source or the machine refused
=====  ======================  ====================================================

>>> exit_code(ScenarioError("replicas", 0, "must be at least 1"))
2
>>> exit_code(ClusterError("cannot reach the API server at https://127.0.0.1:6443"))
3
>>> exit_code(RolloutNotPromoted("canary: rolled back", "rolled_back"))
1
>>> [exit_code_for_outcome(o) for o in ("promoted", "rolled_back", "paused")]
[0, 1, 1]
"""

from __future__ import annotations

import builtins
import reprlib
from typing import ClassVar

EXIT_OK = 0
EXIT_NOT_PROMOTED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3
# 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_INTERRUPTED = 130


class DeploysimError(Exception):
    """Base of all errors deploysim reports to a user (printed as one line, no traceback).

    A subclass that is not about bad input says so in ``exit_code``.
    """

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


EXCERPT = 80  # the most of a value an error message shows
_short_repr = reprlib.Repr()  # (Python 3.11 takes no keywords here)
_short_repr.maxlevel, _short_repr.maxstring, _short_repr.maxother = 4, 400, 400
_short_repr.maxlist = _short_repr.maxdict = 20
_short_repr.maxlong = 100


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """A value as an error shows it: its repr, secrets redacted, cut to ``limit`` characters.

    >>> shown = excerpt("x" * 500)
    >>> len(shown) <= 80, shown[-16:]
    (True, '(500 characters)')
    >>> excerpt({"token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"})
    "{'token': '[REDACTED]'}"
    """
    from deploysim.redact import excerpt_text  # redact imports nothing of the errors

    # cut first (reprlib never walks a deep or huge value whole), redact, then cut to size
    shown = _short_repr.repr(value)
    size = f" ({len(value)} characters)" if isinstance(value, str) and len(shown) > limit else ""
    cut = excerpt_text(shown, limit - len(size))
    return f"{cut}{size}"


class ScenarioError(DeploysimError):
    """A scenario value is not allowed: names the key, the value given (a short excerpt,
    secrets redacted) and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str, source: str | None = None) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: got {excerpt(value)}; {allowed}")


class ManifestError(DeploysimError):
    """A manifest cannot be read: names the file, the document and the path inside it."""

    def __init__(self, file: str, document: int, path: str, message: str) -> None:
        self.file = file
        self.document = document
        self.path = path
        super().__init__(f"{file} (document {document}): {path}: {message}")


class ParameterError(DeploysimError):
    """A runbook parameter is unknown, of the wrong type or out of range."""


class ClusterError(DeploysimError):
    """The cluster (local or real) is unreachable or not in a state the command can work with."""

    exit_code: ClassVar[int] = EXIT_ENVIRONMENT


class TargetUnavailable(DeploysimError):
    """A runbook's target world (e.g. kubernetes) has no backend installed in this version."""

    exit_code: ClassVar[int] = EXIT_ENVIRONMENT


class MetricsError(DeploysimError):
    """A metrics source (Prometheus, an HTTP endpoint) could not answer; names its URL and why."""

    exit_code: ClassVar[int] = EXIT_ENVIRONMENT


class PrometheusError(MetricsError):
    """Prometheus could not answer a query; the message names the URL and the cause."""


class MetricsConfigError(MetricsError):
    """A metrics source's configuration is not allowed: names the setting, the value and what is allowed."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class RolloutNotPromoted(DeploysimError):
    """A runbook ended without its success outcome (rolled back, failed, paused, incomplete).

    Raised by a runbook's last cell after the audit trail is written, so ``papermill`` exits
    non-zero; ``outcome`` is the record's word and ``folder`` the run's audit folder.
    """

    exit_code: ClassVar[int] = EXIT_NOT_PROMOTED

    def __init__(self, message: str, outcome: str | None = None, folder: str | None = None) -> None:
        self.outcome = outcome
        self.folder = folder
        super().__init__(message)


def exit_code(exc: BaseException) -> int:
    """The exit code a command gives for ``exc``.

    Beside deploysim's own errors: Ctrl-C is 130, and an ``OSError`` (a file that cannot be
    written, a port that is taken) is the machine refusing, 3. Anything else is a crash,
    which Python reports as 1.
    """
    return _code_of(type(exc))


def _code_of(cls: type[BaseException]) -> int:
    if issubclass(cls, DeploysimError):
        return cls.exit_code
    if issubclass(cls, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if issubclass(cls, OSError):
        return EXIT_ENVIRONMENT
    return EXIT_NOT_PROMOTED


def exit_code_named(name: str) -> int:
    """The exit code for an error known only by its class name (papermill reports a
    notebook's error as ``ename``): one of deploysim's or a built-in one. Errors defined in
    modules not imported here are not found and count as a crash, 1.

    >>> exit_code_named("ParameterError"), exit_code_named("TargetUnavailable"), exit_code_named("ZeroDivisionError")
    (2, 3, 1)
    """
    todo: list[type[DeploysimError]] = [DeploysimError]
    while todo:
        cls = todo.pop()
        if cls.__name__ == name:
            return cls.exit_code
        todo.extend(cls.__subclasses__())
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, BaseException):
        return _code_of(builtin)
    return EXIT_NOT_PROMOTED


def exit_code_for_outcome(outcome: str | None) -> int:
    """0 for a promoted rollout, 1 for any other outcome (rolled back, failed, paused,
    inconclusive, incomplete), as a CI gate reads it."""
    return EXIT_OK if outcome == "promoted" else EXIT_NOT_PROMOTED
