"""``orchscan scan`` / ``conform``: check the options and the output folder, read, analyse, report, gate.

Everything the user can get wrong (formats, thresholds, the suppression file, the history file,
the output folder) is checked before the traces are read, so a mistake costs seconds, not a
whole analysis.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

from orchscan.analyzer.changes.snapshot import take_snapshot
from orchscan.analyzer.findings.conformance import RULE as DRIFT_RULE
from orchscan.analyzer.findings.gate import Gate, gate_for
from orchscan.analyzer.findings.suppressions import apply_suppressions
from orchscan.analyzer.pipeline import ScanResult
from orchscan.analyzer.results import SEVERITIES, Finding, Suppression
from orchscan.analyzer.thresholds import CallThresholds, FlowThresholds, RoleThresholds, Thresholds
from orchscan.budget import DEFAULT_MEMORY_LIMIT, MemoryBudget
from orchscan.collectors.arazzo import ArazzoError, DocumentedWorkflow, read_arazzo
from orchscan.collectors.openapi.binding import load_mapping
from orchscan.collectors.openapi.loader import load_specs
from orchscan.collectors.openapi.model import SpecSet
from orchscan.collectors.owners import OwnersError, OwnersFile, load_owners
from orchscan.collectors.traces.ingest import InputReader
from orchscan.collectors.traces.sources import TraceSource
from orchscan.config import ConfigError, build_thresholds, load_config_file, merge, parse_overrides
from orchscan.engines.registry import EngineError
from orchscan.exits import EXIT_FINDINGS, EXIT_OK, UnusableInput
from orchscan.records import RecordsError
from orchscan.reports.history.describe import describe_changes
from orchscan.reports.history.store import HistoryError, check_history
from orchscan.reports.history.tracking import ScanHistory, record_scan
from orchscan.reports.html.figures import describe_fetch
from orchscan.reports.output import OutputError, OutputSet, prepare_output, write_artifact
from orchscan.reports.registry import DEFAULT_REPORTS, OUTPUTS, REPORTS, STREAMABLE, report_context
from orchscan.reports.untrusted import printable
from orchscan.runner import ScanProgress, scan_records, scan_traces
from orchscan.suppressions import load_suppressions, today

#: ``--out -``: the one chosen report goes to standard output.
STDOUT = "-"


@dataclass(frozen=True)
class ScanOptions:
    """The scan command's options, as parsed by click.

    ``drift_only`` is ``conform``'s: its gate counts ``workflow-drift`` findings only.
    """

    openapi: tuple[str, ...]
    service_map: str | None
    allow_remote_refs: bool
    allow_outside_refs: bool
    out_dir: str
    formats: tuple[str, ...]
    fail_on: str
    config_file: str | None
    overrides: tuple[str, ...]
    timestamp: bool
    fmt: str | None
    jobs: int | None
    suppressions: str | None = None
    arazzo_files: tuple[str, ...] = ()
    history: str | None = None
    trace_url: str | None = None
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    work_dir: str | None = None
    keep_records: str | None = None
    records: str | None = None
    drift_only: bool = False
    engine: str = "local"
    dask_scheduler: str | None = None
    owners: str | None = None


def run_scan(
    paths: tuple[str, ...],
    options: ScanOptions,
    progress: ScanProgress | None = None,
    *,
    sources: Sequence[TraceSource] = (),
    reader: InputReader | None = None,
) -> int:
    """Check what the user gave, analyse the traces at ``paths`` and from the live ``sources``,
    write the reports; the exit status. ``reader`` reads those inputs when the caller opened it
    already (see :mod:`orchscan.reading`)."""
    formats = _formats(options)
    thresholds = _thresholds(options)
    entries = load_suppressions(Path(options.suppressions)) if options.suppressions else ()
    gate = gate_for(options.fail_on, {DRIFT_RULE} if options.drift_only else None)
    if options.history:
        _check_history(options.history)
    if options.keep_records:
        _check_records_folder(Path(options.keep_records))
    owners = _owners(options.owners) if options.owners else None
    workflows = _workflows(options.arazzo_files)
    to_stdout = options.out_dir == STDOUT
    with _output(options.out_dir, formats) as output:
        specs, mapping = _specs(options)
        result = _analyse(
            paths, sources, options, specs, mapping, thresholds, workflows, entries, progress, owners, reader
        )
        for fetched in result.analysis.input.sources:
            account = f"{describe_fetch(fetched)}, {fetched.bytes:,} bytes"
            click.echo(f"orchscan: fetched {printable(fetched.source)}: {account}", err=True)
        history = _record(result, options.history) if options.history else None
        context = report_context(
            result,
            specs,
            generated_at=_generated_at(options),
            history=history,
            trace_url=options.trace_url,
            gate=gate,
            tool_version=_version(),
        )
        written: list[str] = []
        for name in formats:
            for relative, text in REPORTS[name](context).items():
                if relative in written:  # a catalog brings the drafts it refers to
                    continue
                # Each report is written as soon as it is rendered: into the staging folder, so a
                # reader of --out still sees the old set until commit() swaps the new one in.
                if output is None:
                    write_artifact(STDOUT, text)
                else:
                    output.write(relative, text)
                written.append(relative)
        if output is not None:
            output.commit()
    _print_summary(result, None if output is None else Path(options.out_dir), written, err=to_stdout)
    if history:
        _print_history(history, options.history or "", err=to_stdout)
    tripped = gate.tripped_by(result.analysis.findings)
    _print_gate(gate, tripped)
    return EXIT_FINDINGS if tripped else EXIT_OK


def _analyse(
    paths: tuple[str, ...],
    sources: Sequence[TraceSource],
    options: ScanOptions,
    specs: SpecSet | None,
    mapping: dict[str, str] | None,
    thresholds: Thresholds,
    workflows: list[DocumentedWorkflow],
    entries: tuple[Suppression, ...],
    progress: ScanProgress | None,
    owners: OwnersFile | None = None,
    reader: InputReader | None = None,
) -> ScanResult:
    """The one place the analysis runs: read the traces (or ``--records``), reduce, finish (drift
    included), then suppressions."""
    budget = MemoryBudget(options.memory_limit, options.jobs or os.cpu_count() or 1)
    if options.records is not None:
        try:
            result = scan_records(
                Path(options.records),
                specs=specs,
                service_map=mapping,
                workflows=workflows,
                thresholds=thresholds,
                on_progress=progress.reduced if progress else None,
                owners_file=owners,
                mined_requests=budget.mined_requests,
                jobs=budget.jobs,
            )
        except RecordsError as error:
            raise UnusableInput(printable(str(error))) from None
    else:
        try:
            result = scan_traces(
                paths,
                sources=sources,
                fmt=options.fmt,
                budget=budget,
                work_dir=options.work_dir,
                specs=specs,
                service_map=mapping,
                workflows=workflows,
                thresholds=thresholds,
                keep_records=Path(options.keep_records) if options.keep_records else None,
                progress=progress,
                engine=options.engine,
                scheduler=options.dask_scheduler,
                owners_file=owners,
                reader=reader,
            )
        except EngineError as error:
            raise UnusableInput(printable(str(error))) from None
    day = today(os.environ.get("SOURCE_DATE_EPOCH"))
    return dataclasses.replace(result, analysis=apply_suppressions(result.analysis, entries, today=day))


@contextmanager
def _output(out_dir: str, formats: tuple[str, ...]) -> Iterator[OutputSet | None]:
    """The output set, prepared before any analysis; None when the report goes to stdout."""
    if out_dir == STDOUT:
        if len(formats) != 1 or formats[0] not in STREAMABLE:
            raise click.BadParameter(
                "--out - writes one report to standard output: choose one of "
                + ", ".join(STREAMABLE)
                + " with --format",
                param_hint="--out",
            )
        yield None
        return
    try:
        with prepare_output(out_dir, frozenset().union(*OUTPUTS.values())) as output:
            yield output
    except OutputError as error:
        raise UnusableInput(printable(str(error))) from None


def _check_records_folder(folder: Path) -> None:
    """Records go into a new or empty folder: never mixed with another scan's."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UnusableInput(
            printable(f"{folder}: not empty; --keep-records writes into a new or empty folder")
        )


