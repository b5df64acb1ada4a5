"""Real traces are noisy: spans get lost, delivered twice, and clocks drift. The verdicts must not.

Each test scans a landscape as recorded and again with the noise the benchmark generator adds
(:func:`landscape.add_noise`), through the same span checks a scan runs, and compares: the same
orchestrators and roles, the same claimed flows with the same steps, no flow made of fragments,
and no high finding that only the noise raised.
"""

from __future__ import annotations

import json
from functools import cache

import pyarrow as pa
import pytest
from landscape import SAGA_MIX, Noise, add_noise, build_table
from paths import SAMPLE

from orchscan.analyzer.pipeline import analyze
from orchscan.analyzer.results import Analysis, Flow
from orchscan.analyzer.thresholds import RoleThresholds, Thresholds
from orchscan.collectors.model.records import Ingest
from orchscan.collectors.openapi.loader import load_specs
from orchscan.collectors.openapi.model import SpecSet
from orchscan.collectors.traces.ingest import check_spans, ingest

NOISES = {
    "1% dropped": Noise(dropped=0.01, seed=1),
    "3% dropped": Noise(dropped=0.03, seed=2),
    "5% dropped": Noise(dropped=0.05, seed=3),
    "2% duplicated": Noise(duplicated=0.02, seed=4),
    "clocks off": Noise(skewed=0.3, skew_ms=40, seed=5),
    "everything at once": Noise(dropped=0.05, duplicated=0.02, skewed=0.2, skew_ms=40, seed=6),
}

#: The pitfalls the saga landscape plants: its two legacy orchestrators leave a failed shipment
#: uncompensated and retry it without an idempotency key.
PLANTED = {
    (rule, f"legacy-00{i}") for rule in ("missing-idempotency", "uncompensated-failure") for i in (0, 1)
}


def _scan(table: pa.Table, specs: SpecSet | None = None) -> Analysis:
    """The analysis of ``table`` after the checks every scan runs (duplicates dropped, parents checked)."""
    checked = check_spans(table)
    return analyze(Ingest(checked.table, (), checked.skipped, checked.notices), specs=specs).analysis


def _steps(flow: Flow) -> list[tuple[str, str, bool]]:
    return [(s.operation.service, s.operation.key, s.optional) for s in flow.steps]


def _assert_same_event_flows(clean: Analysis, noisy: Analysis) -> None:
    """Event-driven flows keep their steps, as far as the noise can leave them.

    Their consumers vary from chain to chain (the landscape's jobs publish to random listeners):
    the order of a hop's optional deliveries, which are concurrent, follows how often each was
    seen, and a consumer seen in fewer than three chains may lose its only spans. Those seen in
    three or more must stay, and the noise adds none.
    """
    events = {f.id: f for f in noisy.flows if f.kind == "choreographed"}
    assert set(events) == {f.id for f in clean.flows if f.kind == "choreographed"}
    for flow in clean.flows:
        if flow.kind == "choreographed":
            steps = _steps(flow)
            kept = {s for s, step in zip(steps, flow.steps, strict=True) if step.support * flow.requests >= 3}
            assert kept <= set(_steps(events[flow.id])) <= set(steps)


def _high(analysis: Analysis) -> dict[str, tuple[str, str]]:
    """The high and critical findings, by fingerprint."""
    severe = ("high", "critical")
    return {f.fingerprint: (f.rule, f.service) for f in analysis.findings if f.severity in severe}


def _assert_same_verdicts(clean: Analysis, noisy: Analysis) -> None:
    roles = {s.name: s.role for s in noisy.services}
    # A lost consumer span reveals its broker (a call to infrastructure): new nodes may appear,
    # but no service of the clean scan changes its role.
    assert {s.name: s.role for s in clean.services} == {s.name: roles.get(s.name) for s in clean.services}
    orchestrated = [
        {f.id: _steps(f) for f in analysis.flows if f.kind == "orchestrated"} for analysis in (clean, noisy)
    ]
    assert orchestrated[1] == orchestrated[0]
    _assert_same_event_flows(clean, noisy)
    assert set(_high(noisy)) <= set(_high(clean))


