"""What a span's values may be: time ranges, text lengths, and the notices counted when one is repaired.

Every reader holds its values to the same limits, so that no value a producer can write ends a
scan or blows up memory: a time outside what int64 nanoseconds can hold makes the span a skipped
record, an end before the start is set to the start, text longer than its cap is cut and marked.
Each repair is counted per file as a notice (the span is kept).
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from orchscan.collectors.model.records import Notice
from orchscan.collectors.model.spans import CODED

#: Latest time the span table holds (int64 nanoseconds: the year 2262). OTLP times are unsigned
#: 64-bit, and microseconds written as nanoseconds (or a flipped bit) overflow it.
MAX_NANOS = 2**63 - 1
#: Longest service, span, route, host, peer, RPC, database and messaging name, and attribute key,
#: in characters. Names are repeated per span and grouped on; a name longer than this is not a name.
NAME_CHARS = 512
#: Longest attribute value, URL path and status message, in characters (SQL statements and stack
#: traces are long, but the analysis reads at most their first words).
VALUE_CHARS = 8192
#: What replaces the end of a cut text; the cut text including the marker keeps to its cap.
MARKER = "…[truncated]"

END_BEFORE_START = "end time before start time (end set to the start)"
MALFORMED_FIELD = (
    "malformed field of a span ignored (a non-list for a list, an id of the wrong size; span kept)"
)
OUT_OF_RANGE = (
    "start/end time out of range (negative, or beyond int64 nanoseconds, the year 2262: another unit?)"
)
NAME_CUT = f"name longer than {NAME_CHARS:,} characters cut to that length"
VALUE_CUT = f"value longer than {VALUE_CHARS:,} characters cut to that length"

# Plain text columns of the span table that hold values rather than ids.
_VALUE_COLUMNS = ("url_path", "status_message")


class Tally:
    """Repairs counted while one chunk is parsed, by reason; they become the chunk's notices."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def note(self, reason: str, count: int = 1) -> None:
        """Count ``count`` repairs of one kind."""
        if count:
            self.counts[reason] += count

    def notices(self, source: str) -> tuple[Notice, ...]:
        """The counted repairs as notices of ``source``."""
        return tuple(sorted(Notice(source, reason, count) for reason, count in self.counts.items()))


def nanos(value: int) -> bool:
    """Whether ``value`` is a time the span table can hold."""
    return 0 <= value <= MAX_NANOS


def span_end(start: int, end: int, tally: Tally) -> int:
    """The end time to keep: ``end``, or ``start`` (counted) when it lies before the start."""
    if end < start:
        tally.note(END_BEFORE_START)
        return start
    return end


def cap_name(text: str, tally: Tally) -> str:
    """``text`` cut to ``NAME_CHARS`` with the marker (counted) when longer."""
    if len(text) <= NAME_CHARS:
        return text
    tally.note(NAME_CUT)
    return text[: NAME_CHARS - len(MARKER)] + MARKER


def cap_batch(batch: pa.RecordBatch, tally: Tally) -> pa.RecordBatch:
    """The batch with every over-long name and value cut and marked, each cut counted.

    Checked per column with one length computation (per dictionary for coded columns), so a
    batch without long text costs next to nothing.
    """
    columns = list(batch.columns)
    for index, field in enumerate(batch.schema):
        column = columns[index]
        if field.type == CODED:
            columns[index] = _cap_coded(column, NAME_CHARS, NAME_CUT, tally)
        elif field.name in _VALUE_COLUMNS:
            columns[index] = _cap_plain(column, VALUE_CHARS, VALUE_CUT, tally)
        elif field.name == "attributes" and column.null_count < len(column):
            given_keys, given_values = column.keys, column.items
            keys = _cap_coded(given_keys, NAME_CHARS, NAME_CUT, tally)
            values = _cap_plain(given_values, VALUE_CHARS, VALUE_CUT, tally)
            if keys is not given_keys or values is not given_values:
                columns[index] = pa.MapArray.from_arrays(column.offsets, keys, values, type=field.type)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _too_long(array: pa.Array, cap: int) -> pa.Array | None:
    """A mask of the values longer than ``cap``, or None when there is none."""
    if not len(array) or array.null_count == len(array):
        return None
    # Bytes bound characters from above and cost only the offsets: count characters only
    # when some value has more bytes than the cap allows characters.
    if (pc.max(pc.binary_length(array)).as_py() or 0) <= cap:
        return None
    lengths = pc.utf8_length(array)
    if (pc.max(lengths).as_py() or 0) <= cap:
        return None
    return pc.fill_null(pc.greater(lengths, cap), False)


def _cut(array: pa.Array, cap: int, mask: pa.Array) -> pa.Array:
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(array, 0, cap - len(MARKER)), MARKER, "")
    return pc.if_else(mask, cut, array)


def _cap_plain(array: pa.Array, cap: int, reason: str, tally: Tally) -> pa.Array:
    mask = _too_long(array, cap)
    if mask is None:
        return array
    tally.note(reason, pc.sum(mask).as_py())
    return _cut(array, cap, mask)


def _cap_coded(array: pa.Array, cap: int, reason: str, tally: Tally) -> pa.Array:
    """A coded column with long dictionary entries cut; cut entries may coincide, so it is re-coded."""
    mask = _too_long(array.dictionary, cap)
    if mask is None:
        return array
    long_codes = pc.indices_nonzero(mask)
    tally.note(reason, pc.sum(pc.is_in(array.indices, value_set=long_codes)).as_py())
    plain = array.cast(pa.string())
    return pc.dictionary_encode(_cut(plain, cap, pc.fill_null(pc.greater(pc.utf8_length(plain), cap), False)))
