"""The summary.md section about history: a tally of what changed since the previous scan.

Short on purpose: summary.md is a pull-request comment, so it lists the first few changes and
points at ``orchscan diff`` for the rest.
"""

from __future__ import annotations

from datetime import UTC

from orchscan.reports.history.describe import describe_changes
from orchscan.reports.history.tracking import ScanHistory
from orchscan.reports.markdown import escape_markdown

#: How many changes the section lists; the rest are counted.
SUMMARY_CHANGES = 10

TITLE = "## Changes since the previous scan"


def changes_section(history: ScanHistory) -> tuple[str, ...]:
    """The section's Markdown lines, ending with a blank line."""
    current = f"Scan {history.current.id}"
    previous, diff = history.previous, history.diff
    if previous is None or diff is None:
        return (TITLE, "", f"{current} is the first scan of its history: nothing to compare with yet.", "")
    since = f"scan {previous.id} (recorded {previous.recorded_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
    if diff.empty:
        return (TITLE, "", f"No changes since {since}.", "")
    groups = describe_changes(diff)
    lines = [
        TITLE,
        "",
        f"{current} compared with {since}: "
        + "; ".join(f"**{group.title}** {group.tally}" for group in groups)
        + ".",
        "",
    ]
    changes = [(group.noun, line) for group in groups for line in group.lines]
    for noun, line in changes[:SUMMARY_CHANGES]:
        severity = f" ({line.severity})" if line.severity else ""
        subject = escape_markdown(line.subject)
        text = escape_markdown("; ".join(line.details) if line.details else line.text)
        lines.append(f"- **{line.kind}** {noun}{severity} {subject}: {text}")
    rest = len(changes) - SUMMARY_CHANGES
    if rest > 0:
        lines += ["", f"… and {rest} more: `orchscan diff --history` lists them all."]
    return (*lines, "")
