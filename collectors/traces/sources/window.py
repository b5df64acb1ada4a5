"""The time window a live source is read for: parsed from ``--since``/``--start``/``--end``, halved when full.

Times are integer nanoseconds since the Unix epoch, UTC, like the span table's. Each query API
wants them in its own unit (Jaeger microseconds or RFC 3339, Tempo seconds); the sources convert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

NS_PER_S = 1_000_000_000

#: The window read when a live source is named without ``--since``, ``--start`` or ``--end``:
#: the last hour, as the Jaeger UI's default lookback.
DEFAULT_SINCE = "1h"

_UNITS_NS = {
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "d": 86400 * NS_PER_S,
    "w": 7 * 86400 * NS_PER_S,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


class WindowError(ValueError):
    """A time window that cannot be read or is empty; the message says which option and why."""


@dataclass(frozen=True, order=True, slots=True)
class TimeWindow:
    """A half-open interval ``[start_ns, end_ns)`` of span start times."""

    start_ns: int
    end_ns: int

    @property
    def width_ns(self) -> int:
        """The window's length in nanoseconds."""
        return self.end_ns - self.start_ns

    def halves(self) -> tuple[TimeWindow, TimeWindow]:
        """The earlier and the later half, meeting at the midpoint."""
        middle = self.start_ns + self.width_ns // 2
        return TimeWindow(self.start_ns, middle), TimeWindow(middle, self.end_ns)

    def label(self) -> str:
        """The window as ``start..end`` in RFC 3339 UTC, for skip records and summaries."""
        return f"{rfc3339(self.start_ns)}..{rfc3339(self.end_ns)}"


def rfc3339(ns: int) -> str:
    """An instant as RFC 3339 UTC with nanoseconds, as Jaeger's API v3 parses it (``RFC3339Nano``)."""
    seconds, fraction = divmod(ns, NS_PER_S)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}Z"


def parse_duration(text: str) -> int:
    """A duration such as ``24h``, ``90m``, ``1h30m``, ``7d`` or ``500ms`` in nanoseconds."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise WindowError(f"cannot read duration {text!r}: use e.g. 30m, 24h, 1h30m, 7d")
    total = sum(round(float(number) * _UNITS_NS[unit]) for number, unit in parts)
    if total <= 0:
        raise WindowError(f"duration {text!r} is not positive")
    return total


def parse_instant(text: str) -> int:
    """An RFC 3339 / ISO 8601 time (``2024-05-01T12:00:00Z``, a date, an offset) in nanoseconds.

    A time without an offset is taken as UTC, never as the machine's local time, so that a
    scheduled run means the same window wherever it runs.
    """
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise WindowError(f"cannot read time {text!r}: use RFC 3339, e.g. 2024-05-01T12:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Whole seconds via the integer timestamp, microseconds added exactly (no float rounding).
    return int(parsed.replace(microsecond=0).timestamp()) * NS_PER_S + parsed.microsecond * 1000


def resolve_window(*, since: str | None, start: str | None, end: str | None, now_ns: int) -> TimeWindow:
    """The window the options describe: ``--since`` counts back from ``--end`` (default: now).

    ``--since`` and ``--start`` exclude each other; with neither, the window is the last
    :data:`DEFAULT_SINCE`.
    """
    if since is not None and start is not None:
        raise WindowError("--since and --start exclude each other: give one of them")
    end_ns = parse_instant(end) if end is not None else now_ns
    if start is not None:
        start_ns = parse_instant(start)
    else:
        start_ns = end_ns - parse_duration(since if since is not None else DEFAULT_SINCE)
    if start_ns >= end_ns:
        empty = TimeWindow(start_ns, end_ns).label()
        raise WindowError(f"empty time window {empty}: the start must come first")
    return TimeWindow(start_ns, end_ns)
