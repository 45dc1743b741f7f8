"""Sending a run's notices without holding the run up: a queue and a thread per sink, a
timeout and retries with backoff per request, and a bounded drain at the end.

The retry rule is hashicorp/go-retryablehttp's, the client both Flagger's webhooks
(fluxcd/flagger pkg/controller/webhook.go ``callWebhook``) and Argo's notifications-engine
(pkg/services/webhook.go ``request.execute``) send through: ``DefaultRetryPolicy`` asks again
after a connection error, a 429 or a 5xx other than 501; ``DefaultBackoff`` waits min·2^n,
capped at max, or the Retry-After of a 429 or 503. The defaults are notifications-engine's
(``NewWebhookService``: 3 retries, waits from 1 s to 5 s) and the timeout Flagger gives an
event webhook (5 s). The waits go through ``tenacity``, as the Prometheus provider's do.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import httpx
import tenacity

from deploysim.errors import EXIT_ENVIRONMENT, DeploysimError
from deploysim.notify.notices import Notice
from deploysim.redact import REDACTED, redact_text

#: seconds a request may take (connect and read)
TIMEOUT = 5.0
#: requests after the first one
RETRIES = 3
#: (first, longest) wait between attempts, seconds
WAIT = (1.0, 5.0)
#: seconds the end of a run waits for what is still queued
DRAIN_SECONDS = 10.0
#: notices queued per sink before new ones are dropped (and counted)
CAPACITY = 1000
#: failures kept in the report, per sink
KEEP_FAILURES = 20


class SendError(DeploysimError):
    """A notice that did not get through, after ``attempts`` tries (kept in the record,
    never raised to a user: a notification never fails the run)."""

    exit_code: ClassVar[int] = EXIT_ENVIRONMENT

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class Transient(SendError):
    """An answer worth asking again for (and when the server said to)."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def transient_status(status: int) -> bool:
    """go-retryablehttp's ``DefaultRetryPolicy`` for a status: 429, and 5xx but 501.

    >>> [transient_status(s) for s in (200, 404, 429, 500, 501, 503)]
    [False, False, True, True, False, True]
    """
    return status in (0, 429) or (status >= 500 and status != 501)


