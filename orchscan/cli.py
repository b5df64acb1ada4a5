"""The ``orchscan`` command line: thin wiring of collectors, analyzer and reports."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from collectors.ingest import InputError, expand_paths, ingest
from collectors.records import Ingest
from collectors.registry import FORMATS
from orchscan.inspection import describe_ingest, render_inspection

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="orchscan")
def main() -> None:
    """Find hidden orchestrations in distributed traces and OpenAPI specs."""


@contextmanager
def _progress(paths: tuple[str, ...], enabled: bool) -> Iterator[object]:
    """A byte-based progress bar on stderr, only when stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    total = sum(p.stat().st_size for p in expand_paths(paths) if p.exists())
    with click.progressbar(length=total, label="reading traces", file=sys.stderr) as bar:
        yield bar


def read_traces(paths: tuple[str, ...], fmt: str | None, jobs: int | None, progress: bool) -> Ingest:
    """Ingest trace files, turning 'nothing readable' into a clean exit with status 2."""
    with _progress(paths, progress) as bar:
        try:
            return ingest(paths, fmt=fmt, jobs=jobs, on_progress=bar.update if bar else None)  # type: ignore[attr-defined]
        except InputError as error:
            click.echo(f"orchscan: {error}", err=True)
            sys.exit(EXIT_INPUT)


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
    help="Worker processes for parsing (default: all cores).",
)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=str))
@trace_format_option
@jobs_option
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON document.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr (only on a terminal).")
def inspect(paths: tuple[str, ...], fmt: str | None, jobs: int | None, as_json: bool, progress: bool) -> None:
    """Read trace files and report formats, spans, traces, services, time ranges and skipped records."""
    result = read_traces(paths, fmt, jobs, progress)
    description = describe_ingest(result, base=Path(os.getcwd()))
    click.echo(render_inspection(description, as_json=as_json), nl=False)
