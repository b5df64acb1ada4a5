"""``orchscan receive``: an OTLP/HTTP trace receiver that writes Collector-framed files for a later scan.

Standard library HTTP (``http.server``), one thread per connection, keep-alive as OTLP clients
expect. At most ``max_in_flight`` requests are processed at once; one more is answered 503 with
``Retry-After``, which OTLP exporters honour. On SIGTERM or SIGINT the receiver stops
accepting, lets the requests in progress finish (up to ``shutdown_grace_s``), and completes the
current file.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from orchscan.collectors.traces.receiver import otlp_http
from orchscan.collectors.traces.receiver.otlp_http import JSON, PROTOBUF, RequestError
from orchscan.collectors.traces.receiver.writer import FramedWriter, WriterClosed

TRACES_PATH = "/v1/traces"
_CHUNK_LINE_BYTES = 1024
# How long a refusal waits for the rest of an unread body before closing the connection.
_LINGER_S = 1.0


@dataclass(frozen=True)
class ReceiverLimits:
    """The receiver's limits, each a ``receive`` option.

    ``max_request_bytes`` bounds a request body as sent and again once unpacked (the OTLP
    specification recommends 20 MiB); ``max_file_bytes`` and ``max_file_age_s`` rotate the
    output file; ``max_in_flight`` requests are processed at once, more are asked to come back
    after ``retry_after_s``; ``read_timeout_s`` drops a connection that stalls mid-request;
    ``shutdown_grace_s`` is how long a shutdown waits for requests in progress.
    """

    max_request_bytes: int = 20 << 20
    max_file_bytes: int = 64 << 20
    max_file_age_s: float = 300.0
    max_in_flight: int = 8
    retry_after_s: int = 1
    read_timeout_s: float = 30.0
    shutdown_grace_s: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "max_request_bytes",
            "max_file_bytes",
            "max_file_age_s",
            "max_in_flight",
            "read_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"receiver limit {name} must be positive, not {getattr(self, name)}")


@dataclass
class ReceiverStats:
    """What the receiver took in, for its closing summary."""

    requests: int = 0
    spans: int = 0
    rejected_spans: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, spans: int = 0, rejected: int = 0, refused: int | None = None) -> None:
        """Count one request."""
        with self.lock:
            self.requests += 1
            self.spans += spans
            self.rejected_spans += rejected
            if refused is not None:
                self.refused[refused] = self.refused.get(refused, 0) + 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold the process open
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        writer: FramedWriter,
        limits: ReceiverLimits,
        log: Callable[[str], None],
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.writer = writer
        self.limits = limits
        self.log = log
        self.stats = ReceiverStats()
        self.slots = threading.BoundedSemaphore(limits.max_in_flight)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "orchscan-receive"

    def setup(self) -> None:
        self.request.settimeout(self.server.limits.read_timeout_s)
        super().setup()

    def handle(self) -> None:
        """Serve the connection's requests; a client that drops the connection ends it quietly."""
        try:
            super().handle()
        except ConnectionError:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request access log; refusals are logged by :meth:`_refuse`."""

    def do_GET(self) -> None:
        """Only POST is served."""
        self._refuse(PROTOBUF, 405, f"use POST {TRACES_PATH}", close=False, headers={"Allow": "POST"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def do_POST(self) -> None:
        """Receive one ExportTraceServiceRequest."""
        media = otlp_http.media_type(self.headers.get("Content-Type"))
        answer_media = media if media in otlp_http.MEDIA_TYPES else PROTOBUF
        if self.path.split("?", 1)[0] != TRACES_PATH:
            self._refuse(answer_media, 404, f"no such endpoint {self.path!r}; traces go to {TRACES_PATH}")
            return
        if not self.server.slots.acquire(blocking=False):
            retry = str(self.server.limits.retry_after_s)
            self._refuse(answer_media, 503, "too many requests in progress", headers={"Retry-After": retry})
            return
        try:
            self._receive(media, answer_media)
        finally:
            self.server.slots.release()

    def _receive(self, media: str, answer_media: str) -> None:
        limit = self.server.limits.max_request_bytes
        try:
            if media not in otlp_http.MEDIA_TYPES:
                raise RequestError(
                    415, f"unsupported Content-Type {media or 'none'!r}; use {PROTOBUF} or {JSON}"
                )
            body = self._read_body(limit)
            accepted = otlp_http.decode(
                otlp_http.unpack(body, self.headers.get("Content-Encoding"), limit), media
            )
            if accepted.spans:
                self.server.writer.write(accepted.body)
        except RequestError as error:
            self._refuse(answer_media, error.status, error.message)
            return
        except WriterClosed as error:
            retry = str(self.server.limits.retry_after_s)
            self._refuse(answer_media, 503, str(error), headers={"Retry-After": retry})
            return
        except OSError as error:
            self._refuse(answer_media, 500, f"cannot write the received spans: {error.strerror or error}")
            return
        self.server.stats.count(spans=accepted.spans, rejected=accepted.rejected)
        self._send(200, answer_media, otlp_http.success(answer_media, accepted))

    def _read_body(self, limit: int) -> bytes:
        """The body by Content-Length or chunked transfer coding, refused beyond ``limit`` bytes."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RequestError(411, "a Content-Length or chunked body is required")
        try:
            length = int(length_text)
        except ValueError:
            raise RequestError(400, f"bad Content-Length {length_text!r}") from None
        if length > limit:
            raise RequestError(413, f"body of {length:,} bytes is larger than the {limit:,}-byte limit")
        body = self.rfile.read(length)
        if len(body) < length:
            raise RequestError(400, f"body ended after {len(body):,} of {length:,} bytes")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(_CHUNK_LINE_BYTES)
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise RequestError(400, "malformed chunked body") from None
            if chunk == 0:
                while self.rfile.readline(_CHUNK_LINE_BYTES).strip():
                    pass  # trailer fields
                return b"".join(parts)
            size += chunk
            if size > limit:
                raise RequestError(413, f"body larger than the {limit:,}-byte limit")
            data = self.rfile.read(chunk)
            if len(data) < chunk or self.rfile.read(2) != b"\r\n":
                raise RequestError(400, "chunked body ended early")
            parts.append(data)

    def _refuse(
        self,
        media: str,
        status: int,
        message: str,
        *,
        close: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        # A refused request's body may be unread; closing the connection discards it.
        self.close_connection = close or self.close_connection
        self.server.stats.count(refused=status)
        self.server.log(f"{status} for {self.command} {self.path} from {self.client_address[0]}: {message}")
        self._send(status, media, otlp_http.status(media, status, message), headers or {})

    def finish(self) -> None:
        """Close the connection, after reading what a refused client still sends."""
        if self.close_connection:
            self._linger()
        super().finish()

    def _linger(self) -> None:
        """Read what the client still sends before closing, so that it receives the answer.

        Closing a socket with unread data resets the connection, and a client still sending
        its body would lose the response with it. Bounded by the request size limit and a second.
        """
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(_LINGER_S)
            left = self.server.limits.max_request_bytes
            while left > 0 and (data := self.connection.recv(min(left, 1 << 16))):
                left -= len(data)
        except OSError:
            pass  # the client is gone or too slow: nothing more to do for it

    def _send(self, status: int, media: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class Receiver:
    """A listening receiver: serve on a thread, rotate files, shut down cleanly."""

    def __init__(
        self,
        address: tuple[str, int],
        folder: Path,
        limits: ReceiverLimits,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.writer = FramedWriter(
            folder, max_file_bytes=limits.max_file_bytes, max_file_age_s=limits.max_file_age_s
        )
        self.recovered = self.writer.recover()
        self._server = _Server(address, self.writer, limits, log)
        self._limits = limits
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2})
        self._closed = False

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on (the real port when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def stats(self) -> ReceiverStats:
        """What was received so far."""
        return self._server.stats

    def start(self) -> None:
        """Start serving on a background thread."""
        self._thread.start()

    def run_until(self, stop: threading.Event) -> None:
        """Rotate old files until ``stop`` is set."""
        tick = min(1.0, self._limits.max_file_age_s / 4)
        while not stop.wait(tick):
            self.writer.rotate_if_old()

    def close(self) -> None:
        """Stop accepting, wait for requests in progress, complete the current file (once)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._thread.join()
        # Holding every slot means no request is between reading its body and writing it.
        deadline = time.monotonic() + self._limits.shutdown_grace_s
        for _ in range(self._limits.max_in_flight):
            self._server.slots.acquire(timeout=max(0.0, deadline - time.monotonic()))
        self.writer.close()
        self._server.server_close()


def serve(
    address: tuple[str, int],
    folder: Path,
    limits: ReceiverLimits,
    *,
    announce: Callable[[Receiver], None],
    log: Callable[[str], None],
) -> Receiver:
    """Receive until SIGTERM or SIGINT, then shut down cleanly; returns the closed receiver."""
    receiver = Receiver(address, folder, limits, log)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        receiver.start()
        announce(receiver)
        receiver.run_until(stop)
    finally:
        receiver.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return receiver