def _check_history(path: str) -> None:
    """An unusable history file stops the scan before the analysis."""
    try:
        check_history(path)
    except HistoryError as error:
        raise UnusableInput(printable(str(error))) from None


def _owners(path: str) -> OwnersFile:
    """An unusable owners file stops the scan before the analysis."""
    try:
        return load_owners(path)
    except OwnersError as error:
        raise UnusableInput(printable(str(error))) from None


def _record(result: ScanResult, path: str) -> ScanHistory:
    """Record the scan first, so that its reports can compare it with the scan before it."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    recorded_at = datetime.fromtimestamp(int(epoch), tz=UTC) if epoch.isdigit() else datetime.now(tz=UTC)
    try:
        return record_scan(
            path, take_snapshot(result.analysis), recorded_at=recorded_at, orchscan_version=_version()
        )
    except HistoryError as error:
        raise UnusableInput(printable(str(error))) from None


def _thresholds(options: ScanOptions) -> Thresholds:
    file_values = load_config_file(Path(options.config_file)) if options.config_file else {}
    values = merge(file_values, parse_overrides(options.overrides))
    unknown = sorted(set(values) - {"calls", "roles", "flows"})
    if unknown:
        raise ConfigError(f"unknown threshold group(s): {', '.join(unknown)}; known: calls, flows, roles")
    return Thresholds(
        calls=build_thresholds(CallThresholds, "calls", values.get("calls", {})),
        roles=build_thresholds(RoleThresholds, "roles", values.get("roles", {})),
        flows=build_thresholds(FlowThresholds, "flows", values.get("flows", {})),
    )


def _formats(options: ScanOptions) -> tuple[str, ...]:
    chosen = options.formats or DEFAULT_REPORTS
    unknown = sorted(set(chosen) - set(REPORTS))
    if unknown:
        raise click.BadParameter(
            f"unknown report format(s) {', '.join(unknown)}; choose from {', '.join(REPORTS)}",
            param_hint="--format",
        )
    return tuple(name for name in REPORTS if name in chosen)


def _specs(options: ScanOptions) -> tuple[SpecSet | None, dict[str, str] | None]:
    if not options.openapi:
        return None, None
    specs = load_specs(
        options.openapi, allow_remote=options.allow_remote_refs, allow_outside=options.allow_outside_refs
    )
    mapping = None
    if options.service_map:
        mapping, problems = load_mapping(options.service_map)
        specs = SpecSet(specs.specs, specs.problems + problems)
    for problem in specs.problems:
        click.echo(f"orchscan: spec problem: {printable(str(problem))}", err=True)
    return specs, mapping


def _workflows(files: tuple[str, ...]) -> list[DocumentedWorkflow]:
    """The documented workflows to check, read before the traces; unreadable documents are input errors."""
    workflows: list[DocumentedWorkflow] = []
    for file in files:
        try:
            workflows += read_arazzo(Path(file)).workflows
        except ArazzoError as error:
            raise UnusableInput(printable(str(error))) from None
    return workflows


def _generated_at(options: ScanOptions) -> datetime | None:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), tz=UTC)
    return datetime.now(tz=UTC) if options.timestamp else None


def _version() -> str:
    try:
        return version("orchscan")
    except PackageNotFoundError:
        return "0+unknown"


def _print_history(history: ScanHistory, path: str, *, err: bool) -> None:
    recorded = f"recorded scan {history.current.id} in {printable(path)}"
    if history.previous is None or history.diff is None:
        click.echo(f"{recorded} (the first)", err=err)
        return
    changes = (
        "; ".join(f"{group.title.lower()} {group.tally}" for group in describe_changes(history.diff))
        if not history.diff.empty
        else "no changes"
    )
    click.echo(printable(f"{recorded}; since scan {history.previous.id}: {changes}"), err=err)


def _print_summary(result: ScanResult, out_dir: Path | None, written: list[str], *, err: bool) -> None:
    analysis = result.analysis
    roles: dict[str, int] = {}
    for service in analysis.services:
        roles[service.role] = roles.get(service.role, 0) + 1
    counts: dict[str, int] = {}
    for finding in analysis.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    by_role = ", ".join(f"{n} {role}" for role, n in sorted(roles.items()))
    # "Services" are those that emitted spans, as in every report; the roles also cover peers
    # known only from their callers' spans (an uninstrumented API, a database).
    peers = len(analysis.services) - analysis.input.services
    also = f" and {peers} peer(s) seen only in calls" if peers > 0 else ""
    click.echo(
        f"{analysis.input.spans:,} spans, {analysis.input.traces:,} traces, "
        f"{analysis.input.services:,} services{also}; roles: {by_role}",
        err=err,
    )
    for service in analysis.services:
        if service.role == "orchestrator":
            kind = "hidden" if service.hidden else "explicit"
            click.echo(
                f"  orchestrator: {printable(service.name)} ({kind}, score {service.score:.1f})", err=err
            )
    suppressed = len(analysis.suppressions.suppressed)
    click.echo(
        f"{len(analysis.flows)} flow(s); findings: "
        + (", ".join(f"{counts[s]} {s}" for s in SEVERITIES if s in counts) or "none")
        + (f" ({suppressed} suppressed)" if suppressed else ""),
        err=err,
    )
    for entry in analysis.suppressions.expired:
        click.echo(
            f"orchscan: {entry.origin}: suppression expired on {entry.expires}; its findings count again",
            err=True,
        )
    for entry in analysis.suppressions.unused:
        click.echo(f"orchscan: {entry.origin}: suppression matched no finding", err=True)
    if analysis.input.skipped:
        total = sum(s.count for s in analysis.input.skipped)
        click.echo(f"skipped input: {total} record(s), listed in the reports", err=True)
    if out_dir is not None:
        for relative in written:
            click.echo(f"wrote {printable((out_dir / relative).as_posix())}", err=err)


def _print_gate(gate: Gate, tripped: tuple[Finding, ...]) -> None:
    """Say which findings failed the run, so a CI log answers "why red?" without opening a report."""
    if not tripped:
        return
    click.echo(f"orchscan: {len(tripped)} finding(s) at --fail-on {gate.describe()}:", err=True)
    for finding in tripped:
        where = printable(finding.service) + (f" ({printable(finding.flow)})" if finding.flow else "")
        click.echo(
            f"  {finding.severity} {finding.rule} {where}: {printable(finding.message)} "
            f"[{finding.fingerprint}]",
            err=True,
        )
