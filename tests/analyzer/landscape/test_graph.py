"""Service and operation graphs: traffic, errors, latency percentiles and example traces per edge."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from factories import LandscapeBuilder, build_shop
from hypothesis import given, settings
from hypothesis import strategies as st
from scans import edges_of

from orchscan.analyzer.columnar.grouping import (
    group_codes,
    smallest_by_code,
    smallest_text_by_code,
    sorted_codes,
    tuples_by_code,
)
from orchscan.analyzer.landscape.graph import (
    EdgePartial,
    build_operation_graph,
    build_service_graph,
    group_quantiles,
)
from orchscan.analyzer.requests.calls import build_call_tables
from orchscan.collectors.traces.ingest import ingest


def _latency_land() -> LandscapeBuilder:
    land = LandscapeBuilder()
    for i, ms in enumerate([10, 20, 30, 40, 50, 60, 70]):
        hub = land.trace().request("web", "GET /page", ms=200)
        hub.call("api", "GET /data", at=1, ms=ms, error=i == 0, status_code=500 if i == 0 else 200)
        hub.query("postgresql", "SELECT", at=100, ms=2)
    return land


def test_edges_carry_calls_errors_caller_latency_and_examples() -> None:
    tables = build_call_tables(_latency_land().table())
    edges = {(e.caller, e.callee, e.kind): e for e in edges_of(tables)}
    api = edges[("web", "api", "sync")]
    latencies = [10, 20, 30, 40, 50, 60, 70]
    assert (api.calls, api.errors) == (7, 1)
    assert api.error_rate == 1 / 7
    assert api.p50_ms == float(np.percentile(latencies, 50))
    assert api.p95_ms == round(float(np.percentile(latencies, 95)), 3)
    assert len(api.example_traces) == 5 and list(api.example_traces) == sorted(api.example_traces)
    assert edges[("web", "web-postgresql", "infrastructure")].calls == 7


def test_edges_are_sorted_by_caller_callee_and_kind() -> None:
    edges = edges_of(build_call_tables(build_shop(LandscapeBuilder()).table()))
    keys = [(e.caller, e.callee, e.kind) for e in edges]
    assert keys == sorted(keys)
    assert ("orders", "inventory", "sync") in keys and ("warehouse", "procurement", "messaging") in keys


def test_service_graph_folds_kinds_and_marks_uninstrumented_nodes() -> None:
    graph = build_service_graph(build_call_tables(build_shop(LandscapeBuilder()).table()))
    assert graph.nodes["stripe"]["emits_spans"] is False
    assert graph.nodes["orders"]["emits_spans"] is True
    assert graph.edges["orders", "orders-postgresql"]["kinds"] == ("infrastructure",)
    order_to_inventory = graph.edges["orders", "inventory"]
    assert order_to_inventory["calls"] == 6  # 3 direct orders + 3 through checkout
    assert order_to_inventory["error_rate"] == 0.0
    assert set(graph.successors("orders")) == {
        "inventory",
        "payment",
        "shipping",
        "notification",
        "orders-postgresql",
    }


def test_operation_graph_links_the_callers_entry_operation_to_the_callee_operation() -> None:
    graph = build_operation_graph(build_call_tables(build_shop(LandscapeBuilder()).table()))
    assert graph.has_edge(("checkout", "POST /checkout"), ("orders", "POST /orders"))
    assert graph.has_edge(("orders", "POST /orders"), ("inventory", "POST /reservations"))
    assert not graph.has_edge(("orders", "GET /orders/{id}"), ("inventory", "POST /reservations"))
    assert graph.nodes[("orders", "GET /orders/{id}")]["service"] == "orders"


def test_hotrod_service_graph(fixtures: Path) -> None:
    spans = ingest([fixtures / "hotrod" / "traces"], jobs=1).spans
    graph = build_service_graph(build_call_tables(spans))
    assert set(graph.successors("frontend")) == {"customer", "driver", "route"}
    assert graph.edges["frontend", "route"]["calls"] == 30
    assert graph.edges["driver", "redis-manual"]["errors"] == 9
    assert graph.edges["frontend", "route"]["p50_ms"] < graph.edges["frontend", "customer"]["p50_ms"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.floats(0, 1e4, allow_nan=False) | st.sampled_from([0.0, 1.5, 7.0])),
        min_size=1,
        max_size=60,
    )
)
def test_group_quantiles_equal_pandas_linear_interpolation(rows: list[tuple[int, float]]) -> None:
    codes = pd.factorize(pd.Series([g for g, _ in rows]), sort=True)[0]
    values = np.array([v for _, v in rows])
    groups = int(codes.max()) + 1
    expected = pd.Series(values).groupby(codes).quantile([0.5, 0.95]).unstack()
    p50, p95 = group_quantiles(codes, values, groups, (0.5, 0.95))
    assert p50.tolist() == expected[0.5].tolist()
    assert p95.tolist() == expected[0.95].tolist()


def test_group_quantiles_hold_beyond_sixteen_bit_group_codes() -> None:
    rng = np.random.default_rng(7)
    codes = np.repeat(np.arange(70_000), 3)[rng.permutation(210_000)]  # codes the narrow sort cannot hold
    values = rng.exponential(50, len(codes)).round(1)
    expected = pd.Series(values).groupby(codes).quantile([0.5, 0.95]).unstack()
    p50, p95 = group_quantiles(codes, values, 70_000, (0.5, 0.95))
    assert np.allclose(p50, expected[0.5].to_numpy()) and np.allclose(p95, expected[0.95].to_numpy())


def test_tuples_by_code_lists_distinct_sorted_values_and_skips_nulls() -> None:
    codes = np.array([1, 0, 1, 1, 0, 2, 1])
    values = pd.Series(["t3", "t9", "t1", "t3", None, "t2", "t0"], dtype="str")
    assert tuples_by_code(codes, values, 4, limit=2) == [("t9",), ("t0", "t1"), ("t2",), ()]
    assert tuples_by_code(codes, values, 4)[1] == ("t0", "t1", "t3")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.sampled_from(["x", "y", None])), max_size=40
    ),
    st.booleans(),
)
def test_group_codes_number_groups_as_pandas_does(
    rows: list[tuple[str | None, str | None]], dropna: bool
) -> None:
    frame = pd.DataFrame({"k": [k for k, _ in rows], "v": [v for _, v in rows]}, dtype="str")
    grouped = frame.groupby(["k", "v"], sort=True, dropna=dropna)
    code, keys = group_codes(frame, ["k", "v"], dropna=dropna)
    assert code.tolist() == grouped.ngroup().fillna(-1).astype(int).tolist()
    expected = [tuple(None if pd.isna(x) else x for x in key) for key in grouped.size().index]
    assert [tuple(None if pd.isna(x) else x for x in key) for key in keys.itertuples(index=False)] == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=4), st.sampled_from(["t1", "t2", "é", "\ud800"]))))
def test_sorted_codes_rank_any_text_as_pandas_does(values: list[str | None]) -> None:
    # Arrow ranks text by its UTF-8 bytes; text it cannot encode (lone surrogates, which JSON
    # escapes can produce) is ranked by pandas instead.
    for given_values in (np.array(values, dtype=object), pd.Series(values, dtype=object)):
        ranks, names = sorted_codes(given_values)
        expected_ranks, expected_names = pd.factorize(np.array(values, dtype=object), sort=True)
        assert ranks.tolist() == expected_ranks.tolist()
        assert list(names) == list(expected_names)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5), st.one_of(st.none(), st.text(max_size=3), st.sampled_from(["a", "é", "b"]))
        ),
        max_size=60,
    ),
    st.one_of(st.none(), st.integers(1, 4)),
)
def test_smallest_text_by_code_keeps_what_smallest_by_code_keeps(
    rows: list[tuple[int, str | None]], limit: int | None
) -> None:
    # Hypothesis' text holds no lone surrogates: text Arrow holds, as every span table's ids are.
    codes = np.array([code for code, _ in rows], dtype=np.int64)
    values = pd.Series([text for _, text in rows], dtype="str")
    counts, kept = smallest_by_code(codes, values, 6, limit)
    text_counts, text_kept = smallest_text_by_code(codes, values, 6, limit)
    assert text_counts.tolist() == counts.tolist()
    assert text_kept.to_pylist() == list(kept)
    assert text_kept.type == pa.string()
    # Given the Arrow array itself, the result is the same.
    arrow_counts, arrow_kept = smallest_text_by_code(codes, pa.array(values.array), 6, limit)
    assert (arrow_counts.tolist(), arrow_kept.to_pylist()) == (counts.tolist(), list(kept))


def test_sorted_codes_rank_numbers_too() -> None:
    ranks, names = sorted_codes(np.array([3, 1, 3, 2], dtype=object))
    assert (ranks.tolist(), list(names)) == ([2, 0, 2, 1], [1, 2, 3])


def test_group_codes_hold_keys_whose_combinations_overflow_64_bits() -> None:
    # Five keys of 20,000 distinct values each: 20,001**5 combinations do not fit an int64.
    rng = np.random.default_rng(11)
    columns = {f"k{i}": rng.integers(0, 20_000, 30_000).astype(str) for i in range(5)}
    frame = pd.DataFrame(columns, dtype="str")
    frame = pd.concat([frame, frame.iloc[:5_000]], ignore_index=True)  # groups of two rows too
    frame.loc[::7, "k3"] = None
    keys = list(columns)
    grouped = frame.groupby(keys, sort=True, dropna=False)
    code, spelled = group_codes(frame, keys, dropna=False)
    assert code.tolist() == grouped.ngroup().tolist()
    assert np.bincount(code).tolist() == grouped.size().tolist()
    assert _key_rows(spelled.itertuples(index=False)) == _key_rows(grouped.size().index)


def _key_rows(rows: Iterable[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Group keys with every null as None (pandas spells them NaN)."""
    return [tuple(None if pd.isna(x) else x for x in key) for key in rows]


