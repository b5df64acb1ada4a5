"""What every live source shares: the source URL, the payloads it hands to the readers, the search walk.

A live source reads a tracing backend's query API for a time window and yields the response
bodies, in a format of :data:`orchscan.collectors.traces.registry.FORMATS`, to the same readers
that files go through; it never parses spans itself. Envelopes that only the API has (search
pages, error objects, the duplicates of a trace that several searches found) are the source's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from orchscan.collectors.model.records import Skipped, SourceReport
from orchscan.collectors.traces.sources.window import NS_PER_S, TimeWindow

#: Bytes a trace takes once read (about 40 spans of about 500 bytes), to size a scan's partitions
#: before a live source is read; overestimating only makes partitions smaller.
ESTIMATED_BYTES_PER_TRACE = 20_000


class SourceError(ValueError):
    """A source URL that cannot be used; the message names it and says what is wrong."""


@dataclass(frozen=True)
class SourceSpec:
    """A live source as named on the command line: ``KIND+http(s)://host:port[/prefix][?options]``.

    ``label`` is the text as given (it names the source in every report); ``base_url`` the
    plain HTTP(S) URL the API paths are appended to; ``options`` the query parameters, each
    with all its values in order.
    """

    kind: str
    label: str
    base_url: str
    options: Mapping[str, tuple[str, ...]]

    def option(self, name: str, default: str, choices: tuple[str, ...] = ()) -> str:
        """The single value of option ``name``, or ``default``; checked against ``choices``."""
        values = self.options.get(name, ())
        if len(values) > 1:
            raise SourceError(f"{self.label}: option {name} given {len(values)} times")
        value = values[0] if values else default
        if choices and value not in choices:
            raise SourceError(f"{self.label}: {name}={value} is not one of {', '.join(choices)}")
        return value


def split_source_url(text: str, kinds: tuple[str, ...]) -> SourceSpec | None:
    """The source named by ``text``, or None when ``text`` is not a source URL (a path, say).

    Credentials in the URL are refused: they would end up in every report that names the
    source. They belong in an environment variable (``--auth-header-env``).
    """
    scheme, separator, _ = text.partition("://")
    kind, plus, transport = scheme.partition("+")
    if not separator or not plus:
        return None
    if kind not in kinds:
        raise SourceError(f"{text}: unknown source kind {kind!r}; known: {', '.join(kinds)}")
    if transport not in ("http", "https"):
        raise SourceError(f"{text}: use {kind}+http:// or {kind}+https://")
    parts = urlsplit(text[len(kind) + 1 :])
    if parts.username is not None or parts.password is not None:
        raise SourceError(
            f"{kind}+{transport}://{parts.hostname}...: credentials do not belong in the URL; "
            "put the header in an environment variable and name it with --auth-header-env"
        )
    if not parts.hostname:
        raise SourceError(f"{text}: no host")
    if parts.fragment:
        raise SourceError(f"{text}: a source URL has no #fragment")
    options: dict[str, tuple[str, ...]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        options[key] = (*options.get(key, ()), value)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return SourceSpec(kind, text, base, options)


def check_options(spec: SourceSpec, known: tuple[str, ...]) -> None:
    """Refuse options a source kind does not know, so that a typo is not silently ignored."""
    unknown = sorted(set(spec.options) - set(known))
    if unknown:
        raise SourceError(
            f"{spec.label}: unknown option(s) {', '.join(unknown)}; {spec.kind} knows {', '.join(known)}"
        )


@dataclass(frozen=True, slots=True)
class Payload:
    """One response body for the readers: the request it answered (for skip positions) and its format."""

    where: str
    data: bytes
    format: str


class TraceSource(Protocol):
    """A live source: its name, the reader format of its payloads, the payloads, the account."""

    @property
    def name(self) -> str:
        """The source as the user named it; the ``source`` of its spans and skip records."""
        ...

    @property
    def format(self) -> str:
        """The reader format (a key of FORMATS) the source asks for; each payload names its own."""
        ...

    def payloads(self) -> Iterator[Payload | Skipped]:
        """Fetch the window, yielding bodies for the readers and what could not be fetched."""
        ...

    def report(self) -> SourceReport:
        """What was fetched; complete once :meth:`payloads` is exhausted."""
        ...

    def estimated_bytes(self) -> int:
        """At most how many bytes of spans the source delivers, before fetching anything."""
        ...


class TraceLedger:
    """The distinct traces a source has handed on, up to its ``max_traces``.

    Searches overlap: the same trace is found by every service it touches and by both halves
    of a split window when its spans straddle the middle. Only its first copy goes on.
    """

    def __init__(self, max_traces: int) -> None:
        self._max = max_traces
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._seen)

    @property
    def full(self) -> bool:
        """True once ``max_traces`` traces were admitted."""
        return len(self._seen) >= self._max

    def seen(self, trace_id: str) -> bool:
        """True when the trace was admitted before."""
        return trace_id in self._seen

    def admit(self, trace_id: str) -> bool:
        """Admit a trace not seen before while there is room; False when it is a repeat or no room is left."""
        if trace_id in self._seen or self.full:
            return False
        self._seen.add(trace_id)
        return True


class SearchWalk:
    """The sub-windows a search visits, earliest first; a window whose answer was full is halved.

    Query APIs answer at most ``page_size`` traces and offer no cursor, so the only way to more
    is a narrower window. Halving stops at ``min_width_ns``; a window that narrow and still full
    is read as it is and reported.
    """

    def __init__(self, window: TimeWindow, *, page_size: int, min_window_s: float) -> None:
        self._window = window
        self._page_size = page_size
        self._min_width_ns = max(1, round(min_window_s * NS_PER_S))
        self._stack = [window]
        self._current = window

    def __iter__(self) -> Iterator[TimeWindow]:
        while self._stack:
            self._current = self._stack.pop()
            yield self._current

    def split_if_full(self, window: TimeWindow, count: int) -> bool:
        """True (and the halves queued) when ``count`` results fill the page and ``window`` may be halved."""
        if count < self._page_size or window.width_ns < 2 * self._min_width_ns:
            return False
        earlier, later = window.halves()
        self._stack += [later, earlier]
        return True

    def is_full(self, count: int) -> bool:
        """True when ``count`` results fill a page: more may exist than were answered."""
        return count >= self._page_size

    def rest(self) -> TimeWindow:
        """The part of the window not visited yet, from the current sub-window on."""
        return TimeWindow(self._current.start_ns, self._window.end_ns)

    def abandon(self) -> None:
        """Visit nothing more."""
        self._stack.clear()


def budget_skip(source: str, scope: str, window: TimeWindow, max_traces: int) -> Skipped:
    """The record for what ``max_traces`` left unread."""
    return Skipped(
        source,
        f"{scope} {window.label()}",
        f"not fetched: the --max-traces limit of {max_traces:,} traces was reached",
    )
