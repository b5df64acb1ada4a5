"""Finding fingerprints name the problem and its place, so scans of different windows compare."""

from __future__ import annotations

import dataclasses

import pyarrow.compute as pc
from paths import SAMPLE

from orchscan.analyzer.pipeline import analyze
from orchscan.analyzer.results import Finding
from orchscan.collectors.traces.ingest import ingest


def _by_fingerprint(findings: tuple[Finding, ...]) -> dict[str, Finding]:
    keyed = {f.fingerprint: f for f in findings}
    assert len(keyed) == len(findings), "two findings of one scan share a fingerprint"
    return keyed


def test_a_smaller_window_keeps_the_fingerprints_of_the_problems_it_still_shows() -> None:
    whole = ingest([SAMPLE / "traces"], jobs=1)
    # Another window of the same landscape: about two thirds of the traces.
    kept = pc.match_substring_regex(whole.spans["trace_id"], "[0-9]$")
    window = dataclasses.replace(whole, spans=whole.spans.filter(kept))
    full = _by_fingerprint(analyze(whole).analysis.findings)
    part = _by_fingerprint(analyze(window).analysis.findings)

    shared = full.keys() & part.keys()
    assert len(shared) >= 8
    # The same problem, counted over fewer requests, keeps its fingerprint.
    assert any(full[key].evidence != part[key].evidence for key in shared)
    for key in shared:
        assert (full[key].rule, full[key].service, full[key].subject) == (
            part[key].rule,
            part[key].service,
            part[key].subject,
        )


def test_fingerprints_ignore_counts_and_traces_but_not_the_place() -> None:
    finding = Finding(
        rule="missing-idempotency",
        severity="high",
        service="orders",
        flow="orders:POST /orders",
        message="orders retries step 2, a write, without an idempotency key",
        evidence=("12 requests retried it",),
        recommendation="Send an Idempotency-Key header.",
        example_traces=("a" * 32,),
        subject="orders:POST /orders > payment POST /payments",
    )
    recounted = dataclasses.replace(
        finding, severity="medium", evidence=("3 requests retried it",), example_traces=("b" * 32,)
    )
    elsewhere = dataclasses.replace(finding, subject="orders:POST /orders > inventory POST /reservations")
    assert recounted.fingerprint == finding.fingerprint
    assert elsewhere.fingerprint != finding.fingerprint
    assert dataclasses.replace(finding, service="returns").fingerprint != finding.fingerprint
    assert len(finding.fingerprint) == 16 and int(finding.fingerprint, 16) >= 0
