"""The command line's live sources: the INPUTS type, the window and fetch options, opening the sources."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from orchscan.collectors.model.records import SourceReport
from orchscan.collectors.traces.sources import (
    SOURCE_KINDS,
    SourceError,
    TraceSource,
    open_source,
    parse_source,
)
from orchscan.collectors.traces.sources.http import FetchLimits, auth_header_from_env
from orchscan.collectors.traces.sources.window import DEFAULT_SINCE, WindowError, resolve_window

_DEFAULTS = FetchLimits()

INPUTS_HELP = (
    "INPUTS are trace files, folders (walked for trace files) and live sources, named "
    + " or ".join(kind.example for kind in SOURCE_KINDS.values())
    + ", read for the window given by --since or --start/--end (default: the last "
    + DEFAULT_SINCE
    + "). Source options go in the URL's query: "
    + "; ".join(f"{kind.name}: {kind.options}" for kind in SOURCE_KINDS.values())
    + ". Example: orchscan scan 'jaeger+http://jaeger:16686?service=checkout' --since 24h"
)

# Options that only mean something with a live source; given without one, they are a mistake.
_LIVE_ONLY = (
    "since",
    "start",
    "end",
    "auth_header_env",
    "max_traces",
    "page_size",
    "fetch_timeout",
    "fetch_retries",
)


class TraceInput(click.ParamType[str, Any]):
    """A trace file or folder that exists, or a live source URL that parses."""

    name = "input"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """Check the input now, so that a typo fails before anything is read or fetched."""
        text = str(value)
        try:
            spec = parse_source(text)
        except SourceError as error:
            self.fail(str(error), param, ctx)
        if spec is None and not Path(text).exists():
            self.fail(f"{text!r} is neither an existing file or folder nor a live source URL", param, ctx)
        return text


@dataclass(frozen=True)
class LiveOptions:
    """The live-source options as parsed by click."""

    since: str | None
    start: str | None
    end: str | None
    auth_header_env: str | None
    max_traces: int
    page_size: int
    fetch_timeout: float
    fetch_retries: int


def live_options(function: Callable[..., None]) -> Callable[..., None]:
    """The options that choose a live source's time window and bound what it fetches."""
    options = [
        click.option(
            "--since",
            metavar="DURATION",
            help="Live sources: read the traces of the last DURATION, e.g. 30m, 24h, 7d "
            f"(default {DEFAULT_SINCE}).",
        ),
        click.option(
            "--start", metavar="TIME", help="Live sources: window start, RFC 3339, e.g. 2024-05-01T00:00:00Z."
        ),
        click.option("--end", metavar="TIME", help="Live sources: window end, RFC 3339 (default: now)."),
        click.option(
            "--auth-header-env",
            metavar="NAME",
            help="Live sources: send the header held in environment variable NAME, either an "
            "Authorization value ('Bearer ...', 'Basic ...') or a whole 'Header-Name: value' line. "
            "Never printed or written to a report.",
        ),
        click.option(
            "--max-traces",
            type=click.IntRange(min=1),
            default=_DEFAULTS.max_traces,
            show_default=True,
            help="Live sources: read at most this many traces per source; the rest is reported as skipped.",
        ),
        click.option(
            "--page-size",
            type=click.IntRange(min=1),
            default=_DEFAULTS.page_size,
            show_default=True,
            help="Live sources: traces asked for per search request; a full answer halves the window.",
        ),
        click.option(
            "--fetch-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=_DEFAULTS.timeout_s,
            show_default=True,
            metavar="SECONDS",
            help="Live sources: time allowed for one request, response included.",
        ),
        click.option(
            "--fetch-retries",
            type=click.IntRange(min=0),
            default=_DEFAULTS.retries,
            show_default=True,
            help="Live sources: further attempts after HTTP 429/5xx, a failed connection or a timeout, "
            "with exponential backoff.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def pop_live_options(options: dict[str, Any]) -> LiveOptions:
    """Take the live-source options out of a command's keyword arguments."""
    return LiveOptions(**{name: options.pop(name) for name in LiveOptions.__dataclass_fields__})


def open_inputs(
    inputs: tuple[str, ...], live: LiveOptions
) -> tuple[tuple[str, ...], tuple[TraceSource, ...]]:
    """Split INPUTS into paths and opened live sources; a usage error when the options do not fit."""
    specs = [spec for spec in map(parse_source, inputs) if spec is not None]
    paths = tuple(text for text in inputs if parse_source(text) is None)
    if not specs:
        _refuse_live_only_options()
        return paths, ()
    try:
        window = resolve_window(since=live.since, start=live.start, end=live.end, now_ns=time.time_ns())
        limits = FetchLimits(
            timeout_s=live.fetch_timeout,
            retries=live.fetch_retries,
            max_traces=live.max_traces,
            page_size=live.page_size,
        )
        auth = auth_header_from_env(live.auth_header_env) if live.auth_header_env else None
        return paths, tuple(open_source(spec, window, limits, auth) for spec in specs)
    except (WindowError, SourceError, ValueError) as error:
        raise click.UsageError(str(error)) from None


def _refuse_live_only_options() -> None:
    context = click.get_current_context()
    given = [
        "--" + name.replace("_", "-")
        for name in _LIVE_ONLY
        if context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(f"{', '.join(given)} only apply to live sources, and no live source was named")


def describe_fetch(report: SourceReport) -> str:
    """One line saying what was fetched from a live source."""
    return (
        f"fetched {report.source}: {report.traces:,} traces in {report.pages:,} page(s), "
        f"{report.requests:,} requests ({report.retries:,} retries, {report.errors:,} failed), "
        f"{report.bytes:,} bytes"
    )
