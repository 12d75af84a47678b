"""A real HTTP server on 127.0.0.1 for the live-provider tests, with faults on demand.

Each provider's test module registers routes that answer in that provider's documented
shapes (tests/support/fake_<provider>.py); the tests then queue faults in front of them:

    with FakeServer() as server:
        server.route("GET", r"/v3/carbon-intensity/latest", handler)
        server.fail(Reply(503), Reply(429, headers={"Retry-After": "1"}))
        ...  # the next two requests get these, the third reaches the handler
        server.requests  # every request seen: method, path, query, headers

A handler takes the :class:`Seen` request and returns a :class:`Reply`.  A reply may be
delayed (a timeout), cut (the connection closed before any answer) or truncated (the
connection closed halfway through the body).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list: JSON; str/bytes: as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    cut: bool = False  # close the connection without answering
    truncated: bool = False  # announce the whole body, send half of it, close


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


Handler = Callable[[Seen], Reply]


class FakeServer:
    """A threaded HTTP server on a free port of 127.0.0.1 (see the module docstring)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[Reply] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer ``method`` requests whose path fully matches ``pattern``."""
        self.routes.append((method, re.compile(pattern), handler))

    def fail(self, *replies: Reply) -> None:
        """Serve these replies, in order, to the next requests (whatever their path)."""
        with self._lock:
            self.faults.extend(replies)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            if self.faults:
                return self.faults.pop(0)
        for method, pattern, handler in self.routes:
            if method == seen.method and pattern.fullmatch(seen.path):
                return handler(seen)
        return Reply(404, {"error": f"no route for {seen.path}"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                seen = Seen(self.command, parts.path, query,
                            {k.lower(): v for k, v in self.headers.items()}, time.monotonic())
                reply = server._answer(seen)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.cut:
                    self.close_connection = True
                    return
                body = reply.body
                if isinstance(body, dict | list):
                    body = json.dumps(body)
                data = b"" if body is None else body.encode() if isinstance(body, str) else body
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.get(
                    "Content-Type", "application/json"))
                for key, value in reply.headers.items():
                    if key != "Content-Type":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if reply.truncated:
                    data = data[: len(data) // 2]
                    self.close_connection = True
                # the client may have given up (a timeout test)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet tests

        return _Handler
