"""A real HTTP server on 127.0.0.1 that answers the query-API requests of a test from recorded bodies.

Each test routes requests to replies (status, headers, body, an optional delay) with a plain
function; the server records every request it received, headers included, so that tests can
check what the client sent (parameters, Accept, the auth header) and how often it asked.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    compress: bool = False


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        """A request header, whatever the case the client wrote its name in."""
        return self.headers.get(name.lower())

    def param(self, name: str) -> str:
        """The single value of query parameter ``name``."""
        (value,) = self.query[name]
        return value


Route = Callable[[Received], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Received(parts.path, parse_qs(parts.query, keep_blank_values=True), headers)
        with self.server.lock:
            self.server.received.append(request)
        reply = self.server.route(request)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        body = gzip.compress(reply.body) if reply.compress else reply.body
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            if reply.compress:
                self.send_header("Content-Encoding", "gzip")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, route: Route) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.route = route
        self.received: list[Received] = []
        self.lock = threading.Lock()


class ReplayServer:
    """The running server: its base URL and the requests it received."""

    def __init__(self, server: _Server) -> None:
        self._server = server

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def received(self) -> list[Received]:
        """Every request so far, in arrival order."""
        with self._server.lock:
            return list(self._server.received)

    def paths(self) -> list[str]:
        """The paths requested so far, in arrival order."""
        return [request.path for request in self.received]


@contextmanager
def replay(route: Route) -> Iterator[ReplayServer]:
    """Serve ``route`` on a free port of 127.0.0.1 for the duration of the block."""
    server = _Server(route)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield ReplayServer(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def sequence(*replies: Reply) -> Route:
    """A route answering the given replies in turn, the last one for every later request."""
    remaining = list(replies)
    lock = threading.Lock()

    def route(request: Received) -> Reply:
        with lock:
            return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return route
