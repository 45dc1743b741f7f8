"""Every error a user can cause has its own exception, with a message that says what to change."""

from __future__ import annotations


class DeploysimError(Exception):
    """Base of all errors deploysim reports to a user (printed as one line, no traceback)."""


class ScenarioError(DeploysimError):
    """A scenario value is not allowed: names the key, the value given and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str, source: str | None = None) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: got {value!r}; {allowed}")


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
    """The cluster (local or real) is not in a state the command can work with."""


class TargetUnavailable(DeploysimError):
    """A runbook's target world (e.g. kubernetes) has no backend installed in this version."""


class RolloutNotPromoted(DeploysimError):
    """A runbook ended without its success outcome (rolled back, failed, paused, incomplete).

    Raised by a runbook's last cell after the audit trail is written, so ``papermill`` exits
    non-zero; ``outcome`` is the record's word and ``folder`` the run's audit folder.
    """

    def __init__(self, message: str, outcome: str | None = None, folder: str | None = None) -> None:
        self.outcome = outcome
        self.folder = folder
        super().__init__(message)
