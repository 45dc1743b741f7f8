"""The checked types of a runbook's notification parameters (``grafana_url``, ``webhooks``):
an error names the entry and what it must be, before anything runs.

>>> webhooks_checked([{"url": "https://hooks.example.com/deploys"}])
[{'url': 'https://hooks.example.com/deploys', 'kind': 'generic', 'headers': {}}]
>>> webhooks_checked([{"url": "hooks.example.com", "kind": "slack"}])
Traceback (most recent call last):
...
ValueError: entry 0: url must be an http:// or https:// URL
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, StrictStr

from deploysim.notify.notices import WEBHOOK_KINDS

WEBHOOK_KEYS = ("url", "kind", "headers")


def http_url(url: str) -> bool:
    """
    >>> http_url("https://grafana.example.com/"), http_url("grafana:3000"), http_url("ftp://x")
    (True, False, False)
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def http_url_checked(url: str) -> str:
    if not http_url(url):
        raise ValueError("must be an http:// or https:// URL, e.g. https://grafana.example.com")
    return url


def webhooks_checked(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry as ``{url, kind, headers}``, kind defaulting to generic."""
    hooks = []
    for i, hook in enumerate(value):
        unknown = sorted(set(hook) - set(WEBHOOK_KEYS))
        if unknown:
            raise ValueError(f"entry {i}: unknown key {unknown[0]!r}; an entry has {', '.join(WEBHOOK_KEYS)}")
        if not isinstance(hook.get("url"), str) or not http_url(hook["url"]):
            raise ValueError(f"entry {i}: url must be an http:// or https:// URL")
        kind = hook.get("kind", "generic")
        if kind not in WEBHOOK_KINDS:
            raise ValueError(f"entry {i}: kind must be {' or '.join(WEBHOOK_KINDS)}, not {kind!r}")
        headers = hook.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in headers.items()):
            raise ValueError(f"entry {i}: headers must map header names to text values")
        hooks.append({"url": hook["url"], "kind": kind, "headers": dict(headers)})
    return hooks


#: an http(s) URL, checked
HttpUrl = Annotated[StrictStr, AfterValidator(http_url_checked)]
#: a list of webhooks, each checked and completed
WebhookList = Annotated[list[dict[str, Any]], AfterValidator(webhooks_checked)]
