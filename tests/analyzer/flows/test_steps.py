"""Each request's step sequence and the marking of its calls, checked one request at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import FIXTURES, SAMPLE
from scans import mined_steps

from orchscan.analyzer.flows.lost_callees import decide_answers
from orchscan.analyzer.flows.steps import (
    BLOCK_SEP,
    STEP_SEP,
    StepCalls,
    _mark,
    candidate_flows,
    flow_figures,
    mark_steps,
    number_requests,
    wanted_flows,
)
from orchscan.analyzer.reduction import PartitionLight, reduce_partition
from orchscan.analyzer.thresholds import FlowThresholds
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.partition import trace_buckets


def _expected_sequences(steps: StepCalls) -> dict[int, str]:
    """Blocks in time order, steps sorted inside a block, consecutive equal blocks folded."""
    expected: dict[int, str] = {}
    for entry, calls in steps.calls.groupby("entry_row"):
        blocks: list[str] = []
        for _, block in calls.sort_values("block").groupby("block", sort=True):
            joined = STEP_SEP.join(sorted(set(block["step"])))
            if not blocks or blocks[-1] != joined:
                blocks.append(joined)
        expected[int(entry)] = BLOCK_SEP.join(blocks)
    return expected


@pytest.mark.parametrize(
    "inputs",
    [SAMPLE / "traces", FIXTURES / "zipkin-lens-testdata" / "traces", FIXTURES / "hotrod" / "traces"],
    ids=["sample", "zipkin-lens", "hotrod"],
)
def test_every_sequence_lists_its_blocks_in_time_order(inputs: Path) -> None:
    # Arrow's hash aggregation returns each group's list in no guaranteed order: sequences built
    # that way once put a later block before an earlier one in about 2 % of the sample's requests.
    steps = mined_steps(ingest([inputs], jobs=1).spans, thresholds=FlowThresholds(min_steps=1))
    expected = _expected_sequences(steps)
    assert len(expected) >= 3
    actual = steps.requests.set_index("entry_row")["sequence"]
    wrong = {entry: (seq, actual[entry]) for entry, seq in expected.items() if actual[entry] != seq}
    assert not wrong


def _marked_one_by_one(calls: pd.DataFrame, tolerance: int) -> pd.DataFrame:
    """The marking, told call by call: blocks by the latest end so far, retries by the previous
    call to the same step, chains and attempts by counting."""
    rows = []
    for _, request in calls.sort_values(["entry_row", "start_ns", "end_ns"], kind="stable").groupby(
        "entry_row", sort=True
    ):
        latest_end, block = None, 0
        last_by_step: dict[str, dict[str, object]] = {}
        for call in request.to_dict("records"):
            new_block = latest_end is None or call["start_ns"] >= latest_end - tolerance
            block += new_block
            gap = 0 if latest_end is None or not new_block else max(call["start_ns"] - latest_end, 0)
            latest_end = call["end_ns"] if latest_end is None else max(latest_end, call["end_ns"])
            before = last_by_step.get(call["step"])
            retry = (
                before is not None
                and bool(before["error"])
                and call["start_ns"] >= int(before["end_ns"]) - tolerance
                and _same_path(before["url_path"], call["url_path"])
            )
            chain = 1 if before is None else int(before["chain"]) + (not retry)
            attempt = int(before["attempt"]) + 1 if retry and before is not None else 1
            marked = {
                **call,
                "block": block,
                "gap_ns": gap,
                "retry": retry,
                "chain": chain,
                "attempt": attempt,
            }
            last_by_step[call["step"]] = marked
            rows.append(marked)
    frame = pd.DataFrame(rows)
    frame["block_calls"] = frame.groupby(["entry_row", "block"])["step"].transform("size")
    frame["final_error"] = frame.groupby(["entry_row", "step", "chain"])["error"].transform("last")
    return frame


def _same_path(before: object, path: object) -> bool:
    """Equal paths, or neither call recorded one."""
    return bool(pd.isna(before) and pd.isna(path)) or before == path


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # request
            st.integers(0, 40),  # start
            st.integers(0, 15),  # duration
            st.sampled_from(["pay POST /charge", "stock POST /reserve", "mail POST /send"]),
            st.booleans(),  # error
            st.sampled_from(["/a", "/b", None]),
        ),
        max_size=40,
    ),
    st.sampled_from([0, 2]),
)
def test_marking_agrees_with_marking_call_by_call(
    calls: list[tuple[int, int, int, str, bool, str | None]], tolerance: int
) -> None:
    frame = pd.DataFrame(
        {
            "entry_row": [c[0] for c in calls],
            "start_ns": [c[1] for c in calls],
            "end_ns": [c[1] + c[2] for c in calls],
            "step": pd.array([c[3] for c in calls], dtype="str"),
            "error": [c[4] for c in calls],
            "url_path": pd.array([c[5] for c in calls], dtype=object),
        }
    ).astype({"entry_row": np.int64, "start_ns": np.int64, "end_ns": np.int64, "error": bool})
    marked = _mark(frame, tolerance / 1_000_000)
    columns = ["block", "gap_ns", "block_calls", "retry", "chain", "attempt", "final_error"]
    if not calls:
        assert marked.empty and set(columns) <= set(marked.columns)
        return
    expected = _marked_one_by_one(frame, tolerance)
    for column in columns:
        assert marked[column].tolist() == expected[column].tolist(), column


def test_requests_left_out_while_numbering_are_those_selected_out_after() -> None:
    """Numbering only the wanted flows' requests keeps the same requests and calls, in the same
    order, as numbering all of them and leaving the others out after; only the row numbers
    close up."""
    spans = ingest([SAMPLE / "traces"], jobs=1).spans
    buckets = trace_buckets(spans["trace_id"], 3)
    lights, heavies = zip(
        *(reduce_partition(spans.filter(pa.array(buckets == part))) for part in range(3)), strict=True
    )
    light = PartitionLight.merge(lights)
    candidates = candidate_flows(light.calls, frozenset(), 1)
    answers = decide_answers(light.answers)
    parts = [mark_steps(heavy.steps, candidates, tolerance_ms=5.0, answers=answers) for heavy in heavies]
    everything = number_requests(parts)
    wanted = wanted_flows(flow_figures(everything.requests), frozenset(), 3)
    assert 0 < len(wanted) < len(candidates)
    requests, calls = everything.requests, everything.calls
    pairs = zip(requests["owner"], requests["entry"], strict=True)
    kept = requests[[pair in wanted for pair in pairs]]
    assert 0 < len(kept) < len(requests)
    after = {
        "requests": kept.reset_index(drop=True),
        "calls": calls[calls["entry_row"].isin(kept["entry_row"])].reset_index(drop=True),
    }
    left_out = number_requests(parts, wanted)
    ranks = {row: rank for rank, row in enumerate(kept["entry_row"])}
    for name, frame in after.items():
        frame["entry_row"] = frame["entry_row"].map(ranks)
        pd.testing.assert_frame_equal(getattr(left_out, name), frame, check_dtype=False)