def test_sorted_codes_take_the_sorted_shortcut_and_agree_with_factorize(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ordered = pd.Series(["t1", "t1", "t2", "t5", "t5", "t9"], dtype="str")
    shuffled = ordered.sample(frac=1, random_state=3).reset_index(drop=True)
    expected = {
        name: pd.factorize(values, sort=True)
        for name, values in (("ordered", ordered), ("shuffled", shuffled))
    }
    for name, values in (("ordered", ordered), ("shuffled", shuffled)):
        ranks, names = sorted_codes(values)
        assert ranks.tolist() == expected[name][0].tolist()
        assert list(names) == list(expected[name][1])
    ranks, names = sorted_codes(pd.Series(["t2", None, "t1"], dtype="str"))
    assert (ranks.tolist(), list(names)) == ([1, -1, 0], ["t1", "t2"])

    # Text already in order is ranked without sorting it again.
    def no_sort(*args: object, **kwargs: object) -> None:
        raise AssertionError("factorized an ordered column")

    monkeypatch.setattr(pd, "factorize", no_sort)
    assert sorted_codes(ordered)[0].tolist() == expected["ordered"][0].tolist()


_CALL = st.tuples(
    st.sampled_from(["web", "api", None]),
    st.sampled_from(["api", "db", "stock"]),
    st.sampled_from(["sync", "infrastructure"]),
    st.integers(0, 10**9),
    st.booleans(),
    st.sampled_from(["t1", "t2", "t3", "t4", "t5", "t6", "t7"]),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_CALL, min_size=1, max_size=80), cuts=st.lists(st.integers(0, 80), max_size=6))
