"""Time windows: the --since/--start/--end grammar, RFC 3339 round trips, halving."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchscan.collectors.traces.sources.window import (
    NS_PER_S,
    TimeWindow,
    WindowError,
    parse_duration,
    parse_instant,
    resolve_window,
    rfc3339,
)

NOW = 1_714_564_800 * NS_PER_S  # 2024-05-01T12:00:00Z


def test_durations() -> None:
    assert parse_duration("24h") == 24 * 3600 * NS_PER_S
    assert parse_duration("1h30m") == 5400 * NS_PER_S
    assert parse_duration("7d") == 7 * 86400 * NS_PER_S
    assert parse_duration("500ms") == NS_PER_S // 2
    assert parse_duration("1.5h") == 5400 * NS_PER_S
    for bad in ("", "24", "h", "1x", "-1h", "0s", "1h 2q"):
        with pytest.raises(WindowError):
            parse_duration(bad)


def test_instants_are_utc_unless_an_offset_says_otherwise() -> None:
    assert parse_instant("2024-05-01T12:00:00Z") == NOW
    assert parse_instant("2024-05-01T12:00:00") == NOW
    assert parse_instant("2024-05-01T14:00:00+02:00") == NOW
    assert parse_instant("2024-05-01T12:00:00.000250Z") == NOW + 250_000
    assert parse_instant("2024-05-01") == NOW - 12 * 3600 * NS_PER_S
    with pytest.raises(WindowError, match="RFC 3339"):
        parse_instant("yesterday")


def test_window_from_options() -> None:
    assert resolve_window(since=None, start=None, end=None, now_ns=NOW) == TimeWindow(
        NOW - 3600 * NS_PER_S, NOW
    )
    assert resolve_window(since="24h", start=None, end=None, now_ns=NOW).width_ns == 24 * 3600 * NS_PER_S
    end = "2024-04-30T00:00:00Z"
    assert resolve_window(since="1d", start=None, end=end, now_ns=NOW) == TimeWindow(
        parse_instant("2024-04-29T00:00:00Z"), parse_instant(end)
    )
    assert (
        resolve_window(since=None, start="2024-05-01T11:00:00Z", end=None, now_ns=NOW).width_ns
        == 3600 * NS_PER_S
    )
    with pytest.raises(WindowError, match="exclude each other"):
        resolve_window(since="1h", start="2024-05-01T11:00:00Z", end=None, now_ns=NOW)
    with pytest.raises(WindowError, match="empty time window"):
        resolve_window(since=None, start="2024-05-02T00:00:00Z", end=None, now_ns=NOW)


@given(st.integers(min_value=0, max_value=4_000_000_000 * NS_PER_S))
def test_rfc3339_round_trips_to_the_nanosecond(ns: int) -> None:
    text = rfc3339(ns)
    seconds, _, fraction = text.rstrip("Z").partition(".")
    assert parse_instant(seconds + "Z") + int(fraction) == ns


@given(st.integers(min_value=0, max_value=10**18), st.integers(min_value=2, max_value=10**15))
def test_halves_cover_the_window_without_overlap(start: int, width: int) -> None:
    window = TimeWindow(start, start + width)
    earlier, later = window.halves()
    assert earlier.start_ns == window.start_ns and later.end_ns == window.end_ns
    assert earlier.end_ns == later.start_ns and earlier.width_ns > 0 and later.width_ns > 0
