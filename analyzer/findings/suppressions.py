"""Applying a suppression file: accepted findings leave the gate and the counts, but stay listed.

Pure: findings and entries in, the split out. An entry past its expiry date suppresses nothing
(its findings are active again, so an acceptance cannot outlive the date the team set) and is
reported as expired; an entry that matched nothing is reported as unused, so that stale entries
do not pile up unnoticed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date

from orchscan.analyzer.results import Analysis, Finding, SuppressedFinding, Suppression, Suppressions


def suppress_findings(
    findings: Sequence[Finding], entries: Sequence[Suppression], *, today: date
) -> tuple[tuple[Finding, ...], Suppressions]:
    """Split ``findings`` into the active ones and those an unexpired entry suppresses.

    A finding matched by several entries is suppressed by the first, in file order.
    """
    expired = tuple(e for e in entries if e.expires is not None and e.expires < today)
    valid = [e for e in entries if e not in expired]
    active: list[Finding] = []
    suppressed: list[SuppressedFinding] = []
    used: set[int] = set()
    for finding in findings:
        index = next((i for i, entry in enumerate(valid) if entry.matches(finding)), None)
        if index is None:
            active.append(finding)
        else:
            used.add(index)
            suppressed.append(SuppressedFinding(finding, valid[index]))
    unused = tuple(entry for i, entry in enumerate(valid) if i not in used)
    return tuple(active), Suppressions(tuple(suppressed), expired, unused)


def apply_suppressions(analysis: Analysis, entries: Sequence[Suppression], *, today: date) -> Analysis:
    """``analysis`` with suppressed findings moved from ``findings`` to ``suppressions``."""
    active, suppressions = suppress_findings(analysis.findings, entries, today=today)
    return dataclasses.replace(analysis, findings=active, suppressions=suppressions)
