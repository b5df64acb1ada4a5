"""``orchscan history`` and ``orchscan diff``: list the recorded scans, compare two scans."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from orchscan.analyzer.changes.diff import compare_scans
from orchscan.analyzer.changes.snapshot import ScanSnapshot
from orchscan.reports.history.diff_report import render_diff_json, render_diff_text
from orchscan.reports.history.findings_file import read_findings_snapshot
from orchscan.reports.history.listing import render_scans
from orchscan.reports.history.store import HistoryError, open_history

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2
PREVIOUS = "previous"


def list_scans(path: str, *, as_json: bool) -> int:
    """Print the scans recorded in a history; an unusable file exits with status 2."""
    try:
        with open_history(path, create=False, now=datetime.now(tz=UTC)) as history:
            scans = history.scans()
    except HistoryError as error:
        click.echo(f"orchscan: {error}", err=True)
        return EXIT_INPUT
    click.echo(render_scans(scans, as_json=as_json), nl=False)
    return EXIT_OK


def _snapshots(
    old: str | None, new: str | None, history_path: str | None
) -> tuple[ScanSnapshot, ScanSnapshot, str, str]:
    """The two scans to compare, with how to name them: from a history, else from two findings.json files."""
    if history_path is None:
        if old is None or new is None:
            raise click.UsageError("give two findings.json files, or --history PATH with two scans")
        return read_findings_snapshot(old), read_findings_snapshot(new), old, new
    with open_history(history_path, create=False, now=datetime.now(tz=UTC)) as history:
        new_id = history.resolve(new or "latest")
        if (old or PREVIOUS) == PREVIOUS and len(history.scans()) == 1:
            # A scheduled job's first run: nothing to compare with yet is no error for its gate.
            click.echo(
                f"orchscan: scan {new_id} is the only scan in {history_path}: nothing to compare", err=True
            )
            old_id = new_id
        else:
            old_id = history.resolve(old or PREVIOUS)
        return history.snapshot(old_id), history.snapshot(new_id), f"scan {old_id}", f"scan {new_id}"


def compare(old: str | None, new: str | None, *, history: str | None, as_json: bool, fail_on_new: str) -> int:
    """Print what changed from OLD to NEW; status 1 when a new finding reaches ``fail_on_new``."""
    try:
        before, after, old_name, new_name = _snapshots(old, new, history)
    except HistoryError as error:
        click.echo(f"orchscan: {error}", err=True)
        return EXIT_INPUT
    diff = compare_scans(before, after)
    click.echo(
        render_diff_json(diff) if as_json else render_diff_text(diff, old=old_name, new=new_name), nl=False
    )
    if fail_on_new != "none" and diff.new_findings_at_least(fail_on_new):
        return EXIT_FINDINGS
    return EXIT_OK
