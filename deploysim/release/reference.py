"""Image references as the OCI distribution grammar reads them, and the digest they pin.

The grammar and its regular expressions follow ``github.com/distribution/reference``
(``reference.go``'s grammar comment and ``Parse``, ``regexp.go``'s ``referencePat``,
``anchoredNameRegexp``, ``tag`` and ``digestPat``); the digest's encoded part is checked as
``github.com/opencontainers/go-digest`` ``Digest.Validate`` does for the algorithms it
registers (sha256: 64, sha384: 96, sha512: 128 lower-case hex digits). Written here, not
taken from a library: no kept Python package parses references by this grammar.

>>> ref = parse_reference("registry.example.com:5000/team/web:1.4.2@sha256:" + "a" * 64)
>>> ref.domain, ref.path, ref.tag, ref.digest[:12]
('registry.example.com:5000', 'team/web', '1.4.2', 'sha256:aaaaa')
>>> image_digest("web:1.4.2") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# regexp.go, piece by piece (Go's [[:xdigit:]] is [0-9A-Fa-f])
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_AND_PORT = r"(?:" + _DOMAIN_NAME + "|" + _IPV6 + r")(?::[0-9]+)?"
_PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
REFERENCE = re.compile(r"^(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?$", re.ASCII)
ANCHORED_NAME = re.compile(r"^(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")$", re.ASCII)
#: reference.go ``RepositoryNameTotalLengthMax``
NAME_MAX = 255
#: go-digest's registered algorithms and the length of their hex encoding
DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class ImageReference:
    """An image reference in its parts: ``[domain/]path[:tag][@digest]``."""

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path


def parse_reference(image: str) -> ImageReference:
    """The parts of ``image``, or ValueError saying what the grammar allows.

    As ``reference.Parse``: the whole string must match ``referencePat``; an upper-case name
    is its own error; the path is at most 255 characters; a domain is only what comes
    before the first ``/`` when it holds a dot or a port or is ``localhost``, as
    ``normalize.go``'s ``splitDockerDomain`` splits a name.

    >>> parse_reference("web@sha256:" + "0" * 64).tag is None
    True
    >>> parse_reference("localhost:5000/web:1.0").domain
    'localhost:5000'
    >>> parse_reference("Web:1.0")
    Traceback (most recent call last):
    ...
    ValueError: 'Web:1.0' is not an image reference: the repository name must be lower case
    >>> parse_reference("web@sha256:abc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: 'web@sha256:abc' is not an image reference: ...
    """
    match = REFERENCE.match(image) if isinstance(image, str) else None
    if match is None:
        if not image:
            raise ValueError("an empty image reference: give name[:tag][@sha256:<64 hex>]")
        if isinstance(image, str) and REFERENCE.match(image.lower()):
            raise ValueError(f"{image!r} is not an image reference: the repository name must be lower case")
        raise ValueError(f"{image!r} is not an image reference: expected [registry/]name[:tag][@sha256:<64 hex>] "
                         "(github.com/distribution/reference grammar)")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    split = ANCHORED_NAME.match(name)
    domain, path = (split.group(1), split.group(2)) if split else (None, name)
    if domain is not None and "." not in domain and ":" not in domain and domain != "localhost":
        # normalize.go's splitDockerDomain: "team/web" is a path, not a registry "team"
        domain, path = None, name
    if len(path) > NAME_MAX:
        raise ValueError(f"{image[:40]!r}...: the repository name must be at most {NAME_MAX} characters")
    if digest is not None:
        check_digest(digest, image)
    return ImageReference(domain, path, tag, digest)


def check_digest(digest: str, image: str = "") -> str:
    """A digest's algorithm must be one go-digest registers, its hex of that length, lower case.

    >>> check_digest("sha256:" + "ab" * 32)[:10]
    'sha256:aba'
    >>> check_digest("md5:" + "0" * 32)
    Traceback (most recent call last):
    ...
    ValueError: digest 'md5:0000000000000000...': algorithm md5 is not one of sha256, sha384, sha512
    """
    algorithm, _, encoded = digest.partition(":")
    short = digest[:20] + "..." if len(digest) > 23 else digest
    shown = repr(image) if image else f"digest {short!r}"
    if algorithm not in DIGEST_HEX:
        raise ValueError(f"{shown}: algorithm {algorithm} is not one of {', '.join(DIGEST_HEX)}")
    size = DIGEST_HEX[algorithm]
    if not re.fullmatch(f"[a-f0-9]{{{size}}}", encoded, re.ASCII):
        raise ValueError(f"{shown}: a {algorithm} digest is {size} lower-case hex digits, got {len(encoded)}"
                         + (" with upper case" if encoded.lower() != encoded else ""))
    return digest


def image_digest(image: str) -> str | None:
    """The digest an image reference pins (``sha256:<hex>``), None for a tag alone.

    >>> image_digest("ghcr.io/acme/web:1.4.2@sha256:" + "f" * 64) == "sha256:" + "f" * 64
    True
    """
    return parse_reference(image).digest
