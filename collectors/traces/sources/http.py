"""One patient HTTP GET client for the query APIs: retries with backoff, timeouts, size limits, secret auth.

Standard library only (``urllib.request``): the sources make a few hundred plain GET requests,
which needs no connection pool. The auth header is attached with ``add_unredirected_header``,
so a redirect to another host never carries it, and its value is removed from every message
this module produces.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import re
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import IO
from urllib.parse import urlencode

#: Statuses worth asking again: throttling and the server errors a restart or a failover heals.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Statuses that say the credentials are wrong: every further request would fail the same way.
AUTH_STATUSES = frozenset({401, 403})

_READ_BYTES = 1 << 16
_EXCERPT_CHARS = 300
_HEADER_LINE = re.compile(r"^([A-Za-z0-9-]+):[ \t]*(.+)$")


@dataclass(frozen=True)
class FetchLimits:
    """How much a live source fetches and how patiently; each limit has a CLI option or a default here.

    ``timeout_s`` bounds one request: connecting, and receiving the whole response. A failed
    request is tried ``retries`` more times when it failed for a reason that may pass (HTTP 429,
    500, 502, 503, 504, a refused or dropped connection, a timeout), after ``backoff_s`` doubled
    per attempt and capped at ``max_backoff_s``, which also caps a server's ``Retry-After``.
    ``max_response_bytes`` bounds one response body, before and after decompression.
    ``page_size`` is the number of traces one search request asks for; a search window whose
    answer is full is halved and asked again, down to ``min_window_s``. At most ``max_traces``
    distinct traces are read per source; what the window holds beyond that is reported as
    skipped. ``concurrency`` trace-by-id requests are in flight at once (Tempo).
    """

    timeout_s: float = 30.0
    retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_response_bytes: int = 256 << 20
    page_size: int = 100
    max_traces: int = 10_000
    min_window_s: float = 1.0
    concurrency: int = 4

    def __post_init__(self) -> None:
        positive = ("timeout_s", "max_response_bytes", "page_size", "max_traces", "min_window_s")
        for name in (*positive, "concurrency"):
            if getattr(self, name) <= 0:
                raise ValueError(f"fetch limit {name} must be positive, not {getattr(self, name)}")
        for name in ("retries", "backoff_s", "max_backoff_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"fetch limit {name} must not be negative, not {getattr(self, name)}")


class AuthHeader:
    """A request header whose value is a secret: never part of a message, a repr or a report."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"AuthHeader({self.name!r}, <redacted>)"

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret value replaced."""
        return text.replace(self.value, "<redacted>") if self.value else text


def auth_header_from_env(variable: str, environ: Mapping[str, str] | None = None) -> AuthHeader:
    """The auth header held in environment variable ``variable``.

    The value is either what the ``Authorization`` header carries (``Bearer ...``,
    ``Basic ...``) or a whole header line (``X-API-Key: ...``) for backends that expect another
    header. Raises ValueError naming the variable, never its value.
    """
    value = (environ if environ is not None else os.environ).get(variable, "").strip()
    if not value:
        raise ValueError(f"environment variable {variable} is not set or empty (--auth-header-env)")
    if "\n" in value or "\r" in value:
        raise ValueError(f"environment variable {variable} holds more than one line (--auth-header-env)")
    line = _HEADER_LINE.match(value)
    if line and " " not in line.group(1):
        return AuthHeader(line.group(1), line.group(2).strip())
    return AuthHeader("Authorization", value)


class FetchStats:
    """Counters of one source's requests, shared by the threads that fetch for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.errors = 0
        self.bytes = 0

    def add(self, *, requests: int = 0, retries: int = 0, errors: int = 0, received: int = 0) -> None:
        """Add to the counters."""
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.errors += errors
            self.bytes += received


@dataclass(frozen=True)
class Response:
    """A response the caller accepted: its status, media type and decompressed body."""

    status: int
    content_type: str
    body: bytes


class FetchError(Exception):
    """A request that failed for good; the message names the request and the reason, never a secret."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    """A failure worth another attempt."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _user_agent() -> str:
    try:
        return f"orchscan/{version('orchscan')}"
    except PackageNotFoundError:
        return "orchscan"


