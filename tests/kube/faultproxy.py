"""A switchable HTTP proxy in front of a real Prometheus, to break it on cue mid-run.

Modes:

- ``pass``: every request is forwarded upstream and answered with the real reply;
- ``down``: nothing listens, so a connection is refused (the listening socket is closed, and
  the same port is bound again, with ``SO_REUSEADDR``, when the mode leaves ``down``);
- ``error``: every request is answered HTTP 500 with a Prometheus-style error body,
  ``{"status": "error", "errorType": "internal", "error": ...}``.

The proxy counts the requests it saw in each mode (``down`` sees none: nothing is there to
see them), so a test can wait until the analysis has read real answers before it breaks
anything. It answers HTTP/1.0 and closes every connection after its reply, so no kept-alive
connection outlives a switch to ``down``.

The standard library's ``ThreadingHTTPServer`` is used rather than a proxy tool (mitmproxy,
toxiproxy) because "close the port, then open the same port again" is the one fault needed and
three modes fit in one small class without another process to manage.

>>> import json
>>> with FaultProxy("http://127.0.0.1:1") as proxy:
...     proxy.set_mode("error")
...     r = httpx.get(f"{proxy.url}/api/v1/query", params={"query": "up"})
...     r.status_code, r.json()["errorType"], proxy.seen("error")
(500, 'internal', 1)
"""

from __future__ import annotations

import errno
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

MODES = ("pass", "down", "error")
#: the request headers forwarded upstream (hop-by-hop ones and Host are not)
FORWARDED_HEADERS = ("accept", "accept-encoding", "authorization", "content-type", "user-agent")
ERROR_MESSAGE = "fault injected by the test proxy"


def error_body(message: str = ERROR_MESSAGE) -> bytes:
    """The body Prometheus' HTTP API answers a failed query with.

    >>> json.loads(error_body("boom"))
    {'status': 'error', 'errorType': 'internal', 'error': 'boom'}
    """
    return json.dumps({"status": "error", "errorType": "internal", "error": message}).encode()


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # SO_REUSEADDR: bind the same port again right after closing it
    daemon_threads = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self.server.proxy._handle(self)

    def do_POST(self) -> None:  # noqa: N802
        self.server.proxy._handle(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: a test's output is its own."""


class FaultProxy:
    """A proxy on ``host`` (port ``port``, 0: any free one) forwarding to ``upstream``."""

    def __init__(self, upstream: str, port: int = 0, host: str = "127.0.0.1", timeout: float = 10.0,
                 error_message: str = ERROR_MESSAGE) -> None:
        self.upstream = upstream.rstrip("/")
        self.host = host
        self.error_message = error_message
        self._client = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()
        self._mode = "pass"
        self._seen = dict.fromkeys(MODES, 0)
        #: every request seen: (time.monotonic(), mode, path with query)
        self.requests: list[tuple[float, str, str]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self._listen()

    # --- the port ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _listen(self, deadline: float = 10.0) -> None:
        """Listen on ``self.port`` (a free one the first time if 0); EADDRINUSE is tried again
        for ``deadline`` seconds, as a closed socket may linger a moment."""
        until = time.monotonic() + deadline
        while True:
            try:
                server = _Server((self.host, self.port), _Handler)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > until:
                    raise OSError(exc.errno, f"fault proxy: cannot listen on {self.host}:{self.port} "
                                             f"again: {exc.strerror}") from None
                time.sleep(0.1)
        server.proxy = self
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"fault-proxy-{self.port}", daemon=True)
        thread.start()
        self._server, self._thread = server, thread

    def _unlisten(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # --- modes and counts --------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        """Switch to ``mode`` (one of :data:`MODES`); ``down`` closes the port, leaving it
        opens the same port again."""
        if mode not in MODES:
            raise ValueError(f"mode: got {mode!r}; allowed: {', '.join(MODES)}")
        with self._lock:
            was, self._mode = self._mode, mode
        if mode == "down" and was != "down":
            self._unlisten()
        elif was == "down" and mode != "down":
            self._listen()

    def seen(self, mode: str) -> int:
        """How many requests arrived while the proxy was in ``mode``."""
        if mode not in MODES:
            raise ValueError(f"mode: got {mode!r}; allowed: {', '.join(MODES)}")
        with self._lock:
            return self._seen[mode]

    # --- answering -----------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            mode = self._mode
            self._seen[mode] += 1
            self.requests.append((time.monotonic(), mode, h.path))
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if mode == "down":
            # arrived while the port was being closed: drop it unanswered, as a dead server would
            h.close_connection = True
            return
        if mode == "error":
            self._reply(h, 500, "application/json", error_body(self.error_message))
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() in FORWARDED_HEADERS}
        try:
            r = self._client.request(h.command, f"{self.upstream}{h.path}", headers=headers, content=body)
        except httpx.HTTPError as exc:
            self._reply(h, 502, "application/json", error_body(f"upstream {self.upstream}: {exc}"))
            return
        self._reply(h, r.status_code, r.headers.get("content-type", "application/octet-stream"), r.content)

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout); nothing to answer

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening and free the port (whatever the mode); safe to call twice."""
        with self._lock:
            self._mode = "down"
        self._unlisten()
        self._client.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
