"""The partitioned scan gives the result of the one-table analysis, however the spans are partitioned."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner
from factories import LandscapeBuilder, ShopMix, build_shop, with_copies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paths import FIXTURES, SAMPLE
from saga_factories import SagaMix, build_saga

from orchscan.analyzer.pipeline import analyze
from orchscan.analyzer.results import Analysis
from orchscan.analyzer.thresholds import FlowThresholds, Thresholds
from orchscan.budget import MemoryBudget, parse_size
from orchscan.cli import main
from orchscan.collectors.model.records import Ingest
from orchscan.collectors.model.spans import service_names
from orchscan.collectors.openapi.loader import load_specs
from orchscan.collectors.openapi.model import SpecSet
from orchscan.collectors.owners import OwnersFile, TeamPatterns
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.partition import PartitionStore
from orchscan.engines.units import UnitsHandover
from orchscan.runner import ReadAccount, run_analysis


def _partitioned(
    ingested: Ingest,
    work_dir: Path,
    *,
    count: int,
    unit_spans: int,
    jobs: int = 1,
    spill_bytes: int = 1 << 40,
    specs: SpecSet | None = None,
    owners_file: OwnersFile | None = None,
    thresholds: Thresholds | None = None,
) -> Analysis:
    store = PartitionStore(count, spill_bytes=spill_bytes, work_dir=work_dir)
    for batch in ingested.spans.to_batches(max_chunksize=1009):
        store.add(batch)
    account = ReadAccount(
        tuple(f.file for f in ingested.files),
        {f.file: f.format for f in ingested.files},
        ingested.skipped,
    )
    result = run_analysis(
        account,
        UnitsHandover(store.finish().units(unit_spans)),
        service_names(ingested.spans),
        specs=specs,
        service_map=None,
        workflows=(),
        thresholds=thresholds or Thresholds(),
        budget=MemoryBudget(1 << 30, jobs),
        work_dir=work_dir,
        owners_file=owners_file,
    )
    return result.analysis


@pytest.fixture(scope="module")
def sample() -> Ingest:
    return ingest([SAMPLE / "traces"], jobs=1)


@pytest.fixture(scope="module")
def sample_specs() -> SpecSet:
    return load_specs([SAMPLE / "openapi"])


@pytest.fixture(scope="module")
def sample_whole(sample: Ingest, sample_specs: SpecSet) -> Analysis:
    return analyze(sample, specs=sample_specs).analysis


@pytest.mark.parametrize(
    ("count", "unit_spans", "jobs", "spill_bytes"),
    [(8, 10**9, 1, 1 << 40), (16, 2000, 2, 1 << 40), (64, 5000, 2, 1), (4, 1, 1, 200_000)],
    ids=["one-unit", "small-units-two-workers", "spilled-two-workers", "one-partition-per-unit-half-spilled"],
)
def test_the_sample_gives_the_whole_table_result(
    sample: Ingest,
    sample_specs: SpecSet,
    sample_whole: Analysis,
    tmp_path: Path,
    count: int,
    unit_spans: int,
    jobs: int,
    spill_bytes: int,
) -> None:
    partitioned = _partitioned(
        sample,
        tmp_path,
        count=count,
        unit_spans=unit_spans,
        jobs=jobs,
        spill_bytes=spill_bytes,
        specs=sample_specs,
    )
    assert partitioned == sample_whole
    kinds = [flow.kind for flow in partitioned.flows]
    assert (kinds.count("orchestrated"), kinds.count("choreographed")) == (4, 1) and partitioned.findings


@pytest.mark.parametrize(
    "fixture", ["hotrod", "zipkin-lens-testdata", "spring-petclinic", "opentelemetry-demo"]
)
def test_real_fixtures_give_the_whole_table_result(fixture: str, tmp_path: Path) -> None:
    ingested = ingest([FIXTURES / fixture / "traces"], jobs=1)
    whole = analyze(ingested).analysis
    assert _partitioned(ingested, tmp_path, count=16, unit_spans=300, jobs=2, spill_bytes=1) == whole


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    copies=st.integers(min_value=1, max_value=3),
    count=st.integers(min_value=1, max_value=64),
    unit_spans=st.integers(min_value=1, max_value=400),
)
def test_any_partitioning_gives_the_same_result(
    copies: int, count: int, unit_spans: int, tmp_path: Path
) -> None:
    table: pa.Table = with_copies(
        build_shop(LandscapeBuilder(), ShopMix(orders=4, checkouts=3)).table(), copies
    )
    ingested = Ingest(table, (), (), ())
    whole = analyze(ingested).analysis
    assert _partitioned(ingested, tmp_path, count=count, unit_spans=unit_spans) == whole


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(min_value=1, max_value=64), unit_spans=st.integers(min_value=1, max_value=400))
def test_a_sampled_entry_keeps_the_same_traces_in_any_partitioning(
    count: int, unit_spans: int, tmp_path: Path
) -> None:
    table: pa.Table = with_copies(build_shop(LandscapeBuilder(), ShopMix(orders=4, checkouts=3)).table(), 12)
    ingested = Ingest(table, (), (), ())
    sampling = Thresholds(flows=FlowThresholds(max_mined_requests=20))
    whole = analyze(ingested, thresholds=sampling).analysis
    unsampled = {f.id: f for f in analyze(ingested).analysis.flows}
    sampled = [f for f in whole.flows if f.sample_rate < 1]
    # Orchestrated entries and the origins of message chains alike.
    assert {f.kind for f in sampled} == {"orchestrated", "choreographed"}
    for flow in sampled:
        assert any("sample of" in caveat for caveat in flow.caveats)
        assert flow.requests < unsampled[flow.id].requests
    assert _partitioned(ingested, tmp_path, count=count, unit_spans=unit_spans, thresholds=sampling) == whole


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    copies=st.integers(min_value=1, max_value=2),
    count=st.integers(min_value=1, max_value=48),
    unit_spans=st.integers(min_value=1, max_value=300),
)
def test_event_chains_teams_and_parallelism_do_not_depend_on_the_partitioning(
    copies: int, count: int, unit_spans: int, tmp_path: Path
) -> None:
    # A saga whose inventory hop is a trace of its own, linked to its event: its parts land in
    # different partitions and are stitched by the landscape. Teams come from namespaces counted
    # per partition and from an owners file.
    land = LandscapeBuilder(
        namespaces={"checkout": "sales", "payments": "payments"}, k8s_namespaces={"inventory": "logistics"}
    )
    table: pa.Table = with_copies(build_saga(build_shop(land, ShopMix(orders=3)), SagaMix()).table(), copies)
    owners = OwnersFile("owners.yaml", (TeamPatterns("fulfilment", ("ship*", "notification")),))
    ingested = Ingest(table, (), (), ())
    whole = analyze(ingested, owners_file=owners).analysis
    assert any(f.kind == "choreographed" and f.failure.uncompensated for f in whole.flows)
    assert whole.ownership and any(f.parallel_opportunities for f in whole.flows)
    partitioned = _partitioned(ingested, tmp_path, count=count, unit_spans=unit_spans, owners_file=owners)
    assert partitioned == whole


def test_the_cli_within_a_small_memory_limit_writes_the_same_findings(tmp_path: Path) -> None:
    runner = CliRunner()
    default, limited, work = tmp_path / "default", tmp_path / "limited", tmp_path / "work"
    base = ["scan", str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi"), "--format", "json"]
    assert runner.invoke(main, [*base, "--out", str(default)]).exit_code == 0
    result = runner.invoke(
        main, [*base, "--out", str(limited), "--memory-limit", "16M", "--work-dir", str(work), "-j", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (limited / "findings.json").read_text() == (default / "findings.json").read_text()
    assert work.is_dir() and not list(work.iterdir())  # the scan's own folder is gone


def test_a_memory_limit_that_is_no_size_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["scan", str(SAMPLE / "traces"), "--memory-limit", "lots", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "not a size: 'lots'" in result.output
    assert parse_size("1.5G") == 3 << 29 and parse_size("512m") == 512 << 20 and parse_size("1024") == 1024