@cache
def _saga_landscape() -> pa.Table:
    return build_table(40_000, seed=11, mix=SAGA_MIX)


@cache
def _saga_clean() -> Analysis:
    return _scan(_saga_landscape())


def test_the_saga_landscape_as_recorded() -> None:
    clean = _saga_clean()
    orchestrators = {s.name for s in clean.services if s.role == "orchestrator"}
    assert orchestrators == {f"orchestrator-{i:03d}" for i in range(12)} | {"legacy-000", "legacy-001"}
    assert set(_high(clean).values()) == PLANTED
    assert clean.input.fragments.kept == clean.input.fragments.attached == 0


@pytest.mark.slow
@pytest.mark.parametrize("noise", list(NOISES.values()), ids=list(NOISES))
def test_noise_changes_no_verdict_on_the_saga_landscape(noise: Noise) -> None:
    clean, noisy = _saga_clean(), _scan(add_noise(_saga_landscape(), noise))
    _assert_same_verdicts(clean, noisy)
    # The planted pitfalls are still found, as highs.
    assert set(_high(noisy).values()) == PLANTED
    if noise.dropped:
        fragments = noisy.input.fragments
        assert fragments.kept > 0 and fragments.calls >= fragments.kept
        # No fragment became an entry of its own: every entry mined was an entry before.
        entries = {f.id for f in clean.flows + clean.observed_flows}
        assert {f.id for f in noisy.flows + noisy.observed_flows if f.split_from is None} <= entries


def test_lost_compensations_are_outliers_that_sampling_holes_explain() -> None:
    noisy = _scan(add_noise(_saga_landscape(), NOISES["5% dropped"]))
    declined = [
        f
        for f in noisy.findings
        if f.rule == "uncompensated-failure" and f.service.startswith("orchestrator-") and f.counts
    ]
    assert declined, "5% dropped spans lose some compensations"
    for finding in declined:
        assert finding.severity in ("info", "low")
        assert finding.counts is not None and finding.counts.explained > 0
        assert any("sampling holes explain" in line or "lost spans" in line for line in finding.evidence)


def test_the_route_less_front_end_is_split_not_claimed() -> None:
    clean = _saga_clean()
    # Taken as one entry operation, "HTTP request" would make both front ends orchestrators.
    whole = analyze(
        Ingest(_saga_landscape(), (), (), ()),
        thresholds=Thresholds(roles=RoleThresholds(core_callee_share=0)),
    ).analysis
    assert {s.name for s in whole.services if s.role == "orchestrator"} >= {"frontend-000", "frontend-001"}
    roles = {s.name: s for s in clean.services}
    for name in ("frontend-000", "frontend-001"):
        assert roles[name].role == "service"
        assert any("HTTP request is a mixed entry" in line for line in roles[name].evidence)
        assert f"{name}:HTTP request" not in {f.id for f in clean.flows + clean.observed_flows}
    pages = [f for f in clean.flows if f.owner == "frontend-000"]
    # Product page, home page and cart view are request types of their own; adding an item
    # (one call) and the checkouts (one call, spread over twelve orchestrators) are too small.
    assert sorted(f.entry.key.split(" via ")[1].split(" ", 1)[1] for f in pages) == [
        "GET /cart",
        "GET /products",
        "GET /products/{productId}",
    ]
    assert all(f.split_from == "HTTP request" and f.verdict == "flow" for f in pages)


@cache
def _sample() -> tuple[pa.Table, SpecSet]:
    return ingest([SAMPLE / "traces"], jobs=1).spans, load_specs([SAMPLE / "openapi"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "noise", [NOISES["3% dropped"], NOISES["everything at once"]], ids=["3% dropped", "everything at once"]
)
def test_noise_changes_no_verdict_on_the_sample(noise: Noise) -> None:
    spans, specs = _sample()
    clean, noisy = _scan(spans, specs), _scan(add_noise(spans, noise), specs)
    _assert_same_verdicts(clean, noisy)
    expected = json.loads((SAMPLE / "expected.json").read_text())
    assert {s.name: s.role for s in noisy.services if s.name in expected["roles"]} == expected["roles"]
    assert set(_high(noisy)) == set(_high(clean))
