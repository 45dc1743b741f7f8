"""Staging before production: image digests, the gate, and its runbook parameters.

:mod:`~deploysim.release.reference` parses image references (the OCI distribution grammar),
:mod:`~deploysim.release.gate` decides on the evidence, :mod:`~deploysim.release.run` puts
the gate in a runbook run, :mod:`~deploysim.release.cluster` reads and writes the releases a
namespace's status ConfigMap keeps, :mod:`~deploysim.release.parameters` holds the runbook
parameters every runbook takes.
"""

from deploysim.release.gate import (
    Evidence,
    ReleaseRefused,
    Wanted,
    decide,
    records_evidence,
    refusal,
    releases_evidence,
)
from deploysim.release.parameters import DEFAULT_GATES, ReleaseParameters
from deploysim.release.reference import ImageReference, check_digest, image_digest, parse_reference
from deploysim.release.run import keep_after, keep_promoted, release_check

__all__ = [
    "DEFAULT_GATES",
    "Evidence",
    "Wanted",
    "ImageReference",
    "ReleaseParameters",
    "ReleaseRefused",
    "check_digest",
    "decide",
    "image_digest",
    "keep_after",
    "keep_promoted",
    "parse_reference",
    "records_evidence",
    "refusal",
    "release_check",
    "releases_evidence",
]
