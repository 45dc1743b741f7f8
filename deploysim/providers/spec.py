"""What a provider is asked to measure, and how a metrics source is configured.

Kept apart from the package's ``__init__`` so the provider modules and the registry that
imports them share these names without an import circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from deploysim.errors import MetricsConfigError

#: The versions every measurement holds, in the order judges read them.
VERSIONS = ("stable", "candidate")
#: The latency quantiles of a window: p50, p95, p99.
QUANTILES = (0.50, 0.95, 0.99)


#: The kinds of metrics source :func:`deploysim.providers.provider_for` builds.
KINDS = ("simulated", "prometheus", "http", "none")


@dataclass(frozen=True)
class ProviderConfig:
    """Which metrics source to read, with its settings.

    - ``simulated``: the rehearsal world measures itself (no settings);
    - ``prometheus``: PromQL at ``url`` over the series labelled ``service`` (and
      ``namespace``), ``token`` as a bearer token, ``step`` seconds per series bin;
    - ``http``: ``probes`` GETs per measurement to each of ``probe_urls`` (``stable`` and
      ``candidate``), a status >= 500 or no answer within ``timeout`` counting as failed;
    - ``none``: no source; every measurement is a provider error saying ``reason``.

    A setting the kind needs and does not have is a :class:`~deploysim.errors.MetricsConfigError` naming it:

    >>> ProviderConfig("prometheus")
    Traceback (most recent call last):
    ...
    deploysim.errors.MetricsConfigError: metrics.url: got None; the prometheus source needs the URL of a Prometheus server
    """

    kind: str = "none"
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    service: str = ""
    namespace: str | None = None
    step: float = 10.0
    timeout: float | None = None
    probe_urls: Mapping[str, str] = field(default_factory=dict)
    probes: int = 20
    reason: str = "no metrics source configured"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MetricsConfigError(f"metrics.kind: got {self.kind!r}; allowed: {', '.join(KINDS)}")
        if self.kind == "prometheus" and not self.url:
            raise MetricsConfigError(
                f"metrics.url: got {self.url!r}; the prometheus source needs the URL of a Prometheus server")
        if self.kind == "http":
            unknown = sorted(set(self.probe_urls) - set(VERSIONS))
            if not self.probe_urls or unknown:
                raise MetricsConfigError(
                    f"metrics.probe_urls: got {dict(self.probe_urls)!r}; the http source needs a URL "
                    f"per version, keys from {', '.join(VERSIONS)}")
        if self.step <= 0:
            raise MetricsConfigError(f"metrics.step: got {self.step!r}; must be more than 0 seconds")
        if self.probes < 1:
            raise MetricsConfigError(f"metrics.probes: got {self.probes!r}; must be at least 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ProviderConfig:
        """A configuration from plain data (YAML, a runbook parameter); unknown keys are errors.

        >>> ProviderConfig.from_mapping({"kind": "http", "probe_urls": {"candidate": "http://c/"}}).probes
        20
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MetricsConfigError(f"metrics: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        return cls(**dict(data))
