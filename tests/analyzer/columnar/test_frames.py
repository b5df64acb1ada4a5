"""Frames built at once are the frames ``assign`` builds column by column."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from orchscan.analyzer.columnar.frames import with_columns

_NAMES = st.sampled_from(["service", "operation", "calls", "error", "busy", "trace_id"])


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(min_value=0, max_value=6),
    existing=st.lists(_NAMES, unique=True, max_size=4),
    added=st.lists(_NAMES, unique=True, max_size=4),
    shuffled=st.booleans(),
)
def test_with_columns_builds_what_assign_builds(
    rows: int, existing: list[str], added: list[str], shuffled: bool
) -> None:
    index = pd.Index(np.arange(rows)[::-1] * 3 if shuffled else np.arange(rows))
    frame = pd.DataFrame(
        {name: [f"{name}-{i}" if i % 2 else None for i in range(rows)] for name in existing}, index=index
    )
    values: dict[str, object] = {}
    for position, name in enumerate(added):
        if position % 3 == 0:
            values[name] = np.arange(rows, dtype=np.int64) * position
        elif position % 3 == 1:
            # A Series in another order: both align it on the frame's index.
            values[name] = pd.Series([i % 2 == 0 for i in range(rows)], index=index[::-1])
        else:
            values[name] = pd.Series([f"v{i}" for i in range(rows)], index=index, dtype="str")
    pd.testing.assert_frame_equal(with_columns(frame, **values), frame.assign(**values))


def test_with_columns_keeps_the_labels_and_leaves_the_frame_alone() -> None:
    frame = pd.DataFrame({"service": pd.Series(["a", "b"], dtype="str"), "calls": [1, 2]})
    built = with_columns(frame, calls=np.array([3, 4]), errors=np.array([0, 1]))
    assert list(built.columns) == ["service", "calls", "errors"]
    assert built.columns.dtype == frame.assign(errors=0).columns.dtype
    assert frame["calls"].tolist() == [1, 2] and list(frame.columns) == ["service", "calls"]
