"""``orchscan scan`` / ``conform``: read specs, analyse, check documented workflows, write reports."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import click

from orchscan.analyzer.changes.snapshot import take_snapshot
from orchscan.analyzer.pipeline import ScanResult
from orchscan.analyzer.results import SEVERITIES, Finding
from orchscan.analyzer.thresholds import FlowThresholds, RoleThresholds, Thresholds
from orchscan.collectors.arazzo import ArazzoError, DocumentedWorkflow, read_arazzo
from orchscan.collectors.openapi.binding import load_mapping
from orchscan.collectors.openapi.loader import load_specs
from orchscan.collectors.openapi.model import SpecSet
from orchscan.collectors.traces.ingest import InputError
from orchscan.config import ConfigError, build_thresholds, load_config_file, merge, parse_overrides
from orchscan.reports.history.describe import describe_changes
from orchscan.reports.history.store import HistoryError, check_history
from orchscan.reports.history.tracking import ScanHistory, record_scan
from orchscan.reports.output import write_artifact
from orchscan.reports.registry import REPORTS, report_context
from orchscan.runner import DEFAULT_MEMORY_LIMIT, MemoryBudget, ScanProgress, scan_traces

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2


@dataclass(frozen=True)
class ScanOptions:
    """The scan command's options, as parsed by click."""

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
    arazzo_files: tuple[str, ...] = ()
    history: str | None = None
    trace_url: str | None = None
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    work_dir: str | None = None


def _thresholds(options: ScanOptions) -> Thresholds:
    file_values = load_config_file(Path(options.config_file)) if options.config_file else {}
    values = merge(file_values, parse_overrides(options.overrides))
    unknown = sorted(set(values) - {"roles", "flows"})
    if unknown:
        raise ConfigError(f"unknown threshold group(s): {', '.join(unknown)}; known: flows, roles")
    return Thresholds(
        roles=build_thresholds(RoleThresholds, "roles", values.get("roles", {})),
        flows=build_thresholds(FlowThresholds, "flows", values.get("flows", {})),
    )


def _formats(options: ScanOptions) -> tuple[str, ...]:
    chosen = options.formats or tuple(REPORTS)
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
        click.echo(f"orchscan: spec problem: {problem}", err=True)
    return specs, mapping


def _workflows(files: tuple[str, ...]) -> list[DocumentedWorkflow]:
    """The documented workflows to check; unreadable documents are input errors."""
    workflows: list[DocumentedWorkflow] = []
    for file in files:
        try:
            workflows += read_arazzo(Path(file)).workflows
        except ArazzoError as error:
            raise ValueError(str(error)) from None
    return workflows


def _generated_at(options: ScanOptions) -> datetime | None:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), tz=UTC)
    return datetime.now(tz=UTC) if options.timestamp else None


def run_scan(paths: tuple[str, ...], options: ScanOptions, progress: ScanProgress | None = None) -> int:
    """Analyse the traces at ``paths``, write the chosen reports into the output folder, return
    the exit status."""
    try:
        thresholds = _thresholds(options)
    except ConfigError as error:
        click.echo(f"orchscan: {error}", err=True)
        return EXIT_INPUT
    formats = _formats(options)
    try:
        if options.history:
            check_history(options.history)  # before the analysis: an unusable file fails fast
    except HistoryError as error:
        click.echo(f"orchscan: {error}", err=True)
        return EXIT_INPUT
    specs, mapping = _specs(options)
    workflows = _workflows(options.arazzo_files)
    try:
        result = scan_traces(
            paths,
            fmt=options.fmt,
            budget=MemoryBudget(options.memory_limit, options.jobs or os.cpu_count() or 1),
            work_dir=options.work_dir,
            specs=specs,
            service_map=mapping,
            workflows=workflows,
            thresholds=thresholds,
            progress=progress,
        )
    except InputError as error:
        click.echo(f"orchscan: {error}", err=True)
        return EXIT_INPUT
    try:
        history = _record(result, options.history) if options.history else None
    except HistoryError as error:
        click.echo(f"orchscan: {error}", err=True)
        return EXIT_INPUT
    out_dir = Path(options.out_dir)
    context = report_context(
        result,
        specs,
        thresholds=thresholds.flows,
        generated_at=_generated_at(options),
        history=history,
        trace_url=options.trace_url,
    )
    written: list[str] = []
    for name in formats:
        for relative, text in REPORTS[name](context).items():
            if relative not in written:  # a catalog brings the drafts it refers to
                write_artifact(out_dir / relative, text)
                written.append(relative)
    _print_summary(result, out_dir, written)
    if history:
        _print_history(history, options.history or "")
    return _exit_status(result.analysis.findings, options.fail_on)


def _record(result: ScanResult, path: str) -> ScanHistory:
    """Record the scan first, so that its reports can compare it with the scan before it."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    recorded_at = datetime.fromtimestamp(int(epoch), tz=UTC) if epoch.isdigit() else datetime.now(tz=UTC)
    return record_scan(
        path, take_snapshot(result.analysis), recorded_at=recorded_at, orchscan_version=version("orchscan")
    )


def _print_history(history: ScanHistory, path: str) -> None:
    recorded = f"recorded scan {history.current.id} in {path}"
    if history.previous is None or history.diff is None:
        click.echo(f"{recorded} (the first)")
        return
    changes = (
        "; ".join(f"{group.title.lower()} {group.tally}" for group in describe_changes(history.diff))
        if not history.diff.empty
        else "no changes"
    )
    click.echo(f"{recorded}; since scan {history.previous.id}: {changes}")


def _print_summary(result: ScanResult, out_dir: Path, written: list[str]) -> None:
    analysis = result.analysis
    roles: dict[str, int] = {}
    for service in analysis.services:
        roles[service.role] = roles.get(service.role, 0) + 1
    counts: dict[str, int] = {}
    for finding in analysis.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    by_role = ", ".join(f"{n} {role}" for role, n in sorted(roles.items()))
    click.echo(
        f"{analysis.input.spans:,} spans, {analysis.input.traces:,} traces, "
        f"{len(analysis.services)} services ({by_role})"
    )
    orchestrators = [s for s in analysis.services if s.role == "orchestrator"]
    for service in orchestrators:
        kind = "hidden" if service.hidden else "explicit"
        click.echo(f"  orchestrator: {service.name} ({kind}, score {service.score:.1f})")
    click.echo(
        f"{len(analysis.flows)} flow(s); findings: "
        + (", ".join(f"{counts[s]} {s}" for s in SEVERITIES if s in counts) or "none")
    )
    if analysis.input.skipped:
        total = sum(s.count for s in analysis.input.skipped)
        click.echo(f"skipped input: {total} record(s), listed in the reports", err=True)
    for relative in written:
        click.echo(f"wrote {(out_dir / relative).as_posix()}")


def _exit_status(findings: tuple[Finding, ...], fail_on: str) -> int:
    if fail_on == "none":
        return EXIT_OK
    limit = SEVERITIES.index(fail_on)
    return EXIT_FINDINGS if any(SEVERITIES.index(f.severity) <= limit for f in findings) else EXIT_OK
