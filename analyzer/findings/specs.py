"""Findings about how well the OpenAPI specs describe the traffic actually observed."""

from __future__ import annotations

from collections.abc import Sequence

from orchscan.analyzer.results import Finding, ServiceCoverage

#: How many endpoints a finding lists by name before summarising the rest.
_LISTED = 8


def find_spec_findings(coverage: Sequence[ServiceCoverage]) -> tuple[Finding, ...]:
    """Undocumented endpoints seen in traffic, and documented operations never called."""
    findings = []
    for service in coverage:
        if service.undocumented:
            calls = sum(u.count for u in service.undocumented)
            listed = sorted(service.undocumented, key=lambda u: (-u.count, u.method, u.path))
            findings.append(
                Finding(
                    rule="undocumented-endpoint",
                    severity="low",
                    service=service.service,
                    flow=None,
                    message=(
                        f"{service.service} answered {calls} call(s) to {len(listed)} endpoint(s) its "
                        f"OpenAPI spec does not document ({service.match_rate:.0%} of its calls matched)"
                    ),
                    evidence=tuple(f"{u.method} {u.path}: {u.count} call(s)" for u in listed[:_LISTED])
                    + _more(len(listed)),
                    recommendation=(
                        "Document these operations (or retire them): workflows and clients can only rely on "
                        "what the spec describes."
                    ),
                )
            )
        if service.unseen:
            findings.append(
                Finding(
                    rule="unused-operation",
                    severity="info",
                    service=service.service,
                    flow=None,
                    message=(
                        f"{len(service.unseen)} documented operation(s) of {service.service} were never "
                        "called in the observed traffic"
                    ),
                    evidence=tuple(service.unseen[:_LISTED]) + _more(len(service.unseen)),
                    recommendation=(
                        "Check whether they are still needed; if the traffic window was short, scan a "
                        "longer one before deciding."
                    ),
                )
            )
    return tuple(findings)


def _more(total: int) -> tuple[str, ...]:
    return (f"... and {total - _LISTED} more",) if total > _LISTED else ()
