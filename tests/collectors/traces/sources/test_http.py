"""The query-API HTTP client against a real server on 127.0.0.1: retries, backoff, timeouts, limits, auth."""

from __future__ import annotations

import socket
import time

import pytest
from replay import Received, Reply, replay, sequence

from orchscan.collectors.traces.sources.http import (
    AuthHeader,
    FetchError,
    FetchLimits,
    FetchStats,
    HttpClient,
    auth_header_from_env,
)

QUICK = FetchLimits(timeout_s=2.0, retries=3, backoff_s=0.01, max_backoff_s=0.05)


def client(
    url: str, limits: FetchLimits = QUICK, auth: AuthHeader | None = None
) -> tuple[HttpClient, FetchStats]:
    stats = FetchStats()
    return HttpClient(url, limits=limits, stats=stats, auth=auth), stats


def test_429_then_success_is_retried_and_counted() -> None:
    route = sequence(Reply(b"slow down", 429, "text/plain"), Reply(b'{"ok": true}'))
    with replay(route) as server:
        http, stats = client(server.url)
        answer = http.get("/api/services")
    assert answer.body == b'{"ok": true}'
    assert server.paths() == ["/api/services", "/api/services"]
    assert (stats.requests, stats.retries, stats.errors) == (2, 1, 0)


def test_retry_after_is_honoured_up_to_the_backoff_cap() -> None:
    route = sequence(Reply(b"", 503, headers={"Retry-After": "1"}), Reply(b"{}"))
    limits = FetchLimits(timeout_s=2.0, retries=1, backoff_s=0.01, max_backoff_s=0.3)
    with replay(route) as server:
        http, _ = client(server.url, limits)
        began = time.monotonic()
        http.get("/x")
        waited = time.monotonic() - began
    assert 0.3 <= waited < 0.9  # Retry-After said 1 s; max_backoff_s caps it at 0.3 s


def test_server_errors_exhaust_the_retries_with_a_clear_message() -> None:
    with replay(lambda request: Reply(b'{"errors":[{"msg":"storage down"}]}', 503)) as server:
        http, stats = client(server.url)
        with pytest.raises(FetchError) as caught:
            http.get("/api/traces", [("service", "a")])
    assert str(caught.value).startswith("HTTP 503 Service Unavailable")
    assert "storage down" in str(caught.value) and "(4 attempts)" in str(caught.value)
    assert caught.value.status == 503
    assert (stats.requests, stats.retries, stats.errors) == (4, 3, 1)


def test_client_errors_are_not_retried() -> None:
    with replay(lambda request: Reply(b"bad query", 400, "text/plain")) as server:
        http, stats = client(server.url)
        with pytest.raises(FetchError, match="HTTP 400 Bad Request: bad query"):
            http.get("/x")
    assert stats.requests == 1


def test_a_slow_answer_times_out_and_the_retry_succeeds() -> None:
    route = sequence(Reply(b"{}", delay_s=1.0), Reply(b'{"second": 1}'))
    limits = FetchLimits(timeout_s=0.3, retries=1, backoff_s=0.01)
    with replay(route) as server:
        http, stats = client(server.url, limits)
        assert http.get("/x").body == b'{"second": 1}'
    assert stats.retries == 1


def test_an_answer_that_never_comes_fails_after_the_retries() -> None:
    limits = FetchLimits(timeout_s=0.2, retries=1, backoff_s=0.01)
    with replay(lambda request: Reply(b"{}", delay_s=1.0)) as server:
        http, _ = client(server.url, limits)
        with pytest.raises(FetchError, match=r"no answer within 0.2 s \(2 attempts\)"):
            http.get("/x")


def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    http, stats = client(f"http://127.0.0.1:{port}", FetchLimits(retries=2, backoff_s=0.01))
    with pytest.raises(FetchError, match=r"cannot connect: .*\(3 attempts\)"):
        http.get("/x")
    assert stats.requests == 3


def test_gzip_answers_are_unpacked_and_bounded() -> None:
    body = b'{"data": "' + b"x" * 5000 + b'"}'
    with replay(lambda request: Reply(body, compress=True)) as server:
        http, stats = client(server.url)
        assert http.get("/x").body == body
        assert server.received[0].header("Accept-Encoding") == "gzip"
        assert stats.bytes < len(body)  # counted as received, before unpacking
        small, _ = client(server.url, FetchLimits(max_response_bytes=1000, retries=0))
        with pytest.raises(FetchError, match="once unpacked"):
            small.get("/x")


def test_oversized_answers_are_refused() -> None:
    with replay(lambda request: Reply(b"x" * 5000)) as server:
        http, _ = client(server.url, FetchLimits(max_response_bytes=1000, retries=0))
        with pytest.raises(FetchError, match="larger than the 1,000-byte limit"):
            http.get("/x")


def test_accepted_statuses_are_answers_not_errors() -> None:
    with replay(lambda request: Reply(b'{"error": {"message": "No traces found"}}', 404)) as server:
        http, stats = client(server.url)
        answer = http.get("/api/v3/traces", accept_statuses=frozenset({404}))
    assert answer.status == 404 and b"No traces found" in answer.body
    assert stats.errors == 0


def test_the_auth_header_is_sent_but_never_shown() -> None:
    secret = "Bearer s3cr3t-t0ken"
    auth = auth_header_from_env("ORCHSCAN_TEST_AUTH", {"ORCHSCAN_TEST_AUTH": secret})
    assert "s3cr3t" not in repr(auth)

    def echo(request: Received) -> Reply:
        # A misbehaving server that echoes the header into its error text.
        return Reply(f"denied for {request.header('Authorization')}".encode(), 401, "text/plain")

    with replay(echo) as server:
        http, _ = client(server.url, auth=auth)
        with pytest.raises(FetchError) as caught:
            http.get("/x")
    assert server.received[0].header("Authorization") == secret
    assert "s3cr3t" not in str(caught.value) and "<redacted>" in str(caught.value)
    assert caught.value.status == 401


def test_auth_header_lines_name_their_header() -> None:
    header = auth_header_from_env("V", {"V": "X-API-Key: abc:def"})
    assert (header.name, header.value) == ("X-API-Key", "abc:def")
    assert auth_header_from_env("V", {"V": "Basic dXNlcjpwdw=="}).name == "Authorization"
    with pytest.raises(ValueError, match="ORCHSCAN_UNSET is not set"):
        auth_header_from_env("ORCHSCAN_UNSET", {})


def test_a_redirect_to_another_server_does_not_carry_the_auth_header() -> None:
    auth = AuthHeader("Authorization", "Bearer s3cr3t-t0ken")
    with replay(lambda request: Reply(b"{}")) as elsewhere:
        moved = Reply(b"", 302, "text/plain", headers={"Location": elsewhere.url + "/moved"})
        with replay(lambda request: moved) as server:
            http, _ = client(server.url, auth=auth)
            assert http.get("/x").body == b"{}"
        assert server.received[0].header("Authorization") == "Bearer s3cr3t-t0ken"
        assert elsewhere.paths() == ["/moved"]
        assert elsewhere.received[0].header("Authorization") is None
