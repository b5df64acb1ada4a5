"""How severe a finding is, from how often its problem showed and how much evidence there is.

A rule counts the cases where its problem could show (failures of a step after earlier writes,
requests that retried a write) and those where it did. Some of those may be *explained*: their
trace lost spans, so the compensation (say) may simply not have reached the trace store (the
rule decides whether holes can explain anything, see ``flows.holes_explain_max_share``). The
rule's own severity holds only for a pattern with evidence behind it, counted without the
explained cases:

* none left: sampling holes explain every case: ``info``;
* fewer than ``flows.evidence_min_requests`` left: too little evidence for a pattern: ``low``
  (or one level below the rule's severity, if that is less);
* an outlier, below ``flows.severity_outlier_share`` of the cases while the rest were handled:
  likewise;
* a pattern, at least ``flows.severity_pattern_share`` of the cases: the rule's severity;
* anything between: one level below it.
"""

from __future__ import annotations

from orchscan.analyzer.results import SEVERITIES, EvidenceCounts
from orchscan.analyzer.thresholds import DEFAULT_FLOW_THRESHOLDS, FlowThresholds


def weigh(
    counts: EvidenceCounts, *, severity: str, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> tuple[str, str]:
    """The severity a finding of a rule of ``severity`` gets for ``counts``, and the sentence why."""
    left = counts.affected - counts.explained
    share = left / counts.cases if counts.cases else 1.0
    seen = f"{counts.affected} of {counts.cases}"
    if counts.explained:
        seen += f", {left} of them not explained by lost spans"
    seen += f" ({share:.0%})"
    if left == 0:
        return (
            "info",
            f"{seen}: every one lost spans; sampling holes explain them, so it is informational only",
        )
    if left < thresholds.evidence_min_requests:
        return _at_most(_lower(severity), "low"), (
            f"{seen}: too little evidence to call it a pattern "
            f"({thresholds.evidence_min_requests} cases needed)"
        )
    if counts.cases > counts.affected and share < thresholds.severity_outlier_share:
        return _at_most(_lower(severity), "low"), (
            f"{seen}: outliers, the rest were handled (below {thresholds.severity_outlier_share:.0%})"
        )
    if share >= thresholds.severity_pattern_share:
        return severity, f"{seen}: a pattern (at least {thresholds.severity_pattern_share:.0%})"
    return _lower(severity), (
        f"{seen}: some of the cases (below {thresholds.severity_pattern_share:.0%}), so one level below "
        f"the rule's {severity}"
    )


def _at_most(severity: str, cap: str) -> str:
    """``severity``, but no more severe than ``cap``."""
    return SEVERITIES[max(SEVERITIES.index(severity), SEVERITIES.index(cap))]


def _lower(severity: str) -> str:
    """One level less severe (``info`` stays ``info``)."""
    return SEVERITIES[min(SEVERITIES.index(severity) + 1, len(SEVERITIES) - 1)]
