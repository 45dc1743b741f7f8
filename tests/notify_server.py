"""A local HTTP server on 127.0.0.1 standing in for Grafana, a webhook receiver or the
Kubernetes API in the notification tests: it records every request (method, path, headers,
JSON body) and answers from a script; a request can be held unanswered until released."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the JSON body, or the raw text when it is not JSON

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # keep the request unanswered until the server is released


Script = Callable[[Request, int], Answer]  # the request and how many came before it


def grafana_script(request: Request, _: int) -> Answer:
    """Grafana's answers as its docs show them (annotations.md "Create/Patch Annotation")."""
    if request.method == "POST" and request.path.endswith("/api/annotations"):
        return Answer(200, {"message": "Annotation added", "id": 1000 + len(request.body.get("tags", []))})
    if request.method == "PATCH":
        return Answer(200, {"message": "Annotation patched"})
    return Answer(200, {})


class Receiver:
    """``with Receiver(script) as r: ... r.url ... r.requests``."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or grafana_script
        self.requests: list[Request] = []
        self.released = threading.Event()
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._arrived:
                    before = len(receiver.requests)
                    receiver.requests.append(request)
                    receiver._arrived.notify_all()
                answer = receiver.script(request, before)
                if answer.hold:
                    receiver.released.wait()
                data = json.dumps(answer.body).encode() if not isinstance(answer.body, str) else answer.body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting

            do_GET = do_POST = do_PATCH = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Request]:
        """The requests once ``count`` have come (a bound for a busy machine, not a measure)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
