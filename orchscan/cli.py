"""The ``orchscan`` command line: thin wiring of collectors, analyzer and reports.

Every way out has its own exit status (:mod:`orchscan.exits`): input and usage problems are one
line on stderr and status 2, a bug is one line naming the file that holds its traceback and
status 3 (``--debug`` prints the traceback instead), Ctrl-C is 130 and SIGTERM 143.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from orchscan import interrupts
from orchscan.analyzer.results import SEVERITIES
from orchscan.budget import MemoryBudget, parse_size
from orchscan.collectors.memory_pool import use_scan_allocators
from orchscan.collectors.model.records import Ingest
from orchscan.collectors.traces.ingest import InputError, InputReader, expand_paths, ingest
from orchscan.collectors.traces.receiver import TRACES_PATH, Receiver, ReceiverLimits, serve
from orchscan.collectors.traces.registry import FORMATS
from orchscan.collectors.traces.sources import SourceError, TraceSource, parse_source
from orchscan.engines.dask.inputs import is_url
from orchscan.engines.registry import ENGINES, LIVE_ON_DASK
from orchscan.exits import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    UnusableInput,
)
from orchscan.heap import loading_modules
from orchscan.inspection import describe_ingest, render_inspection
from orchscan.live import (
    INPUTS_HELP,
    LiveOptions,
    TraceInput,
    describe_fetch,
    live_options,
    open_inputs,
    pop_live_options,
)
from orchscan.reading import scan_reader
from orchscan.reports.untrusted import printable

# ``inspect`` needs none of the analysis, reports, jinja2 or networkx (tens of megabytes of a
# million-span ingest's peak), so ``orchscan.scanning`` is imported only when a scan runs.
SEVERITY_CHOICES = (*SEVERITIES, "none")


class _Orchscan(click.Group):
    """The command group, mapping every way a command can end to its exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        interrupts.install()
        use_scan_allocators()
        try:
            try:
                return super().invoke(ctx)
            except (UnusableInput, InputError) as error:
                click.echo(f"orchscan: {printable(str(error))}", err=True)
                ctx.exit(EXIT_INPUT)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except Exception as error:
                # A worker's end seen before this process's own handler ran is the interruption.
                status = interrupts.signalled() or _ended_by_signal(error)
                if status is not None:
                    _stop(ctx, status)
                _report_crash(error, debug=bool(ctx.params.get("debug")))
                ctx.exit(EXIT_INTERNAL)
        except KeyboardInterrupt:
            _stop(ctx, EXIT_INTERRUPTED)
        except interrupts.Terminated:
            _stop(ctx, EXIT_TERMINATED)


def _ended_by_signal(error: Exception) -> int | None:
    """130 or 143 when ``error`` says a worker process ended by SIGINT or SIGTERM (its ``signum``)."""
    signum = getattr(error, "signum", None)
    return interrupts.status_of_signal(signum) if isinstance(signum, int) else None


def _stop(ctx: click.Context, status: int) -> None:
    click.echo("orchscan: interrupted" if status == EXIT_INTERRUPTED else "orchscan: terminated", err=True)
    ctx.exit(status)


def _report_crash(error: Exception, *, debug: bool) -> None:
    """One line for a bug, with the traceback on stderr (``--debug``) or in a file it names."""
    text = "".join(traceback.format_exception(error))
    summary = printable(f"{type(error).__name__}: {error}")[:500]
    if debug:
        click.echo(text, err=True, nl=False)
        click.echo(f"orchscan: internal error: {summary}", err=True)
        return
    handle, path = tempfile.mkstemp(prefix="orchscan-crash-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    click.echo(
        f"orchscan: internal error: {summary}\n"
        f"orchscan: this is a bug in orchscan; the traceback is in {path} (or rerun with --debug)",
        err=True,
    )


@click.group(cls=_Orchscan, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--debug",
    is_flag=True,
    envvar="ORCHSCAN_DEBUG",
    help="Print the traceback of an internal error on stderr instead of writing it to a file.",
)
@click.version_option(package_name="orchscan")
def main(debug: bool) -> None:
    """Find hidden orchestrations in distributed traces and OpenAPI specs."""