def retry_wait(attempt: int, low: float = WAIT[0], high: float = WAIT[1], retry_after: str | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (0: the first), go-retryablehttp's
    ``DefaultBackoff``: ``low * 2**attempt`` capped at ``high``; a Retry-After in seconds
    instead when the server gave one, also capped at ``high`` (retryablehttp takes it whole;
    the cap keeps the end of a run's drain bounded).

    >>> [retry_wait(n) for n in range(4)]
    [1.0, 2.0, 4.0, 5.0]
    >>> retry_wait(0, retry_after="3"), retry_wait(0, retry_after="120"), retry_wait(1, retry_after="soon")
    (3.0, 5.0, 2.0)
    """
    if retry_after is not None and retry_after.strip().isdigit():
        return min(float(retry_after.strip()), high)
    return min(low * 2.0 ** attempt, high)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with the sink's own secrets and anything shaped like one replaced.

    >>> scrub("401 for Bearer abc123 from hooks", ["abc123"])
    '401 for Bearer [REDACTED] from hooks'
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return redact_text(text)


def with_retries(call: Callable[[], Any], *, retries: int, wait: tuple[float, float],
                 abandon: threading.Event) -> Any:
    """``call()``, asked again while it raises :class:`Transient`, at most ``retries`` times,
    never once ``abandon`` is set (a wait ends as soon as it is). Raises :class:`SendError`
    with the attempts made."""
    attempts = [0]

    def once() -> Any:
        attempts[0] += 1
        return call()

    def pause(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        return retry_wait(state.attempt_number - 1, *wait, retry_after=getattr(exc, "retry_after", None))

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retries + 1) | tenacity.stop_when_event_set(abandon),
        wait=pause, retry=tenacity.retry_if_exception_type(Transient),
        sleep=lambda seconds: abandon.wait(seconds), reraise=True)
    try:
        return retrying(once)
    except Transient as exc:
        n = attempts[0]
        raise SendError(f"{exc} ({n} attempt{'s' if n != 1 else ''})", n) from None
    except SendError as exc:  # refused after a transient answer or two: say how many tries it took
        raise SendError(str(exc), attempts[0]) from None


@dataclass(frozen=True)
class Sending:
    """How a sink sends: the timeout of a request, the retries and the waits between them."""

    timeout: float = TIMEOUT
    retries: int = RETRIES
    wait: tuple[float, float] = WAIT


DEFAULT_SENDING = Sending()


class Poster:
    """JSON requests to one sink over ``httpx``, with the timeout and retries above; the
    sink's secrets (a token, a URL's path, header values) never reach an error message."""

    def __init__(self, sending: Sending = DEFAULT_SENDING, secrets: Iterable[str] = (),
                 client: httpx.Client | None = None) -> None:
        self.timeout, self.retries, self.wait = sending.timeout, sending.retries, sending.wait
        self.secrets = tuple(s for s in secrets if s)
        self.abandon = threading.Event()
        self._client = client or httpx.Client(timeout=self.timeout)
        self._own = client is None

    def send(self, method: str, url: str, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """The 2xx answer to ``method url`` with the JSON ``body``; :class:`SendError` otherwise."""
        def once() -> httpx.Response:
            try:
                resp = self._client.request(method, url, json=body, headers=dict(headers or {}),
                                            timeout=self.timeout)
            except httpx.TimeoutException:
                raise Transient(f"no answer within {self.timeout:g}s") from None
            except httpx.HTTPError as exc:
                raise Transient(self._scrub(f"cannot send ({type(exc).__name__}: {exc})")) from None
            if 200 <= resp.status_code < 300:
                return resp
            excerpt = " ".join(resp.text.split())[:160]
            message = self._scrub(f"HTTP {resp.status_code}" + (f": {excerpt}" if excerpt else ""))
            if transient_status(resp.status_code):
                raise Transient(message, resp.headers.get("retry-after"))
            raise SendError(message)

        try:
            return with_retries(once, retries=self.retries, wait=self.wait, abandon=self.abandon)
        except SendError as exc:
            raise SendError(self._scrub(str(exc)), exc.attempts) from None

    def _scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def close(self) -> None:
        if self._own:
            self._client.close()


class Sink(Protocol):
    """Where notices go: Kubernetes Events, Grafana, one webhook."""

    name: str

    def deliver(self, notice: Notice) -> bool:
        """Send ``notice`` (on the sink's own thread); False when it is not this sink's to
        send. Raises on a failure."""

    def summary(self) -> dict[str, Any]:
        """What the report says of this sink beyond the counts."""

    def abandon(self) -> None:
        """Stop asking again: the run's drain bound has passed."""

    def close(self) -> None: ...


_STOP = object()


class Delivery:
    """One sink's queue and the daemon thread that empties it, counting what got through."""

    def __init__(self, sink: Sink, capacity: int = CAPACITY) -> None:
        self.sink = sink
        self._queue: queue.Queue[Any] = queue.Queue(capacity)
        self._lock = threading.Lock()
        self.sent = self.submitted = self.finished = 0
        self.failures: list[dict[str, Any]] = []
        self.failed = 0
        self._abandoned = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"deploysim-notify {sink.name}", daemon=True)
        self._thread.start()

    def submit(self, notice: Notice) -> None:
        """Queue ``notice``; never waits (a full queue drops it and counts the drop)."""
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            self._fail(notice, "not sent: the queue was full", 0)
            return
        with self._lock:
            self.submitted += 1

    def _fail(self, notice: Notice, error: str, attempts: int) -> None:
        with self._lock:
            self.failed += 1
            if len(self.failures) < KEEP_FAILURES:
                self.failures.append({"sink": self.sink.name, "reason": notice.reason, "error": error,
                                      "attempts": attempts})

    def _run(self) -> None:
        while True:
            notice = self._queue.get()
            if notice is _STOP:
                return
            if self._abandoned.is_set():  # reported undelivered when the drain bound passed
                if self._queue.empty():
                    return  # a full queue may have kept the stop out
                continue
            try:
                sent = self.sink.deliver(notice)
            except SendError as exc:
                self._fail(notice, str(exc), exc.attempts)
            except Exception as exc:  # noqa: BLE001 - a sink's failure is reported, never raised into the run
                self._fail(notice, redact_text(f"{type(exc).__name__}: {exc}")[:300], 1)
            else:
                with self._lock:
                    self.sent += bool(sent)
            finally:
                with self._lock:
                    self.finished += 1

    def stop(self, deadline: float) -> dict[str, Any]:
        """Let the queue empty until ``deadline`` (``time.monotonic()``), then report."""
        remaining = deadline - time.monotonic()
        try:
            if remaining > 0:
                self._queue.put(_STOP, timeout=remaining)
            else:
                self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        if self._thread.is_alive():
            # past the bound: a retry in flight stops at its next wait, the rest is not sent
            self._abandoned.set()
            self.sink.abandon()
        else:
            self.sink.close()
        with self._lock:
            report = {"sent": self.sent, "failed": self.failed, "undelivered": self.submitted - self.finished}
        return {**report, **self.sink.summary()}
