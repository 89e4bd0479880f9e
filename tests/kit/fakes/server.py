"""A loopback HTTP server for API fakes: routes, a request log and scripted faults.

Each API fake (Alpaca, NewsAPI, Reddit) registers routes that speak that API's real wire format;
tests then script faults (429 with Retry-After, 5xx, slow replies that time out, malformed
bodies) that the next matching requests get instead of the normal reply.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


Handler = Callable[[Request], Reply]


@dataclass
class Fault:
    """A reply served instead of the route's own for the next ``times`` matching requests."""

    path_pattern: str
    reply: Reply
    times: int = 1


def malformed(status: int = 200) -> Reply:
    return Reply(status=status, raw=b'{"bars": {"AAPL": [ {"t": ', headers={})


def throttled(retry_after: float | str = 1) -> Reply:
    return Reply(status=429, body={"code": 42910000, "message": "rate limit exceeded"},
                 headers={"Retry-After": str(retry_after)})


def server_error(status: int = 500) -> Reply:
    return Reply(status=status, body={"code": 50010000, "message": "internal server error"})


def slow(seconds: float) -> Reply:
    return Reply(status=200, body={}, delay=seconds)


class FakeServer:
    """Threaded loopback server. Use :func:`serve` to run one for a test."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method.upper(), re.compile(pattern + r"\Z"), handler))

    def fail(self, path_pattern: str, reply: Reply, times: int = 1) -> None:
        with self._lock:
            self.faults.append(Fault(path_pattern, reply, times))

    def hits(self, path_pattern: str) -> list[Request]:
        rx = re.compile(path_pattern + r"\Z")
        return [r for r in self.requests if rx.match(r.path)]

    def _next_fault(self, path: str) -> Reply | None:
        with self._lock:
            for fault in self.faults:
                if re.match(fault.path_pattern + r"\Z", path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault.reply
        return None

    def dispatch(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
        fault = self._next_fault(request.path)
        if fault is not None:
            return fault
        for method, rx, handler in self.routes:
            if method == request.method and rx.match(request.path):
                return handler(request)
        return Reply(404, {"message": f"no route for {request.method} {request.path}"})

    def start(self) -> None:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per keep-alive request

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                reply = server.dispatch(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    if request.headers.get("connection", "").lower() == "close":
                        headers["Connection"] = "close"  # tell the client not to reuse it
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


@contextmanager
def serve(server: FakeServer) -> Iterator[FakeServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