@contextmanager
def _progress(paths: tuple[str, ...], enabled: bool) -> Iterator[object]:
    """A byte-based progress bar on stderr, only when stderr is a terminal."""
    if not enabled or not paths or not sys.stderr.isatty():
        yield None
        return
    total = sum(p.stat().st_size for p in expand_paths(paths) if p.exists())
    with click.progressbar(length=total, label="reading traces", file=sys.stderr) as bar:
        yield bar


def read_traces(
    inputs: tuple[str, ...], live: LiveOptions, fmt: str | None, jobs: int | None, progress: bool
) -> Ingest:
    """Ingest trace files and live sources; "nothing readable" raises :class:`InputError` (exit status 2)."""
    paths, sources = open_inputs(inputs, live)
    with _progress(paths, progress) as bar:
        on_progress = bar.update if bar else None  # type: ignore[attr-defined]
        result = ingest(paths, sources=sources, fmt=fmt, jobs=jobs, on_progress=on_progress)
    for report in result.sources:
        click.echo(f"orchscan: {printable(describe_fetch(report))}", err=True)
    return result


trace_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(FORMATS)),
    default=None,
    help="Read every input as this format instead of detecting it from the content.",
)
jobs_option = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: all cores): they parse, and in a scan also reduce; with more "
    "than one, a scan also mines event-driven flows beside the orchestrated ones.",
)


@main.command(epilog=INPUTS_HELP)
@click.argument("paths", metavar="INPUTS...", nargs=-1, required=True, type=TraceInput())
@trace_format_option
@jobs_option
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON document.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr (only on a terminal).")
@live_options
def inspect(
    paths: tuple[str, ...], fmt: str | None, jobs: int | None, as_json: bool, progress: bool, **live: object
) -> None:
    """Read traces and report formats, spans, traces, services, time ranges and skipped records."""
    result = read_traces(paths, pop_live_options(live), fmt, jobs, progress)
    description = describe_ingest(result, base=Path(os.getcwd()))
    click.echo(render_inspection(description, as_json=as_json), nl=False)


def _formats(values: tuple[str, ...]) -> tuple[str, ...]:
    chosen: list[str] = []
    for value in values:
        chosen += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(chosen)