def test_edge_partials_of_consecutive_parts_merge_into_the_partial_of_all_calls(
    rows: list[tuple[str | None, str, str, int, bool, str]], cuts: list[int]
) -> None:
    calls = pd.DataFrame(rows, columns=["caller", "callee", "kind", "end_ns", "error", "trace_id"])
    calls["start_ns"] = 0
    bounds = sorted({0, len(rows), *(min(c, len(rows)) for c in cuts)})
    parts = [EdgePartial.of(calls.iloc[a:b].reset_index(drop=True)) for a, b in itertools.pairwise(bounds)]
    # Merged in two levels, as an engine merges blocks of units.
    merged = (
        EdgePartial.merge([EdgePartial.merge(parts[:2]), *parts[2:]])
        if len(parts) > 2
        else EdgePartial.merge(parts)
    )
    whole = EdgePartial.of(calls)
    columns = ["caller", "callee", "kind", "calls", "errors"]
    assert merged.edges[columns].to_dict("records") == whole.edges[columns].to_dict("records")
    assert [e.tolist() for e in merged.examples_by_edge()] == [e.tolist() for e in whole.examples_by_edge()]
    # Every edge's latencies, in the order of the calls.
    assert [a.tolist() for a in merged.latencies_by_edge()] == [a.tolist() for a in whole.latencies_by_edge()]
