"""Request keys: equal exactly when the ids are, whatever else is in the batch, on any id text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import SAMPLE

from orchscan.analyzer.flows.request_keys import request_keys, text_request_keys
from orchscan.collectors.traces.ingest import ingest

_HEX = "0123456789abcdef"
trace_ids = st.text(alphabet=_HEX, min_size=32, max_size=32)
span_ids = st.text(alphabet=_HEX, min_size=16, max_size=16)
#: What records written by another tool might hold instead of normalised ids.
odd_ids = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.text(max_size=40),
    st.text(alphabet=_HEX.upper(), min_size=16, max_size=32),
    st.text(alphabet=_HEX, min_size=1, max_size=31),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(trace_ids, span_ids), min_size=1, max_size=60), st.data())
def test_keys_are_equal_exactly_when_both_ids_are(pairs: list[tuple[str, str]], data: st.DataObject) -> None:
    # Repeat some pairs, and pair some traces with other spans, as a real landscape does.
    pairs = pairs + data.draw(st.lists(st.sampled_from(pairs), max_size=20))
    pairs = pairs + [(trace, span) for (trace, _), (_, span) in zip(pairs, reversed(pairs), strict=True)]
    keys = request_keys([t for t, _ in pairs], [s for _, s in pairs])
    assert keys.dtype == np.uint64
    by_pair: dict[tuple[str, str], int] = {}
    for pair, key in zip(pairs, keys.tolist(), strict=True):
        assert by_pair.setdefault(pair, key) == key
    assert len(set(by_pair.values())) == len(by_pair)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(trace_ids, span_ids), min_size=1, max_size=20),
    st.lists(st.tuples(odd_ids, odd_ids), min_size=1, max_size=5),
)
def test_a_malformed_id_changes_no_other_key(
    pairs: list[tuple[str, str]], odd: list[tuple[object, object]]
) -> None:
    clean = request_keys([t for t, _ in pairs], [s for _, s in pairs])
    mixed_pairs = list(odd) + pairs
    mixed = request_keys([t for t, _ in mixed_pairs], [s for _, s in mixed_pairs])
    assert mixed[len(odd) :].tolist() == clean.tolist()
    alone = [request_keys([t], [s])[0] for t, s in odd]
    assert mixed[: len(odd)].tolist() == alone


def test_every_variant_of_an_id_is_another_request() -> None:
    trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    variants = [
        (trace, span),
        (trace + "0", span),  # over-long: must not be cut back to the id itself
        (trace[:-1], span),
        (trace.upper(), span),
        (trace, span + "0"),
        (trace, span[1:]),
        (None, span),
        (trace, None),
        (trace[16:] + trace[:16], span),  # the trace's halves swapped
        ("0" * 16 + trace[16:], span),  # a 64-bit trace id with the same low half
    ]
    keys = request_keys([t for t, _ in variants], [s for _, s in variants])
    assert len(set(keys.tolist())) == len(variants)


def test_structured_ids_do_not_collide() -> None:
    # Tracers with 64-bit trace ids (padded with 16 zeros) and span ids counted from 1 per trace:
    # the ids differ in few bits, so the mixing alone keeps 400,000 requests apart.
    traces = np.repeat([f"{n:032x}" for n in range(1, 20_001)], 20)
    spans = np.tile([f"{n:016x}" for n in range(1, 21)], 20_000)
    keys = request_keys(traces, spans)
    assert len(np.unique(keys)) == len(keys) == 400_000


def test_keys_match_the_text_pairs_of_the_recorded_sample() -> None:
    spans = ingest([SAMPLE / "traces" / "shop.otlp.pb.gz"], jobs=1).spans.to_pandas()
    # Every trace id with every span id of another trace too: pairs that never occurred.
    spans = pd.concat(
        [spans, spans.assign(span_id=spans["span_id"].sample(frac=1, random_state=3).to_numpy())]
    )
    keys = request_keys(spans["trace_id"].to_numpy(dtype=object), spans["span_id"].to_numpy(dtype=object))
    text = spans["trace_id"].astype(str) + spans["span_id"].astype(str)
    assert len(spans) > 1_000
    assert pd.Series(keys).nunique() == text.nunique()
    # Same text, same key; different text, different key.
    assert pd.Series(keys).groupby(text.to_numpy()).nunique().eq(1).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(trace_ids, span_ids), min_size=1, max_size=40), st.integers(0, 5))
def test_ids_held_as_arrow_text_are_keyed_in_place_as_the_strings_are(
    pairs: list[tuple[str, str]], cut: int
) -> None:
    traces, spans = pa.array([t for t, _ in pairs]), pa.array([s for _, s in pairs])
    expected = request_keys([t for t, _ in pairs], [s for _, s in pairs])
    keys = text_request_keys(traces, spans)
    assert keys is not None and keys.tolist() == expected.tolist()
    # A slice of an array (its buffers start before it) and large text read the same.
    sliced = text_request_keys(traces.slice(min(cut, len(pairs) - 1)), spans.slice(min(cut, len(pairs) - 1)))
    assert sliced is not None and sliced.tolist() == expected[min(cut, len(pairs) - 1) :].tolist()
    large = text_request_keys(traces.cast(pa.large_string()), spans.cast(pa.large_string()))
    assert large is not None and large.tolist() == expected.tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(trace_ids, span_ids), min_size=1, max_size=20), st.tuples(odd_ids, odd_ids))
def test_ids_not_all_of_the_normal_form_are_left_to_the_general_keys(
    pairs: list[tuple[str, str]], odd: tuple[object, object]
) -> None:
    mixed = [*pairs, odd]
    text = [None if isinstance(v, float) else v for v in (odd[0], odd[1])]
    traces = pa.array([t for t, _ in pairs] + [text[0]], type=pa.string())
    spans = pa.array([s for _, s in pairs] + [text[1]], type=pa.string())
    if text[0] is not None and text[1] is not None and len(text[0]) == 32 and len(text[1]) == 16:
        normal = set(text[0]) <= set(_HEX) and set(text[1]) <= set(_HEX)
        keys = text_request_keys(traces, spans)
        assert (keys is not None) == normal
        if keys is not None:
            assert keys.tolist() == request_keys([t for t, _ in mixed], [s for _, s in mixed]).tolist()
    else:
        assert text_request_keys(traces, spans) is None