def _check_trace_url(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """Refuse a ``--trace-url`` template that would not give safe http(s) links, before any reading."""
    from orchscan.reports.html.trace_links import TraceUrlError, check_trace_url

    try:
        return None if value is None else check_trace_url(value)
    except TraceUrlError as error:
        raise click.BadParameter(str(error)) from None


def _size(_: click.Context, __: click.Parameter, value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


_SCAN_INPUTS_HELP = (
    INPUTS_HELP
    + " With --engine dask, INPUTS are files, folders and storage URLs (s3://, gs://, file:// ...) that"
    " every worker reads; live sources are read by --engine local."
)


class _ScanInput(TraceInput):
    """What ``scan`` and ``conform`` read: a trace file or folder, a live source, or a storage URL
    (s3://, gs://, file:// ...) that the workers of --engine dask read."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if is_url(text) and not _is_live(text):
            return text
        return super().convert(value, param, ctx)


def _is_live(text: str) -> bool:
    """True for a live source URL, and for one that is meant as one but does not parse."""
    try:
        return parse_source(text) is not None
    except SourceError:
        return True


def _scan_options(function: Callable[..., None]) -> Callable[..., None]:
    """Options shared by ``scan`` and ``conform``."""
    options = [
        click.argument("paths", metavar="[INPUTS...]", nargs=-1, type=_ScanInput()),
        click.option(
            "--openapi",
            "openapi",
            multiple=True,
            type=click.Path(exists=True, path_type=str),
            help="OpenAPI/Swagger spec file or folder (repeatable).",
        ),
        click.option(
            "--service-map",
            type=click.Path(exists=True, dir_okay=False, path_type=str),
            help="YAML file mapping service names to spec files.",
        ),
        click.option(
            "--allow-remote-refs", is_flag=True, help="Fetch remote $refs in specs (off by default)."
        ),
        click.option(
            "--owners",
            type=click.Path(exists=True, dir_okay=False, path_type=str),
            help="YAML file of team: [services] (names or globs): who owns which service. Without "
            "it, teams come from service.namespace or the Kubernetes namespace.",
        ),
        click.option("--allow-outside-refs", is_flag=True, help="Follow $refs that leave a spec's folder."),
        click.option(
            "--out",
            "out_dir",
            default="orchscan-report",
            show_default=True,
            type=click.Path(path_type=str),
            help="Folder for the reports, replaced as a whole; '-' writes the one --format chosen "
            "to standard output.",
        ),
        click.option(
            "--format",
            "formats",
            multiple=True,
            help="Reports to write: arazzo, json, html, markdown, sarif, junit (repeatable or "
            "comma-separated; default: arazzo, json, html, markdown).",
        ),
        click.option(
            "--fail-on",
            type=click.Choice(SEVERITY_CHOICES),
            default="none",
            show_default=True,
            help="Exit with status 1 when an active finding of this severity or worse exists "
            "(conform: a workflow-drift finding).",
        ),
        click.option(
            "--suppressions",
            type=click.Path(exists=True, dir_okay=False, path_type=str),
            help="YAML or JSON file of accepted findings (fingerprint, or rule and service, with a "
            "reason and an optional expiry date).",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=str),
            help="TOML or YAML file of thresholds ([roles], [flows]).",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="GROUP.NAME=VALUE",
            help="Override one threshold, e.g. --set roles.hub_z=2.5 (repeatable).",
        ),
        click.option(
            "--timestamp/--no-timestamp",
            default=False,
            help="Stamp reports with the current time (default: only SOURCE_DATE_EPOCH, so "
            "output is reproducible).",
        ),
        click.option(
            "--trace-format",
            "fmt",
            type=click.Choice(sorted(FORMATS)),
            default=None,
            help="Read every trace input as this format instead of detecting it.",
        ),
        click.option(
            "--history",
            type=click.Path(dir_okay=False, path_type=str),
            help="Record the scan in this SQLite history file (created when missing); the reports "
            "then say what changed since the previous scan and show trends.",
        ),
        click.option(
            "--trace-url",
            metavar="TEMPLATE",
            default=None,
            callback=_check_trace_url,
            help="Link example trace ids in the HTML report into your trace UI, e.g. "
            "https://jaeger.example/trace/{trace_id}.",
        ),
        jobs_option,
        click.option(
            "--memory-limit",
            default="1G",
            show_default=True,
            callback=_size,
            metavar="SIZE",
            help="Memory budget of the whole scan (e.g. 512M, 4G): partitions spill to the work "
            "folder and are reduced in units that fit it.",
        ),
        click.option(
            "--keep-records",
            type=click.Path(file_okay=False, path_type=str),
            default=None,
            help="Also write the request records every partition was reduced to into this new "
            "folder (Parquet; see docs/records.md), for later scans with --records.",
        ),
        click.option(
            "--records",
            type=click.Path(exists=True, file_okay=False, path_type=str),
            default=None,
            help="Build the landscape and reports from records kept by an earlier scan "
            "(--keep-records) instead of reading trace files.",
        ),
        click.option(
            "--work-dir",
            type=click.Path(file_okay=False, path_type=str),
            default=None,
            help="Folder for spilled partitions (a fresh subfolder, removed afterwards; default: "
            "the system's temporary folder).",
        ),
        click.option(
            "--engine",
            type=click.Choice(tuple(ENGINES)),
            default="local",
            show_default=True,
            help="Where the inputs are read and partitions reduced: "
            + "; ".join(f"{name}, {info.description}" for name, info in ENGINES.items())
            + ".",
        ),
        click.option(
            "--dask-scheduler",
            metavar="ADDRESS",
            envvar="DASK_SCHEDULER_ADDRESS",
            default=None,
            help="The Dask scheduler of --engine dask, e.g. tcp://scheduler:8786 (default: "
            "$DASK_SCHEDULER_ADDRESS, else a local cluster of --jobs workers).",
        ),
        click.option(
            "--progress/--no-progress", default=True, help="Progress bars on stderr (terminal only)."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return live_options(function)


@main.command(epilog=_SCAN_INPUTS_HELP)
@_scan_options
@click.option(
    "--arazzo",
    "arazzo_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Existing Arazzo documents to check against observed traffic (repeatable).",
)
def scan(**options: object) -> None:
    """Analyse traces (and specs): roles, flows, findings, Arazzo drafts and reports in --out."""
    sys.exit(_run(options, drift_only=False))


@main.command(epilog=_SCAN_INPUTS_HELP)
@_scan_options
@click.option(
    "--arazzo",
    "arazzo_files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Arazzo documents whose workflows are checked against observed traffic (repeatable).",
)
def conform(**options: object) -> None:
    """Check documented Arazzo workflows against observed traffic (rule workflow-drift)."""
    sys.exit(_run(options, drift_only=True))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help='Print {"scans": [...]} for machines.')
def history(path: str, as_json: bool) -> None:
    """List the scans recorded in a history file (scan --history PATH)."""
    from orchscan.changes import list_scans

    sys.exit(list_scans(path, as_json=as_json))


@main.command()
@click.argument("old", required=False)
@click.argument("new", required=False)
@click.option(
    "--history",
    "history_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="OLD and NEW are scans in this history: ids, latest or previous (default: previous latest).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for machines.")
@click.option(
    "--fail-on-new",
    type=click.Choice(SEVERITY_CHOICES),
    default="none",
    show_default=True,
    help="Exit with status 1 when a new finding of this severity or worse appeared.",
)
def diff(old: str | None, new: str | None, history_path: str | None, as_json: bool, fail_on_new: str) -> None:
    """Compare two scans: two findings.json files, or two scans of a history (--history)."""
    from orchscan.changes import compare

    sys.exit(compare(old, new, history=history_path, as_json=as_json, fail_on_new=fail_on_new))


def _run(options: dict[str, Any], *, drift_only: bool) -> int:
    inputs: tuple[str, ...] = options.pop("paths")
    if bool(inputs) == bool(options["records"]):
        raise click.UsageError("give trace files or live sources to read, or --records DIR, not both")
    source = click.get_current_context().get_parameter_source("dask_scheduler")
    if options["engine"] != "dask" and source is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--dask-scheduler needs --engine dask")
    if options["engine"] == "dask":
        live = [text for text in inputs if _is_live(text)]
        if live:
            raise click.UsageError(LIVE_ON_DASK.format(source=live[0]))
    progress = bool(options.pop("progress")) and sys.stderr.isatty()
    paths, sources = open_inputs(inputs, pop_live_options(options))
    options["formats"] = _formats(options["formats"])
    with _scan_progress(paths, progress) as bars, _head_start(paths, sources, options, bars) as reader:
        with loading_modules():
            from orchscan.scanning import ScanOptions, run_scan

        scan_options = ScanOptions(**options, drift_only=drift_only)
        return run_scan(paths, scan_options, bars, sources=sources, reader=reader)


@contextmanager
def _head_start(
    paths: tuple[str, ...],
    sources: tuple[TraceSource, ...],
    options: dict[str, Any],
    bars: _ProgressBars | None,
) -> Iterator[InputReader | None]:
    """The scan's reader, its workers started on the first chunks before the analysis loads
    (see :mod:`orchscan.reading`); None where the scan reads no files here (records, a
    cluster, storage URLs) or would refuse them: the scan then reports why as usual."""
    if options["records"] or options["engine"] != "local" or any(is_url(path) for path in paths):
        yield None
        return
    budget = MemoryBudget(options["memory_limit"], options["jobs"] or os.cpu_count() or 1)
    try:
        reader = scan_reader(
            paths,
            sources=sources,
            fmt=options["fmt"],
            jobs=budget.jobs,
            on_progress=bars.read if bars else None,
        )
    except InputError:
        yield None
        return
    with reader:
        reader.start(budget.head_start_bytes)
        yield reader


class _ProgressBars:
    """A scan's progress on stderr: bytes read, then units of partitions reduced."""

    def __init__(self, total_bytes: int) -> None:
        self._reading = click.progressbar(length=total_bytes, label="reading traces", file=sys.stderr)
        self._reducing: object = None
        self._reading.__enter__()

    def read(self, size: int) -> None:
        self._reading.update(size)

    def reduce_start(self, units: int) -> None:
        self._reading.__exit__(None, None, None)
        self._reducing = click.progressbar(length=units, label="reducing partitions", file=sys.stderr)
        self._reducing.__enter__()

    def reduced(self, units: int) -> None:
        self._reducing.update(units)  # type: ignore[attr-defined]

    def close(self) -> None:
        bar = self._reducing or self._reading
        bar.__exit__(None, None, None)  # type: ignore[attr-defined]


@contextmanager
def _scan_progress(paths: tuple[str, ...], enabled: bool) -> Iterator[_ProgressBars | None]:
    if not enabled:
        yield None
        return
    bars = _ProgressBars(sum(p.stat().st_size for p in expand_paths(paths) if p.exists()))
    try:
        yield bars
    finally:
        bars.close()


_RECEIVER = ReceiverLimits()


def _listen_address(text: str) -> tuple[str, int]:
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--listen")
    return host.strip("[]") or "0.0.0.0", int(port)


@main.command()
@click.option(
    "--listen",
    default="127.0.0.1:4318",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to listen on; port 0 picks a free port. Other machines reach it only on a public address.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the received traces: Collector-framed protobuf files (traces-*.pb) for `orchscan scan`.",
)
@click.option(
    "--max-request-bytes",
    type=click.IntRange(min=1),
    default=_RECEIVER.max_request_bytes,
    show_default=True,
    help="Largest request body, as sent and once unpacked; larger ones are answered 413.",
)
@click.option(
    "--max-file-bytes",
    type=click.IntRange(min=1),
    default=_RECEIVER.max_file_bytes,
    show_default=True,
    help="Start a new file once the current one is this large.",
)
@click.option(
    "--max-file-age",
    "max_file_age_s",
    type=click.FloatRange(min=0, min_open=True),
    default=_RECEIVER.max_file_age_s,
    show_default=True,
    metavar="SECONDS",
    help="Complete the current file once it is this old, so that a scan sees recent traces.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=_RECEIVER.max_in_flight,
    show_default=True,
    help="Requests processed at once; more are answered 503 with Retry-After.",
)
def receive(
    listen: str,
    out_dir: Path,
    max_request_bytes: int,
    max_file_bytes: int,
    max_file_age_s: float,
    max_in_flight: int,
) -> None:
    """Receive traces over OTLP/HTTP and write them to --out for a later `orchscan scan`.

    Serves POST /v1/traces with protobuf or JSON bodies, gzip or not, answering as the OTLP
    specification requires (partial success for rejected spans, 400, 413, 415, 503 with
    Retry-After). Stops on SIGTERM or SIGINT (Ctrl-C) after completing the current file.
    """
    limits = ReceiverLimits(
        max_request_bytes=max_request_bytes,
        max_file_bytes=max_file_bytes,
        max_file_age_s=max_file_age_s,
        max_in_flight=max_in_flight,
    )

    def announce(receiver: Receiver) -> None:
        host, port = receiver.address
        shown = f"[{host}]" if ":" in host else host
        for path in receiver.recovered:
            click.echo(f"orchscan receive: completed {path.as_posix()}, left unfinished by an earlier run")
        click.echo(f"orchscan receive: listening on http://{shown}:{port}{TRACES_PATH}, writing to {out_dir}")
        sys.stdout.flush()

    def log(message: str) -> None:
        click.echo(f"orchscan receive: {message}", err=True)

    try:
        receiver = serve(_listen_address(listen), out_dir, limits, announce=announce, log=log)
    except OSError as error:
        click.echo(f"orchscan receive: cannot listen on {listen} or write {out_dir}: {error}", err=True)
        sys.exit(EXIT_INPUT)
    stats = receiver.stats
    refused = ", ".join(f"{count} x HTTP {status}" for status, count in sorted(stats.refused.items()))
    click.echo(
        f"orchscan receive: {stats.requests:,} request(s), {stats.spans:,} span(s) written, "
        f"{stats.rejected_spans:,} rejected" + (f"; refused: {refused}" if refused else "")
    )
    for path in receiver.writer.completed:
        click.echo(f"wrote {path.as_posix()}")