class HttpClient:
    """GET requests below one base URL, with the limits, headers and counters of one source."""

    def __init__(
        self,
        base_url: str,
        *,
        limits: FetchLimits,
        stats: FetchStats,
        headers: Mapping[str, str] | None = None,
        auth: AuthHeader | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._limits = limits
        self._stats = stats
        self._headers = {"User-Agent": _user_agent(), "Accept-Encoding": "gzip", **(headers or {})}
        self._auth = auth
        self._sleep = sleep
        self._opener = urllib.request.build_opener()

    def get(
        self,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        accept: str = "application/json",
        accept_statuses: frozenset[int] = frozenset(),
    ) -> Response:
        """GET ``path`` (below the base URL) with ``params``; 2xx and ``accept_statuses`` are answers.

        Raises :class:`FetchError` when the request failed for good: a status that is not an
        answer, retries used up, an oversized or undecodable body.
        """
        url = self._base + path + ("?" + urlencode(params) if params else "")
        attempt = 0
        while True:
            try:
                return self._once(url, accept, accept_statuses)
            except _Transient as failure:
                if attempt >= self._limits.retries:
                    self._stats.add(errors=1)
                    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    raise FetchError(self._redact(f"{failure.reason} ({tries})"), failure.status) from None
                delay = self._limits.backoff_s * (2**attempt)
                if failure.retry_after is not None:
                    delay = max(delay, failure.retry_after)
                self._stats.add(retries=1)
                self._sleep(min(delay, self._limits.max_backoff_s))
                attempt += 1
            except FetchError:
                self._stats.add(errors=1)
                raise

    def _once(self, url: str, accept: str, accept_statuses: frozenset[int]) -> Response:
        request = urllib.request.Request(url, headers={**self._headers, "Accept": accept})
        if self._auth is not None:
            request.add_unredirected_header(self._auth.name, self._auth.value)
        self._stats.add(requests=1)
        deadline = time.monotonic() + self._limits.timeout_s
        try:
            with self._opener.open(request, timeout=self._limits.timeout_s) as answer:
                body = self._body(answer, answer.headers, deadline, strict=True)
                return Response(answer.status, _media_type(answer.headers), body)
        except urllib.error.HTTPError as error:
            with error:
                body = self._body(error, error.headers, deadline, strict=False)
                status = error.code
                if status in accept_statuses:
                    return Response(status, _media_type(error.headers), body)
                reason = f"HTTP {status} {error.reason}" + (f": {_excerpt(body)}" if body.strip() else "")
                if status in RETRYABLE_STATUSES:
                    raise _Transient(reason, status, _retry_after(error.headers.get("Retry-After"))) from None
                raise FetchError(self._redact(reason), status) from None
        except TimeoutError:
            raise _Transient(f"no answer within {self._limits.timeout_s:g} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise _Transient(f"no answer within {self._limits.timeout_s:g} s") from None
            raise _Transient(f"cannot connect: {error.reason}") from None
        except (http.client.HTTPException, ConnectionError) as error:
            raise _Transient(f"connection failed: {error.__class__.__name__} {error}".strip()) from None

    def _body(self, stream: IO[bytes], headers: Message[str, str], deadline: float, *, strict: bool) -> bytes:
        """Read a body within the deadline and the size limit, and undo gzip.

        Error bodies (``strict=False``) only feed messages: they are cut at the limit instead
        of failing the request a second time.
        """
        limit = self._limits.max_response_bytes
        parts: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise _Transient(f"response not complete within {self._limits.timeout_s:g} s")
            part = stream.read(_READ_BYTES)
            if not part:
                break
            size += len(part)
            self._stats.add(received=len(part))
            if size > limit:
                if not strict:
                    break
                raise FetchError(f"response larger than the {limit:,}-byte limit (max_response_bytes)")
            parts.append(part)
        raw = b"".join(parts)
        if headers.get("Content-Encoding", "").strip().lower() != "gzip":
            return raw
        try:
            return _gunzip(raw, limit)
        except (OSError, EOFError, zlib.error) as error:
            if not strict:
                return b""
            raise FetchError(f"response is not valid gzip: {error}") from None

    def _redact(self, text: str) -> str:
        return self._auth.redact(text) if self._auth is not None else text


def _gunzip(raw: bytes, limit: int) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as unpacked:
        body = unpacked.read(limit + 1)
    if len(body) > limit:
        raise FetchError(f"response larger than the {limit:,}-byte limit (max_response_bytes) once unpacked")
    return body


def _media_type(headers: Message[str, str]) -> str:
    return headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
